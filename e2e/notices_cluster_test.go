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

// TestANoticeFiledOnAFollowerIsDecidedAfterFailover: in a 3-node cluster
// bob files a notice, with an attachment, through a follower; the leader
// is killed with SIGKILL; the notice and its attachment are on the
// survivors, an admin decides it there after the election, and the killed
// node, restarted, catches up to the same notice and an audit chain that
// verifies.
func TestANoticeFiledOnAFollowerIsDecidedAfterFailover(t *testing.T) {
	cl := gantrytest.StartCluster(t, 3)
	leader := cl.Leader(t, 30*time.Second)
	f := cl.Followers(t)[0]
	admin := f.ClientAs(leader.AdminToken)
	alice, alicePW := f.CreateUser(t, "alice")
	bob, _ := f.CreateUser(t, "bob")
	gantry := func(n *gantrytest.Node, c *client.Client, args ...string) string {
		t.Helper()
		out, errOut, code := n.GantryAs(t, c.Token, args...)
		if code != 0 {
			t.Fatalf("gantry %s on %s: exit %d\n%s%s", strings.Join(args, " "), n.Name, code, out, errOut)
		}
		return out
	}
	pushToolImage(t, f, "alice", alicePW, "alice/tool", "1", "hello", 0)
	gantry(f, alice, "image", "publish", "alice/tool", "--license", "MIT", "--description", "a tool")
	gantry(f, admin, "review", "approve", "alice/tool")

	dir := t.TempDir()
	proof := "%PDF-1.4 a registration that must survive the failover"
	os.WriteFile(filepath.Join(dir, "proof.pdf"), []byte(proof), 0o644)
	form, _ := json.Marshal(map[string]any{
		"rights_holder": map[string]string{"name": "Bob Ltd", "kind": "organisation", "id_document": "REG-1", "address": "1 Road", "email": "b@bob.example"},
		"works":         []string{"Bob's tool"}, "proof": []map[string]string{{"file": "proof.pdf"}}, "content": []string{"alice/tool:1"},
		"reasons": "copied", "evidence": []map[string]string{{"file": "proof.pdf"}}, "lang": "en", "signature": "Bob",
		"statement": "I warrant that the information in this notice is complete, true and accurate, and that I am the lawful rights holder of the content complained of, or that I am authorised and entitled to exercise the rights in it listed above. I confirm that content available in the product I report infringes my corresponding lawful rights. I undertake to bear myself the legal liability arising from anything untrue in this notice.",
	})
	os.WriteFile(filepath.Join(dir, "notice.json"), form, 0o644)
	if out := gantry(f, bob, "notice", "file", "--from-file", filepath.Join(dir, "notice.json")); !strings.Contains(out, "notice 1 filed") {
		t.Fatalf("file on the follower: %s", out)
	}

	leader.Kill9(t)
	var survivor *gantrytest.Node
	for _, n := range cl.Nodes {
		if n != leader && n.Running() {
			survivor = n
			break
		}
	}
	cl.Leader(t, 30*time.Second)
	sadmin := survivor.ClientAs(leader.AdminToken)
	var v wire.InfringementNotice
	if err := json.Unmarshal([]byte(gantry(survivor, sadmin, "notice", "show", "1", "-o", "json")), &v); err != nil || v.State != wire.NoticeFiled {
		t.Fatalf("notice 1 on %s after the failover: %+v %v", survivor.Name, v, err)
	}
	if got := gantry(survivor, sadmin, "notice", "attachment", "1", v.Proof[0].Digest); got != proof {
		t.Fatalf("the attachment after the failover: %q", got)
	}
	if out := gantry(survivor, sadmin, "notice", "decide", "1", "takedown", "--reason", "copied"); !strings.Contains(out, "taken_down") {
		t.Fatalf("decide after the failover: %s", out)
	}

	leader.Restart(t)
	back := leader.ClientAs(leader.AdminToken)
	gantrytest.Eventually(t, 60*time.Second, func() bool {
		n, err := back.Notice(t.Context(), "1")
		return err == nil && n.State == wire.NoticeTakenDown && len(n.Timeline) == 2
	}, "the restarted node has the decided notice")
	for _, n := range cl.Nodes {
		if out := gantry(n, n.ClientAs(leader.AdminToken), "audit", "verify"); !strings.Contains(out, "ok:") {
			t.Fatalf("audit verify on %s: %s", n.Name, out)
		}
	}
	if in, err := f.ClientAs(alice.Token).Inbox(t.Context(), false); err != nil || in.Messages[0].Kind != "notice.takedown" {
		t.Fatalf("alice's inbox after the failover: %+v %v", in, err)
	}
}
