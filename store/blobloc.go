package store

import (
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// CmdRegBlobLocated records that a node holds (or, with Gone, no longer
// holds) the bytes of blobs. Blob bytes live on the nodes' disks; this index
// tells a node lacking a blob which peers to fetch it from, and a push how
// many copies the cluster has. A blob link (CmdRegLinkBlob with Node set)
// records the location too, so an upload costs no extra command.
const CmdRegBlobLocated = "registry.blob.located"

// pRegBlobNode: rn/<digest>\x00<node> -> "".
const pRegBlobNode = "rn/"

func regBlobNodeKey(d, node string) []byte { return []byte(pRegBlobNode + d + sep + node) }

// RegBlobLocated names blobs a node now holds (or dropped, with Gone).
type RegBlobLocated struct {
	Node    string   `json:"node"`
	Digests []string `json:"digests"`
	Gone    bool     `json:"gone,omitempty"`
}

func (a *applier) applyBlobLoc(c Command) (any, error, bool) {
	if c.Type != CmdRegBlobLocated {
		return nil, nil, false
	}
	res, err := decodeApply(c.Data, a.regBlobLocated)
	return res, err, true
}

func validLocNode(n string) bool { return n != "" && !strings.Contains(n, sep) }

func (a *applier) regBlobLocated(c *RegBlobLocated) (any, error) {
	if !validLocNode(c.Node) {
		return nil, Errorf(EInvalid, "invalid blob location")
	}
	for _, d := range c.Digests {
		if !validRegDigest(d) {
			return nil, Errorf(EInvalid, "invalid blob location")
		}
	}
	for _, d := range c.Digests {
		var err error
		if c.Gone {
			err = a.txn.Delete(regBlobNodeKey(d, c.Node))
		} else {
			err = a.txn.Set(regBlobNodeKey(d, c.Node), nil)
		}
		if err != nil {
			return nil, err
		}
	}
	return len(c.Digests), nil
}

// regLocate records that node holds d (used by blob links).
func (a *applier) regLocate(d, node string) error {
	if !validLocNode(node) {
		return nil
	}
	return a.txn.Set(regBlobNodeKey(d, node), nil)
}

// RegBlobHolders returns the nodes recorded as holding blob d, sorted.
func (s *Store) RegBlobHolders(d string) ([]string, error) {
	var out []string
	err := s.view(func(txn *badger.Txn) error {
		return regScanKeys(txn, []byte(pRegBlobNode+d+sep), nil, func(node string) (bool, error) {
			out = append(out, node)
			return true, nil
		})
	})
	return out, err
}

// RegBlobsHeldBy returns the digests recorded as held by node.
func (s *Store) RegBlobsHeldBy(node string) ([]string, error) {
	var out []string
	err := s.view(func(txn *badger.Txn) error {
		return regScanKeys(txn, []byte(pRegBlobNode), nil, func(suffix string) (bool, error) {
			if d, n, ok := strings.Cut(suffix, sep); ok && n == node {
				out = append(out, d)
			}
			return true, nil
		})
	})
	return out, err
}
