package api

import (
	"net/http"
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
	out := wire.StatsHistory{Window: string(w), Step: v.Step.Seconds(), Interval: a.cfg.History.Interval().Seconds(),
		Node: a.cfg.NodeName, Times: v.Times, Cluster: map[string]wire.Series{}, Nodes: []wire.NamedSeries{}, Users: []wire.NamedSeries{}}
	for k, col := range v.Cluster {
		out.Cluster[k] = col
	}
	named := func(ns []history.Named) []wire.NamedSeries {
		out := make([]wire.NamedSeries, 0, len(ns))
		for _, n := range ns {
			s := make(map[string]wire.Series, len(n.Fields))
			for k, col := range n.Fields {
				s[k] = col
			}
			out = append(out, wire.NamedSeries{Name: n.Name, Series: s})
		}
		return out
	}
	out.Nodes, out.Users = named(v.Nodes), named(v.Users)
	c.JSON(http.StatusOK, out)
}

func (a *API) jobTimeline(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	cursor, limit := 0, store.MaxArraySize
	if v := c.Query("cursor"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail(c, store.Errorf(store.EInvalid, "cursor: want a task index"))
			return
		}
		cursor = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxArraySize {
			fail(c, store.Errorf(store.EInvalid, "limit: want 1..%d", store.MaxArraySize))
			return
		}
		limit = n
	}
	out := wire.Timeline{Job: j.ID, Total: j.Total, Attempts: []wire.TimelineAttempt{}}
	end := cursor + limit
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	err := a.cfg.Store.JobAttempts(j.ID, cursor, func(at store.Attempt) bool {
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
