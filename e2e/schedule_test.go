package e2e

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestSchedules: `gantry run --schedule "@every 2s"` submits a job at each
// due time, tagged with the schedule; a run is skipped while the previous
// job still runs; pause stops it, resume restarts it; another user cannot
// see or remove it; rm removes it and its jobs stay; a bad cron is one line.
func TestSchedules(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")

	out, errOut, code := n.GantryAs(t, alice.Token, "run", "--schedule", "@every 2s", "--name", "ping", "--cpu", "0.1", "--memory", "32M", "gantry/toolbox", "--", "echo", "scheduled")
	if code != 0 || !strings.HasPrefix(out, "schedule ") {
		t.Fatalf("run --schedule: code %d stdout %q stderr %q", code, out, errOut)
	}
	id := strings.TrimSuffix(strings.Fields(out)[1], ":")

	// Two runs, each a job labelled with the schedule that succeeds.
	var jobs []wire.Job
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		list, _, err := alice.Jobs(ctx, nil)
		if err != nil {
			return false
		}
		jobs = jobs[:0]
		for _, j := range list {
			if j.Spec.Labels[wire.ScheduleLabel] == id {
				jobs = append(jobs, j)
			}
		}
		return len(jobs) >= 2
	}, "two jobs from schedule %s", id)
	for _, j := range jobs[:2] {
		if got := waitJob(t, alice, j.ID, time.Minute); got.State != wire.StateSucceeded || got.Spec.Name != "ping" {
			t.Fatalf("scheduled job %s: %s %q", j.ID, got.State, got.Spec.Name)
		}
	}

	t.Run("another user neither sees nor removes it", func(t *testing.T) {
		list, err := bob.Schedules(ctx)
		if err != nil || len(list) != 0 {
			t.Fatalf("bob's schedules: %+v %v", list, err)
		}
		var ce *client.Error
		if err := bob.DeleteSchedule(ctx, id); !errors.As(err, &ce) || ce.Status != 404 {
			t.Fatalf("bob removing alice's schedule: %v", err)
		}
	})

	t.Run("pause stops the runs and resume restarts them", func(t *testing.T) {
		if _, errOut, code := n.GantryAs(t, alice.Token, "schedule", "pause", id); code != 0 {
			t.Fatalf("pause: %s", errOut)
		}
		s, err := alice.Schedule(ctx, id)
		if err != nil || !s.Paused || !s.NextRun.IsZero() {
			t.Fatalf("paused schedule: %+v %v", s, err)
		}
		runs := s.Runs
		// Nothing is due while paused: the store holds no next run, so the
		// leader has nothing to fire (checked above); resume gives one.
		s, err = alice.SetSchedulePaused(ctx, id, false)
		if err != nil || s.Paused || s.NextRun.IsZero() {
			t.Fatalf("resumed schedule: %+v %v", s, err)
		}
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			s, err := alice.Schedule(ctx, id)
			return err == nil && s.Runs > runs
		}, "a run after resume")
	})

	t.Run("a run is skipped while the previous job still runs", func(t *testing.T) {
		s, err := alice.CreateSchedule(ctx, "slow", "@every 1s", wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "4"}, CPU: 100, Memory: 32 << 20}, false)
		if err != nil {
			t.Fatal(err)
		}
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			s2, err := alice.Schedule(ctx, s.ID)
			return err == nil && s2.Runs >= 1 && s2.Skipped >= 2
		}, "runs skipped behind a 4 s job on a 1 s schedule")
		s2, _ := alice.Schedule(ctx, s.ID)
		if s2.Runs > 2 {
			t.Fatalf("%d runs of a 4 s job within a few seconds: runs were not skipped", s2.Runs)
		}
		if err := alice.DeleteSchedule(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ls, show and rm; the jobs stay", func(t *testing.T) {
		out, _, code := n.GantryAs(t, alice.Token, "schedule", "ls")
		if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "@every 2s") {
			t.Fatalf("schedule ls:\n%s", out)
		}
		out, _, code = n.GantryAs(t, alice.Token, "schedule", "show", id)
		if code != 0 || !strings.Contains(out, `cron "@every 2s" (UTC)`) {
			t.Fatalf("schedule show:\n%s", out)
		}
		out, errOut, code := n.GantryAs(t, alice.Token, "schedule", "rm", id)
		if code != 0 || out != "removed schedule "+id+"\n" {
			t.Fatalf("schedule rm: code %d %q %q", code, out, errOut)
		}
		if _, err := alice.Job(ctx, jobs[0].ID); err != nil {
			t.Fatalf("a job of the removed schedule: %v", err)
		}
		list, _ := alice.Schedules(ctx)
		if len(list) != 0 {
			t.Fatalf("schedules after rm: %+v", list)
		}
	})

	t.Run("a bad cron expression is one line naming the field", func(t *testing.T) {
		_, errOut, code := n.GantryAs(t, alice.Token, "run", "--schedule", "every day", "gantry/toolbox", "--", "true")
		line := strings.TrimSpace(errOut)
		if code == 0 || !strings.Contains(line, "cron:") || strings.Contains(line, "\n") {
			t.Fatalf("code %d stderr %q", code, errOut)
		}
		_, errOut, code = n.GantryAs(t, alice.Token, "run", "--schedule", "@daily", "--cpu", "1000", "gantry/toolbox", "--", "true")
		if code == 0 || !strings.Contains(errOut, "spec.cpu:") {
			t.Fatalf("a schedule whose job could never run: code %d stderr %q", code, errOut)
		}
	})
}

// TestSchedulesSurviveLeaderFailover: a schedule keeps firing after the
// leader is killed (the new leader takes over), and no due time ever
// submits two jobs, whichever leader fired it.
func TestSchedulesSurviveLeaderFailover(t *testing.T) {
	cl := gantrytest.StartCluster(t, 3)
	ctx := context.Background()
	leader := cl.Leader(t, 10*time.Second)
	f := cl.Followers(t)[0]
	s, err := f.Client().CreateSchedule(ctx, "beat", "@every 1s", wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, CPU: 100, Memory: 32 << 20}, true)
	if err != nil {
		t.Fatal(err)
	}
	runsOf := func(via *gantrytest.Node) int {
		sc, err := via.Client().Schedule(ctx, s.ID)
		if err != nil {
			return -1
		}
		return sc.Runs
	}
	gantrytest.Eventually(t, 30*time.Second, func() bool { return runsOf(f) >= 2 }, "two runs before the failover")
	leader.Kill9(t)
	newLeader := cl.Leader(t, 15*time.Second)
	before := runsOf(newLeader)
	gantrytest.Eventually(t, 30*time.Second, func() bool { return runsOf(newLeader) >= before+3 }, "three runs fired by the new leader %s", newLeader.Name)
	if _, err := newLeader.Client().SetSchedulePaused(ctx, s.ID, true); err != nil {
		t.Fatal(err)
	}
	// Every job of the schedule, and one per due second at most.
	var mine []wire.Job
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		jobs, next, err := newLeader.Client().Jobs(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Spec.Labels[wire.ScheduleLabel] == s.ID {
				mine = append(mine, j)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	sc, err := newLeader.Client().Schedule(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != sc.Runs {
		t.Fatalf("%d jobs carry the schedule's label, the schedule counted %d runs", len(mine), sc.Runs)
	}
	seconds := map[int64]int{}
	for _, j := range mine {
		seconds[j.Submitted.Unix()]++
	}
	for sec, n := range seconds {
		if n > 1 {
			t.Fatalf("%d jobs submitted for the due time %s", n, time.Unix(sec, 0).UTC())
		}
	}
}

// TestScheduleReadsWhatItsInputTagNamesAtEachRun: a schedule over
// corpus:v1 reads the dataset pushed under that tag; once the tag is
// pushed again with other bytes, the next runs read those.
func TestScheduleReadsWhatItsInputTagNamesAtEachRun(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, _ := n.CreateUser(t, "alice")
	push := func(content string) {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "edition.txt"), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		n.MustGantry(t, alice.Token, "data", "push", dir, "corpus:v1")
	}
	push("first edition")
	out := n.MustGantry(t, alice.Token, "run", "--schedule", "@every 2s", "--input", "corpus:v1=/data", "--cpu", "0.1", "--memory", "32M",
		"gantry/toolbox", "--", "cat", "/data/edition.txt")
	id := strings.TrimSuffix(strings.Fields(out)[1], ":")
	// waitRead waits for a succeeded run of the schedule, submitted after
	// since, that printed want.
	waitRead := func(want string, since time.Time) {
		t.Helper()
		gantrytest.Eventually(t, 90*time.Second, func() bool {
			list, _, err := alice.Jobs(ctx, nil)
			if err != nil {
				return false
			}
			for _, j := range list {
				if j.Spec.Labels[wire.ScheduleLabel] == id && j.State == wire.StateSucceeded && j.Submitted.After(since) &&
					strings.Contains(logOf(t, alice, j.ID, 0), want) {
					return true
				}
			}
			return false
		}, "a run of schedule %s reading %q", id, want)
	}
	waitRead("first edition", time.Time{})
	push("second edition")
	waitRead("second edition", time.Now())
	if err := alice.DeleteSchedule(ctx, id); err != nil {
		t.Fatal(err)
	}
}
