package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// NewTrusting returns a client for addr with token whose TLS connections
// trust only the CA certificates in caPEM (the CA `gantry login` pinned);
// with no caPEM it is New, trusting the system's roots. A caPEM that holds
// no certificate is an error.
func NewTrusting(addr, token string, caPEM []byte) (*Client, error) {
	c := New(addr, token)
	if len(caPEM) == 0 {
		return c, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the pinned CA holds no PEM certificate")
	}
	t := transport.Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.HTTP = &http.Client{Transport: t}
	return c, nil
}

// httpTransport is the client's transport, for the websocket dialer.
func (c *Client) httpTransport() *http.Transport {
	if t, ok := c.HTTP.Transport.(*http.Transport); ok {
		return t
	}
	return transport
}

// pinned reports whether the client trusts only a pinned CA.
func (c *Client) pinned() bool {
	t := c.httpTransport()
	return t.TLSClientConfig != nil && t.TLSClientConfig.RootCAs != nil
}

// CertError is a connection given up because the server's certificate did
// not verify: no trusted CA issued it (Pinned: not the CA pinned at login),
// or it does not name the host dialled.
type CertError struct {
	Addr   string
	Pinned bool  // the client trusted only a pinned CA
	Err    error // the crypto/x509 error
}

func (e *CertError) Error() string {
	return fmt.Sprintf("the TLS certificate of %s does not verify: %v", e.Addr, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// reachError is the error of a request that got no answer: a *CertError
// when the TLS certificate did not verify.
func (c *Client) reachError(err error) error {
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) {
		return &CertError{Addr: c.Addr, Pinned: c.pinned(), Err: ve.Err}
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ie x509.CertificateInvalidError
	if errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ie) {
		return &CertError{Addr: c.Addr, Pinned: c.pinned(), Err: err}
	}
	return fmt.Errorf("cannot reach Gantry at %s: %w", c.Addr, unwrapURLError(err))
}
