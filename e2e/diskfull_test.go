package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestDiskFull runs a node on a small file system (a 400 MiB tmpfs, 160
// MiB kept in reserve): an upload that would not leave the reserve free is
// refused before a byte is written, one that streams past it is cut off
// and discarded with nothing partial left, and once the disk is down to
// its reserve every write is refused with a clear 507 while reads go on;
// when space returns the node takes writes again on its own, with its
// state intact and the process never restarted.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", mnt).CombinedOutput()
	gantrytest.Require(t, err == nil, "cannot mount a tmpfs (needed to fill a disk): "+strings.TrimSpace(string(out)))
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() }) // after the node's own cleanup
	if err := os.Mkdir(filepath.Join(mnt, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	n := gantrytest.Start(t, gantrytest.Options{DataDir: filepath.Join(mnt, "data"), Env: []string{"GANTRY_DISK_RESERVE=160MiB"}})
	pid := n.PID()
	c := n.Client()
	before := submit(t, c, wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, Memory: 32 << 20})

	uploads := filepath.Join(mnt, "data", "registry", "uploads")
	leftovers := func() int {
		var total int64
		_ = filepath.Walk(uploads, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				total += fi.Size()
			}
			return nil
		})
		return int(total >> 20)
	}
	startUpload := func() string {
		resp, err := registryRequest(t, "POST", n.URL+"/v2/admin/big/blobs/uploads/", "admin", n.AdminPassword, nil, nil)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start upload: %v %v", err, resp)
		}
		resp.Body.Close()
		return n.URL + resp.Header.Get("Location")
	}
	wantFull := func(resp *http.Response, err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(b), "disk space") {
			t.Fatalf("%s: %s %s, want 507 saying the disk is full", what, resp.Status, b)
		}
	}

	// A monolithic upload too big for the space left: refused at once.
	loc := startUpload()
	req, _ := http.NewRequest("PUT", loc+"?digest=sha256:"+strings.Repeat("0", 64), io.LimitReader(rand.Reader, 250<<20))
	req.ContentLength = 250 << 20
	req.SetBasicAuth("admin", n.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	wantFull(resp, err, "a 250 MiB upload with 370 MiB free and 160 in reserve")

	// A streamed upload of unknown length: cut off at the reserve, and
	// nothing of it left behind.
	loc = startUpload()
	req, _ = http.NewRequest("PATCH", loc, io.LimitReader(rand.Reader, 300<<20))
	req.SetBasicAuth("admin", n.AdminPassword)
	resp, err = http.DefaultClient.Do(req)
	wantFull(resp, err, "a streamed 300 MiB upload")
	if mb := leftovers(); mb != 0 {
		t.Fatalf("%d MiB of the discarded upload left in %s", mb, uploads)
	}
	resp, err = registryRequest(t, "GET", loc, "admin", n.AdminPassword, nil, nil)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the discarded upload still answers: %v %v", err, resp)
	}
	resp.Body.Close()

	// Fill the disk to below the reserve: writes refused, reads served.
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(mnt, "filler")
	if out, err := exec.Command("fallocate", "-l", strconv.FormatInt(free-100<<20, 10), filler).CombinedOutput(); err != nil {
		t.Fatalf("fallocate: %v %s", err, out)
	}
	var refusal string
	acked := 1
	gantrytest.Eventually(t, 10*time.Second, func() bool {
		_, err := c.Submit(t.Context(), wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, Memory: 32 << 20})
		if err == nil {
			acked++ // taken before the guard's next look
			return false
		}
		refusal = err.Error()
		return strings.Contains(refusal, "disk space")
	}, "a write on the full node to be refused")
	t.Logf("refused: %s", refusal)
	if j, err := c.Job(t.Context(), before.ID); err != nil || j.ID != before.ID {
		t.Fatalf("a read on the full node: %v", err)
	}
	resp, err = http.Get(n.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz on the full node: %v %v", err, resp)
	}
	resp.Body.Close()

	// Space returns: writes again, a push and its pull included.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	gantrytest.Eventually(t, 10*time.Second, func() bool {
		_, err := c.Submit(t.Context(), wire.JobSpec{Image: "gantry/toolbox", Command: []string{"true"}, Memory: 32 << 20})
		if err == nil {
			acked++
		}
		return err == nil
	}, "the node to take writes once space returned")
	blob := make([]byte, 20<<20)
	_, _ = rand.Read(blob)
	sum := sha256.Sum256(blob)
	d := "sha256:" + hex.EncodeToString(sum[:])
	loc = startUpload()
	resp, err = registryRequest(t, "PUT", loc+"?digest="+d, "admin", n.AdminPassword, strings.NewReader(string(blob)), map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("push after space returned: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = registryRequest(t, "GET", n.URL+"/v2/admin/big/blobs/"+d, "admin", n.AdminPassword, nil, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pull: %v %v", err, resp)
	}
	got := sha256.New()
	_, _ = io.Copy(got, resp.Body)
	resp.Body.Close()
	if "sha256:"+hex.EncodeToString(got.Sum(nil)) != d {
		t.Fatal("the blob pulled back differs")
	}
	if n.PID() != pid || !n.Running() {
		t.Fatal("the node restarted while its disk was full")
	}
	var list wire.JobList
	if err := c.Do(t.Context(), "GET", "/api/v1/jobs", nil, &list); err != nil || len(list.Jobs) != acked {
		t.Fatalf("jobs after the disk filled and emptied: %d, %v (want the %d acknowledged)", len(list.Jobs), err, acked)
	}
}
