package e2e

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestLogRetention: with --log-retention 3s, a finished job's logs are
// readable at first, then removed from the node's disk, and asking for them
// is a 410 that says why (API and CLI); a job still running keeps its log.
func TestLogRetention(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--log-retention", "3s"}})
	c := n.Client()
	ctx := context.Background()

	long := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"tick", "200ms", "60s"}, CPU: 100, Memory: 32 << 20})
	done := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", "kept for a while"}, CPU: 100, Memory: 32 << 20})
	j := waitJob(t, c, done.ID, time.Minute)
	if j.State != wire.StateSucceeded {
		t.Fatalf("job %s: %s", j.ID, j.State)
	}
	if got := readLog(t, c, done.ID); got != "kept for a while\n" {
		t.Fatalf("log right after the job = %q", got)
	}
	dir := filepath.Join(n.DataDir, "logs", done.ID)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("log dir of the finished job: %v", err)
	}

	var apiErr *client.Error
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		rc, _, err := c.Logs(ctx, done.ID, 0, 0, false)
		if err == nil {
			rc.Close()
			return false
		}
		return errors.As(err, &apiErr)
	}, "logs of job %s removed", done.ID)
	if apiErr.Status != 410 || !strings.Contains(apiErr.Message, "log retention") {
		t.Fatalf("error = %d %q, want 410 naming the log retention", apiErr.Status, apiErr.Message)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log dir still on disk after the retention: %v", err)
	}
	_, errOut, code := n.Gantry(t, "job", "logs", done.ID)
	if code == 0 || !strings.Contains(errOut, "log retention") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("gantry job logs: code %d stderr %q; want one line naming the log retention", code, errOut)
	}

	// The running job has been writing for longer than the retention: its
	// log stays.
	rj, err := c.Job(ctx, long.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rj.State != wire.StateRunning {
		t.Fatalf("long job is %s, want running", rj.State)
	}
	if got := readLog(t, c, long.ID); !strings.Contains(got, "tick") {
		t.Fatalf("log of the running job = %q", got)
	}
	if _, err := c.Cancel(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
}

func readLog(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	rc, _, err := c.Logs(context.Background(), id, 0, 0, false)
	if err != nil {
		t.Fatalf("logs of %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestJobRetention: with --job-retention 3s a finished job's record goes
// (404, gone from the list) while a running job stays.
func TestJobRetention(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--job-retention", "3s"}})
	c := n.Client()
	ctx := context.Background()
	long := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "60"}, CPU: 100, Memory: 32 << 20})
	done := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", "short-lived"}, CPU: 100, Memory: 32 << 20})
	if j := waitJob(t, c, done.ID, time.Minute); j.State != wire.StateSucceeded {
		t.Fatalf("job %s", j.State)
	}
	var ce *client.Error
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		_, err := c.Job(ctx, done.ID)
		return errors.As(err, &ce) && ce.Status == 404
	}, "the finished job %s to be purged", done.ID)
	jobs, _, err := c.Jobs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.ID == done.ID {
			t.Fatal("the purged job is still listed")
		}
	}
	if j, err := c.Job(ctx, long.ID); err != nil || j.State != wire.StateRunning {
		t.Fatalf("the running job: %+v %v", j, err)
	}
	if _, err := c.Cancel(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := n.Gantry(t, "server", "--job-retention", "soon")
	if code == 0 || !strings.Contains(errOut, `--job-retention: "soon" is not a duration`) {
		t.Fatalf("a bad --job-retention: code %d stderr %q", code, errOut)
	}
}
