package firewall

import (
	"log/slog"
	"os"
	"strings"
	"testing"
)

func newTestGuard(t *testing.T) *Guard {
	t.Helper()
	g := New(slog.New(slog.DiscardHandler))
	if !g.On() {
		if os.Getenv("CI") == "true" {
			t.Fatal("iptables is not usable here (the guard needs root and iptables)")
		}
		t.Skip("iptables is not usable here")
	}
	return g
}

func rulesOf(bridge string) []string {
	var out []string
	for _, r := range List() {
		if strings.Contains(r, " "+bridge+" ") {
			out = append(out, r)
		}
	}
	return out
}

// Protect adds a bridge's five rules once however often it is called,
// its own traffic returning first; Release removes them; a sweep removes
// the rules of a bridge that does not exist. (The bridges here are names
// only: no interface of that name exists, which is what the sweep looks
// for.)
func TestProtectReleaseSweep(t *testing.T) {
	g := newTestGuard(t)
	const b = "br-gtest0000001"
	t.Cleanup(func() { g.Release(b) })
	for range 2 {
		if err := g.Protect(b); err != nil {
			t.Fatal(err)
		}
	}
	got := rulesOf(b)
	if len(got) != 5 || !strings.HasSuffix(got[0], "-i "+b+" -o "+b+" -j RETURN") {
		t.Fatalf("rules after two Protects: %q, want five, RETURN first", got)
	}
	g.Release(b)
	if got := rulesOf(b); len(got) != 0 {
		t.Fatalf("rules after Release: %q", got)
	}
	if err := g.Protect(b); err != nil {
		t.Fatal(err)
	}
	New(slog.New(slog.DiscardHandler)) // a node starting sweeps
	if got := rulesOf(b); len(got) != 0 {
		t.Fatalf("rules of a bridge that does not exist after a sweep: %q", got)
	}
}

func TestBridgeName(t *testing.T) {
	if got := BridgeName("0123456789abcdef0123", nil); got != "br-0123456789ab" {
		t.Errorf("BridgeName = %q", got)
	}
	if got := BridgeName("0123456789abcdef", map[string]string{"com.docker.network.bridge.name": "mybr"}); got != "mybr" {
		t.Errorf("BridgeName with the option = %q", got)
	}
}
