package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/node/history"
	"gantry/store"
	"gantry/wire"
)

// History is what the charts read (*history.History implements it).
type History interface {
	Read(w history.Window, maxPoints int, user func(name string) bool) history.View
	Interval() time.Duration
}

var _ History = (*history.History)(nil)

var (
	pWindow = Param{"window", "string", "1h (the last hour at the sampling interval, default) or 1d (the last day, one point a minute or coarser)"}
	pPoints = Param{"points", "integer", "at most this many points, consecutive ones averaged (10 to 1440, default 360)"}
	pTasks  = Param{"limit", "integer", "how many tasks' attempts (1 to 10000, default 10000)"}
)

func (a *API) statsRoutes() []Route {
	var rs []Route
	if a.cfg.History != nil {
		rs = append(rs, route("GET", "/api/v1/stats/history", Signed, a.statsHistory,
			"The cluster's CPU, memory and GPUs (capacity, allocated, used), queue, task rates and nodes over the last hour or day, with usage against quota: every user's for admins, the caller's own for users").
			answers(200, wire.StatsHistory{}).reads(pWindow, pPoints))
	}
	rs = append(rs, route("GET", "/api/v1/jobs/:id/timeline", Signed, a.jobTimeline,
		"Every attempt of a page of a job's tasks: start, end, state and reason, in task order").
		answers(200, wire.Timeline{}).reads(pCursor, pTasks))
	return rs
}

func (a *API) statsHistory(c *gin.Context) {
	w := history.Window(c.DefaultQuery("window", string(history.Hour)))
	if w != history.Hour && w != history.Day {
		fail(c, store.Errorf(store.EInvalid, "window: want 1h or 1d"))
		return
	}
	points := 360
	if v := c.Query("points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 || n > 1440 {
			fail(c, store.Errorf(store.EInvalid, "points: want 10..1440"))
			return
		}
		points = n
	}
	id := identity(c)
	// Nothing of other users' reaches a user: not their series, not their
	// names.
	allow := func(name string) bool { return id.Admin || name == id.User }
	v := a.cfg.History.Read(w, points, allow)
	// About 8 bytes a figure: one allocation instead of a dozen copies.
	cols := len(v.Cluster) + 1
	for _, n := range v.Nodes {
		cols += len(n.Fields)
	}
	for _, u := range v.Users {
		cols += len(u.Fields)
	}
	b := make([]byte, 0, 4096+cols*len(v.Times)*8)
	b = fmt.Appendf(b, `{"window":%q,"step_seconds":%s,"interval_seconds":%s,"node":`, w,
		strconv.FormatFloat(v.Step.Seconds(), 'f', -1, 64), strconv.FormatFloat(a.cfg.History.Interval().Seconds(), 'f', -1, 64))
	b = appendJSONString(b, a.cfg.NodeName)
	b = append(b, `,"times":[`...)
	for i, t := range v.Times {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, t, 10)
	}
	b = append(b, `],"cluster":`...)
	b = appendColumns(b, v.Cluster)
	b = append(b, `,"nodes":`...)
	b = appendNamed(b, v.Nodes)
	b = append(b, `,"users":`...)
	b = appendNamed(b, v.Users)
	b = append(b, "}\n"...)
	// Written by hand: encoding/json re-scans every Marshaler's output,
	// which tripled the time of a day's answer (wire.StatsHistory is its
	// shape; the handler tests decode it into that type).
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func appendColumns(b []byte, cols map[string][]float64) []byte {
	keys := make([]string, 0, len(cols))
	for k := range cols {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = wire.Series(cols[k]).AppendJSON(b)
	}
	return append(b, '}')
}

func appendNamed(b []byte, ns []history.Named) []byte {
	b = append(b, '[')
	for i, n := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, n.Name)
		b = append(b, `,"series":`...)
		b = appendColumns(b, n.Fields)
		b = append(b, '}')
	}
	return append(b, ']')
}

func (a *API) jobTimeline(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	cursor, limit, err := taskPage(c, store.MaxArraySize)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.Timeline{Job: j.ID, Total: j.Total, Attempts: []wire.TimelineAttempt{}}
	end := cursor + limit
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	err = a.cfg.Store.JobAttempts(j.ID, cursor, func(at store.Attempt) bool {
		if at.Task >= end {
			return false
		}
		out.Attempts = append(out.Attempts, wire.TimelineAttempt{Task: at.Task, Attempt: at.N, Start: ms(at.Started), End: ms(at.Ended), State: at.State, Reason: at.Reason})
		return true
	})
	if err != nil {
		fail(c, err)
		return
	}
	if end < j.Total {
		out.Next = strconv.Itoa(end)
	}
	c.JSON(http.StatusOK, out)
}
