package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gantry/raftcluster"
	"gantry/store"
)

// joinIfNeeded runs the joining side of the join protocol on a node started
// with --join and no certificate yet (see raftcluster/DESIGN.md): fetch the
// CA from the member, pin it by the token's hash, prove the secret with an
// HMAC over a certificate request, store the signed certificate. It returns
// the member's cluster address ("" when nothing was done).
func (n *Node) joinIfNeeded(ctx context.Context, adv, cport string) (string, error) {
	tlsDir := filepath.Join(n.cfg.DataDir, "tls")
	if n.cfg.Join == "" {
		return "", nil
	}
	if _, err := os.Stat(filepath.Join(tlsDir, "node.pem")); err == nil {
		return "", nil // joined before: restart with the certificate we have
	}
	if n.cfg.Token == "" {
		return "", errors.New("--join needs --token (print it on a member with 'gantry cluster join-command')")
	}
	caHash, secret, err := raftcluster.ParseToken(n.cfg.Token)
	if err != nil {
		return "", err
	}
	base := n.cfg.Join
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")
	hc := &http.Client{Timeout: 30 * time.Second}
	jctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	caPEM, err := httpGet(jctx, hc, base+"/api/v1/cluster/ca")
	if err != nil {
		return "", fmt.Errorf("join %s: fetch the cluster CA: %w", n.cfg.Join, err)
	}
	ca, err := raftcluster.PinCA(caPEM, caHash)
	if err != nil {
		return "", fmt.Errorf("join %s refused: %w", n.cfg.Join, err)
	}
	keyPEM, csrPEM, err := raftcluster.NewNodeKey(n.cfg.Name)
	if err != nil {
		return "", err
	}
	req := raftcluster.JoinRequest{Name: n.cfg.Name, RaftAddr: net.JoinHostPort(adv, cport), Host: adv, CSR: csrPEM, Time: time.Now().Unix()}
	req.Proof = raftcluster.JoinProof(secret, &req)
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(jctx, http.MethodPost, base+"/api/v1/cluster/join", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hreq)
	if err != nil {
		return "", fmt.Errorf("join %s: %w", n.cfg.Join, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rb, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return "", fmt.Errorf("join %s refused: %s", n.cfg.Join, e.Error)
	}
	var jr raftcluster.JoinResponse
	if err := json.Unmarshal(rb, &jr); err != nil {
		return "", fmt.Errorf("join %s: bad answer: %w", n.cfg.Join, err)
	}
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return "", err
	}
	if err := raftcluster.WriteJoined(tlsDir, ca, caPEM, jr.Cert, keyPEM); err != nil {
		return "", fmt.Errorf("join %s: %w", n.cfg.Join, err)
	}
	n.log.Info("joined the cluster: node certificate received", "member", n.cfg.Join, "cluster", jr.ClusterID)
	return jr.MemberAddr, nil
}

func httpGet(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, nil
}

// fetchCAKey copies the CA key from a member over mutual TLS, so this node
// can sign the certificates of nodes that join through it.
func (n *Node) fetchCAKey(ctx context.Context, member string) error {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := n.internalDo(fctx, http.MethodGet, member, "/internal/v1/ca-key", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("member %s: %s", member, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	return raftcluster.WriteCAKey(filepath.Join(n.cfg.DataDir, "tls"), b)
}

func (n *Node) handleCAKey(w http.ResponseWriter, _ *http.Request) {
	b := n.cluster.PKI().CAKeyPEM()
	if b == nil {
		writeWireError(w, http.StatusNotFound, store.ENotFound, "this node holds no CA key")
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(b)
}

// waitCaughtUp waits until a joining node has replicated the cluster's
// identity (the leader added it and sent it the log).
func (n *Node) waitCaughtUp(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := n.store.Cluster(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("joined, but the cluster state did not arrive: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// ensureJoinSecret creates the first join secret (first start, or a data
// directory from before joins existed).
func (n *Node) ensureJoinSecret(ctx context.Context) error {
	if _, err := n.store.JoinSecret(); err == nil || !n.cluster.IsLeader() {
		return nil
	}
	_, err := n.Propose(ctx, store.CmdSetJoinSecret, store.SetJoinSecret{Secret: raftcluster.NewJoinSecret(), IfMissing: true})
	return err
}

// joinCommand is the command that joins a node through this one.
func (n *Node) joinCommand(ctx context.Context, rotate bool) (string, string, error) {
	if rotate {
		if _, err := n.Propose(ctx, store.CmdSetJoinSecret, store.SetJoinSecret{Secret: raftcluster.NewJoinSecret()}); err != nil {
			return "", "", err
		}
	}
	js, err := n.store.JoinSecret()
	if err != nil {
		return "", "", store.Errorf(store.EUnavailable, "this cluster has no join token yet")
	}
	tok := raftcluster.FormatToken(n.cluster.PKI().CAHash(), js.Secret)
	_, hport, _ := net.SplitHostPort(n.cfg.HTTPAddr)
	return fmt.Sprintf("gantry server --join %s --token %s", net.JoinHostPort(n.cl.adv, hport), tok), tok, nil
}

// handleJoin is the member's side: check the proof, sign the certificate,
// add the node to Raft as a non-voter (through the leader).
func (n *Node) handleJoin(ctx context.Context, body []byte) (any, error) {
	var req raftcluster.JoinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, store.Errorf(store.EInvalid, "join request: %v", err)
	}
	js, err := n.store.JoinSecret()
	if err != nil {
		return nil, store.Errorf(store.EUnavailable, "this cluster has no join token yet")
	}
	if !raftcluster.CheckJoinProof(js.Secret, &req, time.Now()) {
		n.log.Warn("join refused: bad proof", "name", req.Name, "addr", req.RaftAddr)
		return nil, store.Errorf(store.EUnauthorized, "the join token's secret is not valid for this cluster (mistyped, or rotated: print the current one with 'gantry cluster join-command')")
	}
	if !validNodeName(req.Name) {
		return nil, store.Errorf(store.EInvalid, "node name %q: use letters, digits, '.', '-' or '_'", req.Name)
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		return nil, store.Errorf(store.EInvalid, "raft address %q: want host:port", req.RaftAddr)
	}
	if old, err := n.store.Node(req.Name); err == nil && old.State != store.NodeDown && old.Addr != req.RaftAddr {
		return nil, store.Errorf(store.EConflict, "a node named %s (at %s) is already a member; pick another --name or remove it first", req.Name, old.Addr)
	}
	cert, err := n.cluster.PKI().SignCSR(req.CSR, req.Name, req.Host)
	if err != nil {
		return nil, store.Errorf(store.EInvalid, "join request: %v", err)
	}
	if err := n.addMember(ctx, req.Name, req.RaftAddr); err != nil {
		return nil, err
	}
	n.log.Info("node joined as a non-voter", "node", req.Name, "addr", req.RaftAddr)
	return raftcluster.JoinResponse{Cert: cert, ClusterID: n.clusterID, MemberAddr: n.cluster.Addr()}, nil
}

type memberChange struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// addMember adds a non-voter on the leader, forwarding when needed.
func (n *Node) addMember(ctx context.Context, id, addr string) error {
	return n.onLeader(ctx, func() error { return n.cluster.AddNonvoter(id, addr) },
		http.MethodPost, "/internal/v1/members", memberChange{ID: id, Addr: addr})
}

func (n *Node) removeMember(ctx context.Context, id string) error {
	return n.onLeader(ctx, func() error { return n.cluster.RemoveServer(id) },
		http.MethodDelete, "/internal/v1/members/"+id, nil)
}

// onLeader runs a membership change here when this node leads, or asks the
// leader to run it.
func (n *Node) onLeader(ctx context.Context, local func() error, method, path string, body any) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if n.cluster.IsLeader() {
			err = local()
			if !errors.Is(err, raftcluster.ErrNotLeader) {
				if err != nil {
					return fmt.Errorf("raft membership change: %w", err)
				}
				return nil
			}
		} else if addr, _ := n.cluster.Leader(); addr != "" {
			var b []byte
			if body != nil {
				b, _ = json.Marshal(body)
			}
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			resp, derr := n.internalDo(cctx, method, addr, path, b)
			if derr == nil {
				rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				cancel()
				switch {
				case resp.StatusCode < 300:
					return nil
				case resp.StatusCode != statusNotLeader:
					return fmt.Errorf("leader %s: %s: %s", addr, resp.Status, bytes.TrimSpace(rb))
				}
			} else {
				cancel()
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return store.Errorf(store.EUnavailable, "no leader to change the membership; try again")
		}
		time.Sleep(50 * time.Millisecond) // waiting for an election, not for a state
	}
}

func (n *Node) handleAddMember(w http.ResponseWriter, r *http.Request) {
	var mc memberChange
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&mc); err != nil || mc.ID == "" {
		writeWireError(w, http.StatusBadRequest, store.EInvalid, "bad member")
		return
	}
	n.memberChange(w, func() error { return n.cluster.AddNonvoter(mc.ID, mc.Addr) })
}

func (n *Node) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n.memberChange(w, func() error { return n.cluster.RemoveServer(id) })
}

func (n *Node) memberChange(w http.ResponseWriter, fn func() error) {
	if !n.cluster.IsLeader() {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	err := fn()
	if errors.Is(err, raftcluster.ErrNotLeader) {
		writeWireError(w, statusNotLeader, store.EUnavailable, "not the leader")
		return
	}
	if err != nil {
		writeWireError(w, http.StatusInternalServerError, store.EInternal, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeNode takes a node out of Raft and out of the state; its running
// attempts end with node_lost and are rescheduled.
func (n *Node) removeNode(ctx context.Context, name string) (any, error) {
	if _, id := n.cluster.Leader(); id == name {
		return nil, store.Errorf(store.EConflict, "node %s leads the cluster; stop it (another node takes over) and remove it then", name)
	}
	servers, err := n.cluster.Servers()
	if err != nil {
		return nil, err
	}
	_, nerr := n.store.Node(name)
	if !memberOf(servers, name) && errors.Is(nerr, store.ErrNotFound) {
		return nil, store.Errorf(store.ENotFound, "node %q not found", name)
	}
	if memberOf(servers, name) {
		if err := n.removeMember(ctx, name); err != nil {
			return nil, err
		}
	}
	if nerr == nil {
		return n.Propose(ctx, store.CmdRemoveNode, store.RemoveNode{Name: name})
	}
	return &store.Node{Name: name, State: "removed"}, nil
}

// clusterAdmin adapts the node to the API's cluster interface.
type clusterAdmin struct{ n *Node }

func (c clusterAdmin) CACert() []byte { return c.n.cluster.PKI().CAPEM }
func (c clusterAdmin) Join(ctx context.Context, body []byte) (any, error) {
	return c.n.handleJoin(ctx, body)
}
func (c clusterAdmin) JoinCommand(ctx context.Context, rotate bool) (string, string, error) {
	return c.n.joinCommand(ctx, rotate)
}
func (c clusterAdmin) RemoveNode(ctx context.Context, name string) (any, error) {
	return c.n.removeNode(ctx, name)
}
func (c clusterAdmin) Linearize(ctx context.Context) error { return c.n.Linearize(ctx) }
func (c clusterAdmin) Members(context.Context) (any, error) {
	s, err := c.n.cluster.Servers()
	if err != nil {
		return nil, err
	}
	_, leader := c.n.cluster.Leader()
	type member struct {
		raftcluster.Server
		Leader bool `json:"leader"`
	}
	out := make([]member, 0, len(s))
	for _, m := range s {
		out = append(out, member{Server: m, Leader: m.ID == leader})
	}
	return out, nil
}
func (c clusterAdmin) NodeLog(ctx context.Context, node, job string, task, attempt int, follow bool) (io.ReadCloser, error) {
	return c.n.remoteLog(ctx, node, job, task, attempt, follow)
}

// adoptCAKey copies the CA key from the member a node just joined through
// and reloads the node's PKI with it. Without it the node still works but
// cannot sign the certificates of nodes joining through it.
func (n *Node) adoptCAKey(ctx context.Context, member string, pki *raftcluster.PKI, adv string) {
	if err := n.fetchCAKey(ctx, member); err != nil {
		n.log.Warn("could not copy the CA key; joins through this node will fail", "member", member, "err", err)
		return
	}
	p, err := raftcluster.LoadOrCreatePKI(filepath.Join(n.cfg.DataDir, "tls"), n.cfg.Name, []string{adv})
	if err != nil {
		n.log.Warn("reload certificates", "err", err)
		return
	}
	*pki = *p
}

// bannerJoinCommand is the join command for the first-start banner.
func (n *Node) bannerJoinCommand(adv, port string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd, _, err := n.joinCommand(ctx, false)
	if err != nil {
		return "gantry server --join " + net.JoinHostPort(adv, port) + " --token <see 'gantry cluster join-command'>"
	}
	return cmd
}
