package e2e

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"gantry/gantrytest"
)

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestImportOfA2GiBArchiveStaysSmallInMemory: an ordinary user's import
// of a 2 GiB docker save archive (512 files of 4 MiB, manifest.json last,
// as docker save may write it) is streamed to disk: the server's peak
// memory stays under 200 MB, and the image it names is stored.
func TestImportOfA2GiBArchiveStaysSmallInMemory(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	// The peak of start-up (its height depends on when the collector ran,
	// 146–212 MB on a loaded machine) is not the import's: reset it
	// (proc(5), clear_refs "5") and measure the import alone.
	started := peakRSS(t, n.PID())
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", n.PID()), []byte("5"), 0); err != nil {
		t.Fatalf("reset the server's peak RSS: %v", err)
	}
	before := peakRSS(t, n.PID())
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		zeros := make([]byte, 4<<20) // an all-zero file is an empty tar layer
		for i := range 512 {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("blobs/%03d", i), Mode: 0o644, Size: int64(len(zeros)), Typeflag: tar.TypeReg}); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := tw.Write(zeros); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		add := func(name string, b []byte) {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
			tw.Write(b)
		}
		add("config.json", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		add("manifest.json", []byte(`[{"Config":"config.json","RepoTags":["big:1"],"Layers":["blobs/000"]}]`))
		pw.CloseWithError(tw.Close())
	}()
	refs, err := alice.ImportImages(context.Background(), pr)
	if err != nil || len(refs) != 1 || refs[0] != "alice/big:1" {
		t.Fatalf("import: %v %v", refs, err)
	}
	peak := peakRSS(t, n.PID())
	t.Logf("server peak RSS: %d MB at start-up, %d MB when the import began, %d MB importing 2 GiB", started>>20, before>>20, peak>>20)
	if peak > 200<<20 {
		t.Fatalf("the server's peak RSS reached %d MB importing 2 GiB, want under 200 MB", peak>>20)
	}
	var m map[string]any
	if _, ok := registryGet(t, n, "/v2/alice/big/manifests/1", "alice", "alice-password-1", &m); !ok {
		t.Fatal("alice cannot read the imported image's manifest")
	}
}
