package raftcluster

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Connection kinds on the cluster port, sent as the first byte after the
// TLS handshake.
const (
	kindRaft     byte = 'R'
	kindInternal byte = 'H'
)

// mux accepts mutual-TLS connections on the cluster port and hands each to
// the Raft transport or the internal API by its first byte.
type mux struct {
	ln       net.Listener
	raft     *chanListener
	internal *chanListener
	once     sync.Once
}

func newMux(ln net.Listener, cfg *tls.Config) *mux {
	m := &mux{ln: tls.NewListener(ln, cfg)}
	m.raft = newChanListener(ln.Addr())
	m.internal = newChanListener(ln.Addr())
	go m.serve()
	return m
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.raft.close()
			m.internal.close()
			return
		}
		go m.route(c)
	}
}

func (m *mux) route(c net.Conn) {
	// A peer that cannot complete the handshake or name its kind in time is
	// dropped; this is where clients without a node certificate stop.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	tc := c.(*tls.Conn)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch b[0] {
	case kindRaft:
		m.raft.deliver(c)
	case kindInternal:
		m.internal.deliver(c)
	default:
		c.Close()
	}
}

func (m *mux) Close() error {
	var err error
	m.once.Do(func() { err = m.ln.Close() })
	return err
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr   net.Addr
	c      chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, c: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.c <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, errors.New("listener closed")
	}
}

func (l *chanListener) close()         { l.closer.Do(func() { close(l.done) }) }
func (l *chanListener) Close() error   { l.close(); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// dialKind opens a mutual-TLS connection to a peer's cluster port for kind,
// from source address src when it is set.
func dialKind(addr string, timeout time.Duration, cfg *tls.Config, kind byte, src *net.TCPAddr) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if src != nil {
		d.LocalAddr = src
	}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sourceAddr is the address a node dials its peers from: its advertised
// address when that is a loopback address (several nodes on one machine,
// each on its own 127.x address, as tests run them), so peers and firewall
// rules see which node a connection comes from; nil lets the kernel choose.
func sourceAddr(advertise string) *net.TCPAddr {
	host, _, err := net.SplitHostPort(advertise)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil
	}
	return &net.TCPAddr{IP: ip}
}
