package reports

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gantry/store"
)

// fakeProposer stands in for the cluster: it records each attempt.report
// it is given and answers it with what answer returns.
type fakeProposer struct {
	mu      sync.Mutex
	cmds    [][]store.AttemptReport
	hold    chan struct{} // when set, a proposal waits until it is closed
	answer  func(rs []store.AttemptReport) ([]store.ReportOutcome, error)
	started chan struct{} // receives once per proposal, when it arrives
}

func (f *fakeProposer) Propose(ctx context.Context, typ string, cmd []byte) (any, error) {
	d, err := store.DecodeCommand(cmd)
	if err != nil || typ != store.CmdReportAttempts.Type() {
		return nil, fmt.Errorf("a %s that does not decode: %v", typ, err)
	}
	rs := d.Payload.(store.ReportAttempts).Reports
	f.mu.Lock()
	f.cmds = append(f.cmds, rs)
	hold, answer, started := f.hold, f.answer, f.started
	f.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if hold != nil {
		<-hold
	}
	if answer == nil {
		return make([]store.ReportOutcome, len(rs)), nil
	}
	out, err := answer(rs)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (f *fakeProposer) commands() [][]store.AttemptReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]store.AttemptReport(nil), f.cmds...)
}

func started(job string, task int) store.AttemptStarted {
	return store.AttemptStarted{JobID: job, Task: task, N: 1, Container: fmt.Sprintf("c-%s-%d", job, task)}
}

// TestReportsOfAnIntervalGoAsOneCommand: reports made together go as one
// attempt.report, and each caller gets its own report's outcome.
func TestReportsOfAnIntervalGoAsOneCommand(t *testing.T) {
	p := &fakeProposer{answer: func(rs []store.AttemptReport) ([]store.ReportOutcome, error) {
		out := make([]store.ReportOutcome, len(rs))
		for i, r := range rs {
			if r.Started != nil && r.Started.Task%5 == 0 {
				out[i] = store.ReportOutcome{Code: store.ENotFound, Message: fmt.Sprintf("attempt %d not found", r.Started.Task)}
			}
		}
		return out, nil
	}}
	b := New(Config{Proposer: p, Interval: 200 * time.Millisecond})
	const reports = 40
	errs := make([]error, reports)
	var wg sync.WaitGroup
	for i := 0; i < reports; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Started(context.Background(), started("j", i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%5 == 0 {
			if !errors.Is(err, store.ErrNotFound) || err.Error() != fmt.Sprintf("attempt %d not found", i) {
				t.Fatalf("report %d: %v, want its own not found", i, err)
			}
		} else if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	if cmds := p.commands(); len(cmds) != 1 || len(cmds[0]) != reports {
		t.Fatalf("%d reports went as %d commands, want one", reports, len(cmds))
	}
	if r, c := b.Counts(); r != reports || c != 1 {
		t.Fatalf("counted %d reports in %d commands", r, c)
	}
}

// TestEnoughReportsGoAtOnce: Max waiting reports are sent without waiting
// for the interval to end.
func TestEnoughReportsGoAtOnce(t *testing.T) {
	p := &fakeProposer{}
	b := New(Config{Proposer: p, Interval: time.Hour, Max: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.Ended(ctx, store.AttemptEnded{JobID: "j", Task: i, N: 1, Reason: store.ReasonExited})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a report of a full batch waited for the interval: %v", err)
		}
	}
	if cmds := p.commands(); len(cmds) != 1 || len(cmds[0]) != 8 || cmds[0][0].Ended == nil {
		t.Fatalf("commands %v", cmds)
	}
}

// TestALoneReportWaitsAtMostTheInterval: one report is sent once the
// interval has passed.
func TestALoneReportWaitsAtMostTheInterval(t *testing.T) {
	p := &fakeProposer{}
	b := New(Config{Proposer: p, Interval: 30 * time.Millisecond})
	start := time.Now()
	if err := b.Started(context.Background(), started("j", 0)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > 5*time.Second {
		t.Fatalf("a lone report took %s, want about the interval (30ms)", d)
	}
}

// TestReportsKeepTheirOrder: with one command in flight at a time, reports
// made while one is on its way go in the next, in the order they were made.
func TestReportsKeepTheirOrder(t *testing.T) {
	hold := make(chan struct{})
	p := &fakeProposer{hold: hold, started: make(chan struct{}, 10)}
	b := New(Config{Proposer: p, Interval: time.Millisecond, Max: 4})
	ctx := context.Background()
	var wg sync.WaitGroup
	report := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Started(ctx, started("j", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	report(0)
	<-p.started // the first command is on its way, and held
	// Ten more, one after another: they wait, in order, behind it.
	for i := 1; i <= 10; i++ {
		report(i)
		deadline := time.Now().Add(10 * time.Second)
		for {
			b.mu.Lock()
			n := len(b.pending)
			b.mu.Unlock()
			if n == i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("report %d never waited", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	p.mu.Lock()
	p.hold = nil
	p.mu.Unlock()
	close(hold)
	go func() {
		for range p.started {
		}
	}()
	wg.Wait()
	close(p.started)
	next := 0
	cmds := p.commands()
	for _, c := range cmds {
		if len(c) > 4 {
			t.Fatalf("a command of %d reports, Max is 4", len(c))
		}
		for _, r := range c {
			if r.Started.Task != next {
				t.Fatalf("report %d went before report %d: %v", r.Started.Task, next, cmds)
			}
			next++
		}
	}
	if next != 11 || len(cmds) != 4 {
		t.Fatalf("%d reports in %d commands, want 11 in 4 (1, then 4, 4, 2)", next, len(cmds))
	}
}

// TestACommandThatFailsFailsItsReports: when the command itself is not
// committed, each of its reports gets that error (the runner reports
// again), and the next batch is not affected.
func TestACommandThatFailsFailsItsReports(t *testing.T) {
	unavailable := store.Errorf(store.EUnavailable, "no leader; try again")
	fail := true
	p := &fakeProposer{}
	p.answer = func(rs []store.AttemptReport) ([]store.ReportOutcome, error) {
		if fail {
			fail = false
			return nil, unavailable
		}
		return make([]store.ReportOutcome, len(rs)), nil
	}
	b := New(Config{Proposer: p, Interval: 5 * time.Millisecond})
	if err := b.Started(context.Background(), started("j", 0)); !errors.Is(err, unavailable) {
		t.Fatalf("report of a failed command: %v, want unavailable", err)
	}
	if err := b.Started(context.Background(), started("j", 0)); err != nil {
		t.Fatalf("reported again: %v", err)
	}
	if r, c := b.Counts(); r != 1 || c != 1 {
		t.Fatalf("counted %d reports in %d commands; only the recorded count", r, c)
	}
}

// TestACallerThatGivesUpReturnsAtOnce: a report's caller whose context
// ends gets its error without waiting for the batch.
func TestACallerThatGivesUpReturnsAtOnce(t *testing.T) {
	p := &fakeProposer{}
	b := New(Config{Proposer: p, Interval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Started(ctx, started("j", 0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the context's error", err)
	}
}
