// Package httpsmux lets one TCP port speak both TLS and plain HTTP: it
// peeks at the first byte of each accepted connection; a TLS handshake
// (0x16) is served over TLS, anything else is served as plain HTTP only when
// the client's address is trusted (loopback by default) and is otherwise
// answered with a short plain-text 400 that names the https:// address.
// It owns the decision and the listener; it knows nothing of routes or of
// where certificates come from.
package httpsmux

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// peekTimeout bounds how long a new connection may stay silent before its
// first byte decides how it is served.
const peekTimeout = 10 * time.Second

// Kind is how a connection is served.
type Kind int

const (
	// Refused: plain HTTP from an address that must use TLS.
	Refused Kind = iota
	// Plain: plain HTTP from a trusted address.
	Plain
	// TLS: a TLS handshake.
	TLS
)

// Decide says how a connection whose first byte is first, from remote, is
// served; plainOK reports whether remote may speak plain HTTP (nil:
// loopback addresses only).
func Decide(first byte, remote net.Addr, plainOK func(net.IP) bool) Kind {
	if first == 0x16 {
		return TLS
	}
	if plainOK == nil {
		plainOK = net.IP.IsLoopback
	}
	if tcp, ok := remote.(*net.TCPAddr); ok && plainOK(tcp.IP) {
		return Plain
	}
	return Refused
}

// Listener wraps a TCP listener; Accept returns TLS connections (as
// *tls.Conn, so net/http fills in Request.TLS) and trusted plain ones.
type Listener struct {
	inner   net.Listener
	tls     *tls.Config
	plainOK func(net.IP) bool
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error // why the inner listener stopped, when not closed
}

// New starts accepting on inner. cfg serves TLS connections; plainOK says
// which client addresses may speak plain HTTP (nil: loopback).
func New(inner net.Listener, cfg *tls.Config, plainOK func(net.IP) bool) *Listener {
	l := &Listener{inner: inner, tls: cfg, plainOK: plainOK, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.mu.Lock()
			select {
			case <-l.done:
			default:
				l.err = err
			}
			l.mu.Unlock()
			l.Close()
			return
		}
		go l.sort(c)
	}
}

func (l *Listener) sort(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(peekTimeout))
	br := bufio.NewReaderSize(c, 512)
	b, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peeked{Conn: c, r: br}
	var out net.Conn
	switch Decide(b[0], c.RemoteAddr(), l.plainOK) {
	case TLS:
		out = tls.Server(pc, l.tls)
	case Plain:
		out = pc
	default:
		refuse(pc, c.LocalAddr())
		return
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

// refuse answers a plain-HTTP request from an untrusted address.
func refuse(c net.Conn, local net.Addr) {
	defer c.Close()
	msg := fmt.Sprintf("This port speaks HTTPS to clients beyond this machine: use https://%s/\n", local)
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
}

// Accept returns the next served connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() { close(l.done); err = l.inner.Close() })
	return err
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// peeked is a connection whose first bytes were read into r.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

// ParsePlainFrom reads the addresses plain HTTP is served to (the server's
// --http-plain-from): a comma list of "loopback" (every loopback address),
// IP addresses and CIDR networks, or "none" (TLS from everyone). Empty is
// "loopback". A malformed item is an error naming it.
func ParsePlainFrom(s string) (func(net.IP) bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = "loopback"
	}
	var loopback bool
	var nets []*net.IPNet
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "loopback":
			loopback = true
		case item == "none":
			if s != "none" {
				return nil, fmt.Errorf("%q: none goes alone", s)
			}
		case strings.Contains(item, "/"):
			_, n, err := net.ParseCIDR(item)
			if err != nil {
				return nil, fmt.Errorf("%q: not a network (want e.g. 10.0.0.0/8)", item)
			}
			nets = append(nets, n)
		default:
			ip := net.ParseIP(item)
			if ip == nil {
				return nil, fmt.Errorf("%q: not an address (want loopback, none, an IP address or a CIDR network)", item)
			}
			bits := 8 * len(ip.To16())
			if ip4 := ip.To4(); ip4 != nil {
				ip, bits = ip4, 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
		}
	}
	return func(ip net.IP) bool {
		if loopback && ip.IsLoopback() {
			return true
		}
		for _, n := range nets {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}, nil
}
