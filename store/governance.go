package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Governance (node/governance, DESIGN.md there): the audit log, users'
// inboxes, and the review, report and takedown records of published
// images. Every governance command appends its own audit record in the
// same transaction as its change, so an applied decision is never missing
// from the log; actions of other subsystems (accounts, tokens, quotas,
// nodes, image deletion) and refused requests are appended by the API with
// audit.append.

// Governance keys. Variable parts are separated by sep ("\x00"); numbers
// are fixed-width so keys sort.
const (
	pAudit    = "ga/" // ga/<seq> -> AuditRecord
	kAudit    = "m/audit"
	pInbox    = "gi/" // gi/<user>\x00<seq> -> Message
	kInboxSeq = "m/inbox"
)

func auditKey(seq uint64) []byte { return []byte(pAudit + seqText(seq)) }
func inboxKey(user string, seq uint64) []byte {
	return []byte(pInbox + user + sep + seqText(seq))
}
func seqText(n uint64) string { return fmt.Sprintf("%020d", n) }

// Limits on audit entries and messages.
const (
	MaxAuditField  = 200
	MaxAuditDetail = 2000
	MaxReason      = 2000
	MaxAuditPage   = 1000
)

// AuditEntry is what happened: who did what to what, from where, and how
// it ended ("ok", or the refusal's error code).
type AuditEntry struct {
	Actor   string `json:"actor"`
	Source  string `json:"source,omitempty"` // the client's address
	Action  string `json:"action"`           // "user.create", "image.takedown", ...
	Target  string `json:"target,omitempty"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// AuditRecord is one entry of the append-only audit log. Hash is the
// SHA-256 of the record's JSON with Hash empty; Prev is the previous
// record's Hash (empty for the first), both computed in Apply, so a record
// changed or removed later breaks the chain (VerifyAudit).
type AuditRecord struct {
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	AuditEntry
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// AuditHead is the last record's number and hash.
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// hashOf is the record's hash: SHA-256 of its JSON without the hash.
// encoding/json writes struct fields in declaration order, so every node
// computes the same bytes.
func (r AuditRecord) hashOf() string {
	r.Hash = ""
	b, _ := json.Marshal(r) // a struct of strings, numbers and a time: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Meta says who asks for a governance command and from where; the
// command's audit record carries it.
type Meta struct {
	Actor  string `json:"actor"`
	Source string `json:"source,omitempty"`
	Admin  bool   `json:"admin,omitempty"`
}

// AppendAudit appends an entry to the audit log.
type AppendAudit struct {
	Entry AuditEntry `json:"entry"`
}

func validAuditEntry(e AuditEntry) error {
	if e.Action == "" || e.Outcome == "" {
		return Errorf(EInvalid, "audit entry: action and outcome are required")
	}
	for _, f := range []string{e.Actor, e.Source, e.Action, e.Target, e.Outcome} {
		if len(f) > MaxAuditField {
			return Errorf(EInvalid, "audit entry: a field is longer than %d bytes", MaxAuditField)
		}
	}
	if len(e.Detail) > MaxAuditDetail {
		return Errorf(EInvalid, "audit entry: detail is longer than %d bytes", MaxAuditDetail)
	}
	return nil
}

func (a *applier) appendAudit(c *AppendAudit) (*AuditRecord, error) {
	if err := validAuditEntry(c.Entry); err != nil {
		return nil, err
	}
	return a.audit(c.Entry)
}

// audit appends e to the log, chained to the record before it. Callers
// validate their own command first: this is their last step.
func (a *applier) audit(e AuditEntry) (*AuditRecord, error) {
	var head AuditHead
	if err := getJSON(a.txn, []byte(kAudit), &head); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if len(e.Detail) > MaxAuditDetail {
		e.Detail = e.Detail[:MaxAuditDetail]
	}
	r := AuditRecord{Seq: head.Seq + 1, At: a.at, AuditEntry: e, Prev: head.Hash}
	r.Hash = r.hashOf()
	if err := putJSON(a.txn, auditKey(r.Seq), r); err != nil {
		return nil, err
	}
	if err := putJSON(a.txn, []byte(kAudit), AuditHead{Seq: r.Seq, Hash: r.Hash}); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "audit", Name: e.Action})
	return &r, nil
}

// carriedAudit appends the record an entry carried (see WithAudit): the
// action succeeded, since its command applied; fields too long for a
// record are cut rather than the action refused.
func (a *applier) carriedAudit(e AuditEntry) error {
	cut := func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	}
	e.Actor, e.Source, e.Action, e.Target = cut(e.Actor, MaxAuditField), cut(e.Source, MaxAuditField), cut(e.Action, MaxAuditField), cut(e.Target, MaxAuditField)
	if e.Action == "" {
		e.Action = "unknown"
	}
	e.Outcome = "ok"
	if a.auditDetail != "" {
		e.Detail = strings.TrimPrefix(e.Detail+"; "+a.auditDetail, "; ")
	}
	_, err := a.audit(e)
	return err
}

type auditSlotKey struct{}

// AuditSlot carries the audit record of one request's action to the
// command that performs it, so the record is appended in the same
// transaction as the change and a crash cannot lose it. The first command
// proposed with the slot's context that is declared to carry records
// takes it; once one has committed, later ones do not.
type AuditSlot struct {
	entry func() AuditEntry
	mu    sync.Mutex
	state int // 0 free, 1 riding on a command in flight, 2 committed
}

// WithAudit returns ctx whose next command able to carry an audit record
// carries entry() (called when that command is proposed, so it sees what
// the request learnt by then), and the slot, which says whether one did.
func WithAudit(ctx context.Context, entry func() AuditEntry) (context.Context, *AuditSlot) {
	s := &AuditSlot{entry: entry}
	return context.WithValue(ctx, auditSlotKey{}, s), s
}

func auditSlotOf(ctx context.Context) *AuditSlot {
	s, _ := ctx.Value(auditSlotKey{}).(*AuditSlot)
	return s
}

// claim returns the record for a command about to be proposed, nil when
// another carries it (or is proposing it).
func (s *AuditSlot) claim() *AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != 0 {
		return nil
	}
	s.state = 1
	e := s.entry()
	return &e
}

// settle records whether the command that claimed the record committed;
// one that did not frees it for the next.
func (s *AuditSlot) settle(committed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if committed {
		s.state = 2
	} else {
		s.state = 0
	}
}

// Carried reports whether a committed command carried the record.
func (s *AuditSlot) Carried() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == 2
}

// auditOK appends the successful governance action m asked for.
func (a *applier) auditOK(m Meta, action, target, detail string) error {
	_, err := a.audit(AuditEntry{Actor: m.Actor, Source: m.Source, Action: action, Target: target, Outcome: "ok", Detail: detail})
	return err
}

// Message is one message in a user's inbox, sent by a governance flow.
type Message struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"` // review.rejected, image.takedown, ...
	Subject string    `json:"subject"`
	Body    string    `json:"body,omitempty"`
	Ref     string    `json:"ref,omitempty"` // what it is about (a repository)
	Read    bool      `json:"read,omitempty"`
}

// notify puts a message in user's inbox; ids are a cluster-wide sequence
// kept in the state, so every node numbers alike.
func (a *applier) notify(user, kind, ref, subject, body string) error {
	var seq uint64
	if err := getJSON(a.txn, []byte(kInboxSeq), &seq); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	seq++
	m := Message{ID: strconv.FormatUint(seq, 10), User: user, At: a.at, Kind: kind, Subject: subject, Body: body, Ref: ref}
	if err := putJSON(a.txn, []byte(kInboxSeq), seq); err != nil {
		return err
	}
	if err := putJSON(a.txn, inboxKey(user, seq), m); err != nil {
		return err
	}
	a.events = append(a.events, Event{Type: "inbox", Owner: user, Name: m.ID})
	return nil
}

// SendMessage is an admin's message to a user's inbox.
type SendMessage struct {
	Meta    Meta   `json:"meta"`
	User    string `json:"user"`
	Subject string `json:"subject"`
	Body    string `json:"body,omitempty"`
}

func (a *applier) sendMessage(c *SendMessage) (None, error) {
	if !c.Meta.Admin {
		return None{}, Errorf(EForbidden, "only an admin sends messages")
	}
	if c.Subject == "" || len(c.Subject) > MaxAuditField || len(c.Body) > MaxReason {
		return None{}, Errorf(EInvalid, "subject: 1 to %d bytes; body: at most %d", MaxAuditField, MaxReason)
	}
	ok, err := exists(a.txn, userKey(c.User))
	if err != nil {
		return None{}, err
	}
	if !ok {
		return None{}, Errorf(ENotFound, "user %q not found", c.User)
	}
	if err := a.notify(c.User, "message", "", c.Subject, c.Body); err != nil {
		return None{}, err
	}
	return None{}, a.auditOK(c.Meta, "inbox.send", c.User, c.Subject)
}

// MarkRead marks a message of the user's inbox read.
type MarkRead struct {
	User string `json:"user"`
	ID   string `json:"id"`
}

func (a *applier) markRead(c *MarkRead) (*Message, error) {
	seq, err := strconv.ParseUint(c.ID, 10, 64)
	if err != nil {
		return nil, Errorf(ENotFound, "message %q not found", c.ID)
	}
	var m Message
	if err := getJSON(a.txn, inboxKey(c.User, seq), &m); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "message %q not found", c.ID)
		}
		return nil, err
	}
	if m.Read {
		return &m, nil
	}
	m.Read = true
	if err := putJSON(a.txn, inboxKey(c.User, seq), m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Governance queries.

// AuditFilter chooses audit records: after the record numbered After
// (a cursor), at or after Since, by Actor, of Action (empty: any); at most
// Limit (0: MaxAuditPage).
type AuditFilter struct {
	After  uint64
	Since  time.Time
	Actor  string
	Action string
	Limit  int
}

// AuditRecords lists the records f chooses, oldest first, and the cursor of
// the next page (0: none).
func (s *Store) AuditRecords(f AuditFilter) ([]AuditRecord, uint64, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	var out []AuditRecord
	var next uint64
	errFull := errors.New("full")
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pAudit), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Seek(auditKey(f.After + 1)); it.Valid(); it.Next() {
			var r AuditRecord
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
			}
			if (!f.Since.IsZero() && r.At.Before(f.Since)) || (f.Actor != "" && r.Actor != f.Actor) || (f.Action != "" && r.Action != f.Action) {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].Seq
				return errFull
			}
			out = append(out, r)
		}
		return nil
	})
	if errors.Is(err, errFull) {
		err = nil
	}
	return out, next, err
}

// AuditVerification is what VerifyAudit found: OK, or the first record
// that breaks the chain (Broken, its number) and how.
type AuditVerification struct {
	OK      bool   `json:"ok"`
	Records uint64 `json:"records"`
	Broken  uint64 `json:"broken,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// VerifyAudit walks the audit log from the first record: each must be
// numbered one after the one before, hash to its Hash and name the
// previous record's Hash as Prev; the last must be the head Apply wrote.
// A changed record fails its own hash (or, rehashed, its successor's
// Prev); a removed one leaves a gap or a head that does not match.
func (s *Store) VerifyAudit() (AuditVerification, error) {
	var v AuditVerification
	err := s.view(func(txn *badger.Txn) error {
		var head AuditHead
		if err := getJSON(txn, []byte(kAudit), &head); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pAudit), PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		var prev AuditRecord
		broken := func(seq uint64, format string, args ...any) error {
			v.Broken, v.Reason = seq, fmt.Sprintf(format, args...)
			return nil
		}
		for it.Rewind(); it.Valid(); it.Next() {
			var r AuditRecord
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return broken(prev.Seq+1, "record %d does not decode", prev.Seq+1)
			}
			switch {
			case string(it.Item().Key()) != string(auditKey(r.Seq)):
				return broken(prev.Seq+1, "record %d is stored under %s", r.Seq, it.Item().Key())
			case r.Seq != prev.Seq+1:
				return broken(prev.Seq+1, "record %d is missing", prev.Seq+1)
			case r.Prev != prev.Hash:
				return broken(r.Seq, "record %d does not follow record %d (its previous hash differs: record %d was changed)", r.Seq, prev.Seq, prev.Seq)
			case r.hashOf() != r.Hash:
				return broken(r.Seq, "record %d was changed (its hash does not match its content)", r.Seq)
			}
			prev = r
			v.Records++
		}
		if prev.Seq != head.Seq || prev.Hash != head.Hash {
			return broken(prev.Seq+1, "the log ends at record %d but %d records were written (the last were removed or changed)", prev.Seq, head.Seq)
		}
		v.OK = true
		return nil
	})
	return v, err
}

// Inbox lists user's messages, newest first (unread only if asked).
func (s *Store) Inbox(user string, unread bool) ([]Message, error) {
	var out []Message
	err := s.view(func(txn *badger.Txn) error {
		prefix := []byte(pInbox + user + sep)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true})
		defer it.Close()
		end := append(append([]byte{}, prefix...), 0xff)
		for it.Seek(end); it.Valid(); it.Next() {
			var m Message
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &m) }); err != nil {
				return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
			}
			if unread && m.Read {
				continue
			}
			out = append(out, m)
			if len(out) == MaxAuditPage {
				break
			}
		}
		return nil
	})
	return out, err
}

// Review of published images (service terms 2.1.4.1 (2)): a newly
// published image, or one whose README, description or licence changed,
// is pending until an admin (or the automatic rules) approve it; only an
// approved image is listed or pullable by others.

// Review states of a publication.
const (
	ReviewPending  = "pending"
	ReviewApproved = "approved"
	ReviewRejected = "rejected"
)

const kReviewRules = "m/review"

// Review is where a publication stands with review. A publication written
// before review existed has none and counts as approved.
type Review struct {
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"` // a rejection's reason, or the rules a pending image failed
	By     string    `json:"by,omitempty"`     // the admin, or "rules"
	At     time.Time `json:"at,omitzero"`
}

// ReviewRules are the automatic rules an admin enables: with Auto, a
// publication that passes them is approved at once and one that fails
// waits for a person with the failures as its reason.
type ReviewRules struct {
	Auto bool `json:"auto"`
	// RequireFields: a description and a README are required.
	RequireFields bool `json:"require_fields"`
	// Deny lists words no repository name, description or README may
	// contain (case-insensitive).
	Deny []string `json:"deny,omitempty"`
}

// Limits on review rules.
const (
	MaxDenyWords = 1000
	MaxDenyWord  = 100
)

// Listed reports whether p is shown in the catalog and pullable by users
// other than its owner: approved by review (or published before review
// existed).
func (p *Publication) Listed() bool {
	return p.TakenDown == nil && (p.Review.State == "" || p.Review.State == ReviewApproved)
}

// SetReviewRules replaces the automatic review rules (admin).
type SetReviewRules struct {
	Meta  Meta        `json:"meta"`
	Rules ReviewRules `json:"rules"`
}

func (a *applier) setReviewRules(c *SetReviewRules) (*ReviewRules, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin sets the review rules")
	}
	r := c.Rules
	if len(r.Deny) > MaxDenyWords {
		return nil, Errorf(EInvalid, "deny: at most %d words", MaxDenyWords)
	}
	var deny []string
	for _, w := range r.Deny {
		w = strings.ToLower(strings.TrimSpace(w))
		if len(w) > MaxDenyWord {
			return nil, Errorf(EInvalid, "deny: a word longer than %d bytes", MaxDenyWord)
		}
		if w != "" && !slices.Contains(deny, w) {
			deny = append(deny, w)
		}
	}
	r.Deny = deny
	if err := putJSON(a.txn, []byte(kReviewRules), r); err != nil {
		return nil, err
	}
	return &r, a.auditOK(c.Meta, "review.rules", "", fmt.Sprintf("auto=%t require_fields=%t deny=%d words", r.Auto, r.RequireFields, len(r.Deny)))
}

// failures lists the rules p (with its README) fails.
func (r *ReviewRules) failures(p *Publication, readme string) []string {
	var out []string
	if r.RequireFields {
		if strings.TrimSpace(p.Description) == "" {
			out = append(out, "no description")
		}
		if strings.TrimSpace(readme) == "" {
			out = append(out, "no README")
		}
	}
	texts := []struct{ what, text string }{{"name", p.Repo}, {"description", p.Description}, {"README", readme}}
	for _, t := range texts {
		low := strings.ToLower(t.text)
		for _, w := range r.Deny {
			if strings.Contains(low, w) {
				out = append(out, fmt.Sprintf("the %s contains the denied word %q", t.what, w))
			}
		}
	}
	return out
}

// reviewOnPublish decides the review of a publication being written: kept
// when nothing reviewed changed, approved when an admin publishes or the
// automatic rules pass, pending otherwise.
func (a *applier) reviewOnPublish(p *Publication, old *Publication, readme, oldReadme string, admin bool) error {
	if old != nil && old.Description == p.Description && old.Licence.Digest == p.Licence.Digest && readme == oldReadme {
		p.Review = old.Review
		return nil
	}
	if admin {
		p.Review = Review{State: ReviewApproved, By: p.Owner, At: a.at}
		return nil
	}
	var rules ReviewRules
	if err := getJSON(a.txn, []byte(kReviewRules), &rules); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if !rules.Auto {
		p.Review = Review{State: ReviewPending, At: a.at}
		return nil
	}
	if f := rules.failures(p, readme); len(f) > 0 {
		p.Review = Review{State: ReviewPending, Reason: "the automatic rules failed: " + strings.Join(f, "; "), By: "rules", At: a.at}
		return nil
	}
	p.Review = Review{State: ReviewApproved, By: "rules", At: a.at}
	return nil
}

// DecideReview is an admin's approval or rejection of a publication.
type DecideReview struct {
	Meta     Meta   `json:"meta"`
	Repo     string `json:"repo"`
	Decision string `json:"decision"` // approved or rejected
	Reason   string `json:"reason,omitempty"`
}

func (a *applier) decideReview(c *DecideReview) (*Publication, error) {
	if !c.Meta.Admin {
		return nil, Errorf(EForbidden, "only an admin reviews publications")
	}
	switch {
	case c.Decision != ReviewApproved && c.Decision != ReviewRejected:
		return nil, Errorf(EInvalid, "decision: want approved or rejected")
	case c.Decision == ReviewRejected && strings.TrimSpace(c.Reason) == "":
		return nil, Errorf(EInvalid, "reason: a rejection says why (the publisher reads it)")
	case len(c.Reason) > MaxReason:
		return nil, Errorf(EInvalid, "reason: at most %d bytes", MaxReason)
	}
	var p Publication
	if err := getJSON(a.txn, pubKey(c.Repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "%s is not published", c.Repo)
		}
		return nil, err
	}
	p.Review = Review{State: c.Decision, Reason: c.Reason, By: c.Meta.Actor, At: a.at}
	a.pubs = true
	if err := putJSON(a.txn, pubKey(c.Repo), p); err != nil {
		return nil, err
	}
	subject, body := "Your image "+c.Repo+" was approved and is listed in the catalog", ""
	if c.Decision == ReviewRejected {
		subject, body = "Your image "+c.Repo+" was not approved", "Reason: "+c.Reason+"\nChange it and publish again: gantry image publish "+c.Repo
	}
	if err := a.notify(p.Owner, "review."+c.Decision, c.Repo, subject, body); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: p.Owner, Name: c.Repo})
	action := "review.approve"
	if c.Decision == ReviewRejected {
		action = "review.reject"
	}
	return &p, a.auditOK(c.Meta, action, c.Repo, c.Reason)
}

// ReviewRules returns the automatic review rules (zero: off).
func (s *Store) ReviewRules() (ReviewRules, error) {
	var r ReviewRules
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, []byte(kReviewRules), &r) })
	if errors.Is(err, ErrNotFound) {
		return ReviewRules{}, nil
	}
	return r, err
}

// ReviewQueue lists the publications in state (pending by default), by
// repository.
func (s *Store) ReviewQueue(state string) ([]Publication, error) {
	if state == "" {
		state = ReviewPending
	}
	var out []Publication
	err := s.Publications(func(p *Publication) bool {
		st := p.Review.State
		if st == "" {
			st = ReviewApproved
		}
		if st == state {
			out = append(out, *p)
		}
		return true
	})
	return out, err
}
