package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/raftcluster"
	"gantry/store"
)

// sharedLog stands in for the replicated log in tests of proposing: every
// fake leader appends to it and it applies each entry to one real store
// (store.Direct), which followers read too, as if they had applied it.
type sharedLog struct {
	st     *store.Store
	direct *store.Direct

	mu      sync.Mutex
	entries [][]byte // every entry appended, in log order
}

func newSharedLog(t *testing.T) *sharedLog {
	t.Helper()
	st, err := store.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &sharedLog{st: st, direct: store.NewDirect(st)}
}

// commands lists the commands in the log, batches opened, in log order.
func (l *sharedLog) commands(t *testing.T) []store.Decoded {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.Decoded
	for _, e := range l.entries {
		cmds, ok := store.DecodeBatch(e)
		if !ok {
			cmds = [][]byte{e}
		}
		for _, c := range cmds {
			d, err := store.DecodeCommand(c)
			if err != nil {
				t.Fatalf("the log holds an undecodable command: %v", err)
			}
			out = append(out, d)
		}
	}
	return out
}

func (l *sharedLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// fakeRaft is one node's Raft as proposing sees it (raftLog): whether it
// leads, whom it takes for the leader, and, while it leads, the shared log.
type fakeRaft struct {
	log  *sharedLog
	addr string

	mu      sync.Mutex
	leading bool
	leader  string
	hold    chan struct{} // when set, appending waits until it is closed
	// leadFor, when positive, is how many more entries this node appends
	// before it loses its leadership (to lose: who leads next).
	leadFor int
	lose    func()
	tooBig  bool // batch entries are refused as too big (store.ErrBatchTooBig)
	calls   int  // ApplyIndex calls
	asked   int  // Leader calls
}

func (f *fakeRaft) ApplyIndex(ctx context.Context, cmd []byte) (any, uint64, error) {
	f.mu.Lock()
	f.calls++
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leading {
		return nil, 0, raftcluster.ErrNotLeader
	}
	if f.leadFor > 0 {
		f.leadFor--
		if f.leadFor == 0 {
			f.leading = false
			if f.lose != nil {
				f.lose()
			}
			return nil, 0, raftcluster.ErrNotLeader
		}
	}
	if _, ok := store.DecodeBatch(cmd); ok && f.tooBig {
		return store.ErrBatchTooBig, 0, nil // refused: nothing applied, nothing logged
	}
	f.log.mu.Lock()
	defer f.log.mu.Unlock()
	res := f.log.direct.ApplyBatch([][]byte{cmd})[0]
	f.log.entries = append(f.log.entries, cmd)
	return res, f.log.st.AppliedIndex(), nil
}

// ApplyAsync appends at once (held like ApplyIndex, as Raft's queue when
// full holds its caller) and hands back the outcome.
func (f *fakeRaft) ApplyAsync(ctx context.Context, cmd []byte) func() (any, uint64, error) {
	res, idx, err := f.ApplyIndex(ctx, cmd)
	return func() (any, uint64, error) { return res, idx, err }
}

func (f *fakeRaft) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leading
}

func (f *fakeRaft) Leader() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if f.leading {
		return f.addr, f.addr
	}
	return f.leader, f.leader
}

func (f *fakeRaft) Addr() string { return f.addr }

func (f *fakeRaft) set(fn func(f *fakeRaft)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// testNode is a Cluster that only proposes, over a fake Raft; a leader
// serves forwarded writes over real HTTP.
type testNode struct {
	*Cluster
	raft *fakeRaft
	addr string // where it serves forwarded writes (leaders)
}

func newTestNode(t *testing.T, l *sharedLog, serve bool) *testNode {
	t.Helper()
	fr := &fakeRaft{log: l}
	c := &Cluster{log: slog.New(slog.NewTextHandler(io.Discard, nil)), st: l.st, rl: fr, hc: http.DefaultClient}
	// One forward round at a time, so the tests know what each batch
	// holds; TestManyRoundsInFlight runs the default.
	c.prop.limit = 1
	n := &testNode{Cluster: c, raft: fr}
	if serve {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/internal/v1/apply":
				c.serveApply(w, r, fr)
			case "/internal/v1/apply-batch":
				c.serveApplyBatch(w, r, fr)
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		n.addr = strings.TrimPrefix(srv.URL, "http://")
		fr.addr = n.addr
	} else {
		fr.addr = fmt.Sprintf("follower-%p", fr)
	}
	return n
}

// poll waits (briefly between checks: the ordering test polls once per
// proposal) until cond holds, and reports whether it did within timeout.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Microsecond)
	}
	return true
}

// queued is how many proposals wait in a node's queue.
func (n *testNode) queued() int {
	n.prop.mu.Lock()
	defer n.prop.mu.Unlock()
	return len(n.prop.queue)
}

func submitSpec(name string) store.JobSpec {
	s := store.JobSpec{Image: "x", Name: name}
	s.Defaults()
	return s
}

// result is what one caller got.
type result struct {
	job *store.Job
	err error
}

// submitConcurrently has count callers submit one job each through n, job
// i with id(i) and name "job <i>", and returns what each got. With held
// set (the Raft that appends them), the batches are known: caller 0's
// proposal is held on its way to the log until every other caller's waits
// in n's queue, so those go together next.
func submitConcurrently(t *testing.T, n *testNode, count int, id func(i int) string, held *fakeRaft) []result {
	t.Helper()
	out := make([]result, count)
	var wg sync.WaitGroup
	submit := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			j, err := store.CmdSubmitJob.Propose(ctx, n, store.SubmitJob{ID: id(i), Owner: "alice", Spec: submitSpec(fmt.Sprintf("job %d", i))})
			out[i] = result{j, err}
		}()
	}
	first := 0
	var release func()
	if held != nil {
		release = holdFirst(t, held, n, func() { submit(0) }, count-1)
		first = 1
	}
	for i := first; i < count; i++ {
		submit(i)
	}
	if release != nil {
		release()
	}
	wg.Wait()
	return out
}

// holdFirst runs propose (one proposal) and holds it at the Raft that
// appends it; the returned func waits until want more proposals queue at
// n, then lets the first go on.
func holdFirst(t *testing.T, held *fakeRaft, n *testNode, propose func(), want int) func() {
	t.Helper()
	hold := make(chan struct{})
	held.set(func(f *fakeRaft) { f.hold = hold })
	held.mu.Lock()
	calls := held.calls
	held.mu.Unlock()
	propose()
	if !poll(10*time.Second, func() bool {
		held.mu.Lock()
		defer held.mu.Unlock()
		return held.calls > calls
	}) {
		t.Fatal("the first proposal never reached the log")
	}
	return func() {
		if !poll(10*time.Second, func() bool { return n.queued() >= want }) {
			t.Errorf("%d proposals never queued (%d did)", want, n.queued())
		}
		held.set(func(f *fakeRaft) { f.hold = nil })
		close(hold)
	}
}

// TestConcurrentProposalsOnTheLeaderShareAnEntry: proposals made while
// one is being committed go together as one Raft entry, and every caller
// gets its own result, or its own error.
func TestConcurrentProposalsOnTheLeaderShareAnEntry(t *testing.T) {
	l := newSharedLog(t)
	n := newTestNode(t, l, false)
	n.raft.set(func(f *fakeRaft) { f.leading = true })
	const callers = 64
	// Callers 10 and 11 use the same id: whichever comes second is refused.
	id := func(i int) string {
		if i == 11 {
			return "J10"
		}
		return fmt.Sprintf("J%d", i)
	}
	got := submitConcurrently(t, n, callers, id, n.raft)
	conflicts := 0
	for i, r := range got {
		if r.err != nil {
			if (i != 10 && i != 11) || store.ErrorCode(r.err) != store.EConflict {
				t.Fatalf("caller %d: %v", i, r.err)
			}
			conflicts++
			continue
		}
		if r.job.ID != id(i) || r.job.Spec.Name != fmt.Sprintf("job %d", i) {
			t.Fatalf("caller %d got job %s %q, not its own", i, r.job.ID, r.job.Spec.Name)
		}
	}
	if conflicts != 1 {
		t.Fatalf("%d of the two callers with one id were refused, want 1", conflicts)
	}
	if e := l.len(); e != 2 {
		t.Fatalf("%d proposals took %d entries; want 2 (the first alone, the rest together)", callers, e)
	}
	if c := n.Proposals(); c.LeaderCommands.Load() != callers || c.LeaderEntries.Load() != 2 {
		t.Fatalf("counted %d commands in %d entries", c.LeaderCommands.Load(), c.LeaderEntries.Load())
	}
}

// TestOneFailingCommandDoesNotFailItsBatch: in one batch, a command Apply
// refuses gets its error and the others their results.
func TestOneFailingCommandDoesNotFailItsBatch(t *testing.T) {
	l := newSharedLog(t)
	n := newTestNode(t, l, false)
	n.raft.set(func(f *fakeRaft) { f.leading = true })
	ctx := context.Background()
	if _, err := store.CmdSubmitJob.Propose(ctx, n, store.SubmitJob{ID: "J0", Owner: "alice", Spec: submitSpec("first")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var cancelled *store.Job
	var cancelErr, missingErr, submitErr error
	wg.Add(4)
	release := holdFirst(t, n.raft, n, func() {
		go func() {
			defer wg.Done()
			_, _ = store.CmdCreateUser.Propose(ctx, n, store.CreateUser{User: store.User{Name: "first"}})
		}()
	}, 3)
	go func() {
		defer wg.Done()
		cancelled, cancelErr = store.CmdCancelJob.Propose(ctx, n, store.CancelJob{ID: "J0", Actor: "alice"})
	}()
	go func() {
		defer wg.Done()
		_, missingErr = store.CmdCancelJob.Propose(ctx, n, store.CancelJob{ID: "missing", Actor: "alice"})
	}()
	go func() {
		defer wg.Done()
		_, submitErr = store.CmdSubmitJob.Propose(ctx, n, store.SubmitJob{ID: "J1", Owner: "alice", Spec: submitSpec("second")})
	}()
	release()
	wg.Wait()
	if cancelErr != nil || cancelled.ID != "J0" || cancelled.State != store.StateCancelled {
		t.Fatalf("cancel J0: %+v %v", cancelled, cancelErr)
	}
	if !errors.Is(missingErr, store.ErrNotFound) {
		t.Fatalf("cancel a missing job: %v, want not found", missingErr)
	}
	if submitErr != nil {
		t.Fatalf("submit in the same batch: %v", submitErr)
	}
	if e := l.len(); e != 3 {
		t.Fatalf("%d entries, want 3 (J0, the user, then one batch of three)", e)
	}
}

// TestFollowerForwardsConcurrentProposalsInOneCall: a follower's
// concurrent proposals reach the leader in few forward calls, the leader
// commits each call as one entry, and every caller gets its own job.
func TestFollowerForwardsConcurrentProposalsInOneCall(t *testing.T) {
	l := newSharedLog(t)
	leader := newTestNode(t, l, true)
	leader.raft.set(func(f *fakeRaft) { f.leading = true })
	follower := newTestNode(t, l, false)
	follower.raft.set(func(f *fakeRaft) { f.leader = leader.addr })
	const callers = 100
	id := func(i int) string { return fmt.Sprintf("J%03d", i) }
	got := submitConcurrently(t, follower, callers, id, leader.raft)
	for i, r := range got {
		if r.err != nil || r.job.ID != id(i) || r.job.Spec.Name != fmt.Sprintf("job %d", i) {
			t.Fatalf("caller %d: %+v %v", i, r.job, r.err)
		}
	}
	c := follower.Proposals()
	if c.ForwardedCommands.Load() != callers || c.Forwards.Load() != 2 {
		t.Fatalf("%d commands forwarded in %d calls; want %d in 2", c.ForwardedCommands.Load(), c.Forwards.Load(), callers)
	}
	if e := l.len(); e != 2 {
		t.Fatalf("the leader wrote %d entries, want 2", e)
	}
	checkExactlyOnce(t, l, callers, id)
}

// checkExactlyOnce: the log holds each of the jobs once, and the store
// has each with the name its caller gave it.
func checkExactlyOnce(t *testing.T, l *sharedLog, count int, id func(int) string) {
	t.Helper()
	seen := map[string]int{}
	for _, d := range l.commands(t) {
		if s, ok := d.Payload.(store.SubmitJob); ok {
			seen[s.ID]++
		}
	}
	for i := 0; i < count; i++ {
		if seen[id(i)] != 1 {
			t.Fatalf("job %s is in the log %d times, want once", id(i), seen[id(i)])
		}
		j, err := l.st.Job(id(i))
		if err != nil || j.Spec.Name != fmt.Sprintf("job %d", i) {
			t.Fatalf("job %s: %+v %v", id(i), j, err)
		}
	}
	if len(seen) != count {
		t.Fatalf("the log holds %d jobs, want %d", len(seen), count)
	}
}

// TestLeaderChangeMidBatch: the leader a follower forwards a batch to
// loses its leadership before committing it; the follower sends the batch
// to the new leader, and every command commits once, with its result.
func TestLeaderChangeMidBatch(t *testing.T) {
	l := newSharedLog(t)
	a := newTestNode(t, l, true)
	b := newTestNode(t, l, true)
	follower := newTestNode(t, l, false)
	// The first proposal goes alone and commits; the batch of the others
	// finds a deposed.
	a.raft.set(func(f *fakeRaft) {
		f.leading, f.leadFor = true, 2
		f.lose = func() {
			b.raft.set(func(f *fakeRaft) { f.leading = true })
			follower.raft.set(func(f *fakeRaft) { f.leader = b.addr })
		}
	})
	follower.raft.set(func(f *fakeRaft) { f.leader = a.addr })
	const callers = 40
	id := func(i int) string { return fmt.Sprintf("J%03d", i) }
	got := submitConcurrently(t, follower, callers, id, a.raft)
	for i, r := range got {
		if r.err != nil || r.job.ID != id(i) {
			t.Fatalf("caller %d: %+v %v", i, r.job, r.err)
		}
	}
	checkExactlyOnce(t, l, callers, id)
	if e := l.len(); e != 2 {
		t.Fatalf("%d entries, want 2: the lone first command on a, the batch on b", e)
	}
}

// TestLeaderLostPartWayThroughABatch: a batch the leader commits one
// entry per command (too big for one transaction) is interrupted by a
// leader change; the commands already committed are answered, the rest
// are marked to retry and go to the new leader: none twice, none lost.
func TestLeaderLostPartWayThroughABatch(t *testing.T) {
	l := newSharedLog(t)
	a := newTestNode(t, l, true)
	b := newTestNode(t, l, true)
	follower := newTestNode(t, l, false)
	const callers = 30
	// The first forward is a lone command; the second a batch of the
	// rest, which a commits one by one (it is too big as one entry) until
	// it is deposed after ten of them.
	a.raft.set(func(f *fakeRaft) {
		f.leading, f.tooBig, f.leadFor = true, true, 13
		f.lose = func() {
			b.raft.set(func(f *fakeRaft) { f.leading = true })
			follower.raft.set(func(f *fakeRaft) { f.leader = b.addr })
		}
	})
	follower.raft.set(func(f *fakeRaft) { f.leader = a.addr })
	id := func(i int) string { return fmt.Sprintf("J%03d", i) }
	got := submitConcurrently(t, follower, callers, id, a.raft)
	for i, r := range got {
		if r.err != nil || r.job.ID != id(i) {
			t.Fatalf("caller %d: %+v %v", i, r.job, r.err)
		}
	}
	checkExactlyOnce(t, l, callers, id)
	// a wrote the lone command and 10 of the batch, one entry each; b the
	// other 19 in one.
	if e := l.len(); e != 12 {
		t.Fatalf("%d entries, want 12", e)
	}
}

// TestOneRoundInFlightKeepsTheOrderOfProposing: with one round in flight,
// a proposal made after another (the first still on its way) commits
// after it, across batches (more than one batch's worth), a leader change
// and a retry: a retried batch stays ahead of what queued meanwhile.
func TestOneRoundInFlightKeepsTheOrderOfProposing(t *testing.T) {
	l := newSharedLog(t)
	a := newTestNode(t, l, true)
	b := newTestNode(t, l, true)
	follower := newTestNode(t, l, false)
	// a commits the first proposal, then is deposed by the first batch;
	// for a while there is no leader, then b leads.
	a.raft.set(func(f *fakeRaft) {
		f.leading, f.leadFor = true, 2
		f.lose = func() {
			follower.raft.set(func(f *fakeRaft) { f.leader = "" })
			follower.raft.mu.Lock()
			asked := follower.raft.asked
			follower.raft.mu.Unlock()
			go func() {
				if !poll(10*time.Second, func() bool {
					follower.raft.mu.Lock()
					defer follower.raft.mu.Unlock()
					return follower.raft.asked > asked+1
				}) {
					t.Error("the follower never looked for a leader again")
				}
				b.raft.set(func(f *fakeRaft) { f.leading = true })
				follower.raft.set(func(f *fakeRaft) { f.leader = b.addr })
			}()
		}
	})
	follower.raft.set(func(f *fakeRaft) { f.leader = a.addr })
	hold := make(chan struct{})
	a.raft.set(func(f *fakeRaft) { f.hold = hold })
	const count = maxBatchCommands + 50
	errs := make(chan error, count)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := store.CmdCreateUser.Propose(context.Background(), follower, store.CreateUser{User: store.User{Name: fmt.Sprintf("u%04d", i)}})
			errs <- err
		}()
		// The next proposal is made only once this one is on its way (the
		// first, held at a) or waits in the queue (the others).
		ok := poll(10*time.Second, func() bool {
			if i == 0 {
				a.raft.mu.Lock()
				defer a.raft.mu.Unlock()
				return a.raft.calls == 1
			}
			return follower.queued() == i
		})
		if !ok {
			t.Fatalf("proposal %d never queued", i)
		}
	}
	a.raft.set(func(f *fakeRaft) { f.hold = nil })
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cmds := l.commands(t)
	if len(cmds) != count {
		t.Fatalf("the log holds %d commands, want %d", len(cmds), count)
	}
	for i, d := range cmds {
		if name := d.Payload.(store.CreateUser).User.Name; name != fmt.Sprintf("u%04d", i) {
			t.Fatalf("command %d of the log is %s: the order of proposing was not kept", i, name)
		}
	}
}

// TestProposeGivesUpWithoutALeader: with no leader for the whole window
// a proposal is unavailable, and one whose caller gives up returns at once.
func TestProposeGivesUpWithoutALeader(t *testing.T) {
	l := newSharedLog(t)
	n := newTestNode(t, l, false)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := store.CmdCreateUser.Propose(ctx, n, store.CreateUser{User: store.User{Name: "x"}})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("propose without a leader: %v after %s", err, time.Since(start))
	}
	if l.len() != 0 {
		t.Fatal("a command was committed without a leader")
	}
}

// TestBatchedForwardToAnOlderLeader: a leader that does not know batched
// forwarding (404) gets the commands one call each.
func TestBatchedForwardToAnOlderLeader(t *testing.T) {
	l := newSharedLog(t)
	fr := &fakeRaft{log: l, leading: true}
	old := &Cluster{log: slog.New(slog.NewTextHandler(io.Discard, nil)), st: l.st, rl: fr}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/internal/v1/apply" {
			http.NotFound(w, r)
			return
		}
		old.serveApply(w, r, fr)
	}))
	defer srv.Close()
	follower := newTestNode(t, l, false)
	follower.raft.set(func(f *fakeRaft) { f.leader = strings.TrimPrefix(srv.URL, "http://") })
	const callers = 20
	id := func(i int) string { return fmt.Sprintf("J%03d", i) }
	got := submitConcurrently(t, follower, callers, id, fr)
	for i, r := range got {
		if r.err != nil || r.job.ID != id(i) {
			t.Fatalf("caller %d: %+v %v", i, r.job, r.err)
		}
	}
	checkExactlyOnce(t, l, callers, id)
	if e := l.len(); e != callers {
		t.Fatalf("%d entries, want one per command (%d)", e, callers)
	}
}

// TestOneCallersCommandsKeepTheirOrder: with the default rounds in flight,
// a caller's commands (each proposed once the one before was answered)
// commit once each and in its order, while other callers crowd the queue
// and the leader changes twice.
func TestOneCallersCommandsKeepTheirOrder(t *testing.T) {
	l := newSharedLog(t)
	a := newTestNode(t, l, true)
	b := newTestNode(t, l, true)
	c := newTestNode(t, l, true)
	follower := newTestNode(t, l, false)
	follower.prop.limit = 0
	handOver := func(from, to *testNode, after int) {
		from.raft.set(func(f *fakeRaft) {
			f.leading, f.leadFor = true, after
			f.lose = func() {
				to.raft.set(func(f *fakeRaft) { f.leading = true })
				follower.raft.set(func(f *fakeRaft) { f.leader = to.addr })
			}
		})
	}
	handOver(a, b, 30)
	follower.raft.set(func(f *fakeRaft) { f.leader = a.addr })
	stop := make(chan struct{})
	var crowd sync.WaitGroup
	for g := 0; g < 8; g++ {
		crowd.Add(1)
		go func() {
			defer crowd.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = store.CmdCreateUser.Propose(context.Background(), follower, store.CreateUser{User: store.User{Name: fmt.Sprintf("crowd%d-%d", g, i)}})
			}
		}()
	}
	const mine = 150
	for i := 0; i < mine; i++ {
		if i == 75 {
			// b hands over to c a few entries from now.
			b.raft.mu.Lock()
			leading := b.raft.leading
			b.raft.mu.Unlock()
			if leading {
				handOver(b, c, 5)
			}
		}
		if _, err := store.CmdCreateUser.Propose(context.Background(), follower, store.CreateUser{User: store.User{Name: fmt.Sprintf("mine%04d", i)}}); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	close(stop)
	crowd.Wait()
	next := 0
	for _, d := range l.commands(t) {
		name := d.Payload.(store.CreateUser).User.Name
		if !strings.HasPrefix(name, "mine") {
			continue
		}
		if name != fmt.Sprintf("mine%04d", next) {
			t.Fatalf("the log holds %s where mine%04d comes next", name, next)
		}
		next++
	}
	if next != mine {
		t.Fatalf("the log holds %d of the caller's %d commands", next, mine)
	}
	if c.raft.IsLeader() == false {
		t.Fatal("the leader never changed twice")
	}
}

// TestManyRoundsInFlight: with the default rounds in flight, concurrent
// proposals still each get their own result, and batch when the rounds
// are busy.
func TestManyRoundsInFlight(t *testing.T) {
	l := newSharedLog(t)
	leader := newTestNode(t, l, true)
	leader.raft.set(func(f *fakeRaft) { f.leading = true })
	follower := newTestNode(t, l, false)
	follower.prop.limit = 0
	follower.raft.set(func(f *fakeRaft) { f.leader = leader.addr })
	const callers = 200
	id := func(i int) string { return fmt.Sprintf("J%03d", i) }
	got := submitConcurrently(t, follower, callers, id, nil)
	for i, r := range got {
		if r.err != nil || r.job.ID != id(i) || r.job.Spec.Name != fmt.Sprintf("job %d", i) {
			t.Fatalf("caller %d: %+v %v", i, r.job, r.err)
		}
	}
	checkExactlyOnce(t, l, callers, id)
	if f := follower.Proposals().Forwards.Load(); f >= callers {
		t.Fatalf("%d proposals took %d forward calls: nothing was batched", callers, f)
	}
}

// TestAnUnansweredForwardIsNotCalledRefused: a leader commits a follower's
// batch but its answer never comes back (the follower is cut off); when
// the proposal's window has passed, its caller hears that the write may
// still take effect, not that it was refused. A proposal that never left
// the follower (no leader known) is refused.
func TestAnUnansweredForwardIsNotCalledRefused(t *testing.T) {
	l := newSharedLog(t)
	leader := newTestNode(t, l, false)
	leader.raft.set(func(f *fakeRaft) { f.leading = true })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Commit, then never answer: the answer is lost on the way.
		leader.serveApplyBatch(httptest.NewRecorder(), r, leader.raft)
		<-r.Context().Done()
	}))
	defer srv.Close()
	follower := newTestNode(t, l, false)
	follower.prop.window, follower.prop.timeout = 300*time.Millisecond, 200*time.Millisecond
	follower.raft.set(func(f *fakeRaft) { f.leader = strings.TrimPrefix(srv.URL, "http://") })

	_, err := store.CmdCreateUser.Propose(context.Background(), follower, store.CreateUser{User: store.User{Name: "sent"}})
	if err == nil || !strings.Contains(err.Error(), "may still take effect") {
		t.Fatalf("a write whose forward got no answer: %v, want one that says it may still take effect", err)
	}
	if !errors.Is(err, &store.Error{Code: store.EUnavailable}) {
		t.Fatalf("%v is not unavailable", err)
	}
	if cmds := l.commands(t); len(cmds) == 0 {
		t.Fatal("the leader did not commit the command: the test shows nothing")
	}

	follower.raft.set(func(f *fakeRaft) { f.leader = "" })
	_, err = store.CmdCreateUser.Propose(context.Background(), follower, store.CreateUser{User: store.User{Name: "unsent"}})
	if err == nil || strings.Contains(err.Error(), "may still take effect") || !strings.Contains(err.Error(), "not the leader") {
		t.Fatalf("a write that never left the node: %v, want a refusal", err)
	}
}
