package e2e

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// streamingCLI is a long-running gantry command whose output is read as it
// comes.
type streamingCLI struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startCLI(t *testing.T, n *gantrytest.Node, c *client.Client, args ...string) *streamingCLI {
	t.Helper()
	cmd := n.GantryCmd(t, c.Token, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &streamingCLI{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.done; cmd.Wait() })
	return s
}

// has reports whether some line satisfies ok.
func (s *streamingCLI) has(ok func(string) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if ok(l) {
			return true
		}
	}
	return false
}

// interrupt stops it as Ctrl-C does and returns its exit code.
func (s *streamingCLI) interrupt(t *testing.T) int {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGINT)
	<-s.done
	err := s.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

// TestCLIEventsAndWatch: `gantry events` prints the change feed as JSON
// lines (only what its user may see) and `gantry job ls --watch` lists
// again as a job changes; both end cleanly on Ctrl-C.
func TestCLIEventsAndWatch(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	aliceEvents := startCLI(t, n, alice, "events")
	bobEvents := startCLI(t, n, bob, "events")
	watch := startCLI(t, n, alice, "job", "ls", "--watch")
	// The first listing (empty) shows the feed is open before the job.
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		return watch.has(func(l string) bool { return strings.HasPrefix(l, "ID") })
	}, "the first listing of job ls --watch")
	// gantry events has no first output: wait until its connection is
	// registered by watching a change bob's own feed must carry.
	probe := submit(t, bob, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, CPU: 100, Memory: 32 << 20})
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		return bobEvents.has(func(l string) bool { return strings.Contains(l, probe.ID) })
	}, "bob's feed carrying his own job")
	waitJob(t, bob, probe.ID, time.Minute)

	j := submit(t, alice, wire.JobSpec{Name: "watched", Image: "gantry/toolbox", Command: []string{"echo", "hi"}, CPU: 100, Memory: 32 << 20})
	if got := waitJob(t, alice, j.ID, time.Minute); got.State != wire.StateSucceeded {
		t.Fatalf("job %s", got.State)
	}
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		return aliceEvents.has(func(l string) bool {
			var ev wire.Event
			return json.Unmarshal([]byte(l), &ev) == nil && ev.Type == "job" && ev.Job != nil && ev.Job.ID == j.ID && ev.Job.State == wire.StateSucceeded
		})
	}, "alice's feed reporting her job succeeded")
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		return watch.has(func(l string) bool { return strings.HasPrefix(l, j.ID) && strings.Contains(l, "succeeded") })
	}, "job ls --watch listing the job as succeeded")
	if bobEvents.has(func(l string) bool { return strings.Contains(l, j.ID) }) {
		t.Fatal("bob's event feed carried alice's job")
	}
	for name, s := range map[string]*streamingCLI{"events": aliceEvents, "job ls --watch": watch} {
		if code := s.interrupt(t); code != 0 {
			t.Errorf("gantry %s exited %d on Ctrl-C, want 0", name, code)
		}
	}
}
