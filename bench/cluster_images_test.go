//go:build bench

package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

const benchManifest = "application/vnd.oci.image.manifest.v1+json"

func regDo(t *testing.T, method, url, user, pw string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pw)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

func regBytes(t *testing.T, url, user, pw string, hdr map[string]string) []byte {
	t.Helper()
	resp := regDo(t, "GET", url, user, pw, nil, hdr)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return b
}

// bigLayer streams a reproducible uncompressed layer tar holding one file
// of size random bytes.
func bigLayer(size int64, seed byte) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		if err := tw.WriteHeader(&tar.Header{Name: "big.bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := io.Copy(tw, io.LimitReader(rand.NewChaCha8([32]byte{seed}), size)); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

// pushBigImage pushes repo:tag to n: the toolbox layer (mounted) plus a
// layer of size random bytes. It returns the big layer's digest and the
// config digest (Docker's image ID).
func pushBigImage(t *testing.T, n *gantrytest.Node, user, pw, repo, tag string, size int64, seed byte) (layer, config string, took time.Duration) {
	t.Helper()
	var m struct {
		Config struct{ Digest string } `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(regBytes(t, n.URL+"/v2/gantry/toolbox/manifests/latest", user, pw, map[string]string{"Accept": benchManifest}), &m); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(regBytes(t, n.URL+"/v2/gantry/toolbox/blobs/"+m.Config.Digest, user, pw, nil), &cfg); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	lsize, err := io.Copy(h, bigLayer(size, seed))
	if err != nil {
		t.Fatal(err)
	}
	layer = "sha256:" + hex.EncodeToString(h.Sum(nil))
	rootfs := cfg["rootfs"].(map[string]any)
	rootfs["diff_ids"] = append(rootfs["diff_ids"].([]any), layer)
	cb, _ := json.Marshal(cfg)
	config = fmt.Sprintf("sha256:%x", sha256.Sum256(cb))

	base := n.URL + "/v2/" + repo
	start := time.Now()
	for _, l := range m.Layers {
		resp := regDo(t, "POST", base+"/blobs/uploads/?mount="+l.Digest+"&from=gantry/toolbox", user, pw, nil, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("mount: %s", resp.Status)
		}
	}
	for _, b := range []struct {
		d  string
		rd io.Reader
	}{{layer, bigLayer(size, seed)}, {config, bytes.NewReader(cb)}} {
		resp := regDo(t, "POST", base+"/blobs/uploads/?digest="+b.d, user, pw, b.rd, map[string]string{"Content-Type": "application/octet-stream"})
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob: %s", resp.Status)
		}
	}
	layers := []map[string]any{}
	for _, l := range m.Layers {
		layers = append(layers, map[string]any{"mediaType": l.MediaType, "digest": l.Digest, "size": l.Size})
	}
	layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": lsize})
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": benchManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": len(cb)}, "layers": layers})
	resp := regDo(t, "PUT", base+"/manifests/"+tag, user, pw, bytes.NewReader(man), map[string]string{"Content-Type": benchManifest})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest: %s %s", resp.Status, b)
	}
	return layer, config, time.Since(start)
}

func blobPath(n *gantrytest.Node, d string) string {
	return filepath.Join(n.DataDir, "registry", "blobs", "sha256", d[7:9], d[7:])
}

// timedGet GETs url and discards the body, returning the time and size.
func timedGet(t *testing.T, url, user, pw string) (time.Duration, int64) {
	t.Helper()
	start := time.Now()
	resp := regDo(t, "GET", url, user, pw, nil, nil)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return time.Since(start), n
}

var fetchLine = regexp.MustCompile(`blob fetched from a peer".*digest=(\S+) from=(\S+) bytes=(\d+) took=(\S+)`)

// fetchTook is the last peer-fetch time node n logged for digest d.
func fetchTook(n *gantrytest.Node, d string) time.Duration {
	b, _ := os.ReadFile(n.LogPath)
	var took time.Duration
	for _, m := range fetchLine.FindAllSubmatch(b, -1) {
		if string(m[1]) == d {
			took, _ = time.ParseDuration(string(m[4]))
		}
	}
	return took
}

// TestBenchClusterImageCache: the cost of the cluster's image cache. A job
// from a 500 MiB image starts first on a node whose registry holds the
// image, then (the image removed from Docker) on a node that must fetch it
// from a peer; and a registry GET of the layer on a node lacking it (peer
// fetch, verify, fsync, then serve) against one on a node holding it.
func TestBenchClusterImageCache(t *testing.T) {
	size := int64(500 << 20)
	cl := gantrytest.StartCluster(t, 3)
	n1, n2, n3 := cl.Nodes[0], cl.Nodes[1], cl.Nodes[2]
	alice, pw := n1.CreateUser(t, "alice")
	layer, config, pushTook := pushBigImage(t, n1, "alice", pw, "alice/big", "cold", size, 1)
	layerW, configW, _ := pushBigImage(t, n1, "alice", pw, "alice/big", "warm", size, 2)
	for _, d := range []string{layer, layerW} {
		holders := map[string]bool{}
		for _, n := range cl.Nodes {
			_, err := os.Stat(blobPath(n, d))
			holders[n.Name] = err == nil
		}
		if !holders["node2"] || holders["node3"] {
			t.Fatalf("want the replica on node2 and none on node3: %v", holders)
		}
	}
	one := gantrytest.Start(t, gantrytest.Options{Name: "single"})
	_, opw := one.CreateUser(t, "alice")
	_, _, oneTook := pushBigImage(t, one, "alice", opw, "alice/big", "one", size, 3)
	one.Stop()
	report(t, "image cache: push of a 500 MiB layer: single node %s (%.0f MiB/s); node1 of 3, acknowledged with 2 copies %s (%.0f MiB/s); ratio %.2f",
		oneTook.Round(time.Millisecond), float64(size)/(1<<20)/oneTook.Seconds(),
		pushTook.Round(time.Millisecond), float64(size)/(1<<20)/pushTook.Seconds(), pushTook.Seconds()/oneTook.Seconds())

	// Two images with different layers, so each job's pull is Docker's
	// first of that layer.
	rmi := func() {
		for _, c := range []string{config, configW} {
			_ = exec.Command("docker", "image", "rm", "-f", c).Run()
		}
	}
	rmi()
	runOn := func(node, tag string) time.Duration {
		t.Helper()
		for _, n := range cl.Nodes {
			state := "drain"
			if n.Name == node {
				state = "ready"
			}
			if _, err := n1.Client().SetNodeState(context.Background(), n.Name, state); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		j, err := alice.Submit(context.Background(), wire.JobSpec{Image: "alice/big:" + tag, Command: []string{"true"}, CPU: 100, Memory: 32 << 20})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for {
			j, err = alice.Wait(ctx, j.ID, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if wire.Terminal(j.State) {
				break
			}
		}
		took := time.Since(start)
		tasks, _ := alice.Tasks(context.Background(), j.ID)
		if j.State != wire.StateSucceeded || len(tasks) != 1 || tasks[0].Node != node {
			t.Fatalf("job on %s: %s %+v", node, j.State, tasks)
		}
		return took
	}
	warm := runOn("node2", "warm")
	cold := runOn("node3", "cold")
	rmi()
	report(t, "image cache: first start of a job from a 500 MiB image: on a node holding it %s, on a node fetching it from a peer %s (ratio %.2f)",
		warm.Round(time.Millisecond), cold.Round(time.Millisecond), cold.Seconds()/warm.Seconds())
	if took := fetchTook(n3, layer); took > 0 {
		report(t, "image cache: node3's peer fetch of the 500 MiB layer (stream, hash, fsync, rename): %s, %.0f MiB/s",
			took.Round(time.Millisecond), float64(size)/(1<<20)/took.Seconds())
	}

	// Registry GET of the layer: local on node2 (page-cached: read once
	// first) against node3 after its copy is deleted (peer fetch + serve).
	url := func(n *gantrytest.Node) string { return n.URL + "/v2/alice/big/blobs/" + layer }
	timedGet(t, url(n2), "alice", pw)
	var local, peer []time.Duration
	for i := 0; i < 3; i++ {
		d, _ := timedGet(t, url(n2), "alice", pw)
		local = append(local, d)
		if err := os.Remove(blobPath(n3, layer)); err != nil {
			t.Fatal(err)
		}
		d, _ = timedGet(t, url(n3), "alice", pw)
		peer = append(peer, d)
	}
	lm, pm := median(local), median(peer)
	mib := float64(size) / (1 << 20)
	report(t, "image cache: registry GET of a 500 MiB layer: local %.0f MiB/s (%s), on a node lacking it (peer fetch, verify, fsync, serve) %.0f MiB/s (%s); local/peer ratio %.2f (median of 3)",
		mib/lm.Seconds(), lm.Round(time.Millisecond), mib/pm.Seconds(), pm.Round(time.Millisecond), pm.Seconds()/lm.Seconds())
	if took := fetchTook(n3, layer); took > 0 {
		report(t, "image cache: last peer fetch alone: %s, %.0f MiB/s (local read %.2fx faster)", took.Round(time.Millisecond), mib/took.Seconds(), took.Seconds()/lm.Seconds())
	}
}
