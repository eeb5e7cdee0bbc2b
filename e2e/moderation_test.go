package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestTakedownAndSuspension: through the CLI, the API and the real docker
// CLI. Bob reports alice's published image; the admin sees the report
// grouped by image and takes the image down; carol's docker pull is
// refused with the registry's DENIED and HTTP 451 naming the decision, and
// her new job with 451 taken_down, while alice still pulls and runs it;
// alice's inbox says why; a restore reverses it; both are in the audit
// log, whose chain verifies. Then bob is suspended with --cancel-jobs: his
// running job is cancelled, his push, pull and submission are refused (403
// account_suspended, registry DENIED), he still reads his inbox; a restore
// lifts it.
func TestTakedownAndSuspension(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, alicePW := n.CreateUser(t, "alice")
	bob, bobPW := n.CreateUser(t, "bob")
	carol, carolPW := n.CreateUser(t, "carol")
	admin := n.Client()
	host := n.HTTPAddr
	shared, bobs := host+"/alice/shared:1", host+"/bob/own:1"
	aliceD, bobD, carolD := newDockerCLI(t), newDockerCLI(t), newDockerCLI(t)
	t.Cleanup(func() {
		untag(aliceD, bobs, shared)
	})
	buildToolImage(t, aliceD, shared)
	aliceD.login(t, host, "alice", alicePW)
	aliceD.must(t, "", "push", shared)
	bobD.login(t, host, "bob", bobPW)
	carolD.login(t, host, "carol", carolPW)
	gantry := func(c *client.Client, args ...string) string {
		t.Helper()
		out, errOut, code := n.GantryAs(t, c.Token, args...)
		if code != 0 {
			t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	refused := func(c *client.Client, want string, args ...string) string {
		t.Helper()
		out, errOut, code := n.GantryAs(t, c.Token, args...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("gantry %s: exit %d, want a refusal saying %q\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return errOut
	}
	// registryAnswer is the registry's status and first error for a
	// manifest GET as user.
	registryAnswer := func(user, pw, repo, tag string) (int, string, string) {
		t.Helper()
		resp, err := registryRequest(t, "GET", n.URL+"/v2/"+repo+"/manifests/"+tag, user, pw, nil,
			map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if len(body.Errors) == 0 {
			return resp.StatusCode, "", ""
		}
		return resp.StatusCode, body.Errors[0].Code, body.Errors[0].Message
	}
	runs := func(c *client.Client) {
		t.Helper()
		if out := gantry(c, "run", "--memory", "32M", "alice/shared:1", "--", "hi"); !strings.Contains(out, "tool says: hi") {
			t.Fatalf("the job's output: %s", out)
		}
	}
	inboxHas := func(c *client.Client, kind, want string) {
		t.Helper()
		in, err := c.Inbox(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range in.Messages {
			if m.Kind == kind {
				if out := gantry(c, "inbox", "read", m.ID); !strings.Contains(out, want) {
					t.Fatalf("the %s message does not say %q:\n%s", kind, want, out)
				}
				return
			}
		}
		t.Fatalf("no %s message in the inbox: %+v", kind, in.Messages)
	}

	gantry(alice, "image", "publish", "alice/shared", "--license", "MIT", "--description", "says things")
	gantry(admin, "review", "approve", "alice/shared")
	gantry(bob, "image", "accept", "alice/shared")
	gantry(carol, "image", "accept", "alice/shared")
	carolD.must(t, "", "pull", shared)

	const why = "ships GPL code relicensed as MIT"
	var decision string
	t.Run("bob reports the image; the admin sees it grouped by image and takes it down", func(t *testing.T) {
		if out := gantry(bob, "report", "alice/shared", "--category", "licence_violation", "--reason", "the binary is GPL code"); !strings.Contains(out, "report 1 of alice/shared filed") {
			t.Fatalf("report: %s", out)
		}
		out := gantry(admin, "report", "ls", "--open")
		if !strings.Contains(out, "alice/shared by alice: 1 open") || !strings.Contains(out, "licence_violation") || !strings.Contains(out, "bob") {
			t.Fatalf("the admin's reports:\n%s", out)
		}
		if out := gantry(carol, "report", "ls"); !strings.Contains(out, "no reports") {
			t.Fatalf("carol sees others' reports:\n%s", out)
		}
		out = gantry(admin, "report", "takedown", "1", "--reason", why)
		if !strings.Contains(out, "alice/shared taken down (decision 1)") {
			t.Fatalf("takedown: %s", out)
		}
		decision = "decision 1"
	})

	t.Run("others are refused with 451 naming the decision; the owner still pulls and runs", func(t *testing.T) {
		status, code, msg := registryAnswer("carol", carolPW, "alice/shared", "1")
		if status != http.StatusUnavailableForLegalReasons || code != "DENIED" || !strings.Contains(msg, decision) || !strings.Contains(msg, why) {
			t.Fatalf("the registry answers carol %d %s %q; want 451 DENIED naming %s and why", status, code, msg, decision)
		}
		pullRefused(t, carolD, shared, "denied", decision, why)
		var ae *client.Error
		if _, err := carol.Submit(ctx, wire.JobSpec{Image: "alice/shared:1"}); !asAPIError(err, &ae) || ae.Status != 451 || ae.Code != wire.CodeTakenDown || !strings.Contains(ae.Message, decision) {
			t.Fatalf("carol's submission: %v", err)
		}
		refused(carol, decision, "run", "alice/shared:1", "--", "hi")
		if out := gantry(carol, "catalog", "ls"); strings.Contains(out, "alice/shared") {
			t.Fatalf("a taken-down image is in the catalog:\n%s", out)
		}
		aliceD.must(t, "", "pull", shared)
		runs(alice)
		if out := gantry(alice, "image", "show", "alice/shared"); !strings.Contains(out, why) {
			t.Fatalf("alice's image show does not say why it is down:\n%s", out)
		}
		inboxHas(alice, "image.takedown", why)
		inboxHas(bob, "report.actioned", why)
	})

	t.Run("a restore reverses it", func(t *testing.T) {
		if out := gantry(admin, "restore", "alice/shared", "--reason", "the licence was corrected"); !strings.Contains(out, "alice/shared restored (decision 1 lifted)") {
			t.Fatalf("restore: %s", out)
		}
		carolD.must(t, "", "pull", shared)
		runs(carol)
		if out := gantry(carol, "catalog", "ls"); !strings.Contains(out, "alice/shared") {
			t.Fatalf("a restored image is not in the catalog:\n%s", out)
		}
		inboxHas(alice, "image.restore", "the licence was corrected")
	})

	t.Run("bob is suspended: push, pull and submit refused, his job cancelled; restore lifts it", func(t *testing.T) {
		// bob's own image, to push and pull while suspended.
		aliceD.must(t, "", "tag", shared, bobs)
		bobD.must(t, "", "push", bobs)
		long := submit(t, bob, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"sleep", "300"}, CPU: 100, Memory: 32 << 20})
		waitRunning(t, bob, long.ID)

		const reason = "bulk registration from one address"
		if out := gantry(admin, "user", "suspend", "bob", "--reason", reason, "--cancel-jobs"); !strings.Contains(out, "bob suspended; told in their inbox; 1 jobs cancelled") {
			t.Fatalf("suspend: %s", out)
		}
		if j := waitJob(t, admin, long.ID, 2*time.Minute); j.State != wire.StateCancelled {
			t.Fatalf("bob's running job is %s after --cancel-jobs, want cancelled", j.State)
		}
		var ae *client.Error
		if _, err := bob.Submit(ctx, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}}); !asAPIError(err, &ae) || ae.Status != 403 || ae.Code != wire.CodeAccountSuspended || !strings.Contains(ae.Message, reason) {
			t.Fatalf("a suspended account's submission: %v", err)
		}
		refused(bob, reason, "run", "gantry/toolbox", "--", "true")
		status, code, msg := registryAnswer("bob", bobPW, "bob/own", "1")
		if status != http.StatusForbidden || code != "DENIED" || !strings.Contains(msg, reason) {
			t.Fatalf("the registry answers a suspended bob %d %s %q; want 403 DENIED with the reason", status, code, msg)
		}
		pullRefused(t, bobD, bobs, "denied", reason)
		if out, err := bobD.run("", "push", bobs); err == nil || !strings.Contains(out, "denied") || !strings.Contains(out, reason) {
			t.Fatalf("a suspended account pushed: %v\n%s", err, out)
		}
		inboxHas(bob, "user.suspend", reason)
		var me wire.User
		if err := bob.Do(ctx, "GET", "/api/v1/me", nil, &me); err != nil || me.Suspension == nil || me.Suspension.Reason != reason {
			t.Fatalf("bob's /me while suspended: %+v %v", me, err)
		}

		if out := gantry(admin, "user", "restore", "bob"); !strings.Contains(out, "bob restored") {
			t.Fatalf("restore: %s", out)
		}
		bobD.must(t, "", "push", bobs)
		bobD.must(t, "", "pull", bobs)
		if j := waitJob(t, bob, submit(t, bob, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"echo", "back"}, Memory: 32 << 20}).ID, 2*time.Minute); j.State != wire.StateSucceeded {
			t.Fatalf("bob's job after the restore: %s", j.State)
		}
	})

	t.Run("every decision is in the audit log and the chain verifies", func(t *testing.T) {
		for _, a := range []string{"report.file", "image.takedown", "image.restore", "user.suspend", "user.restore"} {
			var l wire.AuditList
			if err := json.Unmarshal([]byte(gantry(admin, "audit", "ls", "--action", a, "-o", "json")), &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Records) != 1 || l.Records[0].Outcome != "ok" || l.Records[0].Source == "" {
				t.Fatalf("audit records of %s: %+v", a, l.Records)
			}
		}
		if out := gantry(admin, "audit", "verify"); !strings.Contains(out, "ok:") {
			t.Fatalf("audit verify: %s", out)
		}
	})
}

// waitRunning waits until job id has a running task.
func waitRunning(t *testing.T, c *client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		j, err := c.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == wire.StateRunning {
			return
		}
		if wire.Terminal(j.State) {
			t.Fatalf("job %s ended (%s) before it ran", id, j.State)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s did not start running within 2 minutes", id)
}
