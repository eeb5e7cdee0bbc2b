package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gantry/raftcluster"
)

// JoinConfig is what the joining side of the join protocol needs.
type JoinConfig struct {
	Member  string // the HTTP address of a member, from --join
	Token   string // the join token, from --token
	Name    string // this node's name
	TLSDir  string // where the certificates go (DATA/tls)
	Host    string // this node's advertise host, put in its certificate
	Cluster string // this node's cluster address (host:port) other nodes dial
	Logger  *slog.Logger
}

// Join runs the joining side of the join protocol on a node started with
// --join and no certificate yet (see DESIGN.md): fetch the CA from the
// member, pin it by the token's hash, prove the secret with an HMAC over a
// certificate request, store the signed certificate. It returns the
// member's cluster address ("" when the node holds a certificate already
// and nothing was done). A wrong token, an intercepted CA or a refusal is
// an error that says so.
func Join(ctx context.Context, cfg JoinConfig) (string, error) {
	tlsDir := cfg.TLSDir
	if _, err := os.Stat(filepath.Join(tlsDir, "node.pem")); err == nil {
		return "", nil // joined before: restart with the certificate we have
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Token == "" {
		return "", errors.New("--join needs --token (print it on a member with 'gantry cluster join-command')")
	}
	caHash, secret, err := raftcluster.ParseToken(cfg.Token)
	if err != nil {
		return "", err
	}
	base := cfg.Member
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")
	hc := &http.Client{Timeout: 30 * time.Second}
	jctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	caPEM, err := httpGet(jctx, hc, base+"/api/v1/cluster/ca")
	if err != nil {
		return "", fmt.Errorf("join %s: fetch the cluster CA: %w", cfg.Member, err)
	}
	ca, err := raftcluster.PinCA(caPEM, caHash)
	if err != nil {
		return "", fmt.Errorf("join %s refused: %w", cfg.Member, err)
	}
	keyPEM, csrPEM, err := raftcluster.NewNodeKey(cfg.Name)
	if err != nil {
		return "", err
	}
	req := raftcluster.JoinRequest{Name: cfg.Name, RaftAddr: cfg.Cluster, Host: cfg.Host, CSR: csrPEM, Time: time.Now().Unix()}
	req.Proof = raftcluster.JoinProof(secret, &req)
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(jctx, http.MethodPost, base+"/api/v1/cluster/join", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hreq)
	if err != nil {
		return "", fmt.Errorf("join %s: %w", cfg.Member, err)
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
		return "", fmt.Errorf("join %s refused: %s", cfg.Member, e.Error)
	}
	var jr raftcluster.JoinResponse
	if err := json.Unmarshal(rb, &jr); err != nil {
		return "", fmt.Errorf("join %s: bad answer: %w", cfg.Member, err)
	}
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return "", err
	}
	if err := raftcluster.WriteJoined(tlsDir, ca, caPEM, jr.Cert, keyPEM); err != nil {
		return "", fmt.Errorf("join %s: %w", cfg.Member, err)
	}
	cfg.Logger.Info("joined the cluster: node certificate received", "member", cfg.Member, "cluster", jr.ClusterID)
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

// AdoptCAKey copies the CA key from the member a node just joined through
// and reloads the node's PKI with it. Without it the node still works but
// cannot sign the certificates of nodes joining through it.
func (c *Cluster) AdoptCAKey(ctx context.Context, member string) {
	pki := c.raft.PKI()
	if err := c.fetchCAKey(ctx, member); err != nil {
		c.log.Warn("could not copy the CA key; joins through this node will fail", "member", member, "err", err)
		return
	}
	p, err := raftcluster.LoadOrCreatePKI(c.cfg.TLSDir, c.cfg.Name, []string{c.cfg.Advertise})
	if err != nil {
		c.log.Warn("reload certificates", "err", err)
		return
	}
	*pki = *p
}

// fetchCAKey copies the CA key from a member over mutual TLS, so this node
// can sign the certificates of nodes that join through it.
func (c *Cluster) fetchCAKey(ctx context.Context, member string) error {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.internalDo(fctx, http.MethodGet, member, "/internal/v1/ca-key", nil)
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
	return raftcluster.WriteCAKey(c.cfg.TLSDir, b)
}

// WaitCaughtUp waits until a joining node has replicated the cluster's
// identity and applied everything the leader had committed when the wait
// began, so its first heartbeat can get it promoted at once.
func (c *Cluster) WaitCaughtUp(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var target uint64
	for {
		if _, err := c.st.Cluster(); err == nil {
			if target == 0 {
				target = c.raft.CommitIndex()
			}
			if c.st.AppliedIndex() >= target {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("joined, but the cluster state did not arrive: %w", ctx.Err())
		case <-t.C:
		}
	}
}
