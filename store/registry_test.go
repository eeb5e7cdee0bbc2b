package store

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// regApplier applies commands to a real store with increasing indexes.
type regApplier struct {
	t  *testing.T
	st *Store
	n  uint64
}

func (a *regApplier) apply(c commandType, payload any) (any, error) {
	a.t.Helper()
	return a.applyAt(c, time.Date(2026, 1, 1, 0, 0, int(a.n), 0, time.UTC), payload)
}

// applyAt applies a command stamped at.
func (a *regApplier) applyAt(c commandType, at time.Time, payload any) (any, error) {
	a.t.Helper()
	b, err := EncodeCommand(c.Type(), at, payload)
	if err != nil {
		a.t.Fatal(err)
	}
	a.n++
	res := a.st.Apply(&raft.Log{Index: a.n, Type: raft.LogCommand, Data: b})
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}

func newRegApplier(t *testing.T) *regApplier {
	st, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &regApplier{t: t, st: st}
}

const (
	dA = "sha256:aaaa"
	dB = "sha256:bbbb"
	dM = "sha256:1111"
)

func TestRegPutManifestNeedsLinkedBlobsAndWritesNothingOnFailure(t *testing.T) {
	a := newRegApplier(t)
	if _, err := a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: "alice/app", Owner: "alice", Digest: dA, Size: 10}); err != nil {
		t.Fatal(err)
	}
	put := RegPutManifest{Owner: "alice", Tags: []string{"v1"}, Manifest: RegManifest{Repo: "alice/app", Digest: dM,
		MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte("{}"), Blobs: []string{dA, dB}, Subject: dA}}
	_, err := a.apply(CmdRegPutManifest, put)
	if ErrorCode(err) != ENotFound {
		t.Fatalf("missing blob: %v", err)
	}
	if _, err := a.st.RegTag("alice/app", "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tag written by a failed command: %v", err)
	}
	if refs, _ := a.st.RegReferrers("alice/app", dA); len(refs) != 0 {
		t.Fatalf("referrer written by a failed command: %v", refs)
	}
	if _, err := a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: "alice/app", Owner: "alice", Digest: dB, Size: 5}); err != nil {
		t.Fatal(err)
	}
	res, err := a.apply(CmdRegPutManifest, put)
	if err != nil {
		t.Fatal(err)
	}
	if m := res.(*RegManifest); m.BlobsSize != 15 || m.Size != 2 {
		t.Fatalf("sizes %+v", m)
	}
	m, err := a.st.RegManifest("alice/app", dM)
	if err != nil || string(m.Content) != "{}" {
		t.Fatalf("manifest %v %v", m, err)
	}
	if refs, _ := a.st.RegReferrers("alice/app", dA); len(refs) != 1 || refs[0].Digest != dM {
		t.Fatalf("referrers %v", refs)
	}
	if repos, _ := a.st.RegBlobRepos(dA); len(repos) != 1 || repos[0] != "alice/app" {
		t.Fatalf("blob repos %v", repos)
	}
}

func TestRegDeleteManifestRemovesTagsAndReferrer(t *testing.T) {
	a := newRegApplier(t)
	a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: "alice/app", Owner: "alice", Digest: dA, Size: 1})
	put := RegPutManifest{Owner: "alice", Tags: []string{"v1", "latest"}, Manifest: RegManifest{Repo: "alice/app", Digest: dM, Content: []byte("{}"), Blobs: []string{dA}, Subject: dB}}
	if _, err := a.apply(CmdRegPutManifest, put); err != nil {
		t.Fatal(err)
	}
	if _, err := a.apply(CmdRegDeleteManifest, RegDeleteManifest{Repo: "alice/app", Digest: dM}); err != nil {
		t.Fatal(err)
	}
	tags, _, _ := a.st.RegTags("alice/app", "", 0)
	refs, _ := a.st.RegReferrers("alice/app", dB)
	if len(tags) != 0 || len(refs) != 0 {
		t.Fatalf("left behind: tags %v referrers %v", tags, refs)
	}
}

func TestRegUnlinkIfUnreferencedKeepsReferencedAndYoungLinks(t *testing.T) {
	a := newRegApplier(t)
	a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: "alice/app", Owner: "alice", Digest: dA, Size: 1})
	a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: "alice/app", Owner: "alice", Digest: dB, Size: 1})
	a.apply(CmdRegPutManifest, RegPutManifest{Owner: "alice", Manifest: RegManifest{Repo: "alice/app", Digest: dM, Content: []byte("{}"), Blobs: []string{dA}}})
	links := []RegLink{{Repo: "alice/app", Digest: dA}, {Repo: "alice/app", Digest: dB}}
	res, err := a.apply(CmdRegUnlinkBlobs, RegUnlinkBlobs{Links: links, IfUnreferenced: true, NotAfter: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil || res.(int) != 0 {
		t.Fatalf("young links removed: %v %v", res, err)
	}
	res, err = a.apply(CmdRegUnlinkBlobs, RegUnlinkBlobs{Links: links, IfUnreferenced: true, NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil || res.(int) != 1 {
		t.Fatalf("unlink: %v %v", res, err)
	}
	if _, err := a.st.RegBlobLink("alice/app", dA); err != nil {
		t.Fatalf("referenced link removed: %v", err)
	}
	if _, err := a.st.RegBlobLink("alice/app", dB); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unreferenced link kept: %v", err)
	}
}

func TestRegKeysOfSimilarNamesDoNotMix(t *testing.T) {
	a := newRegApplier(t)
	for _, repo := range []string{"a/b", "a/b-c", "a/b/c"} {
		a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: repo, Owner: "a", Digest: dA, Size: 1})
		a.apply(CmdRegPutManifest, RegPutManifest{Owner: "a", Tags: []string{"t-" + repo[2:]}, Manifest: RegManifest{Repo: repo, Digest: dM, Content: []byte("{}"), Blobs: []string{dA}}})
	}
	tags, _, _ := a.st.RegTags("a/b", "", 0)
	if len(tags) != 1 || tags[0] != "t-b" {
		t.Fatalf("tags of a/b: %v", tags)
	}
	repos, _ := a.st.RegRepos("a/b", 0, nil)
	if len(repos) != 2 || repos[0].Name != "a/b-c" || repos[1].Name != "a/b/c" {
		t.Fatalf("repos after a/b: %v", repos)
	}
}
