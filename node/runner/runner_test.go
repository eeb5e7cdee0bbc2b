package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"gantry/gantrytest"
	"gantry/node/toolbox"
)

var (
	// testImage is the toolbox image built from this test binary.
	testImage string
	// testCluster labels every container the tests create.
	testCluster string
	// dockerProblem says why Docker tests cannot run, if they cannot.
	dockerProblem string
)

func TestMain(m *testing.M) {
	// The test binary doubles as the toolbox inside the test image, whose
	// entrypoint is ["/gantry", "toolbox"].
	if len(os.Args) > 1 && os.Args[1] == "toolbox" {
		os.Exit(toolbox.Main(os.Args[2:]))
	}
	testCluster = "t" + randomHex(6) + "-cluster"
	testImage = "gantry-test/toolbox:" + randomHex(6)
	cleanup, err := setupImage()
	if err != nil {
		dockerProblem = err.Error()
	}
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// setupImage builds the toolbox image from this test binary (dynamically
// linked when cgo is on, as with -race) and loads it into Docker.
func setupImage() (cleanup func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("Docker client: %w", err)
	}
	if _, err := dc.Ping(ctx); err != nil {
		dc.Close()
		return nil, fmt.Errorf("Docker Engine is not reachable (tests need a running Docker daemon): %w", err)
	}
	cleanup = func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := dc.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelCluster+"="+testCluster))})
		if err == nil {
			for _, c := range list {
				_ = dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
		_, _ = dc.NetworksPrune(ctx, filters.NewArgs(filters.Arg("label", LabelCluster+"="+testCluster)))
		_, _ = dc.ImageRemove(ctx, testImage, image.RemoveOptions{Force: true, PruneChildren: true})
		dc.Close()
	}
	exe, err := os.Executable()
	if err != nil {
		return cleanup, fmt.Errorf("find test binary: %w", err)
	}
	if err := loadImage(ctx, exe, testImage); err != nil {
		return cleanup, err
	}
	return cleanup, nil
}

// loadImage builds a toolbox image from exe and loads it as tag.
func loadImage(ctx context.Context, exe, tag string) error {
	img, err := toolbox.Build(exe)
	if err != nil {
		return fmt.Errorf("build toolbox image: %w", err)
	}
	var buf bytes.Buffer
	if err := img.WriteDockerArchive(&buf, tag); err != nil {
		return fmt.Errorf("write image archive: %w", err)
	}
	r, err := New(Config{Node: "loader", Cluster: testCluster, LogDir: os.TempDir(), Reporter: newFakeReporter()})
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.LoadImage(ctx, &buf); err != nil {
		return fmt.Errorf("load toolbox image: %w", err)
	}
	return nil
}

// requireDocker skips (or, under CI=true, fails) a test when Docker or the
// test image is not available.
func requireDocker(t *testing.T) {
	t.Helper()
	gantrytest.Require(t, dockerProblem == "", dockerProblem)
}

// fakeReporter plays the store: it holds the attempts placed on the node,
// records every Started and Finished call, and drops an attempt from the
// wanted set once it finished.
type fakeReporter struct {
	mu       sync.Mutex
	want     map[Key]Spec
	started  []startCall
	finished []Result
	// failFinished makes that many Finished calls fail first.
	failFinished int
}

type startCall struct {
	Key         Key
	ContainerID string
	At          time.Time
}

var _ Reporter = (*fakeReporter)(nil)

func newFakeReporter() *fakeReporter { return &fakeReporter{want: map[Key]Spec{}} }

func (f *fakeReporter) Started(ctx context.Context, k Key, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, startCall{k, id, at})
	if s, ok := f.want[k]; ok {
		s.Started = true
		f.want[k] = s
	}
	return nil
}

func (f *fakeReporter) Finished(ctx context.Context, r Result) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFinished > 0 {
		f.failFinished--
		return fmt.Errorf("store unavailable")
	}
	f.finished = append(f.finished, r)
	delete(f.want, r.Key)
	return nil
}

func (f *fakeReporter) place(s Spec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.want[s.Key] = s
}

func (f *fakeReporter) cancel(k Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.want[k]
	s.Cancel = true
	f.want[k] = s
}

func (f *fakeReporter) wanted() []Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Spec, 0, len(f.want))
	for _, s := range f.want {
		out = append(out, s)
	}
	return out
}

func (f *fakeReporter) results(k Key) []Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Result
	for _, r := range f.finished {
		if r.Key == k {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeReporter) starts(k Key) []startCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []startCall
	for _, s := range f.started {
		if s.Key == k {
			out = append(out, s)
		}
	}
	return out
}

// testNode is one runner under test with its fake store.
type testNode struct {
	t      *testing.T
	name   string
	logDir string
	rep    *fakeReporter
	// outputs stores attempts' outputs, and outDir holds them meanwhile.
	outputs *fakeOutputs
	outDir  string
	r       *Runner
	stop    func()
}

func newTestNode(t *testing.T) *testNode {
	t.Helper()
	requireDocker(t)
	n := &testNode{
		t:       t,
		name:    strings.ToLower(safeName(t.Name())) + "-" + randomHex(3),
		logDir:  t.TempDir(),
		rep:     newFakeReporter(),
		outputs: &fakeOutputs{},
		outDir:  t.TempDir(),
	}
	n.start()
	t.Cleanup(n.close)
	return n
}

// start creates the runner and a loop that syncs it with the fake store,
// as the node's change feed would.
func (n *testNode) start() {
	n.t.Helper()
	r, err := New(Config{
		Node:      n.name,
		Cluster:   testCluster,
		LogDir:    n.logDir,
		Reporter:  n.rep,
		OutputDir: n.outDir,
		Outputs:   n.outputs,
		Logger:    slog.New(slog.NewTextHandler(testWriter{n.t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.r = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			r.Sync(ctx, n.rep.wanted())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	n.stop = func() { cancel(); <-done }
}

func (n *testNode) close() {
	if n.r == nil {
		return
	}
	n.stop()
	if err := n.r.Close(); err != nil {
		n.t.Errorf("close runner: %v", err)
	}
	n.r = nil
}

// testWriter sends runner logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (n *testNode) spec(job string, cmd ...string) Spec {
	return Spec{
		Key:       Key{JobID: job + "-" + randomHex(3), Task: 0, Attempt: 1},
		Owner:     "alice",
		Image:     testImage,
		Command:   cmd,
		TaskCount: 1,
	}
}

// waitResult polls until the attempt's result is reported.
func (n *testNode) waitResult(k Key, within time.Duration) Result {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if rs := n.rep.results(k); len(rs) > 0 {
			return rs[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("no result for %s within %s", k, within)
	return Result{}
}

func (n *testNode) waitStarted(k Key, within time.Duration) startCall {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ss := n.rep.starts(k); len(ss) > 0 {
			return ss[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("attempt %s not started within %s", k, within)
	return startCall{}
}

// containers lists the test cluster's containers for an attempt, on any node.
func containers(t *testing.T, r *Runner, k Key) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := r.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelCluster+"="+testCluster),
		filters.Arg("label", LabelJob+"="+k.JobID),
	)})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// containersCreated counts Docker's "create" events for the attempt since
// a time: every container that ever existed for it, even removed ones.
func containersCreated(t *testing.T, r *Runner, k Key, since time.Time) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, errs := r.docker.Events(ctx, events.ListOptions{
		Since: strconv.FormatInt(since.Add(-time.Second).Unix(), 10),
		Until: strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		Filters: filters.NewArgs(
			filters.Arg("type", "container"),
			filters.Arg("event", "create"),
			filters.Arg("label", LabelCluster+"="+testCluster),
			filters.Arg("label", LabelJob+"="+k.JobID),
		),
	})
	n := 0
	for {
		select {
		case <-msgs:
			n++
		case err := <-errs:
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("docker events: %v", err)
			}
			return n
		}
	}
}

// waitGone polls until the attempt has no container.
func waitGone(t *testing.T, r *Runner, k Key, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if len(containers(t, r, k)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container of %s still there after %s", k, within)
}

func TestAttemptsThatExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cmd      []string
		env      map[string]string
		genai    bool
		wantCode int
		wantLog  []string
		notInLog []string
	}{
		{name: "echo output lands in the log and exits 0", cmd: []string{"echo", "hello", "gantry"}, wantLog: []string{"hello gantry\n"}},
		{name: "exit 3 is reported as exit code 3", cmd: []string{"exit", "3"}, wantCode: 3},
		{name: "stderr lands in the same log", cmd: []string{"fail-until", "2", "4"}, wantCode: 4, wantLog: []string{"attempt 1 < 2: failing with exit code 4\n"}},
		{
			name: "the task sees the GANTRY variables and its own env",
			cmd:  []string{"env"},
			env:  map[string]string{"FOO": "bar", "GANTRY_ATTEMPT": "spoofed"},
			wantLog: []string{
				"\nFOO=bar\n", "\nGANTRY_ATTEMPT=1\n", "\nGANTRY_TASK_INDEX=2\n", "\nGANTRY_TASK_COUNT=5\n", "\nGANTRY_JOB_ID=",
			},
			notInLog: []string{"GANTRY_GENAI"},
		},
		{
			name: "a generative-AI image's task sees GANTRY_GENAI=1", cmd: []string{"env"}, genai: true,
			env: map[string]string{"GANTRY_GENAI": "0"}, wantLog: []string{"\nGANTRY_GENAI=1\n"},
		},
	}
	n := newTestNode(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := n.spec("exit", tt.cmd...)
			s.Env, s.GenAI = tt.env, tt.genai
			s.Task, s.TaskCount = 2, 5
			n.rep.place(s)
			res := n.waitResult(s.Key, 60*time.Second)
			if res.Reason != ReasonExited || res.ExitCode != tt.wantCode {
				t.Errorf("result = %s/%d (%s), want exited/%d", res.Reason, res.ExitCode, res.Message, tt.wantCode)
			}
			if res.ContainerID == "" || res.StartedAt.IsZero() || res.EndedAt.Before(res.StartedAt) || !strings.HasPrefix(res.ImageDigest, "sha256:") {
				t.Errorf("result: container %q, started %s, ended %s, image %q; want container id, ordered times and image digest",
					res.ContainerID, res.StartedAt, res.EndedAt, res.ImageDigest)
			}
			starts := n.rep.starts(s.Key)
			if len(starts) != 1 || starts[0].ContainerID != res.ContainerID {
				t.Errorf("Started calls = %+v, want one for container %s", starts, res.ContainerID)
			}
			logPath := n.r.LogPath(s.Key)
			b, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			for _, not := range tt.notInLog {
				if strings.Contains(string(b), not) {
					t.Errorf("log has %q:\n%s", not, b)
				}
			}
			for _, want := range tt.wantLog {
				if !strings.Contains("\n"+string(b), want) {
					t.Errorf("log %q does not contain %q", b, want)
				}
			}
			if st, err := os.Stat(logPath); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("log file mode = %v, %v; want 0640", st.Mode(), err)
			}
			if st, err := os.Stat(filepath.Dir(logPath)); err != nil || st.Mode().Perm() != 0o750 {
				t.Errorf("log dir mode = %v, %v; want 0750", st.Mode(), err)
			}
			waitGone(t, n.r, s.Key, 10*time.Second)
		})
	}
}

func TestContainerIsLabelledAndUnprivileged(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("labels", "sleep", "30")
	s.CPUMillis = 500
	s.MemoryBytes = 128 << 20
	n.rep.place(s)
	st := n.waitStarted(s.Key, 60*time.Second)
	info, err := n.r.docker.ContainerInspect(context.Background(), st.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		LabelManaged: "true", LabelCluster: testCluster, LabelNode: n.name,
		LabelJob: s.JobID, LabelTask: "0", LabelAttempt: "1", LabelOwner: "alice",
	}
	for k, v := range wantLabels {
		if info.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, info.Config.Labels[k], v)
		}
	}
	if info.Name != "/"+ContainerName(testCluster, s.Key) {
		t.Errorf("name = %s, want %s", info.Name, ContainerName(testCluster, s.Key))
	}
	hc := info.HostConfig
	if hc.Privileged || !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Contains(hc.SecurityOpt, "no-new-privileges") {
		t.Errorf("privileges: privileged=%v capdrop=%v secopt=%v", hc.Privileged, hc.CapDrop, hc.SecurityOpt)
	}
	if hc.NanoCPUs != 500_000_000 || hc.Memory != 128<<20 || hc.MemorySwap != 128<<20 || hc.PidsLimit == nil || *hc.PidsLimit != 4096 {
		t.Errorf("limits: cpus=%d mem=%d swap=%d pids=%v", hc.NanoCPUs, hc.Memory, hc.MemorySwap, hc.PidsLimit)
	}
	if len(hc.Binds) != 0 || len(info.Mounts) != 0 || hc.NetworkMode.IsHost() || hc.PidMode.IsHost() || hc.IpcMode.IsHost() {
		t.Errorf("host access: binds=%v mounts=%v net=%s pid=%s ipc=%s", hc.Binds, info.Mounts, hc.NetworkMode, hc.PidMode, hc.IpcMode)
	}
	// A second create of the same attempt must conflict, not run twice.
	if _, err := n.r.createContainer(context.Background(), s, nil, ""); err == nil {
		t.Error("second create of the same attempt succeeded")
	}
	n.rep.cancel(s.Key)
	n.waitResult(s.Key, 30*time.Second)
}

func TestMemoryLimitIsReportedAsOOMKilled(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("oom", "alloc", "200")
	s.MemoryBytes = 64 << 20
	n.rep.place(s)
	res := n.waitResult(s.Key, 60*time.Second)
	if res.Reason != ReasonOOMKilled {
		t.Fatalf("result = %s/%d (%s), want oom_killed", res.Reason, res.ExitCode, res.Message)
	}
}

func TestTimeoutIsReportedAsTimedOut(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("timeout", "sleep", "30")
	s.Timeout = time.Second
	n.rep.place(s)
	res := n.waitResult(s.Key, 60*time.Second)
	if res.Reason != ReasonTimedOut {
		t.Fatalf("result = %s/%d (%s), want timed_out", res.Reason, res.ExitCode, res.Message)
	}
	if d := res.EndedAt.Sub(res.StartedAt); d < time.Second || d > 10*time.Second {
		t.Errorf("ran for %s, want about the 1s timeout", d)
	}
	waitGone(t, n.r, s.Key, 10*time.Second)
}

func TestCancelStopsARunningAttempt(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("cancel", "sleep", "30")
	n.rep.place(s)
	n.waitStarted(s.Key, 60*time.Second)
	n.rep.cancel(s.Key)
	cancelledAt := time.Now()
	waitGone(t, n.r, s.Key, 5*time.Second)
	res := n.waitResult(s.Key, time.Until(cancelledAt.Add(5*time.Second)))
	if res.Reason != ReasonCancelled {
		t.Fatalf("result = %s/%d (%s), want cancelled", res.Reason, res.ExitCode, res.Message)
	}
}

func TestCancelBeforeStartRunsNothing(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("precancel", "echo", "never")
	s.Cancel = true
	n.rep.place(s)
	res := n.waitResult(s.Key, 10*time.Second)
	if res.Reason != ReasonCancelled || res.ContainerID != "" {
		t.Fatalf("result = %+v, want cancelled without a container", res)
	}
	if len(n.rep.starts(s.Key)) != 0 || len(containers(t, n.r, s.Key)) != 0 {
		t.Error("a container was started for an attempt cancelled before it started")
	}
}

func TestStartedAttemptWithoutContainerIsNodeLost(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("lost", "echo", "never")
	s.Started = true
	n.rep.place(s)
	res := n.waitResult(s.Key, 10*time.Second)
	if res.Reason != ReasonNodeLost || res.ExitCode != -1 {
		t.Fatalf("result = %+v, want node_lost/-1", res)
	}
}

func TestMissingImageIsImagePullFailed(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("pull", "echo")
	// A registry nobody listens on fails fast, with no internet needed.
	s.Image = "127.0.0.1:1/gantry-test/missing:" + randomHex(3)
	n.rep.place(s)
	res := n.waitResult(s.Key, 60*time.Second)
	if res.Reason != ReasonImagePullFailed || res.ExitCode != -1 || res.Message == "" {
		t.Fatalf("result = %+v, want image_pull_failed/-1 with a message", res)
	}
}

// TestPullFailureNeverQuotesTheRegistry: what a registry answers ends up
// in Docker's pull error; the attempt's message, which the job's owner
// reads, must not carry it (a job naming a service on the host's loopback
// would otherwise read that service's answers).
func TestPullFailureNeverQuotesTheRegistry(t *testing.T) {
	t.Parallel()
	secret := "SECRET-" + randomHex(8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, secret+" from a service that is not a registry")
	}))
	defer srv.Close()
	n := newTestNode(t)
	image := strings.TrimPrefix(srv.URL, "http://") + "/x/y:" + randomHex(3)
	_, err := n.r.ensureImage(context.Background(), image)
	if err == nil {
		t.Fatal("pulling from a service that is not a registry succeeded")
	}
	if !strings.Contains(err.Error(), secret) {
		t.Logf("Docker's error does not quote the answer here (%v); checking the message anyway", err)
	}
	s := n.spec("ssrf", "echo")
	s.Image = image
	n.rep.place(s)
	res := n.waitResult(s.Key, 60*time.Second)
	if res.Reason != ReasonImagePullFailed || strings.Contains(res.Message, secret) || !strings.HasPrefix(res.Message, "pulling "+image+" failed") {
		t.Fatalf("result %+v: want image_pull_failed with a message of our own, not the remote answer", res)
	}
}

func TestRestartReattachesWithoutRunningTwice(t *testing.T) {
	t.Parallel()
	testStart := time.Now()
	n := newTestNode(t)
	s := n.spec("restart", "tick", "200ms", "2s")
	n.rep.place(s)
	st := n.waitStarted(s.Key, 60*time.Second)

	// The node process stops; the container keeps running.
	n.close()
	if got := containers(t, queryRunner(t), s.Key); len(got) != 1 || got[0].ID != st.ContainerID {
		t.Fatalf("after Close: containers = %d, want the one running container", len(got))
	}
	if len(n.rep.results(s.Key)) != 0 {
		t.Fatal("a result was reported before the attempt ended")
	}

	n.start()
	res := n.waitResult(s.Key, 60*time.Second)
	if res.Reason != ReasonExited || res.ExitCode != 0 || res.ContainerID != st.ContainerID {
		t.Fatalf("result = %+v, want exited/0 from container %s", res, st.ContainerID)
	}
	waitGone(t, n.r, s.Key, 10*time.Second)
	// More syncs must not run it again or report it again.
	for i := 0; i < 3; i++ {
		n.r.Sync(context.Background(), n.rep.wanted())
	}
	if rs := n.rep.results(s.Key); len(rs) != 1 {
		t.Errorf("Finished called %d times, want once", len(rs))
	}
	if c := containersCreated(t, n.r, s.Key, testStart); c != 1 {
		t.Errorf("Docker created %d containers for the attempt, want exactly 1", c)
	}
	if ss := n.rep.starts(s.Key); len(ss) != 1 {
		t.Errorf("Started called %d times (%+v), want once: one container ever ran", len(ss), ss)
	}
	b, err := os.ReadFile(n.r.LogPath(s.Key))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "tick 1\n") || !strings.Contains(string(b), "tick 8\n") {
		t.Errorf("log after re-attach = %q, want every tick from the start", b)
	}
}

// queryRunner returns a throwaway runner for Docker queries while the node
// under test is down.
func queryRunner(t *testing.T) *Runner {
	t.Helper()
	r, err := New(Config{Node: "query", Cluster: testCluster, LogDir: t.TempDir(), Reporter: newFakeReporter()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestResultIsRetriedBeforeTheContainerGoes(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	n.rep.mu.Lock()
	n.rep.failFinished = 2
	n.rep.mu.Unlock()
	s := n.spec("retry", "exit", "5")
	n.rep.place(s)
	res := n.waitResult(s.Key, 60*time.Second)
	if res.ExitCode != 5 {
		t.Fatalf("result = %+v, want exit 5", res)
	}
	waitGone(t, n.r, s.Key, 10*time.Second)
}

func TestUnwantedContainersAreRemoved(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	ctx := context.Background()
	mine := n.spec("orphan", "sleep", "30")
	other := n.spec("othernode", "sleep", "30")

	// A container left from an attempt that was moved elsewhere, and one of
	// another node sharing this Docker daemon.
	if _, err := n.r.createContainer(ctx, mine, nil, ""); err != nil {
		t.Fatal(err)
	}
	otherRunner, err := New(Config{Node: n.name + "-other", Cluster: testCluster, LogDir: t.TempDir(), Reporter: newFakeReporter()})
	if err != nil {
		t.Fatal(err)
	}
	defer otherRunner.Close()
	otherID, err := otherRunner.createContainer(ctx, other, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer otherRunner.removeContainer(ctx, otherID)

	waitGone(t, n.r, mine.Key, 10*time.Second)
	if got := containers(t, n.r, other.Key); len(got) != 1 {
		t.Errorf("another node's container was touched: %d left", len(got))
	}
}

func TestStaticBinaryImageRuns(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	dir := t.TempDir()
	src := "package main\n\nimport (\"fmt\"; \"os\")\n\nfunc main() { fmt.Println(\"static ok\", os.Args[1:]) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "tiny")
	cmd := exec.Command("go", "build", "-o", exe, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tag := "gantry-test/static:" + randomHex(4)
	ctx := context.Background()
	if err := loadImage(ctx, exe, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = n.r.docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	s := n.spec("static", "hello")
	s.Image = tag
	n.rep.place(s)
	res := n.waitResult(s.Key, 60*time.Second)
	if res.Reason != ReasonExited || res.ExitCode != 0 {
		t.Fatalf("result = %+v, want exited/0", res)
	}
	b, _ := os.ReadFile(n.r.LogPath(s.Key))
	if string(b) != "static ok [toolbox hello]\n" {
		t.Errorf("log = %q", b)
	}
}

func TestCapacityAndPing(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	ctx := context.Background()
	if err := n.r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	cpu, mem, err := n.r.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 1000 || cpu%1000 != 0 || mem < 64<<20 {
		t.Errorf("capacity = %d millicores, %d bytes", cpu, mem)
	}
}

func TestTimeoutCountsFromDockersStartAcrossARestart(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	s := n.spec("timeout-restart", "sleep", "30")
	s.Timeout = 2 * time.Second
	n.rep.place(s)
	st := n.waitStarted(s.Key, 60*time.Second)
	n.close()

	// The deadline passes while no runner watches the container.
	<-time.After(time.Until(st.At.Add(s.Timeout + 500*time.Millisecond)))
	restarted := time.Now()
	n.start()
	res := n.waitResult(s.Key, 30*time.Second)
	if res.Reason != ReasonTimedOut {
		t.Fatalf("result = %s/%d (%s), want timed_out", res.Reason, res.ExitCode, res.Message)
	}
	if took := time.Since(restarted); took > 5*time.Second {
		t.Errorf("the overdue attempt was stopped %s after the restart, want at once", took)
	}
	if res.ContainerID != st.ContainerID {
		t.Errorf("result from container %s, want %s", res.ContainerID, st.ContainerID)
	}
}
