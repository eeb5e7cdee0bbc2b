package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"gantry/node/registry"
	"gantry/store"
)

// Peers is the registry's view of the other nodes (registry.Peers): which
// hold a blob, fetching it from one, asking one to copy it, collecting
// garbage on all.
func (c *Cluster) Peers() registry.Peers { return peers{c} }

// peers implements registry.Peers (and registry.PeerCollector) over the
// mutual-TLS internal listener: blob bytes are read from the nodes the store
// records as holding them, and a push asks one peer to copy its blobs.
type peers struct{ c *Cluster }

var (
	_ registry.Peers         = peers{}
	_ registry.PeerCollector = peers{}
)

// otherNodes returns the members other than this one, those not down
// first, each group in name order.
func (p peers) otherNodes() []store.Node {
	nodes, err := p.c.st.Nodes()
	if err != nil {
		return nil
	}
	var out []store.Node
	for _, nd := range nodes {
		if nd.Name != p.c.cfg.Name {
			out = append(out, nd)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := out[i].State == store.NodeDown, out[j].State == store.NodeDown
		if di != dj {
			return !di
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (p peers) Holders(d digest.Digest) []string {
	held, err := p.c.st.RegBlobHolders(d.String())
	if err != nil || len(held) == 0 {
		return nil
	}
	set := map[string]bool{}
	for _, h := range held {
		set[h] = true
	}
	var out []string
	for _, nd := range p.otherNodes() {
		if set[nd.Name] {
			out = append(out, nd.Name)
		}
	}
	return out
}

func (p peers) Copies() int {
	nodes, err := p.c.st.Nodes()
	if err != nil || len(nodes) < 2 {
		return 1
	}
	return 2
}

func (p peers) FetchBlob(ctx context.Context, node string, d digest.Digest) (io.ReadCloser, error) {
	nd, err := p.c.st.Node(node)
	if err != nil {
		return nil, fmt.Errorf("node %s is not a member", node)
	}
	resp, err := p.c.internalDo(ctx, http.MethodGet, nd.Addr, "/internal/v1/registry/blobs/"+d.String(), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("node %s answered %s", node, resp.Status)
	}
	return resp.Body, nil
}

func (p peers) Replicate(ctx context.Context, d digest.Digest, except []string) error {
	skip := map[string]bool{}
	for _, e := range except {
		skip[e] = true
	}
	q := url.Values{"digest": {d.String()}, "from": {p.c.cfg.Name}}
	var errs []error
	for _, nd := range p.otherNodes() {
		if skip[nd.Name] || nd.State == store.NodeDown {
			continue
		}
		resp, err := p.c.internalDo(ctx, http.MethodPost, nd.Addr, "/internal/v1/registry/replicate?"+q.Encode(), nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", nd.Name, err))
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %s %s", nd.Name, resp.Status, msg))
	}
	if len(errs) == 0 {
		return errors.New("no other node is up")
	}
	return errors.Join(errs...)
}

func (p peers) CollectPeers(ctx context.Context, dryRun bool) []registry.PeerGC {
	q := "/internal/v1/registry/gc"
	if dryRun {
		q += "?dry_run=1"
	}
	var out []registry.PeerGC
	for _, nd := range p.otherNodes() {
		pg := registry.PeerGC{Node: nd.Name}
		if nd.State == store.NodeDown {
			pg.Error = "node is down"
			out = append(out, pg)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		resp, err := p.c.internalDo(cctx, http.MethodPost, nd.Addr, q, nil)
		if err == nil {
			var rep registry.GCReport
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s", resp.Status)
			} else if err = json.NewDecoder(resp.Body).Decode(&rep); err == nil {
				pg.DeletedBlobs, pg.FreedBytes = rep.DeletedBlobs, rep.FreedBytes
			}
			resp.Body.Close()
		}
		cancel()
		if err != nil {
			pg.Error = err.Error()
		}
		out = append(out, pg)
	}
	return out
}

func (c *Cluster) peerRegistry(w http.ResponseWriter) *registry.Registry {
	reg := c.registry()
	if reg == nil {
		http.Error(w, "registry not started", http.StatusServiceUnavailable)
		return nil
	}
	return reg
}

// handlePeerBlob serves the bytes of a blob this node holds.
func (c *Cluster) handlePeerBlob(w http.ResponseWriter, r *http.Request) {
	reg := c.peerRegistry(w)
	if reg == nil {
		return
	}
	d, err := digest.Parse(r.PathValue("digest"))
	if err != nil {
		http.Error(w, "bad digest", http.StatusBadRequest)
		return
	}
	f, err := reg.OpenBlob(d)
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "blob not here", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "open blob", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// handleReplicate copies a blob from the node named in from (a push there
// waits for this second copy).
func (c *Cluster) handleReplicate(w http.ResponseWriter, r *http.Request) {
	reg := c.peerRegistry(w)
	if reg == nil {
		return
	}
	d, err := digest.Parse(r.URL.Query().Get("digest"))
	if err != nil {
		http.Error(w, "bad digest", http.StatusBadRequest)
		return
	}
	if err := reg.PullBlob(r.Context(), d, r.URL.Query().Get("from")); err != nil {
		c.log.Warn("replicate blob for a peer", "digest", d, "from", r.URL.Query().Get("from"), "err", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handlePeerGC runs this node's part of a cluster-wide collection.
func (c *Cluster) handlePeerGC(w http.ResponseWriter, r *http.Request) {
	reg := c.peerRegistry(w)
	if reg == nil {
		return
	}
	rep, err := reg.GCLocal(r.Context(), r.URL.Query().Get("dry_run") == "1")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// ReconcileBlobs brings the store's record of this node's blobs in line
// with its disk once at start-up (blobs stored before locations were
// recorded, files lost with a disk), retrying while the cluster is busy.
func (c *Cluster) ReconcileBlobs(ctx context.Context) {
	reg := c.registry()
	if reg == nil {
		return
	}
	for try := 0; try < 5; try++ {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		added, removed, err := reg.ReconcileLocations(rctx)
		cancel()
		if err == nil {
			if added+removed > 0 {
				c.log.Info("blob locations reconciled with this node's disk", "announced", added, "dropped", removed)
			}
			return
		}
		c.log.Warn("reconcile blob locations", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}
