package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
