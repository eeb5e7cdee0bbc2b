package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"gantry/raftcluster"
	"gantry/store"
)

// EnsureJoinSecret creates the first join secret (first start, or a data
// directory from before joins existed).
func (c *Cluster) EnsureJoinSecret(ctx context.Context) error {
	if _, err := c.st.JoinSecret(); err == nil || !c.raft.IsLeader() {
		return nil
	}
	_, err := store.CmdSetJoinSecret.Propose(ctx, c, store.SetJoinSecret{Secret: raftcluster.NewJoinSecret(), IfMissing: true})
	return err
}

// JoinCommand returns the command that joins a node through this one and
// its token, first replacing the join secret when rotate is set (every
// older token stops working).
func (c *Cluster) JoinCommand(ctx context.Context, rotate bool) (string, string, error) {
	if rotate {
		if _, err := store.CmdSetJoinSecret.Propose(ctx, c, store.SetJoinSecret{Secret: raftcluster.NewJoinSecret()}); err != nil {
			return "", "", err
		}
	}
	js, err := c.st.JoinSecret()
	if err != nil {
		return "", "", store.Errorf(store.EUnavailable, "this cluster has no join token yet")
	}
	tok := raftcluster.FormatToken(c.raft.PKI().CAHash(), js.Secret)
	return fmt.Sprintf("gantry server --join %s --token %s", joinHostPort(c.cfg.Advertise, c.cfg.HTTPPort), tok), tok, nil
}

// Admit is the member's side of a join: check the proof, sign the
// certificate, add the node to Raft as a non-voter (through the leader).
// A wrong or rotated token is EUnauthorized; a name taken by another live
// node is EConflict.
func (c *Cluster) Admit(ctx context.Context, body []byte) (any, error) {
	var req raftcluster.JoinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, store.Errorf(store.EInvalid, "join request: %v", err)
	}
	js, err := c.st.JoinSecret()
	if err != nil {
		return nil, store.Errorf(store.EUnavailable, "this cluster has no join token yet")
	}
	if !raftcluster.CheckJoinProof(js.Secret, &req, time.Now()) {
		c.log.Warn("join refused: bad proof", "name", req.Name, "addr", req.RaftAddr)
		return nil, store.Errorf(store.EUnauthorized, "the join token's secret is not valid for this cluster (mistyped, or rotated: print the current one with 'gantry cluster join-command')")
	}
	if !ValidNodeName(req.Name) {
		return nil, store.Errorf(store.EInvalid, "node name %q: use letters, digits, '.', '-' or '_'", req.Name)
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		return nil, store.Errorf(store.EInvalid, "raft address %q: want host:port", req.RaftAddr)
	}
	if old, err := c.st.Node(req.Name); err == nil && old.State != store.NodeDown && old.Addr != req.RaftAddr {
		return nil, store.Errorf(store.EConflict, "a node named %s (at %s) is already a member; pick another --name or remove it first", req.Name, old.Addr)
	}
	cert, err := c.raft.PKI().SignCSR(req.CSR, req.Name, req.Host)
	if err != nil {
		return nil, store.Errorf(store.EInvalid, "join request: %v", err)
	}
	if err := c.addMember(ctx, req.Name, req.RaftAddr); err != nil {
		return nil, err
	}
	c.log.Info("node joined as a non-voter", "node", req.Name, "addr", req.RaftAddr)
	return raftcluster.JoinResponse{Cert: cert, ClusterID: clusterID(c.st), MemberAddr: c.raft.Addr()}, nil
}

type memberChange struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// addMember adds a non-voter on the leader, forwarding when needed.
func (c *Cluster) addMember(ctx context.Context, id, addr string) error {
	return c.onLeader(ctx, func() error { return c.raft.AddNonvoter(id, addr) },
		http.MethodPost, "/internal/v1/members", memberChange{ID: id, Addr: addr})
}

func (c *Cluster) removeMember(ctx context.Context, id string) error {
	return c.onLeader(ctx, func() error { return c.raft.RemoveServer(id) },
		http.MethodDelete, "/internal/v1/members/"+id, nil)
}

// onLeader runs a membership change here when this node leads, or asks the
// leader to run it.
func (c *Cluster) onLeader(ctx context.Context, local func() error, method, path string, body any) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if c.raft.IsLeader() {
			err = local()
			if !errors.Is(err, raftcluster.ErrNotLeader) {
				if err != nil {
					return fmt.Errorf("raft membership change: %w", err)
				}
				return nil
			}
		} else if addr, _ := c.raft.Leader(); addr != "" {
			var b []byte
			if body != nil {
				b, _ = json.Marshal(body)
			}
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			resp, derr := c.internalDo(cctx, method, addr, path, b)
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

func (c *Cluster) handleAddMember(w http.ResponseWriter, r *http.Request) {
	var mc memberChange
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&mc); err != nil || mc.ID == "" {
		writeWireError(w, http.StatusBadRequest, store.EInvalid, "bad member")
		return
	}
	c.memberChange(w, func() error { return c.raft.AddNonvoter(mc.ID, mc.Addr) })
}

func (c *Cluster) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.memberChange(w, func() error { return c.raft.RemoveServer(id) })
}

func (c *Cluster) memberChange(w http.ResponseWriter, fn func() error) {
	if !c.raft.IsLeader() {
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

// RemoveNode takes a node out of Raft and out of the state; its running
// attempts end with node_lost and are rescheduled. Removing the leader is
// EConflict; an unknown node ENotFound.
func (c *Cluster) RemoveNode(ctx context.Context, name string) (*store.Node, error) {
	if _, id := c.raft.Leader(); id == name {
		return nil, store.Errorf(store.EConflict, "node %s leads the cluster; stop it (another node takes over) and remove it then", name)
	}
	servers, err := c.raft.Servers()
	if err != nil {
		return nil, err
	}
	_, nerr := c.st.Node(name)
	if !memberOf(servers, name) && errors.Is(nerr, store.ErrNotFound) {
		return nil, store.Errorf(store.ENotFound, "node %q not found", name)
	}
	if memberOf(servers, name) {
		if err := c.removeMember(ctx, name); err != nil {
			return nil, err
		}
	}
	if nerr == nil {
		return store.CmdRemoveNode.Propose(ctx, c, store.RemoveNode{Name: name})
	}
	return &store.Node{Name: name, State: "removed"}, nil
}

// Member is one server of the Raft configuration, as the API lists it.
type Member struct {
	raftcluster.Server
	Leader bool `json:"leader"`
}

// Members lists the Raft configuration.
func (c *Cluster) Members(context.Context) ([]Member, error) {
	s, err := c.raft.Servers()
	if err != nil {
		return nil, err
	}
	_, leader := c.raft.Leader()
	out := make([]Member, 0, len(s))
	for _, m := range s {
		out = append(out, Member{Server: m, Leader: m.ID == leader})
	}
	return out, nil
}

// CACert is the cluster CA certificate (PEM): public, pinned by joiners.
func (c *Cluster) CACert() []byte { return c.raft.PKI().CAPEM }

func (c *Cluster) handleCAKey(w http.ResponseWriter, _ *http.Request) {
	b := c.raft.PKI().CAKeyPEM()
	if b == nil {
		writeWireError(w, http.StatusNotFound, store.ENotFound, "this node holds no CA key")
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(b)
}

func clusterID(st *store.Store) string {
	if info, err := st.Cluster(); err == nil {
		return info.ID
	}
	return ""
}

func joinHostPort(host, port string) string { return net.JoinHostPort(host, port) }
