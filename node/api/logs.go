package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/store"
)

// taskLogs serves an attempt's log; with follow=1 it streams new bytes until
// the attempt ends.
func (a *API) taskLogs(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	i, ok := a.taskIndex(c, j)
	if !ok {
		return
	}
	follow := c.Query("follow") == "1" || c.Query("follow") == "true"
	n := 0
	if v := c.Query("attempt"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 1 {
			fail(c, store.Errorf(store.EInvalid, "attempt: want a number from 1"))
			return
		}
	}
	ctx := c.Request.Context()
	sub := a.cfg.Store.Subscribe(1024)
	defer func() { sub.Close() }()
	at, err := a.attemptFor(ctx, j, i, n, follow, &sub)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	if at == nil {
		c.Status(http.StatusOK)
		return
	}
	c.Header("X-Gantry-Attempt", strconv.Itoa(at.N))
	if at.Node != a.cfg.NodeName && a.cfg.NodeName != "" {
		a.proxyLog(c, at, follow) // cluster.go: from the node that ran it
		return
	}
	path := a.cfg.LogPath(j.ID, i, at.N)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && j.LogsExpired(a.cfg.LogRetention, time.Now()) {
		fail(c, store.LogsGoneError(j, a.cfg.LogRetention))
		return
	}
	if !follow {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			c.Status(http.StatusOK)
			return
		}
		if err != nil {
			fail(c, err)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		http.ServeContent(c.Writer, c.Request, "", st.ModTime(), f)
		return
	}
	c.Status(http.StatusOK)
	a.streamLog(ctx, c, path, j.ID, i, at.N, &sub)
}

// attemptFor picks attempt n (0: the latest), waiting for a first attempt
// when following a task that has none yet.
func (a *API) attemptFor(ctx context.Context, j *store.Job, i, n int, follow bool, sub **store.Subscription) (*store.Attempt, error) {
	for {
		t, err := a.cfg.Store.Task(j.ID, i)
		if err != nil {
			return nil, err
		}
		want := n
		if want == 0 {
			want = t.Attempts
		}
		if want > 0 && want <= t.Attempts {
			at, err := a.cfg.Store.Attempt(j.ID, i, want)
			if errors.Is(err, store.ErrNotFound) {
				return nil, store.Errorf(store.ENotFound, "task %d has no attempt %d", i, want)
			}
			return at, err
		}
		if !follow || store.Terminal(t.State) {
			if want > t.Attempts {
				return nil, store.Errorf(store.ENotFound, "task %d has no attempt %d", i, want)
			}
			return nil, nil
		}
		if err := a.waitTask(ctx, j.ID, i, sub); err != nil {
			return nil, err
		}
	}
}

// waitTask waits for any change to a task (or a lost subscription, which is
// then renewed).
func (a *API) waitTask(ctx context.Context, job string, i int, sub **store.Subscription) error {
	for {
		select {
		case <-ctx.Done():
			return store.Errorf(store.EUnavailable, "client went away")
		case ev, ok := <-(*sub).C:
			if !ok {
				(*sub).Close()
				*sub = a.cfg.Store.Subscribe(1024)
				return nil
			}
			if ev.Type == "task" && ev.Task.JobID == job && ev.Task.Index == i {
				return nil
			}
			if ev.Type == "resync" {
				return nil
			}
		}
	}
}

func (a *API) streamLog(ctx context.Context, c *gin.Context, path, job string, i, n int, sub **store.Subscription) {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if f == nil {
			var err error
			f, err = os.Open(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return
			}
		}
		if f != nil {
			for {
				k, err := f.Read(buf)
				if k > 0 {
					if _, werr := c.Writer.Write(buf[:k]); werr != nil {
						return
					}
				}
				if err == io.EOF || k == 0 {
					break
				}
				if err != nil {
					return
				}
			}
			c.Writer.Flush()
		}
		at, err := a.cfg.Store.Attempt(job, i, n)
		if err != nil {
			return
		}
		if store.Terminal(at.State) {
			// The runner writes the whole log before reporting the end; one
			// more read drains what arrived since the last one.
			if f == nil {
				if f, err = os.Open(path); err != nil {
					return
				}
			}
			if _, err := io.CopyBuffer(c.Writer, f, buf); err == nil {
				c.Writer.Flush()
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case ev, ok := <-(*sub).C:
			if !ok {
				(*sub).Close()
				*sub = a.cfg.Store.Subscribe(1024)
			}
			_ = ev
		}
	}
}
