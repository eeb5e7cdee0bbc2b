package store

import (
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// pRegBlobNode: rn/<digest>\x00<node> -> "".
const pRegBlobNode = "rn/"

func regBlobNodeKey(d, node string) []byte { return []byte(pRegBlobNode + d + sep + node) }

// RegBlobLocated names blobs a node now holds (or dropped, with Gone).
type RegBlobLocated struct {
	Node    string   `json:"node"`
	Digests []string `json:"digests"`
	Gone    bool     `json:"gone,omitempty"`
}

func validLocNode(n string) bool { return n != "" && !strings.Contains(n, sep) }

func (a *applier) regBlobLocated(c *RegBlobLocated) (int, error) {
	if !validLocNode(c.Node) {
		return 0, Errorf(EInvalid, "invalid blob location")
	}
	for _, d := range c.Digests {
		if !validRegDigest(d) {
			return 0, Errorf(EInvalid, "invalid blob location")
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
			return 0, err
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
