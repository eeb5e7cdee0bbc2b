package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func (a *regApplier) link(repo, d string, size int64) error {
	a.t.Helper()
	_, err := a.apply(CmdRegLinkBlob, RegLinkBlob{Repo: repo, Owner: regOwner(repo), Digest: d, Size: size})
	return err
}

func (a *regApplier) unlink(repo, d string) {
	a.t.Helper()
	if _, err := a.apply(CmdRegUnlinkBlobs, RegUnlinkBlobs{Links: []RegLink{{Repo: repo, Digest: d}}}); err != nil {
		a.t.Fatal(err)
	}
}

func (a *regApplier) wantStorage(owner string, want StorageUsage) {
	a.t.Helper()
	got, err := a.st.StorageUsage(owner)
	if err != nil {
		a.t.Fatal(err)
	}
	if got != want {
		a.t.Fatalf("%s's storage is %+v, want %+v", owner, got, want)
	}
}

// usageFromLinks is the storage of each owner computed the slow way, from
// every blob link (what node/registry's Usage does): the index must
// always agree with it.
func usageFromLinks(t *testing.T, st *Store) map[string]StorageUsage {
	t.Helper()
	uses, err := st.RegBlobUses()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	out := map[string]StorageUsage{}
	for _, u := range uses {
		o := regOwner(u.Repo)
		if seen[o+sep+u.Digest] {
			continue
		}
		seen[o+sep+u.Digest] = true
		s := out[o]
		s.Bytes += u.Size
		s.Blobs++
		out[o] = s
	}
	return out
}

func TestStorageCountsEachOwnersDistinctBlobsOnce(t *testing.T) {
	a := newRegApplier(t)
	for _, l := range []struct {
		repo, d string
		size    int64
	}{{"alice/app", dA, 10}, {"alice/data", dA, 10}, {"alice/app", dB, 5}, {"alice/app", dB, 5}, {"bob/x", dA, 10}} {
		if err := a.link(l.repo, l.d, l.size); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a blob in two of the owner's repositories counts once", func(t *testing.T) {
		a.wantStorage("alice", StorageUsage{Bytes: 15, Blobs: 2})
	})
	t.Run("another owner's link of the same blob counts for them", func(t *testing.T) {
		a.wantStorage("bob", StorageUsage{Bytes: 10, Blobs: 1})
	})
	t.Run("an unlink frees a blob only when no repository of the owner links it", func(t *testing.T) {
		a.unlink("alice/app", dA)
		a.wantStorage("alice", StorageUsage{Bytes: 15, Blobs: 2})
		a.unlink("alice/data", dA)
		a.wantStorage("alice", StorageUsage{Bytes: 5, Blobs: 1})
		a.wantStorage("bob", StorageUsage{Bytes: 10, Blobs: 1})
	})
	t.Run("garbage collection's unlink frees too", func(t *testing.T) {
		if _, err := a.apply(CmdRegUnlinkBlobs, RegUnlinkBlobs{Links: []RegLink{{Repo: "alice/app", Digest: dB}}, IfUnreferenced: true,
			NotAfter: a.st.mustLink(t, "alice/app", dB).Linked}); err != nil {
			t.Fatal(err)
		}
		a.wantStorage("alice", StorageUsage{})
		all, err := a.st.StorageUsages()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]StorageUsage{"bob": {Bytes: 10, Blobs: 1}}; !reflect.DeepEqual(all, want) {
			t.Fatalf("usages %v, want %v", all, want)
		}
	})
}

func (s *Store) mustLink(t *testing.T, repo, d string) *RegBlobLink {
	t.Helper()
	l, err := s.RegBlobLink(repo, d)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestStorageQuotaRefusesALinkOverItAndWritesNothing(t *testing.T) {
	a := newRegApplier(t)
	if _, err := a.apply(CmdCreateUser, CreateUser{User: User{Name: "alice"}}); err != nil {
		t.Fatal(err)
	}
	limit := int64(10 << 30)
	if _, err := a.apply(CmdUpdateUser, UpdateUser{Name: "alice", StorageQuota: &limit}); err != nil {
		t.Fatal(err)
	}
	if err := a.link("alice/app", dA, 9<<30+400<<20); err != nil { // 9.4 GiB
		t.Fatal(err)
	}
	before, err := a.st.StorageUsage("alice")
	if err != nil {
		t.Fatal(err)
	}

	err = a.link("alice/new", dB, 1<<30+200<<20) // 1.2 GiB
	t.Run("the refusal says what was added, the total and the limit", func(t *testing.T) {
		if ErrorCode(err) != EQuotaExceeded {
			t.Fatalf("link over the quota: %v (code %s)", err, ErrorCode(err))
		}
		want := "storage quota: adding 1.2 GiB would make alice's storage 10.6 GiB, over the limit of 10 GiB; delete images or data you no longer need (gantry image rm REPO@DIGEST), or ask an admin to raise it"
		if err.Error() != want {
			t.Fatalf("message\n%s\nwant\n%s", err, want)
		}
	})
	t.Run("a refused link leaves no link, no repository and the same usage", func(t *testing.T) {
		if _, err := a.st.RegBlobLink("alice/new", dB); !errors.Is(err, ErrNotFound) {
			t.Fatalf("link written by a refused command: %v", err)
		}
		if _, err := a.st.RegRepo("alice/new"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("repository created by a refused command: %v", err)
		}
		if repos, _ := a.st.RegBlobRepos(dB); len(repos) != 0 {
			t.Fatalf("reverse link written by a refused command: %v", repos)
		}
		a.wantStorage("alice", before)
	})
	t.Run("a blob the owner holds already costs nothing", func(t *testing.T) {
		if err := a.link("alice/copy", dA, 9<<30+400<<20); err != nil {
			t.Fatal(err)
		}
		a.wantStorage("alice", before)
	})
	t.Run("up to the limit itself is allowed", func(t *testing.T) {
		if err := a.link("alice/app", dB, limit-before.Bytes); err != nil {
			t.Fatal(err)
		}
		a.wantStorage("alice", StorageUsage{Bytes: limit, Blobs: 2})
	})
	t.Run("other owners are not bound by it", func(t *testing.T) {
		if err := a.link("bob/app", dM, 20<<30); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no limit once the admin removes it", func(t *testing.T) {
		var none int64
		if _, err := a.apply(CmdUpdateUser, UpdateUser{Name: "alice", StorageQuota: &none}); err != nil {
			t.Fatal(err)
		}
		if err := a.link("alice/app", dM, 20<<30); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a total just over the limit is told apart from it", func(t *testing.T) {
		for _, tc := range []struct {
			total, limit int64
			want         [2]string
		}{
			{10<<30 + 400<<20, 10 << 30, [2]string{"10.4 GiB", "10 GiB"}},
			{1<<20 + 1500, 1 << 20, [2]string{"1.001 MiB", "1 MiB"}},
			{1<<20 + 1, 1 << 20, [2]string{"1048577 B", "1048576 B"}},
			{900, 512, [2]string{"900 B", "512 B"}},
		} {
			if got0, got1 := storageSizes(tc.total, tc.limit); [2]string{got0, got1} != tc.want {
				t.Errorf("%d over %d reads %q over %q, want %q", tc.total, tc.limit, got0, got1, tc.want)
			}
		}
	})
	t.Run("a negative quota is refused", func(t *testing.T) {
		neg := int64(-1)
		if _, err := a.apply(CmdUpdateUser, UpdateUser{Name: "alice", StorageQuota: &neg}); ErrorCode(err) != EInvalid {
			t.Fatalf("negative quota: %v", err)
		}
	})
}

// TestStorageIndexAgreesWithTheLinks: after any sequence of links and
// unlinks the maintained index is what a scan of every link computes, and
// an index rebuilt by the migration (a state DB of layout 2) or carried by
// a snapshot is the same.
func TestStorageIndexAgreesWithTheLinks(t *testing.T) {
	a := newRegApplier(t)
	rng := rand.New(rand.NewPCG(12, 3))
	repos := []string{"alice/a", "alice/b", "bob/a", "bob/b", "carol/c"}
	for i := 0; i < 400; i++ {
		repo := repos[rng.IntN(len(repos))]
		n := rng.IntN(8)
		d := fmt.Sprintf("sha256:%04d", n)
		if rng.IntN(3) == 0 {
			if _, err := a.apply(CmdRegUnlinkBlobs, RegUnlinkBlobs{Links: []RegLink{{Repo: repo, Digest: d}}}); err != nil && ErrorCode(err) != ENotFound {
				t.Fatal(err)
			}
			continue
		}
		if err := a.link(repo, d, int64(100+n)); err != nil {
			t.Fatal(err)
		}
	}
	want := usageFromLinks(t, a.st)
	got, err := a.st.StorageUsages()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("maintained index %v, links say %v", got, want)
	}

	t.Run("a snapshot carries the index", func(t *testing.T) {
		sn, err := a.st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Release()
		sink := &memSink{}
		if err := sn.Persist(sink); err != nil {
			t.Fatal(err)
		}
		b := newRegApplier(t)
		if err := b.st.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.st.StorageUsages(); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored index %v, want %v", got, want)
		}
	})

	t.Run("a state DB of layout 2 gets its index built when opened", func(t *testing.T) {
		dir := t.TempDir()
		st, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := &regApplier{t: t, st: st}
		for _, l := range []struct {
			repo, d string
		}{{"alice/a", dA}, {"alice/b", dA}, {"alice/b", dB}, {"bob/a", dA}} {
			if err := b.link(l.repo, l.d, 7); err != nil {
				t.Fatal(err)
			}
		}
		// What a layout-2 binary left: no index, and a stale key to show
		// that the rebuild starts afresh.
		if err := st.db.Update(func(txn *badger.Txn) error {
			for _, p := range []string{pRegOwnerBlob, pRegOwnerUse} {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p)})
				var keys [][]byte
				for it.Rewind(); it.Valid(); it.Next() {
					keys = append(keys, it.Item().KeyCopy(nil))
				}
				it.Close()
				for _, k := range keys {
					if err := txn.Delete(k); err != nil {
						return err
					}
				}
			}
			if err := putJSON(txn, regOwnerUseKey("carol"), StorageUsage{Bytes: 99, Blobs: 1}); err != nil {
				return err
			}
			return putJSON(txn, []byte(kLayout), 2)
		}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		st, err = Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		got, err := st.StorageUsages()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]StorageUsage{"alice": {Bytes: 14, Blobs: 2}, "bob": {Bytes: 7, Blobs: 1}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("rebuilt index %v, want %v", got, want)
		}
		// And it is kept from there on: alice/b's dA still holds alice's copy.
		b = &regApplier{t: t, st: st, n: b.n}
		b.unlink("alice/a", dA)
		b.wantStorage("alice", StorageUsage{Bytes: 14, Blobs: 2})
		b.unlink("alice/b", dA)
		b.wantStorage("alice", StorageUsage{Bytes: 7, Blobs: 1})
	})
}
