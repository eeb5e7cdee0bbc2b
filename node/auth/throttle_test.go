package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/gantrytest"
	"gantry/store"
)

func newFakeClock() *gantrytest.Clock {
	return gantrytest.NewClock(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
}

// waitOf is the retry-after of a throttled answer, 0 for any other.
func waitOf(err error) time.Duration {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.RetryAfter()
	}
	return 0
}

func TestLimiter(t *testing.T) {
	lim := func(c *gantrytest.Clock) *Limiter {
		return NewLimiter(Limits{AccountFree: 5, AddressFree: 20, Base: time.Second, AccountMax: 30 * time.Second,
			AddressMax: 10 * time.Minute, Window: 15 * time.Minute, MaxEntries: 100, Now: c.Now})
	}
	t.Run("five failures are free, then each waits twice as long as the last, up to the account's cap", func(t *testing.T) {
		c := newFakeClock()
		l := lim(c)
		for i := range 5 {
			if err := l.Begin("alice", "10.0.0.1:1000"); err != nil {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		for _, want := range []time.Duration{1, 2, 4, 8, 16, 30, 30, 30} {
			want *= time.Second
			if got := waitOf(l.Begin("alice", "10.0.0.1:1000")); got != want {
				t.Fatalf("wait %v, want %v", got, want)
			}
			c.Advance(want - time.Millisecond)
			if got := waitOf(l.Begin("alice", "10.0.0.1:1000")); got != time.Millisecond {
				t.Fatalf("1ms before the end of a %v cool-down: wait %v", want, got)
			}
			c.Advance(time.Millisecond)
			if err := l.Begin("alice", "10.0.0.1:1000"); err != nil {
				t.Fatalf("after the %v cool-down: %v", want, err)
			}
		}
	})
	t.Run("an address guessing at many accounts cools down after twenty, for up to ten minutes", func(t *testing.T) {
		c := newFakeClock()
		l := lim(c)
		n := 0
		for ; l.Begin(fmt.Sprintf("user%d", n), "10.0.0.1:1") == nil; n++ {
			if n > 100 {
				t.Fatal("never throttled")
			}
		}
		if n != 20 {
			t.Fatalf("throttled after %d accounts, want 20", n)
		}
		err := l.Begin("bob", "10.0.0.1:2")
		if w := waitOf(err); w != time.Second || !strings.Contains(err.Error(), "from your address: try again in 1s") {
			t.Fatalf("bob from the same address: %v (wait %v)", err, w)
		}
		if err := l.Begin("bob", "10.0.0.2:1"); err != nil {
			t.Fatalf("bob from another address: %v", err)
		}
		w := time.Second
		for range 15 {
			c.Advance(w)
			if err := l.Begin(fmt.Sprintf("user%d", n), "10.0.0.1:1"); err != nil {
				t.Fatal(err)
			}
			n++
			w = waitOf(l.Begin("x", "10.0.0.1:1"))
		}
		if w != 10*time.Minute {
			t.Fatalf("address cool-down after 35 failures %v, want the 10m cap", w)
		}
	})
	t.Run("a right password clears the account and the address", func(t *testing.T) {
		c := newFakeClock()
		l := lim(c)
		for range 5 {
			l.Begin("alice", "10.0.0.1:1")
		}
		c.Advance(time.Second)
		l.Begin("alice", "10.0.0.1:1")
		l.Succeeded("alice", "10.0.0.1:1")
		if l.Len() != 0 {
			t.Fatalf("%d keys left after a success", l.Len())
		}
		for i := range 5 {
			if err := l.Begin("alice", "10.0.0.1:1"); err != nil {
				t.Fatalf("failure %d after the success: %v", i+1, err)
			}
		}
	})
	t.Run("failures are forgotten a window after the last one", func(t *testing.T) {
		c := newFakeClock()
		l := lim(c)
		for range 5 {
			l.Begin("alice", "10.0.0.1:1")
		}
		c.Advance(15 * time.Minute)
		for i := range 5 {
			if err := l.Begin("alice", "10.0.0.1:1"); err != nil {
				t.Fatalf("failure %d in a new window: %v", i+1, err)
			}
		}
	})
	t.Run("the table keeps at most MaxEntries keys, dropping the least recently failed", func(t *testing.T) {
		c := newFakeClock()
		l := lim(c)
		for range 5 {
			l.Begin("alice", "10.0.0.1:1")
		}
		for i := range 200 {
			l.Begin("", fmt.Sprintf("10.1.%d.%d:1", i/256, i%256))
		}
		if l.Len() != 100 {
			t.Fatalf("%d keys, want 100", l.Len())
		}
		if err := l.Begin("alice", "10.9.9.9:1"); err != nil {
			t.Fatalf("alice's old key should have been dropped: %v", err)
		}
	})
	t.Run("callers that give no address do not share an address key", func(t *testing.T) {
		l := lim(newFakeClock())
		for i := range 40 {
			if err := l.Begin(fmt.Sprintf("u%d", i), ""); err != nil {
				t.Fatalf("account %d with no address: %v", i, err)
			}
		}
	})
	t.Run("an IPv6 client counts as its /64", func(t *testing.T) {
		c := newFakeClock()
		l := lim(c)
		for i := range 20 {
			l.Begin(fmt.Sprintf("u%d", i), fmt.Sprintf("[2001:db8:1:2::%x]:443", i))
		}
		if err := l.Begin("bob", "[2001:db8:1:2:ffff::1]:1"); waitOf(err) == 0 {
			t.Fatalf("another host of the same /64: %v", err)
		}
		if err := l.Begin("bob", "[2001:db8:1:3::1]:1"); err != nil {
			t.Fatalf("another /64: %v", err)
		}
	})
}

// throttled is an Auth over a store with alice and bob, a fake clock and
// its log and metrics kept for the test to read.
type throttled struct {
	a     *Auth
	clock *gantrytest.Clock
	log   *bytes.Buffer
	reg   *prometheus.Registry
	api   string // alice's API token
}

func newThrottledAuth(t *testing.T) *throttled {
	f := newFixture(t)
	f.user("alice", "alice-password", false)
	f.user("bob", "bob-password", false)
	th := &throttled{clock: newFakeClock(), log: &bytes.Buffer{}, reg: prometheus.NewRegistry()}
	th.a = New(Config{Store: f.st, Limiter: NewLimiter(Limits{Now: th.clock.Now}),
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: th.log}, nil)), Registerer: th.reg})
	th.api = f.token("alice", "t1", false, time.Time{})
	return th
}

// count reads the counter name whose labels hold the given name, value
// pairs, as /metrics would show it.
func (th *throttled) count(name string, labels ...string) float64 {
	mfs, err := th.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func from(addr string) context.Context {
	return WithClient(context.Background(), Client{Addr: addr + ":5000", Route: RouteLogin})
}

func TestThrottledSignIns(t *testing.T) {
	t.Parallel() // long (a large state, or password hashing under the race detector): overlaps the rest of the package
	t.Run("50 wrong passwords in a row are refused after 5, the right one works after the cool-down, other users never notice", func(t *testing.T) {
		th := newThrottledAuth(t)
		attacker := from("203.0.113.7")
		var codes []string
		for range 50 {
			_, err := th.a.Password(attacker, "alice", "guess")
			codes = append(codes, code(err))
		}
		for i, c := range codes {
			want := store.EUnauthorized
			if i >= 5 {
				want = store.ERateLimited
			}
			if c != want {
				t.Fatalf("attempt %d answered %s, want %s (all: %v)", i+1, c, want, codes)
			}
		}
		_, err := th.a.Password(attacker, "alice", "alice-password")
		if waitOf(err) != time.Second || err.Error() != "too many failed sign-ins for alice: try again in 1s" {
			t.Fatalf("the right password while alice's key cools down: %v", err)
		}
		for _, addr := range []string{"203.0.113.7", "198.51.100.1"} {
			if id, err := th.a.Password(from(addr), "bob", "bob-password"); err != nil || id.User != "bob" {
				t.Fatalf("bob from %s: %+v %v", addr, id, err)
			}
		}
		th.clock.Advance(time.Second)
		if id, err := th.a.Password(from("198.51.100.1"), "alice", "alice-password"); err != nil || id.User != "alice" {
			t.Fatalf("alice after the cool-down: %+v %v", id, err)
		}
		if _, err := th.a.Password(attacker, "alice", "guess"); code(err) != store.EUnauthorized {
			t.Fatalf("a success starts alice's count again: %v", err)
		}
		if got := th.count("gantry_auth_failures_total", "route", RouteLogin, "kind", "password"); got != 6 {
			t.Fatalf("gantry_auth_failures_total %v, want 6", got)
		}
		if got := th.count("gantry_auth_throttled_total", "route", RouteLogin); got != 46 {
			t.Fatalf("gantry_auth_throttled_total %v, want 46", got)
		}
	})
	t.Run("an attacker who keeps guessing holds alice up for at most 30 seconds at a time", func(t *testing.T) {
		th := newThrottledAuth(t)
		attacker := from("203.0.113.7")
		for i := range 12 {
			_, err := th.a.Password(attacker, "alice", "guess")
			if w := waitOf(err); w > 0 {
				th.clock.Advance(w)
				_, err = th.a.Password(attacker, "alice", "guess")
			}
			if code(err) != store.EUnauthorized {
				t.Fatalf("a guess after the cool-down: %v", err)
			}
			if i < 4 {
				continue // alice's right password would clear the count
			}
			_, err = th.a.Password(from("198.51.100.1"), "alice", "alice-password")
			if w := waitOf(err); w == 0 || w > 30*time.Second {
				t.Fatalf("alice from her own address after %d guesses: %v (wait %v), want a wait of at most 30s", i+1, err, w)
			}
		}
		_, err := th.a.Password(from("198.51.100.1"), "alice", "alice-password")
		if waitOf(err) != 30*time.Second {
			t.Fatalf("after 12 guesses alice waits %v, want the 30s cap", waitOf(err))
		}
		th.clock.Advance(waitOf(err))
		if _, err := th.a.Password(from("198.51.100.1"), "alice", "alice-password"); err != nil {
			t.Fatalf("alice after the cool-down: %v", err)
		}
	})
	t.Run("a failed sign-in is logged with the user and address, never the password", func(t *testing.T) {
		th := newThrottledAuth(t)
		for range 6 {
			th.a.Password(from("203.0.113.7"), "alice", "s3cret-guess")
		}
		log := th.log.String()
		for _, want := range []string{`msg="sign-in failed" component=auth kind=password user=alice remote=203.0.113.7:5000 route=login`,
			`msg="sign-in refused: too many failures" component=auth kind=password user=alice remote=203.0.113.7:5000 route=login retry_after=1s`} {
			if !strings.Contains(log, want) {
				t.Fatalf("log does not say %q:\n%s", want, log)
			}
		}
		if strings.Contains(log, "s3cret-guess") {
			t.Fatalf("the password is in the log:\n%s", log)
		}
	})
	t.Run("unknown tokens are throttled by address, a valid token never is", func(t *testing.T) {
		th := newThrottledAuth(t)
		ctx := from("203.0.113.7")
		for i := range 20 {
			if _, err := th.a.Token(ctx, NewSecret()); code(err) != store.EUnauthorized {
				t.Fatalf("unknown token %d: %v", i+1, err)
			}
		}
		if _, err := th.a.Token(ctx, NewSecret()); code(err) != store.ERateLimited || waitOf(err) != time.Second {
			t.Fatalf("unknown token 21: %v", err)
		}
		if id, err := th.a.Token(ctx, th.api); err != nil || id.User != "alice" {
			t.Fatalf("alice's token from the same address: %+v %v", id, err)
		}
		if _, err := th.a.Password(ctx, "bob", "bob-password"); err != nil {
			t.Fatalf("a password from the address: %v", err)
		}
		if got := th.count("gantry_auth_failures_total", "route", RouteLogin, "kind", "token"); got != 20 {
			t.Fatalf("token failures %v, want 20", got)
		}
	})
	t.Run("parallel guesses cannot all slip in before the first failure is counted", func(t *testing.T) {
		th := newThrottledAuth(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		checked := 0
		for range 30 {
			wg.Go(func() {
				_, err := th.a.Password(from("203.0.113.7"), "alice", "guess")
				if code(err) == store.EUnauthorized {
					mu.Lock()
					checked++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if checked != 5 {
			t.Fatalf("%d of 30 parallel guesses were checked, want 5", checked)
		}
	})
}
