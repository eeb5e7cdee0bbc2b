// Package governance owns the rules an operator enforces over shared
// content and accounts (service terms, ../../../shared/DESIGN.md part 3):
// the tamper-evident audit log, users' inboxes, the review of published
// images, reports, takedowns, suspensions, and infringement notices with
// their counter-notices (the automatic restore after the waiting period
// runs here, on the leader). Its
// records and commands are in store/governance.go (applied in Raft order,
// so every node decides alike); its routes are node/api/governance.go. It
// does not own accounts, the catalog or the registry: it reads their
// records and the registry asks the store's gate.
package governance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"gantry/store"
)

// State is what governance reads (*store.Store implements it).
type State interface {
	AuditRecords(f store.AuditFilter) ([]store.AuditRecord, uint64, error)
	VerifyAudit() (store.AuditVerification, error)
	NoticesDue(now time.Time) ([]store.Notice, error)
}

var _ State = (*store.Store)(nil)

// Config wires governance to the node.
type Config struct {
	Store    State
	Proposer store.Proposer
	Logger   *slog.Logger
	// Now is the clock of the automatic restores (nil: time.Now).
	Now func() time.Time
}

// Governance runs the governance flows of one node.
type Governance struct {
	cfg Config
	log *slog.Logger
}

// New returns the node's governance.
func New(cfg Config) *Governance {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Governance{cfg: cfg, log: cfg.Logger.With("component", "governance")}
}

// recordTimeout bounds an audit append made after its request ended.
const recordTimeout = 10 * time.Second

// Record appends an entry to the audit log. It is called after the action
// it records (or its refusal), so it does not take the request's
// cancellation: a client that hangs up does not erase its trace.
func (g *Governance) Record(ctx context.Context, e store.AuditEntry) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := store.CmdAppendAudit.Propose(ctx, g.cfg.Proposer, store.AppendAudit{Entry: e}); err != nil {
		g.log.Error("append to the audit log", "action", e.Action, "actor", e.Actor, "err", err)
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// Verify walks the audit log's hash chain.
func (g *Governance) Verify() (store.AuditVerification, error) { return g.cfg.Store.VerifyAudit() }

// Export writes every audit record as JSON lines, oldest first, encoded
// with enc (the caller's view of a record).
func (g *Governance) Export(w io.Writer, enc func(*store.AuditRecord) any) error {
	je := json.NewEncoder(w)
	var after uint64
	for {
		recs, next, err := g.cfg.Store.AuditRecords(store.AuditFilter{After: after})
		if err != nil {
			return err
		}
		for i := range recs {
			if err := je.Encode(enc(&recs[i])); err != nil {
				return fmt.Errorf("export audit record %d: %w", recs[i].Seq, err)
			}
		}
		if next == 0 {
			return nil
		}
		after = next
	}
}

// restoreEvery is how often the leader looks for countered notices whose
// waiting period passed.
const restoreEvery = time.Second

// RunRestores restores, while ctx lasts (the caller runs it on the
// leader), the content of every countered notice whose waiting period
// passed without a court action. The store re-checks each on apply, so a
// restore repeated by a new leader, or one overtaken by an admin's
// decision, changes nothing.
func (g *Governance) RunRestores(ctx context.Context) {
	tick := time.NewTicker(restoreEvery)
	defer tick.Stop()
	for {
		now := g.cfg.Now()
		due, err := g.cfg.Store.NoticesDue(now)
		if err != nil {
			g.log.Warn("read notices due for restore", "err", err)
		}
		for _, n := range due {
			// Stamped with the clock that found it due: Apply compares the
			// command's time with the notice's restore time.
			err := proposeAt(ctx, g.cfg.Proposer, store.CmdDecideNotice, now, store.DecideNotice{Meta: store.Meta{Admin: true}, ID: n.ID, Auto: true})
			switch {
			case err == nil:
				g.log.Info("restored the content of a countered notice: its waiting period passed", "notice", n.ID, "repos", n.Repos)
			case ctx.Err() == nil && store.ErrorCode(err) != store.EConflict:
				g.log.Warn("restore a countered notice", "notice", n.ID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// proposeAt commits cmd stamped at (Command.Propose stamps the wall clock).
func proposeAt[P, R any](ctx context.Context, p store.Proposer, cmd *store.Command[P, R], at time.Time, payload P) error {
	b, err := cmd.Encode(at, payload)
	if err != nil {
		return err
	}
	_, err = p.Propose(ctx, cmd.Type(), b)
	return err
}
