package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// pushedImage is an image pushed over the raw OCI API: its manifest bytes
// and every blob's bytes by digest.
type pushedImage struct {
	manifest []byte
	blobs    map[string][]byte
}

func sha(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

// blobFile is where node n keeps blob d.
func blobFile(n *gantrytest.Node, d string) string {
	return filepath.Join(n.DataDir, "registry", "blobs", "sha256", d[7:9], d[7:])
}

func hasBlobFile(n *gantrytest.Node, d string) bool {
	_, err := os.Stat(blobFile(n, d))
	return err == nil
}

// regGet GETs a registry path from a node and returns the body.
func regGet(t *testing.T, n *gantrytest.Node, path, user, pw string, hdr map[string]string) ([]byte, int) {
	t.Helper()
	resp, err := registryRequest(t, "GET", n.URL+path, user, pw, nil, hdr)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, n.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, n.Name, err)
	}
	return b, resp.StatusCode
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// pushToolImage pushes repo:tag to node n: the toolbox layer (mounted from
// gantry/toolbox) plus a new layer holding /msg.txt (msg) and pad random
// bytes, with the toolbox config extended by the new layer.
func pushToolImage(t *testing.T, n *gantrytest.Node, user, pw, repo, tag, msg string, pad int) *pushedImage {
	t.Helper()
	tbMan, code := regGet(t, n, "/v2/gantry/toolbox/manifests/latest", user, pw, map[string]string{"Accept": ociManifest})
	if code != http.StatusOK {
		t.Fatalf("toolbox manifest: %d %s", code, tbMan)
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
	}
	gantrytest.JSON(t, tbMan, &m)
	cfgBytes, code := regGet(t, n, "/v2/gantry/toolbox/blobs/"+m.Config.Digest, user, pw, nil)
	if code != http.StatusOK {
		t.Fatalf("toolbox config: %d", code)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	padding := make([]byte, pad)
	rand.Read(padding)
	for _, f := range []struct {
		name string
		data []byte
	}{{"msg.txt", []byte(msg)}, {"pad.bin", padding}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.data)
	}
	tw.Close()
	layer := buf.Bytes()
	ld := sha(layer)

	var cfg map[string]any
	gantrytest.JSON(t, cfgBytes, &cfg)
	rootfs := cfg["rootfs"].(map[string]any)
	rootfs["diff_ids"] = append(rootfs["diff_ids"].([]any), ld)
	newCfg, _ := json.Marshal(cfg)
	cd := sha(newCfg)

	base := n.URL + "/v2/" + repo
	for _, l := range m.Layers {
		resp, err := registryRequest(t, "POST", base+"/blobs/uploads/?mount="+l.Digest+"&from=gantry/toolbox", user, pw, nil, nil)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("mount toolbox layer: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	for _, b := range [][]byte{layer, newCfg} {
		resp, err := registryRequest(t, "POST", base+"/blobs/uploads/?digest="+sha(b), user, pw, bytes.NewReader(b), map[string]string{"Content-Type": "application/octet-stream"})
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	layers := []map[string]any{}
	for _, l := range m.Layers {
		layers = append(layers, map[string]any{"mediaType": l.MediaType, "digest": l.Digest, "size": l.Size})
	}
	layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)})
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ociManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(newCfg)},
		"layers": layers,
	})
	resp, err := registryRequest(t, "PUT", base+"/manifests/"+tag, user, pw, bytes.NewReader(man), map[string]string{"Content-Type": ociManifest})
	if err != nil || resp.StatusCode != http.StatusCreated {
		var b []byte
		if resp != nil {
			b, _ = io.ReadAll(resp.Body)
		}
		t.Fatalf("put manifest: %v %v %s", resp, err, b)
	}
	resp.Body.Close()
	img := &pushedImage{manifest: man, blobs: map[string][]byte{ld: layer, cd: newCfg}}
	for _, l := range m.Layers {
		b, code := regGet(t, n, "/v2/gantry/toolbox/blobs/"+l.Digest, user, pw, nil)
		if code != http.StatusOK {
			t.Fatalf("toolbox layer: %d", code)
		}
		img.blobs[l.Digest] = b
	}
	return img
}

// pullAndCompare pulls repo:tag from node n over the raw OCI API and checks
// the manifest and every blob are byte-identical to what was pushed.
func pullAndCompare(t *testing.T, n *gantrytest.Node, user, pw, repo, tag string, img *pushedImage) {
	t.Helper()
	man, code := regGet(t, n, "/v2/"+repo+"/manifests/"+tag, user, pw, map[string]string{"Accept": ociManifest})
	if code != http.StatusOK || !bytes.Equal(man, img.manifest) {
		t.Fatalf("manifest from %s: status %d, identical %v", n.Name, code, bytes.Equal(man, img.manifest))
	}
	for d, want := range img.blobs {
		got, code := regGet(t, n, "/v2/"+repo+"/blobs/"+d, user, pw, nil)
		if code != http.StatusOK || !bytes.Equal(got, want) {
			t.Fatalf("blob %s from %s: status %d, %d bytes, identical %v", d, n.Name, code, len(got), bytes.Equal(got, want))
		}
	}
}

// TestClusterImages: an image pushed to node 1 is held by two nodes when the
// push is acknowledged, runs as a job placed on node 3 (which fetches it from
// a peer), can be pulled from the cluster after node 1 is killed, and is
// collected on every node once deleted.
func TestClusterImages(t *testing.T) {
	cl := gantrytest.StartCluster(t, 3, gantrytest.Options{Env: []string{"GANTRY_REGISTRY_GC_GRACE=2s"}})
	n1, n2, n3 := cl.Nodes[0], cl.Nodes[1], cl.Nodes[2]
	alice, pw := n1.CreateUser(t, "alice")
	msg := fmt.Sprintf("pushed-to-node1-%d\n", time.Now().UnixNano())
	img := pushToolImage(t, n1, "alice", pw, "alice/peer", "v1", msg, 8<<20)
	var layer string
	for d, b := range img.blobs {
		if bytes.Contains(b, []byte(msg)) {
			layer = d
		}
	}

	t.Run("an acknowledged push is on two nodes", func(t *testing.T) {
		for d := range img.blobs {
			holders := 0
			for _, n := range cl.Nodes {
				if hasBlobFile(n, d) {
					holders++
				}
			}
			if holders < 2 {
				t.Fatalf("blob %s is on %d nodes after the push, want at least 2", d, holders)
			}
		}
		t.Logf("new layer on node1=%v node2=%v node3=%v", hasBlobFile(n1, layer), hasBlobFile(n2, layer), hasBlobFile(n3, layer))
	})

	t.Run("an image imported on node 1 is on two nodes when the import returns", func(t *testing.T) {
		archive, blobs := dockerSaveArchive(t, "imported:v1", []byte(fmt.Sprintf("imported-on-node1-%d\n", time.Now().UnixNano())))
		refs, err := alice.ImportImages(t.Context(), bytes.NewReader(archive))
		if err != nil || len(refs) != 1 || refs[0] != "alice/imported:v1" {
			t.Fatalf("import on node1: %v %v", refs, err)
		}
		for _, d := range blobs {
			holders := 0
			for _, n := range cl.Nodes {
				if hasBlobFile(n, d) {
					holders++
				}
			}
			if holders < 2 {
				t.Fatalf("blob %s of the imported image is on %d nodes, want at least 2", d, holders)
			}
		}
	})

	t.Run("a job placed on node 3 runs the image pushed to node 1", func(t *testing.T) {
		for _, name := range []string{"node1", "node2"} {
			if _, errOut, code := n1.Gantry(t, "node", "drain", name); code != 0 {
				t.Fatalf("drain %s: %s", name, errOut)
			}
		}
		hadIt := hasBlobFile(n3, layer)
		j := submit(t, alice, wire.JobSpec{Image: "alice/peer:v1", Command: []string{"cat", "/msg.txt"}, CPU: 100, Memory: 32 << 20})
		j = waitJob(t, alice, j.ID, 90*time.Second)
		tasks, _ := alice.Tasks(t.Context(), j.ID)
		if j.State != wire.StateSucceeded {
			td, _ := alice.Task(t.Context(), j.ID, 0)
			t.Fatalf("job ended %s: %+v", j.State, td)
		}
		if len(tasks) != 1 || tasks[0].Node != "node3" {
			t.Fatalf("task ran on %+v, want node3", tasks)
		}
		if got := logOf(t, alice, j.ID, 0); got != msg {
			t.Fatalf("job output %q, want %q", got, msg)
		}
		if !hasBlobFile(n3, layer) {
			t.Fatal("node3 ran the image but holds no copy of its layer")
		}
		t.Logf("node3 held the layer before the job: %v", hadIt)
	})

	t.Run("after node 1 is killed the image is pulled from nodes 2 and 3", func(t *testing.T) {
		n1.Kill9(t)
		pullAndCompare(t, n2, "alice", pw, "alice/peer", "v1", img)
		pullAndCompare(t, n3, "alice", pw, "alice/peer", "v1", img)
	})

	t.Run("gc removes the deleted image's blobs on every running node", func(t *testing.T) {
		if _, errOut, code := n2.Gantry(t, "image", "rm", "alice/peer@"+sha(img.manifest)); code != 0 {
			t.Fatalf("image rm: %s", errOut)
		}
		gantrytest.Eventually(t, 60*time.Second, func() bool {
			_, _, code := n2.Gantry(t, "image", "gc")
			return code == 0 && !hasBlobFile(n2, layer) && !hasBlobFile(n3, layer)
		}, "the layer removed from node2 and node3 by gc")
	})
}

// dockerSaveArchive builds a `docker save` archive (manifest.json, config,
// one layer tar holding /msg.txt) of one image tagged ref, and returns it
// with the digests of its config and layer.
func dockerSaveArchive(t *testing.T, ref string, msg []byte) ([]byte, []string) {
	t.Helper()
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	if err := lw.WriteHeader(&tar.Header{Name: "msg.txt", Mode: 0o644, Size: int64(len(msg)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	lw.Write(msg)
	lw.Close()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/msg.txt"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{sha(layer.Bytes())}},
	})
	man, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{ref}, "Layers": []string{"layer.tar"}}})
	var out bytes.Buffer
	w := tar.NewWriter(&out)
	for _, f := range []struct {
		name string
		b    []byte
	}{{"layer.tar", layer.Bytes()}, {"config.json", cfg}, {"manifest.json", man}} {
		if err := w.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		w.Write(f.b)
	}
	w.Close()
	return out.Bytes(), []string{sha(cfg), sha(layer.Bytes())}
}
