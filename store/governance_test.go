package store

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func openAt(t *testing.T, dir string) *Store {
	t.Helper()
	st, err := Open(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// copyDir copies a closed store's data directory.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// auditedStore writes four audit records into a store in a fresh
// directory, closes it and returns the directory.
func auditedStore(t *testing.T) string {
	dir := t.TempDir()
	st := openAt(t, dir)
	d := NewDirect(st)
	for i, act := range []string{"user.create", "token.create", "node.drain", "image.delete"} {
		_, err := CmdAppendAudit.Propose(context.Background(), d, AppendAudit{Entry: AuditEntry{Actor: "admin", Source: "10.0.0.1",
			Action: act, Target: string(rune('a' + i)), Outcome: "ok"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAuditChainVerifiesAndDetectsTampering(t *testing.T) {
	dir := auditedStore(t)
	st := openAt(t, dir)
	v, err := st.VerifyAudit()
	if err != nil || !v.OK || v.Records != 4 {
		t.Fatalf("verify the untouched log: %+v, %v", v, err)
	}
	recs, _, err := st.AuditRecords(AuditFilter{})
	if err != nil || len(recs) != 4 || recs[0].Prev != "" || recs[1].Prev != recs[0].Hash || recs[3].Seq != 4 {
		t.Fatalf("records: %+v, %v", recs, err)
	}
	st.Close()

	cases := []struct {
		name   string
		alter  func(txn *badger.Txn) error
		broken uint64
		says   string
	}{
		{"a changed record fails its own hash", func(txn *badger.Txn) error {
			return rewrite(txn, 2, func(r *AuditRecord) { r.Actor = "mallory" })
		}, 2, "was changed"},
		{"a changed and rehashed record breaks its successor", func(txn *badger.Txn) error {
			return rewrite(txn, 2, func(r *AuditRecord) { r.Outcome = "forbidden"; r.Hash = r.hashOf() })
		}, 3, "record 2 was changed"},
		{"a removed record leaves a gap", func(txn *badger.Txn) error { return txn.Delete(auditKey(3)) }, 3, "missing"},
		{"a removed last record does not match the head", func(txn *badger.Txn) error { return txn.Delete(auditKey(4)) }, 4, "removed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := t.TempDir()
			copyDir(t, dir, cp)
			st := openAt(t, cp)
			defer st.Close()
			if err := st.db.Update(c.alter); err != nil {
				t.Fatal(err)
			}
			v, err := st.VerifyAudit()
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.Broken != c.broken || !strings.Contains(v.Reason, c.says) {
				t.Fatalf("verify: %+v, want record %d broken, saying %q", v, c.broken, c.says)
			}
		})
	}
}

func rewrite(txn *badger.Txn, seq uint64, fn func(*AuditRecord)) error {
	var r AuditRecord
	if err := getJSON(txn, auditKey(seq), &r); err != nil {
		return err
	}
	fn(&r)
	return putJSON(txn, auditKey(seq), r)
}

func TestAuditRecordsFiltersAndPages(t *testing.T) {
	st := openAt(t, auditedStore(t))
	defer st.Close()
	page, next, err := st.AuditRecords(AuditFilter{Limit: 3})
	if err != nil || len(page) != 3 || next != 3 {
		t.Fatalf("first page: %d records, next %d, %v", len(page), next, err)
	}
	page, next, err = st.AuditRecords(AuditFilter{After: next, Limit: 3})
	if err != nil || len(page) != 1 || page[0].Seq != 4 || next != 0 {
		t.Fatalf("second page: %+v, next %d, %v", page, next, err)
	}
	page, _, _ = st.AuditRecords(AuditFilter{Action: "node.drain"})
	if len(page) != 1 || page[0].Target != "c" {
		t.Fatalf("by action: %+v", page)
	}
	page, _, _ = st.AuditRecords(AuditFilter{Since: time.Now().Add(time.Hour)})
	if len(page) != 0 {
		t.Fatalf("since the future: %+v", page)
	}
}

func TestAuditEntryValidation(t *testing.T) {
	st := openAt(t, t.TempDir())
	defer st.Close()
	_, err := CmdAppendAudit.Propose(context.Background(), NewDirect(st), AppendAudit{Entry: AuditEntry{Actor: "x"}})
	if ErrorCode(err) != EInvalid {
		t.Fatalf("an entry without action: %v", err)
	}
	if v, _ := st.VerifyAudit(); !v.OK || v.Records != 0 {
		t.Fatalf("nothing was written: %+v", v)
	}
}

// TestAnActionCarriesItsAuditRecord: a command proposed under WithAudit
// appends the request's record in its own entry (one applied index, so a
// crash keeps both or neither); a refused command appends none and frees
// the record for the next command; a command not declared to carry
// records refuses an entry that does; a command never carries it twice.
func TestAnActionCarriesItsAuditRecord(t *testing.T) {
	st, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := NewDirect(st)
	entry := func() AuditEntry {
		return AuditEntry{Actor: "admin", Source: "10.0.0.1", Action: "user.create", Target: "carol", Outcome: "ok"}
	}
	ctx, slot := WithAudit(context.Background(), entry)
	before := st.AppliedIndex()
	if _, err := CmdCreateUser.Propose(ctx, d, CreateUser{User: User{Name: "carol"}}); err != nil {
		t.Fatal(err)
	}
	recs, _, _ := st.AuditRecords(AuditFilter{})
	if got := st.AppliedIndex() - before; got != 1 || !slot.Carried() || len(recs) != 1 || recs[0].Target != "carol" || recs[0].Source != "10.0.0.1" {
		t.Fatalf("%d entries applied, carried %t, records %+v; want one entry with the record", got, slot.Carried(), recs)
	}
	if _, err := CmdCreateToken.Propose(ctx, d, CreateToken{Token: Token{ID: "t", User: "carol"}, Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := st.AuditRecords(AuditFilter{}); len(recs) != 1 {
		t.Fatalf("a second command of the action carried the record again: %+v", recs)
	}

	t.Run("a refused command carries nothing and frees the record", func(t *testing.T) {
		ctx, slot := WithAudit(context.Background(), entry)
		if _, err := CmdCreateUser.Propose(ctx, d, CreateUser{User: User{Name: "carol"}}); ErrorCode(err) != EConflict {
			t.Fatalf("creating carol twice: %v", err)
		}
		if recs, _, _ := st.AuditRecords(AuditFilter{}); len(recs) != 1 || slot.Carried() {
			t.Fatalf("a refused command left a record: %+v", recs)
		}
		if _, err := CmdCreateUser.Propose(ctx, d, CreateUser{User: User{Name: "dave"}}); err != nil {
			t.Fatal(err)
		}
		if recs, _, _ := st.AuditRecords(AuditFilter{}); len(recs) != 2 || !slot.Carried() {
			t.Fatalf("the next command did not carry the freed record: %+v", recs)
		}
	})
	t.Run("a command that does not carry records refuses an entry with one", func(t *testing.T) {
		b, _ := json.Marshal(envelope{Type: "job.cancel", V: 2, Time: time.Now(), Data: json.RawMessage(`{"id":"x"}`), Audit: &AuditEntry{Action: "x", Outcome: "ok"}})
		if _, err := d.Propose(context.Background(), "job.cancel", b); ErrorCode(err) != EInvalid {
			t.Fatalf("job.cancel with an audit record: %v", err)
		}
		b, _ = json.Marshal(envelope{Type: "user.create", V: 1, Time: time.Now(), Data: json.RawMessage(`{"user":{"name":"erin"}}`), Audit: &AuditEntry{Action: "x", Outcome: "ok"}})
		if _, err := d.Propose(context.Background(), "user.create", b); ErrorCode(err) != EInvalid {
			t.Fatalf("user.create v1 with an audit record: %v", err)
		}
	})
	if v, _ := st.VerifyAudit(); !v.OK {
		t.Fatalf("chain %+v", v)
	}
}
