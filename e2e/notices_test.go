package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestInfringementNotices: through the CLI and the real docker CLI. Bob,
// a rights holder, fills the form `gantry notice template` prints and
// files it with attachments; the admin takes alice's image down on it;
// carol's docker pull is refused naming the notice; alice reads it
// without bob's private contact, downloads the proof, and counters; bob
// is forwarded her counter-notice; the image comes back by itself once
// the (short) waiting period passed. A second notice on which bob records
// a court action stays down past the period until the admin keeps it
// down. A rights holder without an account files through the public form
// once the admin opens it. Every step is on the timeline and in the audit
// log, whose chain verifies.
func TestInfringementNotices(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, alicePW := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	carol, carolPW := n.CreateUser(t, "carol")
	admin := n.Client()
	host := n.HTTPAddr
	ref := host + "/alice/render:1"
	aliceD, carolD := newDockerCLI(t), newDockerCLI(t)
	t.Cleanup(func() {
		untag(aliceD, ref)
	})
	buildToolImage(t, aliceD, ref)
	aliceD.login(t, host, "alice", alicePW)
	aliceD.must(t, "", "push", ref)
	carolD.login(t, host, "carol", carolPW)
	gantry := func(c *client.Client, args ...string) string {
		t.Helper()
		out, errOut, code := n.GantryAs(t, c.Token, args...)
		if code != 0 {
			t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	show := func(c *client.Client, id string) wire.InfringementNotice {
		t.Helper()
		var v wire.InfringementNotice
		if err := json.Unmarshal([]byte(gantry(c, "notice", "show", id, "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	gantry(alice, "image", "publish", "alice/render", "--license", "MIT", "--description", "renders things")
	gantry(admin, "review", "approve", "alice/render")
	gantry(carol, "image", "accept", "alice/render")
	carolD.must(t, "", "pull", ref)
	gantry(admin, "notice", "settings", "--wait", "3s")

	// bob fills the form the CLI prints, with files of his own.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "registration.pdf"), []byte("%PDF-1.4 copyright registration"), 0o644)
	os.WriteFile(filepath.Join(dir, "comparison.txt"), []byte("the same symbols, the same strings"), 0o644)
	fill := func(counter bool, edit func(map[string]any)) string {
		t.Helper()
		args := []string{"notice", "template", "--lang", "zh"}
		if counter {
			args = append(args, "--counter")
		}
		var form map[string]any
		if err := json.Unmarshal([]byte(gantry(bob, args...)), &form); err != nil {
			t.Fatal(err)
		}
		edit(form)
		b, _ := json.Marshal(form)
		p := filepath.Join(dir, "form.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noticeForm := func() string {
		return fill(false, func(f map[string]any) {
			if !strings.Contains(f["statement"].(string), "本人保证，本通知中所述信息是充分、真实、准确的") {
				t.Fatalf("the template does not carry the terms' statement: %v", f["statement"])
			}
			f["rights_holder"] = map[string]string{"name": "Bob Render Ltd", "kind": "organisation", "id_document": "REG-2020-77", "address": "7 Long Rd", "email": "legal@bob.example"}
			f["works"] = []string{"Render Engine 2"}
			f["proof"] = []map[string]string{{"file": "registration.pdf"}}
			f["content"] = []string{host + "/alice/render:1"}
			f["reasons"] = "the image ships our engine's binary"
			f["evidence"] = []map[string]string{{"file": "comparison.txt"}}
			f["signature"] = "Bob Builder"
		})
	}
	counterForm := func() string {
		return fill(true, func(f map[string]any) {
			f["party"] = map[string]string{"name": "Alice", "kind": "person", "id_document": "P-555", "address": "9 Short St", "phone": "+1 555 0199"}
			delete(f, "content")
			f["reasons"] = "I wrote the engine; the history shows it"
			f["evidence"] = []map[string]string{{"file": "comparison.txt"}}
			f["signature"] = "Alice"
		})
	}

	t.Run("bob files a notice; the admin takes the image down on it", func(t *testing.T) {
		if out := gantry(bob, "notice", "file", "--from-file", noticeForm()); !strings.Contains(out, "notice 1 filed against alice/render of alice") {
			t.Fatalf("file: %s", out)
		}
		if out := gantry(admin, "notice", "ls", "--state", "filed"); !strings.Contains(out, "Bob Render Ltd") || !strings.Contains(out, "alice/render") {
			t.Fatalf("the admin's notices:\n%s", out)
		}
		if out := gantry(admin, "notice", "decide", "1", "takedown", "--reason", "the binaries match"); !strings.Contains(out, "notice 1: taken_down (decisions 1)") {
			t.Fatalf("decide: %s", out)
		}
		pullRefused(t, carolD, ref, "denied", "infringement notice 1", "the binaries match")
	})

	t.Run("alice reads it without bob's contact, downloads the proof, and counters", func(t *testing.T) {
		out := gantry(alice, "notice", "show", "1")
		for _, want := range []string{"Bob Render Ltd", "Render Engine 2", "the image ships our engine's binary", "registration.pdf", "本人保证", "Bob Builder", "not shown to the publisher"} {
			if !strings.Contains(out, want) {
				t.Fatalf("alice's notice show lacks %q:\n%s", want, out)
			}
		}
		for _, private := range []string{"legal@bob.example", "REG-2020-77", "7 Long Rd"} {
			if strings.Contains(out, private) {
				t.Fatalf("alice is shown bob's private %q:\n%s", private, out)
			}
		}
		v := show(alice, "1")
		if got := gantry(alice, "notice", "attachment", "1", v.Proof[0].Digest); got != "%PDF-1.4 copyright registration" {
			t.Fatalf("the proof downloaded: %q", got)
		}
		if _, errOut, code := n.GantryAs(t, carol.Token, "notice", "show", "1"); code == 0 || !strings.Contains(errOut, "not found") {
			t.Fatalf("carol reads a notice she is no party to: exit %d %s", code, errOut)
		}
		if out := gantry(alice, "notice", "counter", "1", "--from-file", counterForm()); !strings.Contains(out, "forwarded to the notifier") {
			t.Fatalf("counter: %s", out)
		}
		in, err := bob.Inbox(t.Context(), false)
		if err != nil || in.Messages[0].Kind != "notice.countered" || !strings.Contains(in.Messages[0].Body, "9 Short St") {
			t.Fatalf("bob's inbox: %+v %v", in, err)
		}
	})

	t.Run("the image comes back once the waiting period passed", func(t *testing.T) {
		deadline := time.Now().Add(30 * time.Second)
		for show(admin, "1").State != wire.NoticeRestored {
			if time.Now().After(deadline) {
				t.Fatalf("notice 1 is %s 30s after a 3s waiting period", show(admin, "1").State)
			}
			time.Sleep(200 * time.Millisecond)
		}
		carolD.must(t, "", "pull", ref)
		out := gantry(admin, "notice", "show", "1")
		for _, step := range []string{"notice.file", "notice.takedown", "notice.counter", "gantry", "notice.restore"} {
			if !strings.Contains(out, step) {
				t.Fatalf("the timeline lacks %s:\n%s", step, out)
			}
		}
	})

	t.Run("a court action keeps it down until the admin keeps it down", func(t *testing.T) {
		gantry(bob, "notice", "file", "--from-file", noticeForm())
		gantry(admin, "notice", "decide", "2", "takedown", "--reason", "again")
		gantry(alice, "notice", "counter", "2", "--from-file", counterForm())
		if out := gantry(bob, "notice", "court", "2", "--detail", "case 2026-88, district court"); !strings.Contains(out, "stays down") {
			t.Fatalf("court: %s", out)
		}
		countered := show(admin, "2").Counter.At
		for time.Since(countered) < 5*time.Second {
			time.Sleep(200 * time.Millisecond) // past the 3s period: no restore may come
		}
		if s := show(admin, "2").State; s != wire.NoticeCountered {
			t.Fatalf("notice 2 is %s after its period despite the court action", s)
		}
		pullRefused(t, carolD, ref, "denied", "infringement notice 2")
		if out := gantry(admin, "notice", "decide", "2", "keep-down", "--reason", "the court decides"); !strings.Contains(out, "notice 2: kept_down") {
			t.Fatalf("keep down: %s", out)
		}
	})

	t.Run("a rights holder without an account files through the public form", func(t *testing.T) {
		anon := &client.Client{}
		if _, errOut, code := n.GantryAs(t, anon.Token, "notice", "file", "--public", "--from-file", noticeForm()); code == 0 || !strings.Contains(errOut, "closed") {
			t.Fatalf("the closed public form: exit %d %s", code, errOut)
		}
		gantry(admin, "notice", "settings", "--public-form", "on")
		out, errOut, code := n.GantryAs(t, anon.Token, "notice", "file", "--public", "--from-file", noticeForm())
		if code != 0 || !strings.Contains(out, "notice 3 filed") || !strings.Contains(out, "contact you gave") {
			t.Fatalf("the public form: exit %d %s%s", code, out, errOut)
		}
	})

	t.Run("every step is in the audit log and the chain verifies", func(t *testing.T) {
		for _, a := range []struct {
			action, actor string
			n             int
		}{{"notice.file", "bob", 2}, {"notice.takedown", "admin", 2}, {"notice.counter", "alice", 2}, {"notice.restore", "gantry", 1},
			{"notice.court", "bob", 1}, {"notice.keep_down", "admin", 1}, {"notice.settings", "admin", 2}} {
			var l wire.AuditList
			if err := json.Unmarshal([]byte(gantry(admin, "audit", "ls", "--action", a.action, "--actor", a.actor, "-o", "json")), &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Records) != a.n {
				t.Fatalf("%d audit records of %s by %s, want %d: %+v", len(l.Records), a.action, a.actor, a.n, l.Records)
			}
		}
		if out := gantry(admin, "audit", "verify"); !strings.Contains(out, "ok:") {
			t.Fatalf("audit verify: %s", out)
		}
	})
}

// pullRefused runs a docker pull that must fail saying each of want.
func pullRefused(t *testing.T, d *dockerCLI, ref string, want ...string) {
	t.Helper()
	out, err := d.run("", "pull", ref)
	if err == nil {
		t.Fatalf("docker pull %s succeeded; want it refused", ref)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("docker pull %s refused without saying %q:\n%s", ref, w, out)
		}
	}
}
