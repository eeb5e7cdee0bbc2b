package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Registry key prefixes (see the Registry section of DESIGN.md).
const (
	pRegRepo     = "rr/" // rr/<repo> -> RegRepo
	pRegBlob     = "rb/" // rb/<repo>\x00<digest> -> RegBlobLink
	pRegBlobRepo = "rd/" // rd/<digest>\x00<repo> -> ""
	pRegManifest = "rm/" // rm/<repo>\x00<digest> -> RegManifest
	pRegTag      = "rt/" // rt/<repo>\x00<tag> -> RegTag
	pRegReferrer = "rf/" // rf/<repo>\x00<subject digest>\x00<digest> -> RegDescriptor
)

// sep separates the variable parts of registry keys: it sorts before every
// character allowed in repository names, tags and digests, so the keys of one
// repository are contiguous and "a/b" never interleaves with "a/b-c".
const sep = "\x00"

func regRepoKey(repo string) []byte        { return []byte(pRegRepo + repo) }
func regBlobKey(repo, d string) []byte     { return []byte(pRegBlob + repo + sep + d) }
func regBlobRepoKey(d, repo string) []byte { return []byte(pRegBlobRepo + d + sep + repo) }
func regManifestKey(repo, d string) []byte { return []byte(pRegManifest + repo + sep + d) }
func regTagKey(repo, tag string) []byte    { return []byte(pRegTag + repo + sep + tag) }
func regReferrerKey(repo, subj, d string) []byte {
	return []byte(pRegReferrer + repo + sep + subj + sep + d)
}

// RegRepo is a repository of the built-in registry.
type RegRepo struct {
	Name     string    `json:"name"`
	Owner    string    `json:"owner"`
	Created  time.Time `json:"created"`
	LastPush time.Time `json:"last_push"`
}

// RegBlobLink records that a repository may reference a blob (it was pushed
// or mounted there), with the blob's size.
type RegBlobLink struct {
	Size    int64     `json:"size"`
	Linked  time.Time `json:"linked"`
	Creator string    `json:"creator,omitempty"`
}

// RegDescriptor is the part of an OCI descriptor the registry keeps.
type RegDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// RegManifest is a manifest stored in a repository, with its raw bytes and
// what it references.
type RegManifest struct {
	Repo         string            `json:"repo"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	ArtifactType string            `json:"artifact_type,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Content      []byte            `json:"content"`
	Blobs        []string          `json:"blobs,omitempty"`     // config and layers that must be linked
	Layers       []string          `json:"layers,omitempty"`    // an image's layers in order (lineage: store/catalog.go)
	Foreign      []string          `json:"foreign,omitempty"`   // non-distributable layers, never stored
	Manifests    []string          `json:"manifests,omitempty"` // children of an index
	Subject      string            `json:"subject,omitempty"`
	Size         int64             `json:"size"`       // len(Content)
	BlobsSize    int64             `json:"blobs_size"` // sum of the linked blobs' sizes
	Pushed       time.Time         `json:"pushed"`
	Pusher       string            `json:"pusher,omitempty"`
}

// RegTag points a tag at a manifest digest.
type RegTag struct {
	Digest  string    `json:"digest"`
	Updated time.Time `json:"updated"`
}

// RegLinkBlob links an uploaded or mounted blob into a repository, creating
// the repository on first use.
type RegLinkBlob struct {
	Repo   string `json:"repo"`
	Owner  string `json:"owner"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	User   string `json:"user,omitempty"`
	// Node, when set, holds the blob's bytes (recorded as CmdRegBlobLocated does).
	Node string `json:"node,omitempty"`
}

// RegUnlinkBlobs removes blob links (a blob DELETE, or garbage collection).
// With IfUnreferenced set, links still referenced by a manifest of their
// repository, or linked after NotAfter, are kept.
type RegUnlinkBlobs struct {
	Links          []RegLink `json:"links"`
	IfUnreferenced bool      `json:"if_unreferenced,omitempty"`
	NotAfter       time.Time `json:"not_after,omitzero"`
}

// RegLink names one blob link.
type RegLink struct {
	Repo   string `json:"repo"`
	Digest string `json:"digest"`
}

// RegPutManifest stores a manifest (validated and parsed by the registry)
// and optionally points tags at it. Apply re-checks that every blob and
// child manifest is present in the repository.
type RegPutManifest struct {
	Owner    string      `json:"owner"`
	Manifest RegManifest `json:"manifest"`
	Tags     []string    `json:"tags,omitempty"`
}

// RegDeleteManifest deletes a manifest, the tags pointing at it and its
// referrer entry.
type RegDeleteManifest struct {
	Repo   string `json:"repo"`
	Digest string `json:"digest"`
}

// RegDeleteTag deletes one tag.
type RegDeleteTag struct {
	Repo string `json:"repo"`
	Tag  string `json:"tag"`
}

// Registry error messages that the registry maps to OCI error codes. They
// are the Message of an *Error with code ENotFound.
const (
	RegMsgBlobUnknown     = "blob unknown to repository"
	RegMsgManifestUnknown = "manifest unknown"
	RegMsgTagUnknown      = "tag unknown"
	RegMsgNameUnknown     = "repository name not known to registry"
)

// regTouchRepo creates the repository record or updates its last push.
func (a *applier) regTouchRepo(name, owner string) error {
	var r RegRepo
	err := getJSON(a.txn, regRepoKey(name), &r)
	if errors.Is(err, ErrNotFound) {
		r = RegRepo{Name: name, Owner: owner, Created: a.at}
	} else if err != nil {
		return err
	}
	r.LastPush = a.at
	return putJSON(a.txn, regRepoKey(name), r)
}

func validRegDigest(d string) bool {
	alg, hex, ok := strings.Cut(d, ":")
	return ok && alg != "" && hex != "" && !strings.ContainsAny(d, sep+"/")
}

func (a *applier) regLinkBlob(c *RegLinkBlob) (None, error) {
	if c.Repo == "" || !validRegDigest(c.Digest) || c.Size < 0 || strings.Contains(c.Repo, sep) {
		return None{}, Errorf(EInvalid, "invalid blob link")
	}
	linked, err := exists(a.txn, regBlobKey(c.Repo, c.Digest))
	if err != nil {
		return None{}, err
	}
	if !linked {
		// First, so that a refusal of the owner's storage quota writes nothing.
		if err := a.storageAdd(c.Repo, c.Digest, c.Size); err != nil {
			return None{}, err
		}
	}
	if err := a.regTouchRepo(c.Repo, c.Owner); err != nil {
		return None{}, err
	}
	if err := putJSON(a.txn, regBlobKey(c.Repo, c.Digest), RegBlobLink{Size: c.Size, Linked: a.at, Creator: c.User}); err != nil {
		return None{}, err
	}
	if c.Node != "" {
		if err := a.regLocate(c.Digest, c.Node); err != nil {
			return None{}, err
		}
	}
	return None{}, a.txn.Set(regBlobRepoKey(c.Digest, c.Repo), nil)
}

func (a *applier) regUnlinkBlobs(c *RegUnlinkBlobs) (int, error) {
	var referenced map[string]bool
	if c.IfUnreferenced {
		referenced = map[string]bool{}
		repos := map[string]bool{}
		for _, l := range c.Links {
			repos[l.Repo] = true
		}
		for repo := range repos {
			if err := regScanManifests(a.txn, repo, func(m *RegManifest) error {
				for _, b := range m.Blobs {
					referenced[repo+sep+b] = true
				}
				return nil
			}); err != nil {
				return 0, err
			}
		}
	}
	removed := 0
	for _, l := range c.Links {
		var link RegBlobLink
		err := getJSON(a.txn, regBlobKey(l.Repo, l.Digest), &link)
		if errors.Is(err, ErrNotFound) {
			if !c.IfUnreferenced {
				return 0, Errorf(ENotFound, RegMsgBlobUnknown)
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		if c.IfUnreferenced && (referenced[l.Repo+sep+l.Digest] || link.Linked.After(c.NotAfter)) {
			continue
		}
		if err := a.txn.Delete(regBlobKey(l.Repo, l.Digest)); err != nil {
			return 0, err
		}
		if err := a.txn.Delete(regBlobRepoKey(l.Digest, l.Repo)); err != nil {
			return 0, err
		}
		if err := a.storageRemove(l.Repo, l.Digest); err != nil {
			return 0, err
		}
		removed++
	}
	return removed, nil
}

func (a *applier) regPutManifest(c *RegPutManifest) (*RegManifest, error) {
	m := c.Manifest
	if m.Repo == "" || strings.Contains(m.Repo, sep) || !validRegDigest(m.Digest) {
		return nil, Errorf(EInvalid, "invalid manifest record")
	}
	for _, t := range c.Tags {
		if t == "" || strings.Contains(t, sep) {
			return nil, Errorf(EInvalid, "invalid tag")
		}
	}
	// Check everything before writing: a failed command must leave nothing
	// behind in the batch's transaction.
	var total int64
	for _, b := range m.Blobs {
		var link RegBlobLink
		err := getJSON(a.txn, regBlobKey(m.Repo, b), &link)
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "%s: %s", RegMsgBlobUnknown, b)
		}
		if err != nil {
			return nil, err
		}
		total += link.Size
	}
	for _, d := range m.Manifests {
		ok, err := exists(a.txn, regManifestKey(m.Repo, d))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, Errorf(ENotFound, "%s: %s", RegMsgManifestUnknown, d)
		}
	}
	m.Size = int64(len(m.Content))
	m.BlobsSize = total
	m.Pushed = a.at
	if err := a.regTouchRepo(m.Repo, c.Owner); err != nil {
		return nil, err
	}
	if err := putJSON(a.txn, regManifestKey(m.Repo, m.Digest), m); err != nil {
		return nil, err
	}
	if m.Subject != "" {
		desc := RegDescriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if err := putJSON(a.txn, regReferrerKey(m.Repo, m.Subject, m.Digest), desc); err != nil {
			return nil, err
		}
	}
	name := m.Repo + "@" + m.Digest
	for _, t := range c.Tags {
		if err := putJSON(a.txn, regTagKey(m.Repo, t), RegTag{Digest: m.Digest, Updated: a.at}); err != nil {
			return nil, err
		}
		name = m.Repo + ":" + t
	}
	if err := a.recordLineage(&m); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "image", Owner: c.Owner, Name: name})
	m.Content = nil
	return &m, nil
}

func (a *applier) regDeleteManifest(c *RegDeleteManifest) (None, error) {
	var m RegManifest
	err := getJSON(a.txn, regManifestKey(c.Repo, c.Digest), &m)
	if errors.Is(err, ErrNotFound) {
		return None{}, Errorf(ENotFound, RegMsgManifestUnknown)
	}
	if err != nil {
		return None{}, err
	}
	var tags [][]byte
	if err := regScanPrefix(a.txn, []byte(pRegTag+c.Repo+sep), func(k, v []byte) error {
		var t RegTag
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		if t.Digest == c.Digest {
			tags = append(tags, k)
		}
		return nil
	}); err != nil {
		return None{}, err
	}
	for _, k := range tags {
		if err := a.txn.Delete(k); err != nil {
			return None{}, err
		}
	}
	if len(m.Layers) > 0 {
		if err := a.txn.Delete(layerIdxKey(m.Layers[0], c.Repo, c.Digest)); err != nil {
			return None{}, err
		}
	}
	if m.Subject != "" {
		if err := a.txn.Delete(regReferrerKey(c.Repo, m.Subject, c.Digest)); err != nil {
			return None{}, err
		}
	}
	if err := a.txn.Delete(regManifestKey(c.Repo, c.Digest)); err != nil {
		return None{}, err
	}
	a.events = append(a.events, Event{Type: "image", Name: c.Repo + "@" + c.Digest})
	return None{}, nil
}

func (a *applier) regDeleteTag(c *RegDeleteTag) (None, error) {
	ok, err := exists(a.txn, regTagKey(c.Repo, c.Tag))
	if err != nil {
		return None{}, err
	}
	if !ok {
		return None{}, Errorf(ENotFound, RegMsgTagUnknown)
	}
	a.events = append(a.events, Event{Type: "image", Name: c.Repo + ":" + c.Tag})
	return None{}, a.txn.Delete(regTagKey(c.Repo, c.Tag))
}

// regScanPrefix calls fn with every key and value under prefix. The key is
// a copy; the value is only valid during the call.
func regScanPrefix(txn *badger.Txn, prefix []byte, fn func(k, v []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		k := item.KeyCopy(nil)
		if err := item.Value(func(v []byte) error { return fn(k, v) }); err != nil {
			return err
		}
	}
	return nil
}

// regScanKeys calls fn with the suffix (after prefix) of every key under
// prefix, without reading values.
func regScanKeys(txn *badger.Txn, prefix []byte, seek []byte, fn func(suffix string) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	if seek == nil {
		seek = prefix
	}
	for it.Seek(seek); it.Valid(); it.Next() {
		cont, err := fn(string(it.Item().Key()[len(prefix):]))
		if err != nil || !cont {
			return err
		}
	}
	return nil
}

func regScanManifests(txn *badger.Txn, repo string, fn func(m *RegManifest) error) error {
	return regScanPrefix(txn, []byte(pRegManifest+repo+sep), func(_, v []byte) error {
		var m RegManifest
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		return fn(&m)
	})
}

// RegRepo returns a repository, or ErrNotFound.
func (s *Store) RegRepo(name string) (*RegRepo, error) {
	var r RegRepo
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, regRepoKey(name), &r) })
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// RegRepos lists repositories in name order after last (exclusive), up to
// limit (0: all) of those accepted by keep.
func (s *Store) RegRepos(last string, limit int, keep func(*RegRepo) bool) ([]RegRepo, error) {
	var out []RegRepo
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pRegRepo), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		seek := []byte(pRegRepo)
		if last != "" {
			seek = append(regRepoKey(last), 0)
		}
		for it.Seek(seek); it.Valid(); it.Next() {
			var r RegRepo
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			if keep != nil && !keep(&r) {
				continue
			}
			out = append(out, r)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// RegBlobLink returns the link of a blob into a repository, or ErrNotFound
// when the repository may not reference it.
func (s *Store) RegBlobLink(repo, digest string) (*RegBlobLink, error) {
	var l RegBlobLink
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, regBlobKey(repo, digest), &l) })
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// RegBlobRepos lists the repositories a blob is linked into.
func (s *Store) RegBlobRepos(digest string) ([]string, error) {
	var out []string
	err := s.view(func(txn *badger.Txn) error {
		return regScanKeys(txn, []byte(pRegBlobRepo+digest+sep), nil, func(repo string) (bool, error) {
			out = append(out, repo)
			return true, nil
		})
	})
	return out, err
}

// RegManifest returns a manifest with its content, or ErrNotFound.
func (s *Store) RegManifest(repo, digest string) (*RegManifest, error) {
	var m RegManifest
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, regManifestKey(repo, digest), &m) })
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// RegTag returns the digest a tag points at, or ErrNotFound.
func (s *Store) RegTag(repo, tag string) (*RegTag, error) {
	var t RegTag
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, regTagKey(repo, tag), &t) })
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// RegTags lists a repository's tags in lexical order after last (exclusive),
// at most limit (0: all), and whether more follow.
func (s *Store) RegTags(repo, last string, limit int) ([]string, bool, error) {
	out := []string{}
	more := false
	err := s.view(func(txn *badger.Txn) error {
		prefix := []byte(pRegTag + repo + sep)
		var seek []byte
		if last != "" {
			seek = append(regTagKey(repo, last), 0)
		}
		return regScanKeys(txn, prefix, seek, func(tag string) (bool, error) {
			if limit > 0 && len(out) >= limit {
				more = true
				return false, nil
			}
			out = append(out, tag)
			return true, nil
		})
	})
	sort.Strings(out) // key order is byte order already; keep it explicit
	return out, more, err
}

// RegReferrers lists the descriptors of the manifests in repo whose subject
// is the given digest.
func (s *Store) RegReferrers(repo, subject string) ([]RegDescriptor, error) {
	out := []RegDescriptor{}
	err := s.view(func(txn *badger.Txn) error {
		return regScanPrefix(txn, []byte(pRegReferrer+repo+sep+subject+sep), func(_, v []byte) error {
			var d RegDescriptor
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// RegManifests lists a repository's manifests without their content.
func (s *Store) RegManifests(repo string) ([]RegManifest, error) {
	var out []RegManifest
	err := s.view(func(txn *badger.Txn) error {
		return regScanManifests(txn, repo, func(m *RegManifest) error {
			m.Content = nil
			out = append(out, *m)
			return nil
		})
	})
	return out, err
}

// RegTagsOf maps each tagged manifest digest of a repository to its tags.
func (s *Store) RegTagsOf(repo string) (map[string][]string, error) {
	out := map[string][]string{}
	err := s.view(func(txn *badger.Txn) error {
		prefix := []byte(pRegTag + repo + sep)
		return regScanPrefix(txn, prefix, func(k, v []byte) error {
			var t RegTag
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			out[t.Digest] = append(out[t.Digest], string(k[len(prefix):]))
			return nil
		})
	})
	return out, err
}

// RegBlobUse is one blob link, for garbage collection.
type RegBlobUse struct {
	Repo       string
	Digest     string
	Size       int64
	Linked     time.Time
	Referenced bool // by a manifest of the same repository
}

// RegBlobUses lists every blob link and whether a manifest of its
// repository references it, from one consistent view.
func (s *Store) RegBlobUses() ([]RegBlobUse, error) {
	var out []RegBlobUse
	err := s.view(func(txn *badger.Txn) error {
		referenced := map[string]bool{}
		if err := regScanPrefix(txn, []byte(pRegManifest), func(_, v []byte) error {
			var m struct {
				Repo  string   `json:"repo"`
				Blobs []string `json:"blobs"`
			}
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			for _, b := range m.Blobs {
				referenced[m.Repo+sep+b] = true
			}
			return nil
		}); err != nil {
			return err
		}
		return regScanPrefix(txn, []byte(pRegBlob), func(k, v []byte) error {
			var l RegBlobLink
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			rest := k[len(pRegBlob):]
			i := bytes.LastIndex(rest, []byte(sep))
			if i < 0 {
				return nil
			}
			repo, d := string(rest[:i]), string(rest[i+1:])
			out = append(out, RegBlobUse{Repo: repo, Digest: d, Size: l.Size, Linked: l.Linked, Referenced: referenced[string(rest)]})
			return nil
		})
	})
	return out, err
}
