package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestFaultCampaign runs a 3-node cluster of real gantry processes under a
// concurrent workload (keyed submissions, cancels, consistent reads, from
// every node) while a nemesis kills (-9) and restarts nodes, pauses them
// (SIGSTOP/SIGCONT), and partitions them (a node cut off both ways, the
// leader cut off, one way only, a partition and a crash together). Every
// client operation is recorded with its call and return times and the
// history is checked with porcupine against the models of
// faultmodel_test.go; then, after healing, invariants from the records:
// every acknowledged job exists on every node, no key made two jobs, no
// task succeeded twice, no two attempts of a task overlapped, no container
// is left behind. A failing history is saved as porcupine's HTML under the
// test output directory.
//
// FAULT_ROUNDS (default 10: the short version in make test; make fault
// runs 100) sets the number of faults, FAULT_SEED replays a campaign.
func TestFaultCampaign(t *testing.T) {
	requireIptables(t)
	rounds := envInt(t, "FAULT_ROUNDS", 10)
	seed := int64(envInt(t, "FAULT_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("fault campaign: %d rounds, FAULT_SEED=%d", rounds, seed)
	rng := rand.New(rand.NewSource(seed))

	c := gantrytest.StartCluster(t, 3, gantrytest.Options{Host: gantrytest.HostPerNode})
	c.Leader(t, 30*time.Second)
	n := &nemesis{t: t, c: c, fw: &firewall{t: t}, paused: map[*gantrytest.Node]bool{}}
	t.Cleanup(n.healAll)

	h := newHistory()
	w := &workload{h: h, c: c, acked: map[string]string{}, keys: map[string]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, i, rand.New(rand.NewSource(seed+int64(i)+1)))
		}()
	}
	kinds := map[string]int{}
	var starts []int64 // when each fault began, on the history's clock
	for r := 0; r < rounds; r++ {
		calm := time.Duration(1500+rng.Intn(2000)) * time.Millisecond
		time.Sleep(calm) // the workload runs meanwhile: this paces the nemesis, it waits for nothing
		starts = append(starts, h.now())
		kind, fault := n.inject(rng)
		kinds[kind]++
		t.Logf("round %d: %s", r+1, fault)
		n.healAll()
		c.Leader(t, 60*time.Second)
	}
	time.Sleep(2 * time.Second) // load on the healed cluster, as above
	stop()
	wg.Wait()

	w.resubmitUnknown(t)
	w.checkHistory(t, seed)
	w.checkRecords(t)
	longest, round := h.longestUnavailability(starts)
	t.Logf("%d operations, %d jobs acknowledged, %d submissions of unknown outcome; faults %v; longest from a fault's start to the next acknowledged submission %s (round %d)",
		len(h.ops), len(w.acked), w.unknownSubmits(), kinds, longest.Round(time.Millisecond), round+1)
}

// envInt reads a positive integer from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// nemesis injects one fault at a time and undoes it.
type nemesis struct {
	t      *testing.T
	c      *gantrytest.Cluster
	fw     *firewall
	mu     sync.Mutex
	paused map[*gantrytest.Node]bool
	killed []*gantrytest.Node
}

func (n *nemesis) pick(rng *rand.Rand, not *gantrytest.Node) *gantrytest.Node {
	for {
		x := n.c.Nodes[rng.Intn(len(n.c.Nodes))]
		if x != not {
			return x
		}
	}
}

// cut drops traffic to and from a node's cluster port (both: both ways;
// otherwise only what it sends).
func (n *nemesis) cut(x *gantrytest.Node, both bool) {
	h, p := hostPort(n.t, x.ClusterAddr)
	if both {
		n.fw.drop("-d", h, "--dport", p)
	}
	for _, o := range n.c.Nodes {
		if o != x {
			oh, op := hostPort(n.t, o.ClusterAddr)
			n.fw.drop("-s", h, "-d", oh, "--dport", op)
		}
	}
}

func (n *nemesis) pause(x *gantrytest.Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pid := x.PID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		n.paused[x] = true
	}
}

// inject applies a random fault for a few seconds and says what it was;
// healAll undoes what is left of it.
func (n *nemesis) inject(rng *rand.Rand) (kind, what string) {
	hold := func(min, spread int) time.Duration {
		d := time.Duration(min+rng.Intn(spread)) * time.Millisecond
		time.Sleep(d) // the fault lasts this long: the point is that it lasts
		return d
	}
	leader := n.c.Leader(n.t, 60*time.Second)
	switch rng.Intn(6) {
	case 0:
		x := n.pick(rng, nil)
		x.Kill9(n.t)
		n.killed = append(n.killed, x)
		return "kill", fmt.Sprintf("kill -9 %s for %s", x.Name, hold(500, 2500))
	case 1:
		leader.Kill9(n.t)
		n.killed = append(n.killed, leader)
		return "kill-leader", fmt.Sprintf("kill -9 the leader %s for %s", leader.Name, hold(500, 2500))
	case 2:
		x := n.pick(rng, nil)
		n.pause(x)
		return "pause", fmt.Sprintf("pause %s for %s", x.Name, hold(1000, 4000))
	case 3:
		x := n.pick(rng, nil)
		n.cut(x, true)
		return "partition", fmt.Sprintf("cut %s off for %s", x.Name, hold(2000, 4000))
	case 4:
		n.cut(leader, rng.Intn(2) == 0)
		return "partition-leader", fmt.Sprintf("cut the leader %s off (maybe one way) for %s", leader.Name, hold(2000, 4000))
	default:
		x := n.pick(rng, nil)
		y := n.pick(rng, x)
		n.cut(x, true)
		y.Kill9(n.t)
		n.killed = append(n.killed, y)
		return "no-quorum", fmt.Sprintf("cut %s off and kill -9 %s for %s (no quorum)", x.Name, y.Name, hold(1000, 3000))
	}
}

// healAll resumes paused nodes, removes every firewall rule and restarts
// killed nodes.
func (n *nemesis) healAll() {
	n.mu.Lock()
	for x := range n.paused {
		if pid := x.PID(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		delete(n.paused, x)
	}
	n.mu.Unlock()
	n.fw.Heal()
	for _, x := range n.killed {
		if !x.Running() {
			x.Restart(n.t)
		}
	}
	n.killed = nil
}

// workload is the clients' side: what they did and what they learnt.
type workload struct {
	h *history
	c *gantrytest.Cluster

	mu      sync.Mutex
	acked   map[string]string // job id -> key
	ackedID []string
	keys    map[string]bool // every key submitted
	unknown []string        // keys whose submission had an unknown outcome
}

func (w *workload) spec(key string) wire.JobSpec {
	cmd := []string{"true"}
	if len(key)%4 == 0 {
		cmd = []string{"sleep", "1.5"}
	}
	return wire.JobSpec{Name: key, Image: "gantry/toolbox", Command: cmd, CPU: 100, Memory: 32 << 20}
}

func (w *workload) run(ctx context.Context, cl int, rng *rand.Rand) {
	// A few operations a second per client: enough to have many in
	// flight during every fault, few enough jobs for two cores to run.
	tick := time.NewTicker(time.Duration(150+rng.Intn(100)) * time.Millisecond)
	defer tick.Stop()
	for seq := 0; ctx.Err() == nil; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		node := w.c.Nodes[rng.Intn(len(w.c.Nodes))]
		w.mu.Lock()
		var job string
		if len(w.ackedID) > 0 {
			job = w.ackedID[rng.Intn(len(w.ackedID))]
		}
		w.mu.Unlock()
		p := rng.Intn(10)
		switch {
		case p < 2 || job == "":
			w.submit(cl, node, fmt.Sprintf("f%d-%d", cl, seq))
		case p < 4:
			w.cancel(cl, node, job)
		default:
			w.read(cl, node, job)
		}
	}
}

// opCtx bounds one operation: long enough to outlast a fault, so that
// most operations during one end with an answer.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

func (w *workload) submit(cl int, node *gantrytest.Node, key string) {
	w.mu.Lock()
	w.keys[key] = true
	w.mu.Unlock()
	ctx, cancel := opCtx()
	defer cancel()
	call := w.h.now()
	j, err := node.Client().SubmitKeyed(ctx, w.spec(key), key)
	out := outcomeOf(err)
	if err == nil {
		out.ID = j.ID
		w.mu.Lock()
		if _, ok := w.acked[j.ID]; !ok {
			w.acked[j.ID] = key
			w.ackedID = append(w.ackedID, j.ID)
		}
		w.mu.Unlock()
	} else if out.Unknown {
		w.mu.Lock()
		w.unknown = append(w.unknown, key)
		w.mu.Unlock()
	}
	w.h.add(cl, faultIn{Kind: opSubmit, Key: key}, call, out)
}

var alreadyTerminal = regexp.MustCompile(`already (succeeded|failed|cancelled)$`)

func (w *workload) cancel(cl int, node *gantrytest.Node, job string) {
	ctx, cancel := opCtx()
	defer cancel()
	call := w.h.now()
	_, err := node.Client().Cancel(ctx, job)
	out := outcomeOf(err)
	var e *client.Error
	if errors.As(err, &e) && e.Code == "conflict" {
		if m := alreadyTerminal.FindStringSubmatch(e.Message); m != nil {
			out = faultOut{State: m[1]}
		}
	}
	w.h.add(cl, faultIn{Kind: opCancel, Job: job}, call, out)
}

func (w *workload) read(cl int, node *gantrytest.Node, job string) {
	ctx, cancel := opCtx()
	defer cancel()
	call := w.h.now()
	var j wire.Job
	err := node.Client().Do(ctx, http.MethodGet, "/api/v1/jobs/"+job+"?consistent=true", nil, &j)
	out := outcomeOf(err)
	if err == nil {
		out.State, out.CancelRequested = j.State, j.CancelRequested
	}
	w.h.add(cl, faultIn{Kind: opRead, Job: job}, call, out)
}

// outcomeOf classifies an error: nil (it took effect), a definite refusal
// (nothing happened: the node could not reach Gantry at all, or said so),
// or unknown. Any other refusal is recorded as an answer the models
// reject, so it fails the check.
func outcomeOf(err error) faultOut {
	if err == nil {
		return faultOut{}
	}
	var e *client.Error
	if errors.As(err, &e) {
		switch {
		case e.Status == http.StatusServiceUnavailable && strings.Contains(e.Message, "may still take effect"):
			return faultOut{Unknown: true}
		case e.Status == http.StatusServiceUnavailable && strings.Contains(e.Message, "not the leader"):
			return faultOut{Refused: true}
		case e.Code == "conflict":
			return faultOut{Refused: true}
		case e.Status == http.StatusServiceUnavailable:
			return faultOut{Unknown: true}
		}
		return faultOut{State: "error: " + e.Message}
	}
	if strings.Contains(err.Error(), "connection refused") {
		return faultOut{Refused: true}
	}
	return faultOut{Unknown: true}
}

func (w *workload) unknownSubmits() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.unknown)
}

// resubmitUnknown sends every submission of unknown outcome again, with
// its key, to the healed cluster: each now makes its job or answers with
// the one it made.
func (w *workload) resubmitUnknown(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	keys := append([]string(nil), w.unknown...)
	w.mu.Unlock()
	for _, key := range keys {
		node := w.c.Nodes[len(key)%len(w.c.Nodes)]
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			ctx, cancel := opCtx()
			defer cancel()
			call := w.h.now()
			j, err := node.Client().SubmitKeyed(ctx, w.spec(key), key)
			if err != nil {
				return false
			}
			w.h.add(99, faultIn{Kind: opSubmit, Key: key}, call, faultOut{ID: j.ID})
			w.mu.Lock()
			if _, ok := w.acked[j.ID]; !ok {
				w.acked[j.ID] = key
				w.ackedID = append(w.ackedID, j.ID)
			}
			w.mu.Unlock()
			return true
		}, "the healed cluster to take submission %s again", key)
	}
}

// checkHistory checks the recorded history for linearizability.
func (w *workload) checkHistory(t *testing.T, seed int64) {
	t.Helper()
	submits, jobs := w.h.split()
	for _, m := range []struct {
		name  string
		model porcupine.Model
		ops   []porcupine.Operation
	}{{"submissions", submitModel, submits}, {"jobs", jobModel.ToModel(), jobs}} {
		res, info := porcupine.CheckOperationsVerbose(m.model, m.ops, 2*time.Minute)
		switch res {
		case porcupine.Ok:
		case porcupine.Unknown:
			t.Logf("%s: porcupine timed out on %d operations (not checked)", m.name, len(m.ops))
		default:
			path := filepath.Join(testOutputDir(t), fmt.Sprintf("fault-%d-%s.html", seed, m.name))
			if err := porcupine.VisualizePath(m.model, info, path); err != nil {
				t.Logf("write visualization: %v", err)
			}
			t.Errorf("the history of %s is not linearizable (FAULT_SEED=%d): see %s", m.name, seed, path)
			for _, part := range m.model.Partition(m.ops) {
				if porcupine.CheckOperations(m.model, part) {
					continue
				}
				sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
				for _, op := range part {
					ret := time.Duration(op.Return).String()
					if op.Output.(faultOut).Unknown {
						ret = "never"
					}
					t.Logf("  client %d [%s, %s] %s", op.ClientId, time.Duration(op.Call), ret, m.model.DescribeOperation(op.Input, op.Output))
				}
				break
			}
			t.FailNow()
		}
	}
}

// testOutputDir is $GANTRY_TEST_OUTPUT (make test sets it) or a temp dir.
func testOutputDir(t *testing.T) string {
	if d := os.Getenv("GANTRY_TEST_OUTPUT"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

// checkRecords checks the invariants of the healed cluster's records.
func (w *workload) checkRecords(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	w.mu.Lock()
	acked := make(map[string]string, len(w.acked))
	for id, k := range w.acked {
		acked[id] = k
	}
	w.mu.Unlock()
	leader := w.c.Leader(t, 60*time.Second)

	// Every job ends (a short command each, some cancelled; on a loaded
	// machine a container can take a minute to start).
	left := map[string]int{}
	gantrytest.Eventually(t, 6*time.Minute, func() bool {
		jobs, err := listAll(ctx, leader)
		if err != nil {
			return false
		}
		clear(left)
		for _, j := range jobs {
			if !terminalState(j.State) {
				left[j.State]++
			}
		}
		return len(left) == 0
	}, "every job of the campaign to end (not ended: %v)", left)

	// Every acknowledged job on every node; one job per key.
	for _, node := range w.c.Nodes {
		var jobs []wire.Job
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			var err error
			if jobs, err = listAll(ctx, node); err != nil {
				return false
			}
			have := map[string]bool{}
			for _, j := range jobs {
				have[j.ID] = true
			}
			for id := range acked {
				if !have[id] {
					return false
				}
			}
			return true
		}, "node %s to hold every acknowledged job", node.Name)
		byKey := map[string]string{}
		for _, j := range jobs {
			if prev, ok := byKey[j.Spec.Name]; ok {
				t.Fatalf("node %s: key %s made two jobs, %s and %s", node.Name, j.Spec.Name, prev, j.ID)
			}
			byKey[j.Spec.Name] = j.ID
		}
	}

	// No task succeeded twice; no two attempts of a task overlapped.
	for id := range acked {
		d, err := leader.Client().Task(ctx, id, 0)
		if err != nil {
			t.Fatalf("task 0 of %s: %v", id, err)
		}
		succeeded := 0
		for i, a := range d.AttemptList {
			if a.State == wire.StateSucceeded {
				succeeded++
			}
			for _, b := range d.AttemptList[i+1:] {
				if overlap(a, b) {
					t.Errorf("job %s: attempts %d (%s) and %d (%s) overlap", id, a.N, a.Node, b.N, b.Node)
				}
			}
		}
		if succeeded > 1 {
			t.Errorf("job %s: task 0 succeeded %d times", id, succeeded)
		}
	}

	// No container left behind.
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		return len(leader.Containers(t)) == 0
	}, "no container of the campaign left")
}

func overlap(a, b wire.Attempt) bool {
	if a.Started.IsZero() || b.Started.IsZero() {
		return false
	}
	aEnd, bEnd := a.Ended, b.Ended
	if aEnd.IsZero() || bEnd.IsZero() {
		return true // both started, one never ended, with the job over
	}
	return a.Started.Before(bEnd) && b.Started.Before(aEnd)
}

// listAll lists every job a node holds (its local view).
func listAll(ctx context.Context, n *gantrytest.Node) ([]wire.Job, error) {
	var all []wire.Job
	q := map[string][]string{"limit": {"1000"}}
	for {
		jobs, next, err := n.Client().Jobs(ctx, q)
		if err != nil {
			return nil, err
		}
		all = append(all, jobs...)
		if next == "" {
			return all, nil
		}
		q["cursor"] = []string{next}
	}
}
