//go:build bench

package bench

import (
	"io"
	"net/http"
	"testing"
	"time"

	"gantry/gantrytest"
)

// TestBenchFirstPullAfterPush: the pull that usually matters most is the
// first one, by the Docker daemon of the node that starts a job right after
// the image was pushed. Uploads are written with direct I/O, past the page
// cache; the registry then reads each new blob back into memory in the
// background. This compares the first pull of a freshly pushed 256 MiB
// layer with a second pull of the same layer (from memory), over three
// fresh layers: a ratio near 1 means the first pull no longer waits for
// the disk.
func TestBenchFirstPullAfterPush(t *testing.T) {
	n := gantrytest.Start(t)
	_, pw := n.CreateUser(t, "alice")
	pull := func(layer string) time.Duration {
		req, _ := http.NewRequest("GET", n.URL+"/v2/alice/big/blobs/"+layer, nil)
		req.SetBasicAuth("alice", pw)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("pull %s: %s %v", layer, resp.Status, err)
		}
		return time.Since(start)
	}
	var first, second []time.Duration
	for i := 0; i < 3; i++ {
		layer, _, _ := pushBigImage(t, n, "alice", pw, "alice/big", "1", 256<<20, byte(100+i))
		first = append(first, pull(layer))
		second = append(second, pull(layer))
	}
	f, s := pct(first, 0.5), pct(second, 0.5)
	report(t, "registry: first pull of a 256 MiB layer just pushed: median %s (min %s, max %s); a second pull of it: %s; ratio %.2f (goal <= 1.5; 2.7 before blobs were warmed)",
		f.Round(time.Millisecond), pct(first, 0).Round(time.Millisecond), pct(first, 1).Round(time.Millisecond), s.Round(time.Millisecond), f.Seconds()/s.Seconds())
	if f.Seconds() > 1.5*s.Seconds() {
		t.Errorf("the first pull after a push is %.2f times a pull from memory, want <= 1.5", f.Seconds()/s.Seconds())
	}
}
