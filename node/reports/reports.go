// Package reports batches a node's attempt reports (the runner's starts and
// ends of attempts) into attempt.report commands: one command per short
// interval, or as soon as enough reports are waiting, instead of one
// command per report, while each report still gets its own outcome. It
// does not run anything (node/runner does) nor commit commands (its
// Proposer does: node/cluster on a running node).
package reports

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gantry/store"
)

// Defaults for Config.
const (
	DefaultInterval = 50 * time.Millisecond
	DefaultMax      = 256
	// sendTimeout bounds one command's commit.
	sendTimeout = 30 * time.Second
)

// Config configures a Batcher.
type Config struct {
	Proposer store.Proposer
	// Interval is how long the first report of a batch waits for others
	// (default DefaultInterval): the most a report is delayed.
	Interval time.Duration
	// Max is how many waiting reports are sent at once, without waiting
	// for the interval to end (default DefaultMax; at most
	// store.MaxAttemptReports).
	Max    int
	Logger *slog.Logger
}

// Batcher collects reports and sends them as attempt.report commands, one
// in flight at a time, in the order they were reported. Create it with
// New; it is safe for concurrent use and needs no start or stop: a send
// runs only while reports wait.
type Batcher struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	pending []*report
	timer   *time.Timer // armed while reports wait for the interval to end
	sending bool        // a command is on its way

	reports, commands atomic.Uint64
}

type report struct {
	r    store.AttemptReport
	at   time.Time // when it was reported
	done chan struct{}
	err  error
}

// New returns a Batcher that proposes through cfg.Proposer.
func New(cfg Config) *Batcher {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	cfg.Max = min(cfg.Max, store.MaxAttemptReports)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Batcher{cfg: cfg, log: log.With("component", "reports")}
}

// Started reports that an attempt's container runs. It returns once the
// report is recorded (nil) or refused (the error its attempt.started would
// have returned, an *store.Error), or with ctx's error; a report whose
// caller stopped waiting may still be recorded, and reporting it again is
// harmless.
func (b *Batcher) Started(ctx context.Context, s store.AttemptStarted) error {
	return b.report(ctx, store.AttemptReport{Started: &s})
}

// Ended reports how an attempt ended, as Started does.
func (b *Batcher) Ended(ctx context.Context, e store.AttemptEnded) error {
	return b.report(ctx, store.AttemptReport{Ended: &e})
}

// Counts returns how many reports were sent and in how many commands.
func (b *Batcher) Counts() (reports, commands uint64) {
	return b.reports.Load(), b.commands.Load()
}

func (b *Batcher) report(ctx context.Context, r store.AttemptReport) error {
	rp := &report{r: r, at: time.Now(), done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, rp)
	b.schedule()
	b.mu.Unlock()
	select {
	case <-rp.done:
		return rp.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// schedule starts a send when the oldest waiting report has waited the
// interval or Max reports wait, and otherwise arms the timer for the
// rest of the interval. The caller holds mu.
func (b *Batcher) schedule() {
	if b.sending || len(b.pending) == 0 {
		return
	}
	wait := b.cfg.Interval - time.Since(b.pending[0].at)
	if len(b.pending) < b.cfg.Max && wait > 0 {
		if b.timer == nil {
			b.timer = time.AfterFunc(wait, func() {
				b.mu.Lock()
				b.timer = nil
				b.schedule()
				b.mu.Unlock()
			})
		}
		return
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	n := min(len(b.pending), b.cfg.Max)
	batch := append([]*report(nil), b.pending[:n]...)
	rest := copy(b.pending, b.pending[n:])
	clear(b.pending[rest:])
	b.pending = b.pending[:rest]
	b.sending = true
	go b.send(batch)
}

// send commits one attempt.report and gives each report its outcome.
func (b *Batcher) send(batch []*report) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	payload := store.ReportAttempts{Reports: make([]store.AttemptReport, len(batch))}
	for i, rp := range batch {
		payload.Reports[i] = rp.r
	}
	outs, err := store.CmdReportAttempts.Propose(ctx, b.cfg.Proposer, payload)
	cancel()
	if err == nil && len(outs) != len(batch) {
		err = fmt.Errorf("attempt.report: %d outcomes for %d reports", len(outs), len(batch))
	}
	if err != nil {
		b.log.Debug("attempt reports not recorded", "reports", len(batch), "err", err)
	} else {
		b.reports.Add(uint64(len(batch)))
		b.commands.Add(1)
	}
	for i, rp := range batch {
		rp.err = err
		if err == nil {
			rp.err = outs[i].Err()
		}
		close(rp.done)
	}
	b.mu.Lock()
	b.sending = false
	b.schedule()
	b.mu.Unlock()
}
