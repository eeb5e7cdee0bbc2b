package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(gantrytest.FreePort(t)) }

// settledGoroutines waits until the number of goroutines is at most want,
// and returns the last count seen.
func settledGoroutines(want int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartFailureReleasesEverything: Run returns a start-up failure at
// once, with nothing left behind: no goroutine, no port, no open store
// (the same data directory opens again at once).
func TestStartFailureReleasesEverything(t *testing.T) {
	cases := []struct {
		name string
		busy string // which port another listener holds
		want string
	}{
		{"busy HTTP port", "http", "--http"},
		{"busy cluster port", "cluster", "--cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cfg := Config{DataDir: t.TempDir(), HTTPAddr: freeAddr(t), ClusterAddr: freeAddr(t), Name: "n1", Logger: quiet(), Out: io.Discard}
			if tc.busy == "http" {
				cfg.HTTPAddr = ln.Addr().String()
			} else {
				cfg.ClusterAddr = ln.Addr().String()
			}
			before := runtime.NumGoroutine()
			start := time.Now()
			err = New(cfg).Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("Run: %v, want a failure naming %s", err, tc.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Run took %s to fail", d)
			}
			if n := settledGoroutines(before, 2*time.Second); n > before {
				t.Fatalf("%d goroutines left behind (%d before)", n-before, before)
			}
			for _, a := range []string{cfg.HTTPAddr, cfg.ClusterAddr} {
				if a == ln.Addr().String() {
					continue
				}
				l, err := net.Listen("tcp", a)
				if err != nil {
					t.Fatalf("%s still held: %v", a, err)
				}
				l.Close()
			}
		})
	}
}

// TestNodeStartsServesAndStops runs a whole node in this process (under
// the race detector in make test): the HTTP port answers 503 while it
// starts, then the API; cancelling its context stops it within seconds,
// leaving no goroutine, port or container behind.
func TestNodeStartsServesAndStops(t *testing.T) {
	gantrytest.RequireDocker(t)
	cfg := Config{DataDir: t.TempDir(), HTTPAddr: freeAddr(t), ClusterAddr: freeAddr(t), Name: "n1",
		AdminPassword: "admin-password-1", Logger: quiet(), Out: io.Discard}
	t.Cleanup(func() { gantrytest.RemoveRegistryImages(cfg.HTTPAddr) })
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- New(cfg).Run(ctx) }()

	sawStarting := false
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.HTTPAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				sawStarting = true
			}
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("node stopped during start-up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("node did not become healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("answered 503 while starting: %v", sawStarting)
	tok, err := client.New(cfg.HTTPAddr, "").Login(ctx, "admin", "admin-password-1", "test")
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(cfg.HTTPAddr, tok)
	if nodes, err := c.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].Name != "n1" || !nodes[0].Leader {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node still running 15 s after its context ended")
	}
	if n := settledGoroutines(before, 5*time.Second); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines left behind:\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
	for _, a := range []string{cfg.HTTPAddr, cfg.ClusterAddr} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s still held after shutdown: %v", a, err)
		}
		l.Close()
	}
}

func TestTLSCertWithoutKeyIsRefusedAtStart(t *testing.T) {
	for _, cfg := range []Config{{TLSCert: "cert.pem"}, {TLSKey: "key.pem"}} {
		cfg.DataDir, cfg.Name = t.TempDir(), "n1"
		cfg.HTTPAddr, cfg.ClusterAddr = "127.0.0.1:0", "127.0.0.1:0"
		err := New(cfg).Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key go together") {
			t.Fatalf("%+v: got %v, want the pair refused", cfg, err)
		}
	}
}

func TestMalformedPlainFromIsRefusedAtStart(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), Name: "n1", HTTPAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", HTTPPlainFrom: "loopback,everyone"}
	err := New(cfg).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--http-plain-from") || !strings.Contains(err.Error(), `"everyone"`) {
		t.Fatalf("got %v, want --http-plain-from refused naming the bad item", err)
	}
}
