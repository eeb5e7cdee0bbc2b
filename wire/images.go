package wire

import "time"

// ImageTag is one tag of a repository.
type ImageTag struct {
	Tag       string    `json:"tag"`
	Digest    string    `json:"digest"`
	MediaType string    `json:"media_type"`
	Size      int64     `json:"size"` // manifest plus the blobs it references
	Pushed    time.Time `json:"pushed"`
}

// ImageRepo is a repository of the built-in registry.
type ImageRepo struct {
	Name      string     `json:"name"`
	Owner     string     `json:"owner"`
	Tags      []ImageTag `json:"tags"`
	Manifests int        `json:"manifests"`
	Size      int64      `json:"size"` // distinct blobs plus manifests
	LastPush  time.Time  `json:"last_push"`
	// Published is set when the repository is in the community catalog.
	Published *ImagePublication `json:"published,omitempty"`
	// Notices are the licences its images inherit from published images
	// they are built on; only each base's rights holder removes one.
	Notices []Notice `json:"notices,omitempty"`
	// GenAI: the image, or an image it is built on, performs generative
	// AI or deep synthesis; its tasks get GANTRY_GENAI=1.
	GenAI bool `json:"genai,omitempty"`
	// TakenDown is set while the repository is taken down (its owner
	// still pulls it; others are refused with taken_down).
	TakenDown *Takedown `json:"taken_down,omitempty"`
}

// ImagePublication is how a repository of the caller's is published.
type ImagePublication struct {
	Licence Licence `json:"licence"`
	Access  string  `json:"access"`
	Pulls   int64   `json:"pulls"`
}

// ImageList is GET /api/v1/images: the repositories the caller may pull and
// the caller's storage usage in bytes (every owner's for admins).
type ImageList struct {
	Repositories []ImageRepo      `json:"repositories"`
	Usage        int64            `json:"usage"`
	UsageByOwner map[string]int64 `json:"usage_by_owner,omitempty"`
}

// ImageImport is the answer to POST /api/v1/images/import: the references
// created.
type ImageImport struct {
	Images []string `json:"images"`
}

// Deleted is the answer to DELETE /api/v1/images/...: what was removed.
type Deleted struct {
	Deleted string `json:"deleted"`
}

// BlobLink names a blob linked into a repository.
type BlobLink struct {
	Repo   string `json:"repo"`
	Digest string `json:"digest"`
}

// PeerGC is one other node's part of a cluster-wide collection.
type PeerGC struct {
	Node         string   `json:"node"`
	DeletedBlobs []string `json:"deleted_blobs,omitempty"`
	FreedBytes   int64    `json:"freed_bytes"`
	Error        string   `json:"error,omitempty"`
}

// GCReport is what a registry garbage collection removed (or would remove).
type GCReport struct {
	DryRun         bool       `json:"dry_run"`
	UnlinkedBlobs  []BlobLink `json:"unlinked_blobs"`
	DeletedBlobs   []string   `json:"deleted_blobs"`
	FreedBytes     int64      `json:"freed_bytes"`
	ExpiredUploads []string   `json:"expired_uploads"`
	KeptBlobs      int        `json:"kept_blobs"`
	Peers          []PeerGC   `json:"peers,omitempty"`
}
