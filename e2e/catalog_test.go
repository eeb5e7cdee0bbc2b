package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestCommunityImages: alice publishes an image under a licence; bob's real
// `docker pull` and his job are refused with a message naming the accept
// command until he accepts, and again after a new licence version;
// approval mode (request, reject with a reason, approve, revoke); and
// lineage: bob builds FROM alice's image with the real docker build, and
// carol's pull of bob's image needs alice's licence accepted too.
func TestCommunityImages(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, alicePW := n.CreateUser(t, "alice")
	bob, bobPW := n.CreateUser(t, "bob")
	carol, carolPW := n.CreateUser(t, "carol")
	host := n.HTTPAddr
	tool, model, app := host+"/alice/tool:1", host+"/alice/model:1", host+"/bob/app:1"
	aliceD, bobD, carolD := newDockerCLI(t), newDockerCLI(t), newDockerCLI(t)
	t.Cleanup(func() {
		untag(aliceD, app, model, tool)
	})
	buildToolImage(t, aliceD, tool)
	// The model is another image: lineage must tell the two apart.
	mdir := t.TempDir()
	os.WriteFile(filepath.Join(mdir, "weights.txt"), []byte("not really weights\n"), 0o644)
	os.WriteFile(filepath.Join(mdir, "Dockerfile"), []byte("FROM scratch\nCOPY weights.txt /weights.txt\n"), 0o644)
	aliceD.must(t, "", "build", "-q", "-t", model, mdir)
	aliceD.login(t, host, "alice", alicePW)
	aliceD.must(t, "", "push", tool)
	aliceD.must(t, "", "push", model)
	bobD.login(t, host, "bob", bobPW)
	carolD.login(t, host, "carol", carolPW)
	gantry := func(c *client.Client, args ...string) (string, string, int) { return n.GantryAs(t, c.Token, args...) }
	mustGantry := func(c *client.Client, args ...string) string {
		t.Helper()
		out, errOut, code := gantry(c, args...)
		if code != 0 {
			t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	pullRefused := func(d *dockerCLI, ref string, want ...string) {
		t.Helper()
		out, err := d.run("", "pull", ref)
		if err == nil {
			t.Fatalf("docker pull %s succeeded; want it refused", ref)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("docker pull %s refused without saying %q:\n%s\n%v", ref, w, out, err)
			}
		}
	}
	readme := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(readme, []byte("# Tool\n\nSays what you tell it.\n"), 0o644)

	t.Run("alice publishes; bob is refused until he accepts the licence", func(t *testing.T) {
		out := mustGantry(alice, "image", "publish", "alice/tool", "--license", "MIT", "--description", "says things", "--readme", readme)
		mustGantry(n.Client(), "review", "approve", "alice/tool") // listed once reviewed
		if !strings.Contains(out, "published alice/tool under MIT") {
			t.Fatalf("publish: %s", out)
		}
		pullRefused(bobD, tool, "denied", "gantry image accept alice/tool", "/catalog/alice/tool")
		_, errOut, code := gantry(bob, "run", "alice/tool:1", "--", "hi")
		if code == 0 || !strings.Contains(errOut, "gantry image accept alice/tool") {
			t.Fatalf("bob's job before accepting: exit %d %s", code, errOut)
		}
		var ae *client.Error
		if _, err := bob.Submit(ctx, wire.JobSpec{Image: "alice/tool:1"}); !asAPIError(err, &ae) || ae.Status != 403 || ae.Code != wire.CodeLicenceNotAccepted {
			t.Fatalf("bob's submission through the API: %v", err)
		}
		out = mustGantry(bob, "image", "accept", "alice/tool")
		if !strings.Contains(out, "accepted the licence of alice/tool (MIT)") || !strings.Contains(out, "2.2.2.2 (1)") {
			t.Fatalf("accept: %s", out)
		}
		bobD.must(t, "", "pull", tool)
		out, errOut, code = gantry(bob, "run", "alice/tool:1", "--", "hi")
		if code != 0 || !strings.Contains(out, "tool says: hi") {
			t.Fatalf("bob's job after accepting: exit %d %s %s", code, out, errOut)
		}
	})

	t.Run("a new licence version refuses bob's next pull until he accepts again", func(t *testing.T) {
		mustGantry(alice, "image", "publish", "alice/tool", "--license", "Apache-2.0 OR MIT", "--description", "says things", "--readme", readme)
		mustGantry(n.Client(), "review", "approve", "alice/tool") // listed once reviewed
		pullRefused(bobD, tool, "changed", "gantry image accept alice/tool")
		mustGantry(bob, "image", "accept", "alice/tool")
		bobD.must(t, "", "pull", tool)
		if out := mustGantry(bob, "image", "accepted"); !strings.Contains(out, "Apache-2.0 OR MIT") {
			t.Fatalf("bob's accepted licences: %s", out)
		}
	})

	t.Run("approval mode: request, reject with a reason, approve, revoke", func(t *testing.T) {
		mustGantry(alice, "image", "publish", "alice/model", "--license", "MIT", "--access", "approval", "--question", "What will you use it for?", "--genai")
		mustGantry(n.Client(), "review", "approve", "alice/model") // listed once reviewed
		if out := mustGantry(alice, "image", "ls"); !strings.Contains(out, "alice/model [generative AI]") {
			t.Fatalf("alice's image ls does not label the generative-AI model:\n%s", out)
		}
		if out := mustGantry(bob, "catalog", "ls"); !strings.Contains(out, "alice/model [generative AI]") {
			t.Fatalf("catalog ls does not label the generative-AI model:\n%s", out)
		}
		pullRefused(bobD, model, "by invitation", "gantry image request alice/model")
		mustGantry(bob, "image", "request", "alice/model", "--answer", "my thesis")
		pullRefused(bobD, model, "waits for its publisher")
		mustGantry(alice, "image", "access", "reject", "alice/model", "bob", "--reason", "theses need a supervisor")
		pullRefused(bobD, model, "refused your request: theses need a supervisor")
		d, err := bob.CatalogEntry(ctx, "alice/model")
		if err != nil || d.Status.State != wire.StatusRejected || !strings.Contains(d.Status.Message, "supervisor") {
			t.Fatalf("bob sees: %+v %v", d.Status, err)
		}
		mustGantry(bob, "image", "request", "alice/model", "--answer", "supervised by carol")
		mustGantry(alice, "image", "access", "approve", "alice/model", "bob")
		pullRefused(bobD, model, "gantry image accept alice/model")
		mustGantry(bob, "image", "accept", "alice/model")
		bobD.must(t, "", "pull", model)
		var report wire.AccessReport
		if err := json.Unmarshal([]byte(mustGantry(alice, "image", "access", "ls", "alice/model", "-o", "json")), &report); err != nil ||
			len(report.Requests) != 1 || report.Requests[0].State != "approved" || len(report.Acceptances) != 1 || report.Requests[0].Answers[0] != "supervised by carol" {
			t.Fatalf("alice's access report: %+v %v", report, err)
		}
		mustGantry(alice, "image", "access", "revoke", "alice/model", "bob", "--reason", "licence violation")
		pullRefused(bobD, model, "revoked your access: licence violation")
	})

	t.Run("lineage: an image built FROM alice's carries her licence", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "extra.txt"), []byte("bob's addition\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+tool+"\nCOPY extra.txt /extra.txt\n"), 0o644)
		bobD.must(t, "", "build", "--pull", "-q", "-t", app, dir)
		bobD.must(t, "", "push", app)
		out := mustGantry(bob, "image", "publish", "bob/app", "--license", "BSD-3-Clause")
		mustGantry(n.Client(), "review", "approve", "bob/app") // listed once reviewed
		if !strings.Contains(out, "built on alice/tool") {
			t.Fatalf("bob's publish does not show the inherited notice: %s", out)
		}
		mustGantry(carol, "image", "accept", "bob/app")
		if d, err := carol.CatalogEntry(ctx, "bob/app"); err != nil || len(d.Notices) != 1 || d.Notices[0].Base != "alice/tool" {
			t.Fatalf("bob/app's notices: %+v %v", d.Notices, err)
		}
		pullRefused(carolD, app, "built on alice/tool", "gantry image accept alice/tool")
		mustGantry(carol, "image", "accept", "alice/tool")
		carolD.must(t, "", "pull", app)
		if _, errOut, code := gantry(bob, "image", "notice", "rm", "bob/app", "--base", "alice/tool"); code == 0 || !strings.Contains(errOut, "only the rights holder of alice/tool") {
			t.Fatalf("bob removing alice's notice: exit %d %s", code, errOut)
		}
		// Both images list alice's licence among their referrers.
		for _, img := range []struct{ repo, user, pw string }{{"alice/tool", "alice", alicePW}, {"bob/app", "bob", bobPW}} {
			gantrytest.Eventually(t, 30*time.Second, func() bool {
				return hasLicenceReferrer(t, n, img.repo, "1", img.pw, img.user, "Apache-2.0 OR MIT")
			}, "alice's licence artifact among the referrers of %s", img.repo)
		}
		if out := mustGantry(carol, "catalog", "show", "bob/app"); !strings.Contains(out, "built on alice/tool") {
			t.Fatalf("catalog show bob/app: %s", out)
		}
		// bob's own listing carries the notice too, next to his licence.
		if out := mustGantry(bob, "image", "ls"); !strings.Contains(out, "BSD-3-Clause + Apache-2.0 OR MIT (alice/tool)") ||
			!strings.Contains(out, "bob/app is built on alice/tool: it carries alice/tool's licence notice (Apache-2.0 OR MIT), which only alice can remove") {
			t.Fatalf("bob's image ls does not show the inherited notice:\n%s", out)
		}
		if out := mustGantry(bob, "image", "show", "bob/app"); !strings.Contains(out, "published: BSD-3-Clause") || !strings.Contains(out, "built on alice/tool: Apache-2.0 OR MIT") {
			t.Fatalf("bob's image show bob/app:\n%s", out)
		}
		if _, errOut, code := gantry(bob, "image", "show", "alice/nope"); code != 1 || !strings.Contains(errOut, "gantry catalog show alice/nope") {
			t.Fatalf("image show of a repository bob cannot pull: exit %d %s", code, errOut)
		}
	})

	t.Run("the catalog lists, searches and counts pulls", func(t *testing.T) {
		out := mustGantry(carol, "catalog", "search", "says")
		if !strings.Contains(out, "alice/tool") || strings.Contains(out, "bob/app") {
			t.Fatalf("search: %s", out)
		}
		// A pull is a manifest GET, as Docker Hub counts them (the docker
		// daemon here holds every image already and only asks HEAD).
		before, _ := carol.CatalogEntry(ctx, "alice/tool")
		for i := 0; i < 3; i++ {
			var m map[string]any
			if _, ok := registryGet(t, n, "/v2/alice/tool/manifests/1", "carol", carolPW, &m); !ok {
				t.Fatal("carol cannot GET the manifest of alice/tool")
			}
		}
		// At least: pulls of the subtests before may still be on their way
		// from the registry's counter to the store.
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			d, err := carol.CatalogEntry(ctx, "alice/tool")
			return err == nil && d.Pulls >= before.Pulls+3
		}, "3 pulls of alice/tool counted")
	})

	t.Run("gantry catalog try runs the image under the trial allowance", func(t *testing.T) {
		if _, errOut, code := gantry(bob, "catalog", "try", "alice/tool"); code == 0 || !strings.Contains(errOut, "trials are off") {
			t.Fatalf("try with no allowance: exit %d %s", code, errOut)
		}
		if _, errOut, code := gantry(bob, "catalog", "trial", "--cpu-seconds", "60"); code == 0 || !strings.Contains(errOut, "admin") {
			t.Fatalf("bob set the trial allowance: exit %d %s", code, errOut)
		}
		out, errOut, code := n.Gantry(t, "catalog", "trial", "--cpu-seconds", "60", "--max-run-time", "30s")
		if code != 0 || !strings.Contains(out, "60 CPU-seconds a day") || !strings.Contains(out, "runs of at most 30s") {
			t.Fatalf("admin sets the trial allowance: exit %d %s %s", code, out, errOut)
		}
		// dave has not accepted alice's licence: a trial is a job like any
		// other under the gate.
		dave, _ := n.CreateUser(t, "dave")
		if _, errOut, code := gantry(dave, "catalog", "try", "alice/tool"); code == 0 || !strings.Contains(errOut, "gantry image accept alice/tool") {
			t.Fatalf("dave's trial before accepting: exit %d %s", code, errOut)
		}
		out, errOut, code = gantry(bob, "catalog", "try", "alice/tool")
		if code != 0 || !strings.Contains(out, "tool says:") || !strings.Contains(errOut, "left today") {
			t.Fatalf("bob's trial: exit %d\n%s\n%s", code, out, errOut)
		}
		id := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(errOut, "trial "))[0], ":")
		if j, err := bob.Job(ctx, id); err != nil || !j.Trial {
			t.Fatalf("the trial job %s: %+v %v", id, j, err)
		}
		out = mustGantry(bob, "catalog", "trial")
		if !strings.Contains(out, "CPU-seconds left today") {
			t.Fatalf("catalog trial: %s", out)
		}
	})
}

func asAPIError(err error, e **client.Error) bool {
	ce, ok := err.(*client.Error)
	if ok {
		*e = ce
	}
	return ok
}

// hasLicenceReferrer reports whether repo:tag's manifest has a licence
// artifact with the given SPDX expression among its referrers (as user).
func hasLicenceReferrer(t *testing.T, n *gantrytest.Node, repo, tag, password, user, expression string) bool {
	t.Helper()
	var m map[string]any
	h, ok := registryGet(t, n, fmt.Sprintf("/v2/%s/manifests/%s", repo, tag), user, password, &m)
	if !ok {
		return false
	}
	var idx struct {
		Manifests []struct {
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if _, ok := registryGet(t, n, fmt.Sprintf("/v2/%s/referrers/%s", repo, h.Get("Docker-Content-Digest")), user, password, &idx); !ok {
		return false
	}
	for _, r := range idx.Manifests {
		if r.ArtifactType == "application/vnd.gantry.licence.v1+text" && r.Annotations["org.opencontainers.image.licenses"] == expression {
			return true
		}
	}
	return false
}

// registryGet GETs a registry path with Basic credentials and decodes the
// JSON answer.
func registryGet(t *testing.T, n *gantrytest.Node, path, user, password string, v any) (http.Header, bool) {
	t.Helper()
	req, _ := http.NewRequest("GET", n.URL+path, nil)
	req.SetBasicAuth(user, password)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		return nil, false
	}
	defer resp.Body.Close()
	return resp.Header, json.NewDecoder(resp.Body).Decode(v) == nil
}
