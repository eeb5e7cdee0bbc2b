package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestStorageQuota: an admin sets a user's storage quota; `gantry user
// ls` and /me show what the user's repositories hold; a `gantry data push`
// and a `docker push` that would go over it are refused with the quota's
// message (what was added, the limit) and leave no manifest; a job whose
// output would go over it fails output_failed naming the quota; with the
// quota removed the same push goes through.
func TestStorageQuota(t *testing.T) {
	t.Parallel()
	gantrytest.RequireDocker(t)
	// A short GC grace: the blobs of an image deleted in the test are
	// old enough to be freed within it.
	n := gantrytest.Start(t, gantrytest.Options{Env: []string{"GANTRY_REGISTRY_GC_GRACE=2s"}})
	ctx := t.Context()
	alice, alicePW := n.CreateUser(t, "alice")
	must := func(token string, args ...string) string { t.Helper(); return n.MustGantry(t, token, args...) }
	tree := func(size int) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "blob.bin"), bytes.Repeat([]byte(fmt.Sprint(size)), size/len(fmt.Sprint(size))), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	me := func() wire.User {
		t.Helper()
		var u wire.User
		if err := alice.Do(ctx, "GET", "/api/v1/me", nil, &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	// noManifest: the registry holds no manifest for ref of alice's repo.
	noManifest := func(repo, ref string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", n.URL+"/v2/"+repo+"/manifests/"+ref, nil)
		req.SetBasicAuth("alice", alicePW)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s:%s after a refused push: %d, want 404", repo, ref, resp.StatusCode)
		}
	}

	t.Run("an admin sets a storage quota", func(t *testing.T) {
		out := must(n.AdminToken, "user", "quota", "alice", "--storage", "3M")
		if out != "alice may store: 3.0 MiB (0 B used)\n" {
			t.Fatalf("user quota said %q", out)
		}
	})

	var small dataResult
	t.Run("a push under it is stored and shown in user ls and /me", func(t *testing.T) {
		gantrytest.JSON(t, []byte(must(alice.Token, "-o", "json", "data", "push", tree(1<<20), "alice/small:v1")), &small)
		u := me()
		if u.StorageQuota != 3<<20 || u.Storage == nil || u.Storage.Bytes < 1<<20 || u.Storage.Bytes > 1<<20+64<<10 {
			t.Fatalf("/me storage %+v of quota %d, want a little over 1 MiB of 3 MiB", u.Storage, u.StorageQuota)
		}
		out := must(n.AdminToken, "user", "ls")
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "alice ") {
				line = l
			}
		}
		if !strings.Contains(out, "STORAGE (used/quota)") || !strings.Contains(line, "1.0 MiB/3.0 MiB") {
			t.Fatalf("user ls:\n%s", out)
		}
	})

	t.Run("a data push over it is refused with what was added and the limit", func(t *testing.T) {
		before := me().Storage.Bytes
		_, errOut, code := n.GantryAs(t, alice.Token, "data", "push", tree(4<<20), "alice/big:v1")
		if code == 0 || !strings.Contains(errOut, "storage quota: adding 4 MiB would make alice's storage 5 MiB, over the limit of 3 MiB") ||
			!strings.Contains(errOut, "gantry image rm") {
			t.Fatalf("push over the quota: exit %d\n%s", code, errOut)
		}
		noManifest("alice/big", "v1")
		// The artifact's small config may have fitted; the file did not.
		if after := me().Storage.Bytes; after-before > 64<<10 {
			t.Fatalf("storage %d after the refused push, was %d", after, before)
		}
	})

	// From here on nothing new fits: the quota is what alice holds.
	used := me().Storage.Bytes
	if _, err := n.Client().SetQuotas(ctx, "alice", wire.Resources{}, used); err != nil {
		t.Fatal(err)
	}

	t.Run("a docker push over it is denied and leaves no tag", func(t *testing.T) {
		docker := newDockerCLI(t)
		ref := n.HTTPAddr + "/alice/tool:1.0"
		t.Cleanup(func() { untag(docker, ref) })
		buildToolImage(t, docker, ref)
		docker.login(t, n.HTTPAddr, "alice", alicePW)
		out, err := docker.run("", "push", ref)
		if err == nil || !strings.Contains(out+err.Error(), "storage quota: adding") || !strings.Contains(out+err.Error(), "over the limit of") {
			t.Fatalf("docker push over the quota: %v\n%s", err, out)
		}
		noManifest("alice/tool", "1.0")
	})

	t.Run("a job whose output goes over it fails output_failed naming the quota", func(t *testing.T) {
		job := strings.TrimSpace(must(alice.Token, "run", "-d", "--cpu", "200m", "--output", "/out", "gantry/toolbox", "--", "write", "/out/result.bin", "2000000"))
		if _, _, code := n.GantryAs(t, alice.Token, "job", "wait", job); code == 0 {
			t.Fatal("the job over the storage quota succeeded")
		}
		var task wire.TaskDetail
		if err := alice.Do(ctx, "GET", "/api/v1/jobs/"+job+"/tasks/0", nil, &task); err != nil {
			t.Fatal(err)
		}
		if task.Reason != "output_failed" || len(task.AttemptList) == 0 || !strings.Contains(task.AttemptList[len(task.AttemptList)-1].Message, "storage quota: adding") || task.Output != nil {
			t.Fatalf("task over the storage quota: reason %q, attempts %+v, output %+v", task.Reason, task.AttemptList, task.Output)
		}
		if after := me().Storage.Bytes; after != used {
			t.Fatalf("storage %d after the refused output, was %d", after, used)
		}
	})

	t.Run("deleting data by digest gives its space back and a push fits again", func(t *testing.T) {
		must(alice.Token, "image", "rm", "alice/small@"+small.Digest)
		// Freed at once when its blobs are older than the GC grace; an
		// admin's gc frees them otherwise.
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			if me().Storage.Bytes < used-1<<20+64<<10 {
				return true
			}
			_, err := n.Client().RegistryGC(ctx, false)
			return err == nil && me().Storage.Bytes < used-1<<20+64<<10
		}, "alice's storage to drop by the deleted data")
		must(alice.Token, "data", "push", tree(512<<10), "alice/again:v1")
	})

	t.Run("with the quota removed the same push is stored", func(t *testing.T) {
		if out := must(n.AdminToken, "user", "quota", "alice"); out != "alice has no quota\n" {
			t.Fatalf("user quota said %q", out)
		}
		before := me().Storage.Bytes
		must(alice.Token, "data", "push", tree(4<<20), "alice/big:v1")
		if after := me().Storage.Bytes; after-before < 4<<20-64 {
			t.Fatalf("storage %d after a 4 MiB push, was %d", after, before)
		}
	})
}
