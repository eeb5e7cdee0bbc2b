package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/data"
	"gantry/store"
)

func (e *env) setStorageQuota(user string, bytes int64) {
	e.t.Helper()
	if _, err := store.CmdUpdateUser.Propose(context.Background(), e.prop, store.UpdateUser{Name: user, StorageQuota: &bytes}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) storage(user string) store.StorageUsage {
	e.t.Helper()
	u, err := e.st.StorageUsage(user)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// TestPushOverTheStorageQuotaIsDeniedAndLeavesNoManifest: a layer that
// would take its owner over the storage quota is refused DENIED with the
// quota's message, the manifest that needs it is then refused, and the
// same holds for an artifact stored in-process (a task's output).
func TestPushOverTheStorageQuotaIsDeniedAndLeavesNoManifest(t *testing.T) {
	e := newEnv(t)
	e.setStorageQuota("alice", 1<<20)
	e.pushImage("alice", "alice/small", "v1", bytes.Repeat([]byte("s"), 300<<10))
	before := e.storage("alice")
	if before.Blobs != 2 || before.Bytes < 300<<10 {
		t.Fatalf("alice's storage after a push: %+v", before)
	}

	big := bytes.Repeat([]byte("B"), 900<<10)
	d := digest.FromBytes(big)
	r := e.do("alice", "POST", "/v2/alice/big/blobs/uploads/?digest="+d.String(), big)
	t.Run("the layer over the quota is refused DENIED with what was added and the limit", func(t *testing.T) {
		var body struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		json.Unmarshal(r.body, &body)
		if r.code != http.StatusForbidden || len(body.Errors) != 1 || body.Errors[0].Code != codeDenied {
			t.Fatalf("push over the quota: %d %s", r.code, r.body)
		}
		msg := body.Errors[0].Message
		for _, want := range []string{"storage quota: adding 900 KiB would make alice's storage", "over the limit of 1 MiB", "gantry image rm"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("message %q lacks %q", msg, want)
			}
		}
	})
	t.Run("the manifest needing it is refused and nothing is tagged", func(t *testing.T) {
		cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
		m := v1.Manifest{MediaType: v1.MediaTypeImageManifest,
			Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: e.pushBlob("alice", "alice/big", cfg), Size: int64(len(cfg))},
			Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(big))}}}
		m.SchemaVersion = 2
		b, _ := json.Marshal(m)
		r := e.do("alice", "PUT", "/v2/alice/big/manifests/v1", b, "Content-Type", v1.MediaTypeImageManifest)
		if r.code == http.StatusCreated || r.errCode() != codeManifestBlobUnknown {
			t.Fatalf("manifest over the quota: %d %s", r.code, r.body)
		}
		if tags, _, _ := e.st.RegTags("alice/big", "", 0); len(tags) != 0 {
			t.Fatalf("tags after a refused push: %v", tags)
		}
		if got := e.storage("alice"); got != before {
			t.Fatalf("storage %+v after a refused push, want %+v (the config is alice's already)", got, before)
		}
	})
	t.Run("an output stored in-process is refused with the same message", func(t *testing.T) {
		src := t.TempDir()
		writeTree(t, src, map[string]string{"result.bin": string(big)})
		a, err := data.Build(context.Background(), src, data.BuildOptions{ArtifactType: data.ArtifactTypeOutput})
		if err != nil {
			t.Fatal(err)
		}
		_, err = data.Push(context.Background(), a, e.reg.Local("alice/outputs", "alice"), "j1-0000", 2, &data.Progress{})
		if store.ErrorCode(err) != store.EQuotaExceeded || !strings.Contains(err.Error(), "over the limit of 1 MiB") {
			t.Fatalf("output over the quota: %v (code %s)", err, store.ErrorCode(err))
		}
		if _, err := e.st.RegTag("alice/outputs", "j1-0000"); err == nil {
			t.Fatal("the refused output was tagged")
		}
	})
	t.Run("another user is not bound by alice's quota", func(t *testing.T) {
		e.pushImage("bob", "bob/big", "v1", big)
	})
}

// TestGCFreesADeletedDataArtifactAndItsStorage: a dataset's config and
// layers are collected like an image's once its manifest is deleted, and
// the owner's storage goes back to what remains.
func TestGCFreesADeletedDataArtifactAndItsStorage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.pushImage("alice", "alice/app", "v1", []byte("an image layer"))
	kept := e.storage("alice")

	src := t.TempDir()
	writeTree(t, src, map[string]string{"train.csv": strings.Repeat("1,2,3\n", 50000), "small/a": "a", "small/b": "b"})
	a, err := data.Build(ctx, src, data.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := data.Push(ctx, a, e.reg.Local("alice/data", "alice"), "v1", 2, &data.Progress{}); err != nil {
		t.Fatal(err)
	}
	if got := e.storage("alice"); got.Bytes <= kept.Bytes+300000 {
		t.Fatalf("storage with the dataset %+v, without %+v", got, kept)
	}
	if r := e.do("alice", "DELETE", "/v2/alice/data/manifests/"+a.Digest.String(), nil); r.code != http.StatusAccepted {
		t.Fatalf("delete dataset: %d %s", r.code, r.body)
	}
	var blobs []digest.Digest
	ms, err := e.st.RegBlobUses()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ms {
		if u.Repo == "alice/data" {
			blobs = append(blobs, digest.Digest(u.Digest))
		}
	}
	if len(blobs) < 2 {
		t.Fatalf("the dataset linked %d blobs, want its config and layers", len(blobs))
	}
	e.now = e.now.Add(2 * time.Hour)
	rep, err := e.reg.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.UnlinkedBlobs) != len(blobs) {
		t.Fatalf("gc unlinked %v, want the dataset's %d blobs", rep.UnlinkedBlobs, len(blobs))
	}
	for _, d := range blobs {
		if _, err := os.Stat(e.reg.blobs.path(d)); !os.IsNotExist(err) {
			t.Fatalf("dataset blob %s still on disk: %v", d, err)
		}
	}
	if got := e.storage("alice"); got != kept {
		t.Fatalf("storage after gc %+v, want %+v (the image only)", got, kept)
	}
	if r := e.do("alice", "GET", "/v2/alice/app/manifests/v1", nil); r.code != http.StatusOK {
		t.Fatalf("image lost: %d", r.code)
	}
}

// TestDeletingAManifestFreesItsOwnBlobsAtOnce: deleting an image frees the
// owner's storage of the blobs no other manifest of the repository uses,
// without waiting for an admin's gc (which still removes the files); a
// layer another manifest uses stays counted.
func TestDeletingAManifestFreesItsOwnBlobsAtOnce(t *testing.T) {
	e := newEnv(t)
	shared, only := []byte("a layer both images use"), bytes.Repeat([]byte("o"), 4096)
	dA, _ := e.pushImage("alice", "alice/app", "v1", shared, only)
	e.pushImage("alice", "alice/app", "v2", shared)
	before := e.storage("alice")

	t.Run("a young push keeps its blobs until gc: they may be part of a push under way", func(t *testing.T) {
		d, _ := e.pushImage("alice", "alice/young", "v1", []byte("young layer"))
		held := e.storage("alice")
		if r := e.do("alice", "DELETE", "/v2/alice/young/manifests/"+d.String(), nil); r.code != http.StatusAccepted {
			t.Fatalf("delete: %d %s", r.code, r.body)
		}
		if got := e.storage("alice"); got != held {
			t.Fatalf("storage %+v after deleting a young image, want %+v", got, held)
		}
	})
	e.now = e.now.Add(2 * time.Hour)
	young := e.storage("alice")
	if r := e.do("alice", "DELETE", "/v2/alice/app/manifests/"+dA.String(), nil); r.code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if got, want := e.storage("alice"), (store.StorageUsage{Bytes: young.Bytes - int64(len(only)), Blobs: young.Blobs - 1}); got != want {
		t.Fatalf("storage %+v after deleting v1 (was %+v, before the young image %+v), want %+v: only its own layer freed", got, young, before, want)
	}
	if r := e.do("alice", "GET", "/v2/alice/app/manifests/v2", nil); r.code != http.StatusOK {
		t.Fatalf("v2 lost: %d", r.code)
	}
	onlyD := digest.FromBytes(only)
	if _, err := os.Stat(e.reg.blobs.path(onlyD)); err != nil {
		t.Fatalf("the file goes with gc, not before: %v", err)
	}
	if _, err := e.reg.GC(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.reg.blobs.path(onlyD)); !os.IsNotExist(err) {
		t.Fatalf("gc left the freed layer on disk: %v", err)
	}
}
