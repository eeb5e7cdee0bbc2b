package raftcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
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
	"time"

	"github.com/hashicorp/raft"
)

// PKI is the cluster's certificate authority and this node's certificate.
// The CA signs node certificates; every cluster connection is mutual TLS
// with certificates from this CA.
type PKI struct {
	CACert  *x509.Certificate
	CAPEM   []byte
	caKey   *ecdsa.PrivateKey // nil on nodes that do not hold the CA key
	NodeTLS tls.Certificate
	Pool    *x509.CertPool
}

// CAHash is the SHA-256 of the CA certificate's DER, as put in join tokens.
func (p *PKI) CAHash() string {
	sum := sha256.Sum256(p.CACert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// LoadOrCreatePKI loads dir/ca.pem, ca.key, node.pem, node.key, creating a
// new CA and node certificate when none exist (first node of a cluster).
func LoadOrCreatePKI(dir, nodeName string, hosts []string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create tls dir: %w", err)
	}
	caPath := filepath.Join(dir, "ca.pem")
	if _, err := os.Stat(caPath); errors.Is(err, os.ErrNotExist) {
		if err := createCA(dir); err != nil {
			return nil, err
		}
	}
	p, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	nodePath := filepath.Join(dir, "node.pem")
	if _, err := os.Stat(nodePath); errors.Is(err, os.ErrNotExist) {
		if p.caKey == nil {
			return nil, fmt.Errorf("no node certificate in %s and no CA key to sign one", dir)
		}
		certPEM, keyPEM, err := p.SignNode(nodeName, hosts)
		if err != nil {
			return nil, err
		}
		if err := writeFile(nodePath, certPEM, 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(dir, "node.key"), keyPEM, 0o600); err != nil {
			return nil, err
		}
	}
	cert, err := tls.LoadX509KeyPair(nodePath, filepath.Join(dir, "node.key"))
	if err != nil {
		return nil, fmt.Errorf("load node certificate: %w", err)
	}
	p.NodeTLS = cert
	return p, nil
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

func createCA(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Gantry cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func loadCA(dir string) (*PKI, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return nil, fmt.Errorf("read CA: no PEM block")
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	p := &PKI{CACert: ca, CAPEM: caPEM, Pool: x509.NewCertPool()}
	p.Pool.AddCert(ca)
	if kb, err := os.ReadFile(filepath.Join(dir, "ca.key")); err == nil {
		kblk, _ := pem.Decode(kb)
		if kblk == nil {
			return nil, fmt.Errorf("read CA key: no PEM block")
		}
		if p.caKey, err = x509.ParseECPrivateKey(kblk.Bytes); err != nil {
			return nil, fmt.Errorf("parse CA key: %w", err)
		}
	}
	return p, nil
}

// SignNode issues a node certificate (server and client auth) for name and
// the given hosts (IPs or DNS names).
func (p *PKI) SignNode(name string, hosts []string) (certPEM, keyPEM []byte, err error) {
	if p.caKey == nil {
		return nil, nil, errors.New("this node does not hold the CA key")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
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
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CACert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign node certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// ServerTLS requires and verifies client certificates from the cluster CA.
func (p *PKI) ServerTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.NodeTLS},
		ClientCAs:    p.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// ClientTLS presents this node's certificate and trusts only the cluster CA.
func (p *PKI) ClientTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.NodeTLS},
		RootCAs:      p.Pool,
		MinVersion:   tls.VersionTLS13,
		// Peers are addressed by advertise address; we verify the chain
		// against the cluster CA and accept any node certificate it issued.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return p.verifyPeer(raw)
		},
	}
}

func (p *PKI) verifyPeer(raw [][]byte) error {
	if len(raw) == 0 {
		return errors.New("peer sent no certificate")
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("parse peer certificate: %w", err)
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: p.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("peer certificate not from the cluster CA: %w", err)
	}
	return nil
}

// tlsStream is a raft.StreamLayer over the mux's Raft connections.
type tlsStream struct {
	ln        net.Listener
	advertise net.Addr
	client    *tls.Config
	src       *net.TCPAddr
}

var _ raft.StreamLayer = (*tlsStream)(nil)

func (s *tlsStream) Accept() (net.Conn, error) { return s.ln.Accept() }
func (s *tlsStream) Close() error              { return s.ln.Close() }
func (s *tlsStream) Addr() net.Addr            { return s.advertise }

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialKind(string(addr), timeout, s.client, kindRaft, s.src)
}
