package auth

import (
	"container/list"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"gantry/store"
)

// Sign-in throttling.
//
// Every password check counts against two keys: the account named and the
// client's address. A key's first failures are free; from then on each
// failure makes the key cool down for a delay that doubles (1s, 2s, 4s
// ...) up to a cap. While a key cools down, attempts on it are refused
// with ERateLimited and a retry-after, before any password is compared,
// so bcrypt's cost is not an amplifier for an attacker. A key whose last
// failure is older than the window is forgotten. The attempt is counted
// as a failure before the password is compared and cleared when it turns
// out right, so a burst of parallel guesses cannot all slip through
// before the first one is recorded.
//
// Why two keys with different caps:
//
//   - The account key stops guesses at one account from many addresses. It
//     is capped short (AccountMax, 30s): anyone can make an account's key
//     cool down by guessing at it, so a long cap would let an attacker lock
//     the real user out. Under a sustained attack the user waits at most
//     the cap for an attempt; the attacker, from any number of addresses,
//     gets about two guesses a minute at that account.
//   - The address key stops one address from guessing at many accounts
//     (password spraying). It grows longer (AddressMax, 10 min) but allows
//     more free failures (AddressFree, 20): several people behind one NAT
//     mistype without holding each other up, and an attacker at that
//     address only delays those who share it.
//
// A right password clears the account's key and the address's key. That
// lets an attacker who has an account of their own clear their address by
// signing in between guesses; the account keys still bound what each
// target gets, and it spares the colleagues behind a shared address the
// consequences of each other's typos.
//
// API tokens are 192-bit random secrets that cannot be guessed, so a
// valid token is never refused: refusing it would stop running clients
// because someone else at their address mistyped. A failed token counts
// against a third key, the address's token key (not its password key, so
// a script looping with a revoked token does not slow its neighbours'
// sign-ins); once that cools down, failed tokens from the address are
// answered 429 instead of 401, telling the client when to come back.
//
// The address is the connection's peer (net/http's RemoteAddr); an IPv6
// address counts as its /64, which one host usually holds whole.
// X-Forwarded-For is not believed: anyone can write it. Behind a reverse
// proxy, every client shares the proxy's address key.
//
// The state is per node and in memory: a restart forgets it, and an
// attacker spreading guesses over the nodes of a cluster gets one
// allowance per node. The table holds at most MaxEntries keys and drops
// the least recently failed when full; refused attempts add no keys, so
// filling it takes many addresses.

// Limits configure a Limiter; a zero field takes the default in
// DefaultLimits.
type Limits struct {
	// AccountFree and AddressFree are the failures a key allows before
	// it starts cooling down.
	AccountFree, AddressFree int
	// Base is the first cool-down; each further failure doubles it.
	Base time.Duration
	// AccountMax and AddressMax cap the cool-down of each kind of key.
	AccountMax, AddressMax time.Duration
	// Window is how long a key remembers its last failure.
	Window time.Duration
	// MaxEntries bounds the keys kept.
	MaxEntries int
	// Now is the clock (tests pass a fake one).
	Now func() time.Time
}

// DefaultLimits are the limits of a node.
var DefaultLimits = Limits{
	AccountFree: 5, AddressFree: 20,
	Base:       time.Second,
	AccountMax: 30 * time.Second, AddressMax: 10 * time.Minute,
	Window:     15 * time.Minute,
	MaxEntries: 50000,
	Now:        time.Now,
}

// Limiter throttles failed sign-ins; it is safe for concurrent use.
type Limiter struct {
	lim Limits

	mu   sync.Mutex
	keys map[string]*list.Element // of *entry
	lru  *list.List               // least recently failed first
}

type entry struct {
	key      string
	failures int
	last     time.Time // the last failure
	until    time.Time // refused before this
}

// Key kinds.
const (
	kindAccount = "account"
	kindAddress = "address"
	kindToken   = "token"
)

// NewLimiter returns a Limiter with lim (zero fields: DefaultLimits).
func NewLimiter(lim Limits) *Limiter {
	d := DefaultLimits
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&lim.AccountFree, d.AccountFree)
	set(&lim.AddressFree, d.AddressFree)
	set(&lim.MaxEntries, d.MaxEntries)
	setD(&lim.Base, d.Base)
	setD(&lim.AccountMax, d.AccountMax)
	setD(&lim.AddressMax, d.AddressMax)
	setD(&lim.Window, d.Window)
	if lim.Now == nil {
		lim.Now = d.Now
	}
	return &Limiter{lim: lim, keys: map[string]*list.Element{}, lru: list.New()}
}

// ThrottledError refuses a sign-in while a key cools down. It unwraps to
// a *store.Error with code store.ERateLimited, so it maps to 429 like any
// coded error; RetryAfter says when to come back.
type ThrottledError struct {
	// Account is the account whose key refused, "" for the address's.
	Account string
	Wait    time.Duration
	err     *store.Error
}

func newThrottled(account string, wait time.Duration) *ThrottledError {
	secs := RetryAfterSeconds(wait)
	in := time.Duration(secs) * time.Second
	msg := fmt.Sprintf("too many failed sign-ins from your address: try again in %s", in)
	if account != "" {
		msg = fmt.Sprintf("too many failed sign-ins for %s: try again in %s", account, in)
	}
	return &ThrottledError{Account: account, Wait: wait, err: store.Errorf(store.ERateLimited, "%s", msg)}
}

func (e *ThrottledError) Error() string { return e.err.Message }

// Unwrap returns the coded error.
func (e *ThrottledError) Unwrap() error { return e.err }

// RetryAfter is how long the client should wait.
func (e *ThrottledError) RetryAfter() time.Duration { return e.Wait }

// RetryAfterSeconds is d in whole seconds, rounded up, at least 1: the
// value of a Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Begin is called before a password for account from addr is compared.
// It returns a *ThrottledError while either key cools down; otherwise it
// counts the attempt as a failure of both (Succeeded clears them). An
// empty account (or NodeUser) counts against the address alone, an empty
// address against the account alone.
func (l *Limiter) Begin(account, addr string) error {
	now := l.lim.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	akey, ikey := accountKey(account), addressKey(kindAddress, addr)
	wa, wi := l.waitLocked(akey, now), l.waitLocked(ikey, now)
	switch {
	case wa > 0 && wa >= wi:
		return newThrottled(account, wa)
	case wi > 0:
		return newThrottled("", wi)
	}
	if akey != "" {
		l.failLocked(akey, l.lim.AccountFree, l.lim.AccountMax, now)
	}
	if ikey != "" {
		l.failLocked(ikey, l.lim.AddressFree, l.lim.AddressMax, now)
	}
	return nil
}

// Succeeded clears the keys of account and addr after a right password.
func (l *Limiter) Succeeded(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(accountKey(account))
	l.dropLocked(addressKey(kindAddress, addr))
}

// TokenFailed counts an unknown token from addr. It returns a
// *ThrottledError, and counts nothing, when the address's token key was
// already cooling down.
func (l *Limiter) TokenFailed(addr string) error {
	now := l.lim.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := addressKey(kindToken, addr)
	if k == "" {
		return nil
	}
	if w := l.waitLocked(k, now); w > 0 {
		return newThrottled("", w)
	}
	l.failLocked(k, l.lim.AddressFree, l.lim.AddressMax, now)
	return nil
}

// Len is the number of keys held (for tests and bounds).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// waitLocked is how long key still cools down; it forgets a key whose
// last failure left the window.
func (l *Limiter) waitLocked(key string, now time.Time) time.Duration {
	el, ok := l.keys[key]
	if !ok {
		return 0
	}
	e := el.Value.(*entry)
	if now.Before(e.until) {
		return e.until.Sub(now)
	}
	if now.Sub(e.last) >= l.lim.Window {
		l.dropLocked(key)
	}
	return 0
}

func (l *Limiter) failLocked(key string, free int, ceiling time.Duration, now time.Time) {
	var e *entry
	if el, ok := l.keys[key]; ok {
		e = el.Value.(*entry)
		if now.Sub(e.last) >= l.lim.Window {
			e.failures = 0
		}
		l.lru.MoveToBack(el)
	} else {
		for len(l.keys) >= l.lim.MaxEntries {
			l.dropLocked(l.lru.Front().Value.(*entry).key)
		}
		e = &entry{key: key}
		l.keys[key] = l.lru.PushBack(e)
	}
	e.failures++
	e.last = now
	if over := e.failures - free; over >= 0 {
		d := ceiling
		if over < 30 {
			d = min(l.lim.Base<<over, ceiling)
		}
		e.until = now.Add(d)
	}
}

func (l *Limiter) dropLocked(key string) {
	if el, ok := l.keys[key]; ok {
		l.lru.Remove(el)
		delete(l.keys, key)
	}
}

// accountKey is the key of an account; "" (none) for an empty name and
// for the node credential, whose random secret cannot be guessed and
// whose lock-out would stop every node's image pulls. Long names are cut
// so a client cannot make keys of any size.
func accountKey(name string) string {
	if name == "" || name == NodeUser {
		return ""
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return kindAccount + " " + name
}

// addressKey is the key of kind for a client address ("host:port" or a
// bare host); an IPv6 address counts as its /64. An unknown address (a
// caller that did not say, with WithClient) has no key: one shared key
// would let anyone hold up every such caller.
func addressKey(kind, addr string) string {
	if addr == "" {
		return ""
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.Is6() {
			p, _ := ip.Prefix(64)
			host = p.String()
		} else {
			host = ip.String()
		}
	} else if len(host) > 64 {
		host = host[:64]
	}
	return kind + " " + host
}

// Client says where a sign-in comes from: the address throttling keys on
// and the route named in metrics and logs.
type Client struct {
	// Addr is the connection's remote address ("host:port").
	Addr string
	// Route is a fixed name of the door: RouteLogin, RouteAPI,
	// RouteRegistry or RouteRegistryToken.
	Route string
}

// Routes (the route label of the sign-in metrics).
const (
	RouteLogin         = "login"
	RouteAPI           = "api"
	RouteRegistry      = "registry"
	RouteRegistryToken = "registry_token"
	routeOther         = "other"
)

type clientKey struct{}

// WithClient returns a copy of ctx saying where the request comes from;
// the HTTP layers set it before checking credentials.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientOf(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	switch c.Route {
	case RouteLogin, RouteAPI, RouteRegistry, RouteRegistryToken:
	default:
		c.Route = routeOther
	}
	return c
}
