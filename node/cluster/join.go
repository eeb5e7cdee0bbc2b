package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	// HTTPS unless the operator wrote http://: a member serves plain HTTP
	// only to the clients its --http-plain-from names (loopback by default).
	base := cfg.Member
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	base = strings.TrimRight(base, "/")
	var pinned atomic.Pointer[x509.Certificate]
	tr := joinTransport(&pinned)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: tr}
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
	// From here on the member must present a certificate the pinned CA
	// (or, for an operator's --tls-cert, the system's roots) vouches for:
	// the CA came over a connection nothing verified, so it is dropped.
	pinned.Store(ca)
	tr.CloseIdleConnections()
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

// joinTransport is the joining side's HTTP transport: before the CA is
// pinned it accepts any certificate (the CA it fetches is checked against
// the token's hash, and nothing secret is sent); after, a connection is
// accepted when the pinned CA issued the member's certificate, for any of
// its names, or when the system's roots verify it for the host dialled.
func joinTransport(pinned *atomic.Pointer[x509.Certificate]) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			ca := pinned.Load()
			if ca == nil {
				return nil
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the member presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err == nil {
				return nil
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Intermediates: inter, DNSName: cs.ServerName}); err == nil && cs.ServerName != "" {
				return nil
			}
			return errors.New("the member's certificate is not issued by the cluster CA the token pins (nor trusted by this machine): is the --join address a member of that cluster?")
		}}
	return t
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
// began, so its first heartbeat can get it promoted at once. The target is
// the last committed entry the store applies, not the commit index, which
// after an election is the new leader's no-op (raftcluster
// CommittedFSMIndex).
func (c *Cluster) WaitCaughtUp(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var target uint64
	for {
		if _, err := c.st.Cluster(); err == nil {
			if target == 0 {
				target = c.raft.CommittedFSMIndex()
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
