package node

import (
	"context"
	"errors"
	"time"

	"gantry/store"
)

// DefaultLogRetention is how long task logs are kept after their job ended
// unless --log-retention says otherwise.
const DefaultLogRetention = 30 * 24 * time.Hour

// pruneLogsLoop applies the log retention policy to this node's task logs:
// once at start, then every quarter of the retention (between 1 s and 1 h).
func (n *Node) pruneLogsLoop(ctx context.Context) {
	ret := n.cfg.LogRetention
	if n.cfg.JobRetention > 0 && (ret <= 0 || n.cfg.JobRetention < ret) {
		ret = n.cfg.JobRetention
	}
	if ret <= 0 || n.runner == nil {
		return
	}
	every := min(max(ret/4, time.Second), time.Hour)
	for {
		n.pruneLogs(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// purgedLogsAge is how old the logs of a job the store no longer knows must
// be before they go (with job retention on, such a job was purged).
const purgedLogsAge = 10 * time.Minute

// pruneLogs removes the logs of every job that ended longer ago than the
// log retention and, when job retention is on, of jobs that were purged.
// Logs of other jobs the store does not know are left alone.
func (n *Node) pruneLogs(now time.Time) {
	ids, err := n.runner.LoggedJobs()
	if err != nil {
		n.log.Warn("log retention", "err", err)
		return
	}
	removed := 0
	for _, id := range ids {
		j, err := n.store.Job(id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if n.cfg.JobRetention <= 0 || now.Sub(n.runner.JobLogsModified(id)) < purgedLogsAge {
				continue
			}
		case err != nil || !j.LogsExpired(n.cfg.LogRetention, now):
			continue
		}
		if err := n.runner.RemoveJobLogs(id); err != nil {
			n.log.Warn("log retention", "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		n.log.Info("log retention: removed the task logs of jobs that ended long ago", "jobs", removed, "retention", store.FormatRetention(n.cfg.LogRetention))
	}
}
