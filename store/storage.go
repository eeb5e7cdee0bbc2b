package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Storage accounting (DESIGN.md, "Storage accounting"): what each owner's
// repositories hold, maintained by the applies that add and remove blob
// links, so a push can be checked against the owner's storage quota
// without scanning every link.
const (
	pRegOwnerBlob = "ro/" // ro/<owner>\x00<digest> -> ownerBlob
	pRegOwnerUse  = "rs/" // rs/<owner> -> StorageUsage
)

func regOwnerBlobKey(owner, d string) []byte { return []byte(pRegOwnerBlob + owner + sep + d) }
func regOwnerUseKey(owner string) []byte     { return []byte(pRegOwnerUse + owner) }

// ownerBlob is one distinct blob of an owner: how many of the owner's
// repositories link it, and its size (counted once).
type ownerBlob struct {
	Refs int   `json:"refs"`
	Size int64 `json:"size"`
}

// StorageUsage is what an owner's repositories hold: the distinct blobs
// they link (a blob in several of the owner's repositories counts once)
// and their bytes. Manifests are not counted (at most 4 MiB each, kept in
// the replicated state, not on disk as blobs).
type StorageUsage struct {
	Bytes int64 `json:"bytes"`
	Blobs int   `json:"blobs"`
}

// regOwner is the owner of a repository: the first part of its name, as
// the registry's namespaces are ("alice/data" is alice's); "" for a name
// without one.
func regOwner(repo string) string {
	owner, _, ok := strings.Cut(repo, "/")
	if !ok {
		return ""
	}
	return owner
}

// storageAdd accounts a new link of digest d (size bytes) into repo:
// a blob the owner's repositories did not hold yet adds its size, and is
// refused with EQuotaExceeded when that takes the owner over their
// storage quota. The caller has checked that repo did not link d yet,
// and calls it before its own writes: a refusal writes nothing.
func (a *applier) storageAdd(repo, d string, size int64) error {
	owner := regOwner(repo)
	var b ownerBlob
	err := getJSON(a.txn, regOwnerBlobKey(owner, d), &b)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if b.Refs > 0 {
		b.Refs++
		return putJSON(a.txn, regOwnerBlobKey(owner, d), b)
	}
	var use StorageUsage
	if err := getJSON(a.txn, regOwnerUseKey(owner), &use); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if limit, err := a.storageQuota(owner); err != nil {
		return err
	} else if limit > 0 && use.Bytes+size > limit {
		total, max := storageSizes(use.Bytes+size, limit)
		return Errorf(EQuotaExceeded, "storage quota: adding %s would make %s's storage %s, over the limit of %s; delete images or data you no longer need (gantry image rm REPO@DIGEST), or ask an admin to raise it",
			storageBytes(size, 1), owner, total, max)
	}
	use.Bytes += size
	use.Blobs++
	if err := putJSON(a.txn, regOwnerBlobKey(owner, d), ownerBlob{Refs: 1, Size: size}); err != nil {
		return err
	}
	return putJSON(a.txn, regOwnerUseKey(owner), use)
}

// storageRemove accounts the removal of repo's link to d: the last of the
// owner's repositories to let it go frees its size.
func (a *applier) storageRemove(repo, d string) error {
	owner := regOwner(repo)
	var b ownerBlob
	err := getJSON(a.txn, regOwnerBlobKey(owner, d), &b)
	if errors.Is(err, ErrNotFound) {
		return nil // cannot happen while the index is kept; nothing to free
	}
	if err != nil {
		return err
	}
	if b.Refs > 1 {
		b.Refs--
		return putJSON(a.txn, regOwnerBlobKey(owner, d), b)
	}
	if err := a.txn.Delete(regOwnerBlobKey(owner, d)); err != nil {
		return err
	}
	var use StorageUsage
	if err := getJSON(a.txn, regOwnerUseKey(owner), &use); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	use.Bytes -= b.Size
	use.Blobs--
	if use.Blobs <= 0 {
		return a.txn.Delete(regOwnerUseKey(owner))
	}
	return putJSON(a.txn, regOwnerUseKey(owner), use)
}

// storageQuota is the owner's storage quota in bytes (0: none; an owner
// without an account has none).
func (a *applier) storageQuota(owner string) (int64, error) {
	if owner == "" {
		return 0, nil
	}
	var u User
	err := getJSON(a.txn, userKey(owner), &u)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return u.StorageQuota, err
}

// StorageUsage returns what owner's repositories hold (zero when nothing).
func (s *Store) StorageUsage(owner string) (StorageUsage, error) {
	var use StorageUsage
	err := s.view(func(txn *badger.Txn) error {
		err := getJSON(txn, regOwnerUseKey(owner), &use)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	return use, err
}

// StorageUsages returns what every owner holding anything holds.
func (s *Store) StorageUsages() (map[string]StorageUsage, error) {
	out := map[string]StorageUsage{}
	err := s.view(func(txn *badger.Txn) error {
		return regScanPrefix(txn, []byte(pRegOwnerUse), func(k, v []byte) error {
			var use StorageUsage
			if err := json.Unmarshal(v, &use); err != nil {
				return err
			}
			out[string(k[len(pRegOwnerUse):])] = use
			return nil
		})
	})
	return out, err
}

// rebuildStorage computes the storage index afresh from the blob links
// (migrateLayout, for a state DB of a layout before it existed): whatever
// index keys are there are deleted first, so a migration interrupted
// part-way is simply done again. It changes nothing a command's apply
// could see differently on another replica: every replica's index is the
// same function of the same links.
func rebuildStorage(db *badger.DB, logger *slog.Logger) error {
	for _, p := range []string{pRegOwnerBlob, pRegOwnerUse} {
		if err := db.DropPrefix([]byte(p)); err != nil {
			return fmt.Errorf("rebuild storage index: drop %s: %w", p, err)
		}
	}
	blobs := map[string]ownerBlob{} // owner \x00 digest
	uses := map[string]StorageUsage{}
	err := db.View(func(txn *badger.Txn) error {
		return regScanPrefix(txn, []byte(pRegBlob), func(k, v []byte) error {
			rest := k[len(pRegBlob):]
			i := bytes.LastIndex(rest, []byte(sep))
			if i < 0 {
				return nil
			}
			var l RegBlobLink
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			owner, d := regOwner(string(rest[:i])), string(rest[i+1:])
			key := owner + sep + d
			b, ok := blobs[key]
			if !ok {
				b.Size = l.Size
				u := uses[owner]
				u.Bytes += l.Size
				u.Blobs++
				uses[owner] = u
			}
			b.Refs++
			blobs[key] = b
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("rebuild storage index: %w", err)
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for key, b := range blobs {
		v, _ := json.Marshal(b)
		if err := wb.Set([]byte(pRegOwnerBlob+key), v); err != nil {
			return fmt.Errorf("rebuild storage index: %w", err)
		}
	}
	for owner, u := range uses {
		v, _ := json.Marshal(u)
		if err := wb.Set(regOwnerUseKey(owner), v); err != nil {
			return fmt.Errorf("rebuild storage index: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("rebuild storage index: %w", err)
	}
	if len(uses) > 0 {
		logger.Info("state DB migrated: storage index built", "owners", len(uses), "blobs", len(blobs))
	}
	return nil
}

// storageSizes writes a total over a limit with as many decimals as it
// takes for them to read differently ("1.0005 MiB" over "1 MiB", not "1
// MiB" over "1 MiB"), and in bytes when even that does not tell them apart.
func storageSizes(total, limit int64) (string, string) {
	for dec := 1; dec <= 4; dec++ {
		if t, l := storageBytes(total, dec), storageBytes(limit, dec); t != l {
			return t, l
		}
	}
	return strconv.FormatInt(total, 10) + " B", strconv.FormatInt(limit, 10) + " B"
}

// storageBytes writes n in binary units with at most dec decimals, zeros
// dropped ("1.2 GiB", "10 GiB"), as the quota's refusal states sizes.
func storageBytes(n int64, dec int) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + " " + units[i:i+1] + "iB"
}
