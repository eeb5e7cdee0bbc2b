package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// dockerCLI runs the real docker CLI with its own config dir, so logins
// never touch ~/.docker.
type dockerCLI struct {
	config string
}

func newDockerCLI(t *testing.T) *dockerCLI {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		gantrytest.Require(t, false, "the docker CLI is not installed")
	}
	return &dockerCLI{config: t.TempDir()}
}

// untag removes the names refs from the local image store, never the
// image by its id: tests build the same tool image (one id) under their own
// names, and run in parallel, so removing by id would take the others' too.
func untag(d *dockerCLI, refs ...string) {
	for _, ref := range refs {
		_, _ = d.run("", "rmi", ref)
	}
}

func (d *dockerCLI) run(stdin string, args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+d.config, "DOCKER_BUILDKIT=0")
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (d *dockerCLI) must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := d.run(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (d *dockerCLI) login(t *testing.T, host, user, password string) {
	t.Helper()
	d.must(t, password, "login", host, "--username", user, "--password-stdin")
}

// buildToolImage builds a FROM-scratch image holding a static Go program
// that prints "tool says: ARGS", tagged ref.
func buildToolImage(t *testing.T, docker *dockerCLI, ref string) {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"fmt"
	"os"
	"strings"
)

func main() { fmt.Println("tool says: " + strings.Join(os.Args[1:], " ")) }
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/tool\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "tool", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the tool: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY tool /tool\nENTRYPOINT [\"/tool\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	docker.must(t, "", "build", "-q", "-t", ref, dir)
}

// TestRegistry pushes, pulls and runs a private image with the real docker
// CLI, checks another user cannot use it, and manages it with `gantry image`.
func TestRegistry(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, alicePW := n.CreateUser(t, "alice")
	bob, bobPW := n.CreateUser(t, "bob")
	host := n.HTTPAddr
	ref := host + "/alice/tool:1.0"

	docker := newDockerCLI(t)
	imported := fmt.Sprintf("gantry-e2e-tool-%d:imported", time.Now().UnixNano())
	t.Cleanup(func() {
		// The pulled digests and the runner's pinned pull go with the
		// node's own clean-up (names under its host:port).
		untag(docker, ref, imported)
	})
	buildToolImage(t, docker, ref)

	t.Run("docker login and push as the owner", func(t *testing.T) {
		docker.login(t, host, "alice", alicePW)
		docker.must(t, "", "push", ref)
	})

	t.Run("docker pull brings the image back after it is removed locally", func(t *testing.T) {
		id := strings.TrimSpace(docker.must(t, "", "image", "inspect", "--format", "{{.Id}}", ref))
		docker.must(t, "", "rmi", ref)
		if _, err := docker.run("", "image", "inspect", ref); err == nil {
			t.Fatal("image still present after docker rmi")
		}
		docker.must(t, "", "pull", ref)
		got := strings.TrimSpace(docker.must(t, "", "image", "inspect", "--format", "{{.Id}}", ref))
		if got != id {
			t.Fatalf("pulled image id %s, pushed %s", got, id)
		}
	})

	t.Run("a job runs from the pushed image", func(t *testing.T) {
		out, errOut, code := n.GantryAs(t, alice.Token, "run", "alice/tool:1.0", "--", "hello", "from", "gantry")
		if code != 0 || out != "tool says: hello from gantry\n" {
			t.Fatalf("gantry run: code %d stdout %q stderr %q", code, out, errOut)
		}
		// The full reference to this node works the same way.
		out, errOut, code = n.GantryAs(t, alice.Token, "run", ref, "--", "again")
		if code != 0 || out != "tool says: again\n" {
			t.Fatalf("gantry run %s: code %d stdout %q stderr %q", ref, code, out, errOut)
		}
	})

	t.Run("another user's docker pull is denied", func(t *testing.T) {
		other := newDockerCLI(t)
		other.login(t, host, "bob", bobPW)
		out, err := other.run("", "pull", ref)
		if err == nil {
			t.Fatalf("bob pulled alice's private image:\n%s", out)
		}
		low := strings.ToLower(out)
		if !strings.Contains(low, "denied") && !strings.Contains(low, "unauthorized") {
			t.Fatalf("bob's pull failed without a denial: %s", out)
		}
	})

	t.Run("another user's job with the image is rejected at submission", func(t *testing.T) {
		_, err := bob.Submit(ctx, wire.JobSpec{Image: "alice/tool:1.0"})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Message != "image: alice/tool:1.0 not found" {
			t.Fatalf("bob's submission: %v; want 400 image: alice/tool:1.0 not found", err)
		}
		// Naming this node's registry with its host changes nothing.
		_, err = bob.Submit(ctx, wire.JobSpec{Image: host + "/alice/tool:1.0"})
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Message != "image: "+host+"/alice/tool:1.0 not found" {
			t.Fatalf("bob's submission with this node's host: %v; want 400 not found", err)
		}
		// The same answer as for a repository that does not exist.
		_, err = bob.Submit(ctx, wire.JobSpec{Image: "alice/nothing:1.0"})
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Message != "image: alice/nothing:1.0 not found" {
			t.Fatalf("bob's submission of a missing repo: %v", err)
		}
	})

	t.Run("image import stores a docker save archive under the caller", func(t *testing.T) {
		docker.must(t, "", "tag", ref, imported)
		tarPath := filepath.Join(t.TempDir(), "tool.tar")
		docker.must(t, "", "save", "-o", tarPath, imported)
		out, errOut, code := n.GantryAs(t, alice.Token, "image", "import", tarPath)
		want := "imported alice/" + strings.TrimSuffix(imported, ":imported") + ":imported\n"
		if code != 0 || out != want {
			t.Fatalf("gantry image import: code %d stdout %q stderr %q; want %q", code, out, errOut, want)
		}
		out, errOut, code = n.GantryAs(t, alice.Token, "run", "alice/"+strings.TrimSuffix(imported, ":imported")+":imported", "--", "imported")
		if code != 0 || out != "tool says: imported\n" {
			t.Fatalf("run the imported image: code %d stdout %q stderr %q", code, out, errOut)
		}
	})

	t.Run("importing something that is not a docker save archive is a 400", func(t *testing.T) {
		_, err := alice.ImportImages(ctx, strings.NewReader("this is not a tar archive, just some text"))
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Message, "import archive") {
			t.Fatalf("import of garbage: %v; want 400 naming the archive problem", err)
		}
	})

	t.Run("image ls shows the owner's repositories, tags and usage, and not to others", func(t *testing.T) {
		out, errOut, code := n.GantryAs(t, alice.Token, "image", "ls", "--output", "json")
		if code != 0 {
			t.Fatalf("image ls: %d %s", code, errOut)
		}
		var list wire.ImageList
		gantrytest.JSON(t, []byte(out), &list)
		found := false
		for _, r := range list.Repositories {
			if r.Name == "alice/tool" {
				found = len(r.Tags) == 1 && r.Tags[0].Tag == "1.0" && strings.HasPrefix(r.Tags[0].Digest, "sha256:") && r.Tags[0].Size > 0 && !r.LastPush.IsZero()
			}
			if strings.HasPrefix(r.Name, "bob/") {
				t.Fatalf("alice sees %s", r.Name)
			}
		}
		if !found || list.Usage <= 0 {
			t.Fatalf("alice's image ls: %s", out)
		}
		table, _, _ := n.GantryAs(t, alice.Token, "image", "ls")
		if !strings.Contains(table, "alice/tool") || !strings.Contains(table, "gantry/toolbox") {
			t.Fatalf("table lacks alice/tool or gantry/toolbox:\n%s", table)
		}
		bl, err := bob.Images(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range bl.Repositories {
			if strings.HasPrefix(r.Name, "alice/") {
				t.Fatalf("bob sees %s", r.Name)
			}
		}
	})

	t.Run("image rm deletes a tag only for its owner", func(t *testing.T) {
		tag := "alice/" + imported
		if _, _, code := n.GantryAs(t, bob.Token, "image", "rm", tag); code == 0 {
			t.Fatal("bob deleted alice's tag")
		}
		if out, errOut, code := n.GantryAs(t, alice.Token, "image", "rm", tag); code != 0 {
			t.Fatalf("alice image rm: %d %s %s", code, out, errOut)
		}
		if _, err := alice.Submit(ctx, wire.JobSpec{Image: tag}); err == nil {
			t.Fatal("a job with the deleted tag was accepted")
		}
		if _, _, code := n.GantryAs(t, alice.Token, "image", "gc", "--dry-run"); code == 0 {
			t.Fatal("a non-admin ran gc")
		}
		list, err := alice.Images(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var dgst string
		for _, r := range list.Repositories {
			for _, tg := range r.Tags {
				if r.Name == "alice/tool" && tg.Tag == "1.0" {
					dgst = tg.Digest
				}
			}
		}
		if out, errOut, code := n.GantryAs(t, alice.Token, "image", "rm", "alice/tool@"+dgst); code != 0 {
			t.Fatalf("alice image rm by digest %q: %d %s %s", dgst, code, out, errOut)
		}
		if _, err := alice.Submit(ctx, wire.JobSpec{Image: "alice/tool:1.0"}); err == nil {
			t.Fatal("a job with the tag of the deleted manifest was accepted")
		}
		if out, errOut, code := n.Gantry(t, "image", "gc", "--dry-run"); code != 0 || !strings.Contains(out, "would remove") {
			t.Fatalf("admin gc --dry-run: %d %q %s", code, out, errOut)
		}
	})
}

// registryRequest sends one request to the registry with basic auth.
func registryRequest(t *testing.T, method, url, user, pw string, body io.Reader, hdr map[string]string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pw)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return http.DefaultClient.Do(req)
}

// TestRegistryCrashDuringPush kills the server in the middle of a large
// blob upload: after the restart no partial blob is visible, the push can be
// repeated, and garbage collection reclaims the abandoned upload.
func TestRegistryCrashDuringPush(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t, gantrytest.Options{Env: []string{"GANTRY_REGISTRY_GC_GRACE=2s", "GANTRY_REGISTRY_UPLOAD_TTL=2s"}})
	_, pw := n.CreateUser(t, "alice")
	const size = 300 << 20
	base := n.URL + "/v2/alice/big"
	uploads := filepath.Join(n.DataDir, "registry", "uploads")

	// The layer is random but reproducible, so the repeated push sends the
	// same bytes without keeping 300 MB anywhere.
	layer := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{42}), size) }
	h := sha256.New()
	if _, err := io.Copy(h, layer()); err != nil {
		t.Fatal(err)
	}
	dgst := "sha256:" + hex.EncodeToString(h.Sum(nil))

	resp, err := registryRequest(t, "POST", base+"/blobs/uploads/", "alice", pw, nil, nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %v %v", resp, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	uploadID := loc[strings.LastIndex(loc, "/")+1:]
	if i := strings.Index(uploadID, "?"); i >= 0 {
		uploadID = uploadID[:i]
	}
	if !strings.HasPrefix(loc, "http") {
		loc = n.URL + loc
	}

	pr, pw2 := io.Pipe()
	patchDone := make(chan error, 1)
	go func() {
		resp, err := registryRequest(t, "PATCH", loc, "alice", pw, pr, map[string]string{"Content-Type": "application/octet-stream"})
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("PATCH finished with %s", resp.Status)
		}
		patchDone <- err
	}()
	// Send half the layer, then keep the request open (no more bytes, no
	// end) while the server is killed.
	go func() { _, _ = io.Copy(pw2, io.LimitReader(layer(), size/2)) }()
	dataFile := filepath.Join(uploads, uploadID+".data")
	gantrytest.Eventually(t, 2*time.Minute, func() bool {
		fi, err := os.Stat(dataFile)
		return err == nil && fi.Size() >= 64<<20
	}, "upload %s never received 64 MiB", uploadID)
	n.Kill9(t)
	pw2.CloseWithError(errors.New("server killed"))
	select {
	case err := <-patchDone:
		t.Logf("interrupted PATCH: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the interrupted PATCH did not end after the server was killed")
	}
	n.Restart(t)

	t.Run("no partial blob is visible after the restart", func(t *testing.T) {
		resp, err := registryRequest(t, "HEAD", base+"/blobs/"+dgst, "alice", pw, nil, nil)
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HEAD of the interrupted blob: %v %v; want 404", resp, err)
		}
		resp.Body.Close()
		if _, err := os.Stat(filepath.Join(n.DataDir, "registry", "blobs", "sha256", dgst[7:9], dgst[7:])); err == nil {
			t.Fatal("a blob file exists for the interrupted upload")
		}
	})

	t.Run("the push can be repeated", func(t *testing.T) {
		resp, err := registryRequest(t, "POST", base+"/blobs/uploads/?digest="+dgst, "alice", pw, layer(), map[string]string{"Content-Type": "application/octet-stream"})
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("monolithic push: %v %v", resp, err)
		}
		resp.Body.Close()
		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cd := fmt.Sprintf("sha256:%x", sha256.Sum256(cfg))
		resp, err = registryRequest(t, "POST", base+"/blobs/uploads/?digest="+cd, "alice", pw, bytes.NewReader(cfg), nil)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("push config: %v %v", resp, err)
		}
		resp.Body.Close()
		man, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
			"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dgst, "size": size}},
		})
		resp, err = registryRequest(t, "PUT", base+"/manifests/1", "alice", pw, bytes.NewReader(man), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("push manifest: %v %v", resp, err)
		}
		resp.Body.Close()
		resp, err = registryRequest(t, "HEAD", base+"/blobs/"+dgst, "alice", pw, nil, nil)
		if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != size {
			t.Fatalf("HEAD after the repeated push: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("garbage collection reclaims the abandoned upload", func(t *testing.T) {
		if _, err := os.Stat(dataFile); err != nil {
			t.Fatalf("the abandoned upload is not on disk before GC: %v", err)
		}
		gc := func(dry bool) gcReport {
			args := []string{"image", "gc", "--output", "json"}
			if dry {
				args = append(args, "--dry-run")
			}
			out, errOut, code := n.Gantry(t, args...)
			if code != 0 {
				t.Fatalf("gantry image gc: %d %s", code, errOut)
			}
			var rep gcReport
			gantrytest.JSON(t, []byte(out), &rep)
			return rep
		}
		var dry gcReport
		gantrytest.Eventually(t, time.Minute, func() bool {
			dry = gc(true)
			return contains(dry.ExpiredUploads, uploadID)
		}, "dry-run GC never reported upload %s", uploadID)
		if _, err := os.Stat(dataFile); err != nil {
			t.Fatalf("a dry run removed the upload: %v", err)
		}
		rep := gc(false)
		if !contains(rep.ExpiredUploads, uploadID) || rep.FreedBytes < 64<<20 {
			t.Fatalf("GC report %+v; want upload %s expired and at least 64 MiB freed", rep, uploadID)
		}
		if _, err := os.Stat(dataFile); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the abandoned upload is still on disk: %v", err)
		}
		resp, err := registryRequest(t, "HEAD", base+"/blobs/"+dgst, "alice", pw, nil, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GC removed the referenced layer: %v %v", resp, err)
		}
		resp.Body.Close()
	})
}

type gcReport struct {
	DryRun         bool     `json:"dry_run"`
	DeletedBlobs   []string `json:"deleted_blobs"`
	FreedBytes     int64    `json:"freed_bytes"`
	ExpiredUploads []string `json:"expired_uploads"`
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
