package e2e

import (
	"strings"
	"testing"

	"gantry/gantrytest"
)

// TestGovernanceReview: through the CLI and a real docker pull, alice's
// newly published image is pending: not in bob's catalog, not pullable by
// him, in the admin's review queue; a rejection's reason reaches alice's
// inbox; once approved it is listed and bob pulls it after accepting the
// licence; every decision is in the audit log, whose chain verifies.
func TestGovernanceReview(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, alicePW := n.CreateUser(t, "alice")
	bob, bobPW := n.CreateUser(t, "bob")
	host := n.HTTPAddr
	ref := host + "/alice/review:1"
	aliceD, bobD := newDockerCLI(t), newDockerCLI(t)
	t.Cleanup(func() {
		untag(aliceD, ref)
	})
	buildToolImage(t, aliceD, ref)
	aliceD.login(t, host, "alice", alicePW)
	aliceD.must(t, "", "push", ref)
	bobD.login(t, host, "bob", bobPW)
	gantry := func(token string, args ...string) string {
		t.Helper()
		out, errOut, code := n.GantryAs(t, token, args...)
		if code != 0 {
			t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	admin := n.AdminToken

	if out := gantry(alice.Token, "image", "publish", "alice/review", "--license", "MIT", "--description", "a tool"); !strings.Contains(out, "review: pending") {
		t.Fatalf("publish does not say it waits for review: %s", out)
	}
	if out := gantry(bob.Token, "catalog", "ls"); strings.Contains(out, "alice/review") {
		t.Fatalf("a pending image is in bob's catalog:\n%s", out)
	}
	if out, err := bobD.run("", "pull", ref); err == nil {
		t.Fatalf("bob pulled a pending image:\n%s", out)
	}
	if out := gantry(admin, "review", "ls"); !strings.Contains(out, "alice/review") || !strings.Contains(out, "pending") {
		t.Fatalf("the review queue does not list it:\n%s", out)
	}
	if _, errOut, code := n.GantryAs(t, admin, "review", "reject", "alice/review"); code != 2 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("reject without a reason: exit %d %s", code, errOut)
	}
	gantry(admin, "review", "reject", "alice/review", "--reason", "say what it does in a README")
	id := ""
	for _, l := range strings.Split(gantry(alice.Token, "inbox"), "\n") {
		if strings.Contains(l, "review.rejected") {
			id = strings.Fields(l)[0]
		}
	}
	if id == "" {
		t.Fatal("alice's inbox does not have the rejection")
	}
	if out := gantry(alice.Token, "inbox", "read", id); !strings.Contains(out, "say what it does in a README") {
		t.Fatalf("the rejection does not give the reason:\n%s", out)
	}

	gantry(admin, "review", "approve", "alice/review")
	if out := gantry(bob.Token, "catalog", "ls"); !strings.Contains(out, "alice/review") {
		t.Fatalf("an approved image is not in bob's catalog:\n%s", out)
	}
	gantry(bob.Token, "image", "accept", "alice/review")
	bobD.must(t, "", "pull", ref)

	out := gantry(admin, "audit", "ls", "--action", "review.reject")
	if !strings.Contains(out, "alice/review") || !strings.Contains(out, "admin") {
		t.Fatalf("the audit log does not show the rejection:\n%s", out)
	}
	if out := gantry(admin, "audit", "verify"); !strings.Contains(out, "ok:") {
		t.Fatalf("audit verify: %s", out)
	}
	if out := gantry(admin, "audit", "export"); strings.Count(out, "\n") < 3 || !strings.Contains(out, `"action":"review.approve"`) {
		t.Fatalf("audit export:\n%s", out)
	}
}
