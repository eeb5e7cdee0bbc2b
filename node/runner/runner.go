// Package runner runs task attempts on this node through the Docker Engine
// API: it pulls images, creates and starts one labelled container per
// attempt, copies its output into a per-attempt log file, enforces timeouts
// and cancellation, reports start and end through a Reporter, and reconciles
// with whatever containers it finds after a restart.
//
// The runner owns the truth about containers, not about attempts: which
// attempts should run here is decided elsewhere (the store and scheduler) and
// handed to Sync. It is the only package that imports the Docker client. It
// only ever touches containers labelled with its own cluster and node, so
// several nodes may share one Docker daemon.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gantry/node/firewall"

	"github.com/docker/docker/client"
)

// Key names one attempt of one task of a job.
type Key struct {
	JobID   string
	Task    int
	Attempt int
}

// String formats the key as "job/task.attempt", for logs.
func (k Key) String() string { return fmt.Sprintf("%s/%d.%d", k.JobID, k.Task, k.Attempt) }

// Spec is an attempt the store has placed on this node and not yet finished.
type Spec struct {
	Key
	Owner       string
	Image       string            // reference Docker can use (local image name or a registry ref)
	Command     []string          // nil/empty: image default
	Env         map[string]string // user env; the runner adds GANTRY_JOB_ID, GANTRY_TASK_INDEX, GANTRY_TASK_COUNT, GANTRY_ATTEMPT
	WorkDir     string
	CPUMillis   int64         // 1000 = one CPU; 0 = no limit
	MemoryBytes int64         // 0 = no limit
	Timeout     time.Duration // per attempt; 0 = none
	TaskCount   int
	// GenAI: the image performs generative AI; the task gets GANTRY_GENAI=1
	// so what it produces can be labelled.
	GenAI bool
	// GPUs are the devices the store assigned to this attempt, exactly
	// those passed to the container (none: no GPU).
	GPUs []GPU
	// Network is NetworkNone for a task without network; otherwise the
	// task joins its owner's network on this node (network.go).
	Network string
	Started bool // the store already recorded this attempt as running
	Cancel  bool // cancellation requested: stop it, report reason "cancelled"
	// Preempt: stop it with SIGTERM, then SIGKILL after Grace, and report
	// reason "preempted" (Cancel wins when both are set).
	Preempt bool
	Grace   time.Duration
	// Inputs are artifacts mounted read-only in the container, each from
	// Config.Inputs' cache.
	Inputs []Input
	// Output, when set, is the task's writable output directory
	// (output.go).
	Output *Output
}

// Input is an artifact (a manifest of the node's registry) mounted
// read-only at Path.
type Input struct {
	Repo, Digest, Path string
	// Missing, when set, says why there is no artifact to mount (another
	// job's task kept no output): the attempt ends input_failed with it.
	Missing string
}

// Inputs materialises artifacts on this node (package datacache).
type Inputs interface {
	// Acquire returns the host directory holding artifact repo@digest and
	// keeps it there until release is called.
	Acquire(ctx context.Context, repo, digest string) (dir string, release func(), err error)
}

// GPU device modes (GPU.Mode).
const (
	// GPUNVIDIA: a GPU index or UUID, passed as a Docker device request for
	// NVIDIA's container runtime (driver nvidia, capability gpu).
	GPUNVIDIA = "nvidia"
	// GPUPath: a host device file, mapped into the container at the same
	// path with read, write and mknod permission.
	GPUPath = "path"
)

// GPU is one device given to an attempt.
type GPU struct {
	ID    string // NVIDIA index or UUID, or a host device path
	Mode  string // GPUNVIDIA or GPUPath
	Index int    // the device's index on this node (its place in the node's declaration)
}

// Reasons an attempt ended, as reported in Result.Reason.
const (
	ReasonExited          = "exited"
	ReasonOOMKilled       = "oom_killed"
	ReasonTimedOut        = "timed_out"
	ReasonCancelled       = "cancelled"
	ReasonImagePullFailed = "image_pull_failed"
	ReasonInputFailed     = "input_failed" // an input could not be materialised on this node
	ReasonNodeLost        = "node_lost"
	ReasonPreempted       = "preempted"
	// ReasonOutputLimit and ReasonOutputFailed: output.go.
)

// Result is how an attempt ended.
type Result struct {
	Key
	ContainerID string
	ExitCode    int
	Reason      string // "exited", "oom_killed", "timed_out", "cancelled", "image_pull_failed", "node_lost"
	Message     string // short human text for failures (pull error etc.)
	StartedAt   time.Time
	EndedAt     time.Time
	ImageDigest string     // the pinned manifest digest for an image@digest reference, else Docker's image ID
	Output      *OutputRef // where the attempt's output was stored, if it was
}

// Reporter records attempt state changes; the store implements it. A nil
// error means the change is durably recorded. Finished is retried with
// backoff until it returns nil, so it must tolerate repeats.
type Reporter interface {
	Started(ctx context.Context, k Key, containerID string, at time.Time) error
	Finished(ctx context.Context, r Result) error
}

// Config configures a Runner.
type Config struct {
	Node         string // node name, put in labels
	Cluster      string // cluster id, put in labels: a runner only ever touches containers with its own cluster+node labels
	LogDir       string // per-attempt log files live here
	Reporter     Reporter
	Logger       *slog.Logger
	RegistryAuth func(image string) string // optional: base64 X-Registry-Auth for pulls; nil = none
	// Inputs materialises job inputs; nil: a job with inputs fails
	// input_failed.
	Inputs Inputs
	// OutputDir holds the output directories of running attempts, and
	// Outputs stores them when an attempt ends; without them a job with an
	// output fails output_failed.
	OutputDir string
	Outputs   Outputs

	// DockerHost overrides the Docker endpoint (e.g. "unix:///var/run/docker.sock");
	// empty means the DOCKER_HOST environment or the default socket.
	DockerHost string
	// PidsLimit caps the processes in one container; 0 means 4096.
	PidsLimit int64
}

// Runner runs the attempts placed on this node. Create it with New; it is
// safe for concurrent use.
type Runner struct {
	cfg    Config
	log    *slog.Logger
	docker *client.Client
	// netMu: launches hold it for reading from ensuring a network until
	// their container exists; pruning unused networks holds it for writing.
	netMu        sync.RWMutex
	netCreate    sync.Mutex      // one network check-and-create at a time (network.go)
	nets         map[string]bool // networks known to exist, under netCreate
	guard        *firewall.Guard // Gantry's own rules between users' bridges (firewall.go)
	pruned       time.Time       // the last prune of networks
	prunePending atomic.Bool     // prune on the next Sync (a network could not be created)
	outputsSwept bool            // the first Sync removed output dirs of attempts no longer here (syncMu)

	// ctx lives until Close; every attempt goroutine derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	syncMu sync.Mutex // one Sync at a time

	// The Docker client negotiates its API version lazily and without a
	// lock, so concurrent first calls race; the runner negotiates once,
	// before any concurrent use.
	negMu      sync.Mutex
	negotiated bool

	mu       sync.Mutex
	live     map[Key]*attempt // attempts with a goroutine
	finished map[Key]struct{} // reported and no longer needing work; pruned to the wanted set
	closed   bool
}

// New connects to Docker and returns a Runner. It does not contact the
// daemon; call Ping to check it. Errors: missing Node, Cluster, LogDir or
// Reporter, an unusable LogDir, or a bad Docker endpoint.
func New(cfg Config) (*Runner, error) {
	switch {
	case cfg.Node == "":
		return nil, errors.New("runner: Config.Node is required")
	case cfg.Cluster == "":
		return nil, errors.New("runner: Config.Cluster is required")
	case cfg.LogDir == "":
		return nil, errors.New("runner: Config.LogDir is required")
	case cfg.Reporter == nil:
		return nil, errors.New("runner: Config.Reporter is required")
	}
	if cfg.PidsLimit == 0 {
		cfg.PidsLimit = 4096
	}
	if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
		return nil, fmt.Errorf("runner: create log dir: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.DockerHost != "" {
		opts = append(opts, client.WithHost(cfg.DockerHost))
	}
	dc, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("runner: docker client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := logger.With("component", "runner", "node", cfg.Node)
	r := &Runner{
		cfg:      cfg,
		nets:     map[string]bool{},
		guard:    firewall.New(log),
		log:      log,
		docker:   dc,
		ctx:      ctx,
		cancel:   cancel,
		live:     map[Key]*attempt{},
		finished: map[Key]struct{}{},
	}
	// Docker may be down at start-up; the first call that needs it retries.
	nctx, ncancel := context.WithTimeout(ctx, 5*time.Second)
	defer ncancel()
	if err := r.negotiate(nctx); err != nil {
		r.log.Warn("docker not reachable yet", "err", err)
	}
	return r, nil
}

// negotiate settles the Docker API version once; until it succeeds, nothing
// else talks to Docker.
func (r *Runner) negotiate(ctx context.Context) error {
	r.negMu.Lock()
	defer r.negMu.Unlock()
	if r.negotiated {
		return nil
	}
	ping, err := r.docker.Ping(ctx)
	if err != nil {
		return fmt.Errorf("ping docker: %w", err)
	}
	r.docker.NegotiateAPIVersionPing(ping)
	r.negotiated = true
	return nil
}

// Ping checks that the Docker daemon answers.
func (r *Runner) Ping(ctx context.Context) error {
	if err := r.negotiate(ctx); err != nil {
		return err
	}
	if _, err := r.docker.Ping(ctx); err != nil {
		return fmt.Errorf("ping docker: %w", err)
	}
	return nil
}

// Capacity returns what the Docker host offers: its CPUs in millicores and
// its memory in bytes.
func (r *Runner) Capacity(ctx context.Context) (cpuMillis, memBytes int64, err error) {
	if err := r.negotiate(ctx); err != nil {
		return 0, 0, err
	}
	info, err := r.docker.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("docker info: %w", err)
	}
	return int64(info.NCPU) * 1000, info.MemTotal, nil
}

// LogPath returns the file holding the attempt's stdout and stderr:
// LogDir/<job>/<task>.<attempt>.log. The file may not exist yet.
func (r *Runner) LogPath(k Key) string {
	return filepath.Join(r.cfg.LogDir, safeName(k.JobID), strconv.Itoa(k.Task)+"."+strconv.Itoa(k.Attempt)+".log")
}

// LoggedJobs lists the ids of the jobs with task logs on this node.
func (r *Runner) LoggedJobs() ([]string, error) {
	ents, err := os.ReadDir(r.cfg.LogDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list task logs: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// JobLogsModified is when the logs of job on this node last changed (zero
// when there are none).
func (r *Runner) JobLogsModified(job string) time.Time {
	fi, err := os.Stat(filepath.Join(r.cfg.LogDir, safeName(job)))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// RemoveJobLogs deletes every task log of job on this node.
func (r *Runner) RemoveJobLogs(job string) error {
	if err := os.RemoveAll(filepath.Join(r.cfg.LogDir, safeName(job))); err != nil {
		return fmt.Errorf("remove logs of job %s: %w", job, err)
	}
	return nil
}

// Close stops following containers and waits for the attempt goroutines to
// return. It does not stop or remove containers: a new Runner re-attaches to
// them. Close is idempotent.
func (r *Runner) Close() error {
	r.mu.Lock()
	already := r.closed
	r.closed = true
	r.mu.Unlock()
	if already {
		return nil
	}
	r.cancel()
	r.wg.Wait()
	if err := r.docker.Close(); err != nil {
		return fmt.Errorf("close docker client: %w", err)
	}
	return nil
}

// Sync makes this node's containers match want, the full set of attempts the
// store has placed on this node and not yet seen finish. It starts what is
// missing, re-attaches to containers it is not yet following, passes on
// cancellations, reports attempts lost with a vanished container, and kills
// and removes containers of attempts no longer wanted. It returns without
// waiting for containers to run; results arrive through the Reporter.
// Sync is idempotent and may be called often and concurrently.
func (r *Runner) Sync(ctx context.Context, want []Spec) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()

	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return
	}

	if err := r.negotiate(ctx); err != nil {
		r.log.Warn("sync: docker unavailable", "err", err)
		return
	}
	existing, err := r.listContainers(ctx)
	if err != nil {
		// Without the list, creating could run an attempt twice (the name
		// would stop that, but reporting node_lost would be wrong): wait for
		// the next Sync.
		r.log.Warn("sync: list containers", "err", err)
		return
	}

	wanted := make(map[Key]bool, len(want))
	for _, spec := range want {
		if wanted[spec.Key] {
			continue
		}
		wanted[spec.Key] = true
		r.syncOne(spec, existing.byKey[spec.Key])
	}

	r.mu.Lock()
	for k := range r.finished {
		if !wanted[k] {
			delete(r.finished, k)
		}
	}
	var abandon []*attempt
	for k, a := range r.live {
		if !wanted[k] {
			abandon = append(abandon, a)
		}
	}
	r.mu.Unlock()
	for _, a := range abandon {
		a.abandonNow()
	}

	for k, c := range existing.byKey {
		if wanted[k] {
			continue
		}
		r.mu.Lock()
		_, isLive := r.live[k]
		r.mu.Unlock()
		if isLive {
			continue // its goroutine removes it
		}
		r.log.Info("removing container of an attempt not placed here", "attempt", k.String(), "container", shortID(c.ID))
		if err := r.removeContainer(ctx, c.ID); err != nil {
			r.log.Warn("remove unwanted container", "container", shortID(c.ID), "err", err)
		}
	}
	for _, id := range existing.unparsable {
		r.log.Info("removing container with unreadable labels", "container", shortID(id))
		if err := r.removeContainer(ctx, id); err != nil {
			r.log.Warn("remove unreadable container", "container", shortID(id), "err", err)
		}
	}
	inUse := map[string]bool{}
	for _, spec := range want {
		inUse[spec.Owner] = true
	}
	for _, c := range existing.byKey {
		inUse[c.Owner] = true
	}
	r.pruneNetworks(ctx, inUse, r.prunePending.Swap(false))
	if !r.outputsSwept {
		r.outputsSwept = true
		r.sweepOutputs(wanted)
	}
}

// syncOne handles one wanted attempt; c is its container, if any.
func (r *Runner) syncOne(spec Spec, c *containerRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return // Close is waiting for the goroutines; start no more
	}
	if _, done := r.finished[spec.Key]; done {
		return
	}
	if a, ok := r.live[spec.Key]; ok {
		a.stopIfAsked(spec)
		return
	}
	a := newAttempt(r.ctx, spec)
	a.stopIfAsked(spec)
	var run func()
	switch {
	case c != nil:
		run = func() {
			// A container found after a restart keeps its inputs held.
			if err := r.holdInputs(a); err != nil && a.ctx.Err() == nil {
				r.attemptLog(a).Warn("inputs of a running container not held", "err", err)
			}
			r.follow(a, c.ID)
		}
	case a.cancelled():
		run = func() { r.finishWithout(a, a.stopReason(), a.notStarted()) }
	case spec.Started:
		run = func() { r.finishWithout(a, ReasonNodeLost, "the attempt's container is gone") }
	default:
		run = func() { r.launch(a) }
	}
	r.live[spec.Key] = a
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer a.stop()
		defer a.releaseInputs()
		run()
	}()
}

// done forgets a live attempt; reported says whether its result is recorded.
func (r *Runner) done(a *attempt, reported bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[a.spec.Key] == a {
		delete(r.live, a.spec.Key)
	}
	if reported {
		r.finished[a.spec.Key] = struct{}{}
	}
}

// LoadImage loads a `docker save` archive into Docker (Engine API ImageLoad).
func (r *Runner) LoadImage(ctx context.Context, archive io.Reader) error {
	if err := r.negotiate(ctx); err != nil {
		return err
	}
	resp, err := r.docker.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("docker image load: %w", err)
	}
	defer resp.Body.Close()
	if err := readJSONStream(resp.Body); err != nil {
		return fmt.Errorf("docker image load: %w", err)
	}
	return nil
}

// safeName keeps a job id usable as a file and container name component.
func safeName(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Pull makes ref available to Docker ahead of any attempt that needs it
// (a no-op when Docker already has it), so a node's first job does not wait
// for the pull.
func (r *Runner) Pull(ctx context.Context, ref string) error {
	_, err := r.ensureImage(ctx, ref)
	return err
}
