package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"gantry/store"
)

// NodeLog opens an attempt's log on the node that ran it, over the
// mutual-TLS internal listener. With follow it streams until the attempt
// ends.
func (c *Cluster) NodeLog(ctx context.Context, node, job string, task, attempt int, follow bool) (io.ReadCloser, error) {
	nd, err := c.st.Node(node)
	if err != nil {
		return nil, store.Errorf(store.EUnavailable, "the log is on node %s, which is not a member any more", node)
	}
	q := url.Values{"job": {job}, "task": {strconv.Itoa(task)}, "attempt": {strconv.Itoa(attempt)}}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.internalDo(ctx, http.MethodGet, nd.Addr, "/internal/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return nil, store.Errorf(store.EUnavailable, "the log is on node %s, which cannot be reached now", node)
	}
	if resp.StatusCode == http.StatusGone {
		resp.Body.Close()
		if j, err := c.st.Job(job); err == nil {
			return nil, store.Errorf(store.EGone, "the logs of job %s were removed from node %s under its log retention policy", j.ID, node)
		}
		return nil, store.Errorf(store.EGone, "the logs were removed from node %s under its log retention policy", node)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, store.Errorf(store.EUnavailable, "node %s could not serve the log (%s)", node, resp.Status)
	}
	return resp.Body, nil
}

// handleLogs serves a local attempt log to another node.
func (c *Cluster) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	task, err1 := strconv.Atoi(q.Get("task"))
	attempt, err2 := strconv.Atoi(q.Get("attempt"))
	job := q.Get("job")
	if err1 != nil || err2 != nil || job == "" {
		http.Error(w, "bad log request", http.StatusBadRequest)
		return
	}
	logs := c.logFiles()
	if logs == nil {
		http.Error(w, "this node is starting", http.StatusServiceUnavailable)
		return
	}
	path := logs.LogPath(job, task, attempt)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if j, err := c.st.Job(job); err == nil && j.LogsExpired(c.cfg.LogRetention, time.Now()) {
			http.Error(w, "removed by the log retention policy", http.StatusGone)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if q.Get("follow") != "1" {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			w.WriteHeader(http.StatusOK)
			return
		}
		if err != nil {
			http.Error(w, "open log", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		http.ServeContent(w, r, "", st.ModTime(), f)
		return
	}
	w.WriteHeader(http.StatusOK)
	if err := c.followLog(r.Context(), w, path, job, task, attempt); err != nil {
		c.log.Debug("follow log for a peer", "err", err)
	}
}

// followLog copies a growing log file until the attempt ends.
func (c *Cluster) followLog(ctx context.Context, w http.ResponseWriter, path, job string, task, attempt int) error {
	fl, _ := w.(http.Flusher)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		at, err := c.st.Attempt(job, task, attempt)
		if err != nil {
			return err
		}
		ended := store.Terminal(at.State)
		if ended && f == nil {
			if f, err = os.Open(path); err != nil {
				return nil
			}
		}
		if f != nil {
			if _, err := io.CopyBuffer(w, f, buf); err != nil {
				return fmt.Errorf("copy log: %w", err)
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
