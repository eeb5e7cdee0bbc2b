//go:build bench

package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gantry/gantrytest"
)

// The output tree of the benchmark: 7 files of 128 MiB and 4,096 of
// 32 KiB, 1 GiB in all, every file with bytes of its own.
var outputShape = []int64{7, 128 << 20, 4096, 32 << 10}

// TestBenchOutputCollection: a task writes 1 GiB (7 large files, 4,096
// small ones) into its --output directory; the node packs and stores it in
// its registry when the task ends (gantry_output_collect_seconds). The
// baseline is `tar -c | sha256sum` of a tree of the same shape on the same
// disk, both read from the page cache as the freshly written output is:
// the least any tool must do to make one checksummed archive of it.
// Ratio = baseline / collection (goal >= 0.8). Three rounds, alternating.
func TestBenchOutputCollection(t *testing.T) {
	gantrytest.RequireDocker(t)
	n := gantrytest.Start(t)
	bin := gantrytest.Binary(t)
	host := filepath.Join(t.TempDir(), "tree")
	writeShape(t, host, outputShape, 0)
	args := []string{"run", "--output", "/out", "--output-limit", "2G", "--memory", "512M", "gantry/toolbox", "--", "files", "/out"}
	for _, v := range outputShape {
		args = append(args, strconv.FormatInt(v, 10))
	}
	var collect, base []time.Duration
	for round := range 3 {
		before := n.Metric(t, "gantry_output_collect_seconds_sum")
		if out, code := gantryCmd(n, bin, args...); code != 0 {
			t.Fatalf("round %d: gantry run: %s", round, out)
		}
		collect = append(collect, time.Duration((n.Metric(t, "gantry_output_collect_seconds_sum")-before)*float64(time.Second)))
		start := time.Now()
		if out, err := exec.Command("sh", "-c", "tar -cf - -C "+host+" . | sha256sum").CombinedOutput(); err != nil {
			t.Fatalf("tar | sha256sum: %v\n%s", err, out)
		}
		base = append(base, time.Since(start))
	}
	c, b := median(collect), median(base)
	report(t, "output collection: 1 GiB (7 x 128 MiB + 4,096 x 32 KiB) packed and stored median %s vs tar -c | sha256sum of the same shape %s: ratio %.2f (goal >= 0.8; rounds %v vs %v)",
		c.Round(time.Millisecond), b.Round(time.Millisecond), b.Seconds()/c.Seconds(), collect, base)
}

// writeShape writes a tree as the toolbox's `files` command does (seed 0
// gives its very bytes; another seed other bytes of the same shape).
func writeShape(t *testing.T, dir string, shape []int64, seed uint64) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for k := 0; 2*k+1 < len(shape); k++ {
		g := filepath.Join(dir, fmt.Sprintf("g%d", k))
		if err := os.MkdirAll(g, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range shape[2*k] {
			rng := rand.New(rand.NewPCG(uint64(k)+seed<<32, uint64(i)))
			f, err := os.Create(filepath.Join(g, fmt.Sprintf("f%06d", i)))
			if err != nil {
				t.Fatal(err)
			}
			for rest := shape[2*k+1]; rest > 0; {
				m := min(rest, int64(len(buf)))
				for j := 0; j < int(m); j += 8 {
					binary.LittleEndian.PutUint64(buf[j:], rng.Uint64())
				}
				if _, err := f.Write(buf[:m]); err != nil {
					t.Fatal(err)
				}
				rest -= m
			}
			f.Close()
		}
	}
}
