package raftcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Join tokens look like Docker Swarm's: a version, the SHA-256 of the
// cluster CA certificate (pinned by the joining node before it sends
// anything secret) and the join secret, separated by '-':
//
//	gantry1-<64 hex: sha256 of the CA certificate DER>-<64 hex: secret>
const tokenVersion = "gantry1"

// ErrBadToken is returned by ParseToken for a token that is not well formed.
var ErrBadToken = errors.New("invalid join token: want gantry1-<CA hash>-<secret>, as printed by 'gantry cluster join-command'")

// FormatToken builds a join token from the CA hash ("sha256:<hex>" or hex)
// and the join secret.
func FormatToken(caHash, secret string) string {
	return tokenVersion + "-" + strings.TrimPrefix(caHash, "sha256:") + "-" + secret
}

// ParseToken splits a token into the pinned CA hash (hex) and the secret.
func ParseToken(tok string) (caHash, secret string, err error) {
	parts := strings.Split(strings.TrimSpace(tok), "-")
	if len(parts) != 3 || parts[0] != tokenVersion || len(parts[1]) != 64 || len(parts[2]) < 32 {
		return "", "", ErrBadToken
	}
	if _, err := hex.DecodeString(parts[1]); err != nil {
		return "", "", ErrBadToken
	}
	return strings.ToLower(parts[1]), parts[2], nil
}

// NewJoinSecret returns a fresh random join secret (64 hex digits).
func NewJoinSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// JoinRequest is what a joining node sends to a member. It carries no
// secret: Proof is an HMAC keyed by the join secret over everything else, so
// the request can travel over plain HTTP and a replay yields a certificate
// for a key the attacker does not hold.
type JoinRequest struct {
	Name     string `json:"name"`
	RaftAddr string `json:"raft_addr"` // host:port of the joining node's cluster port
	Host     string `json:"host"`      // advertise host, put in the certificate
	CSR      []byte `json:"csr"`       // PEM certificate request
	Time     int64  `json:"time"`      // unix seconds, bounds replays
	Proof    string `json:"proof"`
}

// JoinResponse is a member's answer: the signed node certificate and where
// to reach the member's cluster port.
type JoinResponse struct {
	Cert       []byte `json:"cert"`
	ClusterID  string `json:"cluster_id"`
	MemberAddr string `json:"member_addr"`
}

// JoinProof is the HMAC-SHA256 of the request's fields keyed by secret.
func JoinProof(secret string, r *JoinRequest) string {
	m := hmac.New(sha256.New, []byte(secret))
	for _, s := range []string{"gantry-join-v1", r.Name, r.RaftAddr, r.Host, string(r.CSR), strconv.FormatInt(r.Time, 10)} {
		m.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// CheckJoinProof verifies r.Proof against secret and that r is recent.
func CheckJoinProof(secret string, r *JoinRequest, now time.Time) bool {
	if d := now.Sub(time.Unix(r.Time, 0)); d > 10*time.Minute || d < -10*time.Minute {
		return false
	}
	return hmac.Equal([]byte(JoinProof(secret, r)), []byte(r.Proof))
}

// PinCA parses a CA certificate and checks its SHA-256 against the hash from
// a token.
func PinCA(caPEM []byte, wantHex string) (*x509.Certificate, error) {
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return nil, errors.New("the member sent no CA certificate")
	}
	sum := sha256.Sum256(blk.Bytes)
	if got := hex.EncodeToString(sum[:]); got != wantHex {
		return nil, fmt.Errorf("the cluster CA does not match the token (CA sha256 %s…, token pins %s…): wrong token, or the connection is intercepted", got[:12], wantHex[:12])
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return ca, nil
}

// NewNodeKey returns a node key and a certificate request for it.
func NewNodeKey(name string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// SignCSR issues a node certificate for the key in csrPEM (whose signature
// proves possession of the key), named name, valid for host.
func (p *PKI) SignCSR(csrPEM []byte, name, host string) ([]byte, error) {
	if p.caKey == nil {
		return nil, errors.New("this node does not hold the CA key")
	}
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no certificate request")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"gantry-node"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost", name},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CACert, csr.PublicKey, p.caKey)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CAKeyPEM returns the CA key in PEM, nil when this node does not hold it.
func (p *PKI) CAKeyPEM() []byte {
	if p.caKey == nil {
		return nil
	}
	kb, err := x509.MarshalECPrivateKey(p.caKey)
	if err != nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// HasCAKey reports whether this node can sign node certificates.
func (p *PKI) HasCAKey() bool { return p.caKey != nil }

// WriteJoined stores what a join produced in dir (DATA/tls): the CA
// certificate, this node's certificate and key. It checks that the
// certificate was issued by ca for keyPEM's key.
func WriteJoined(dir string, ca *x509.Certificate, caPEM, certPEM, keyPEM []byte) error {
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return errors.New("the member sent no node certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("parse node certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("node certificate not signed by the pinned CA: %w", err)
	}
	kblk, _ := pem.Decode(keyPEM)
	key, err := x509.ParseECPrivateKey(kblk.Bytes)
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("node certificate is not for this node's key")
	}
	for _, f := range []struct {
		name string
		b    []byte
		mode os.FileMode
	}{{"node.key", keyPEM, 0o600}, {"node.pem", certPEM, 0o600}, {"ca.pem", caPEM, 0o644}} {
		if err := writeFile(filepath.Join(dir, f.name), f.b, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// WriteCAKey stores the CA key received from a member (over mutual TLS).
func WriteCAKey(dir string, keyPEM []byte) error {
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return errors.New("no CA key")
	}
	if _, err := x509.ParseECPrivateKey(blk.Bytes); err != nil {
		return fmt.Errorf("parse CA key: %w", err)
	}
	return writeFile(filepath.Join(dir, "ca.key"), keyPEM, 0o600)
}
