// Package firewall owns the host firewall rules Gantry adds to keep users'
// Docker bridge networks apart: one chain, GANTRY-ISOLATION, in the mangle
// table's FORWARD chain, with five rules per guarded bridge.
package firewall

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"
)

// Docker keeps bridge networks apart with its
// DOCKER-ISOLATION chains, but whenever any bridge network is created on
// the host (by this runner, another node on the same Docker, or anything
// else) Docker deletes the FORWARD chain's jump to those chains and
// inserts it again on top; in between, its per-bridge rule accepting all
// that leaves a bridge lets one user's task connect to another's
// (TestUsersStayApartWhileBridgesAreCreated reached another user's
// listener within seconds). The guard adds rules of its own, in the
// mangle table's FORWARD chain, which Docker never rewrites and which the
// kernel evaluates before the filter table: for each user network's
// bridge, traffic between it and any other Docker bridge is dropped, and
// traffic within it or to and from the world is left to Docker.
//
// The rules live in one chain, GANTRY-ISOLATION, shared by every Gantry
// node on the host (each adds and removes only its own bridges' rules);
// rules of bridges that no longer exist are swept at start. Without
// iptables (not root, no CAP_NET_ADMIN) the guard is off and says so once:
// users are then kept apart by Docker's rules alone.

// The table and chain of the rules.
const (
	Table = "mangle"
	Chain = "GANTRY-ISOLATION"
)

// Guard adds and removes the rules of bridges; a zero Guard (or one
// without iptables) does nothing.
type Guard struct {
	ipt *iptables.IPTables // nil: off
	log *slog.Logger
	mu  sync.Mutex // one change of the chain at a time in this process
}

// New sets up the chain and the jump to it; on failure the guard is
// off and the reason logged.
func New(log *slog.Logger) *Guard {
	g := &Guard{log: log}
	ipt, err := iptables.New()
	if err == nil {
		err = ensureGuardChain(ipt)
	}
	if err != nil {
		log.Warn("firewall guard off: users' tasks are kept apart by Docker's own rules alone, which Docker lifts for a moment whenever a bridge network is created on this host; run the node as root (or with CAP_NET_ADMIN) with iptables installed", "err", err)
		return g
	}
	g.ipt = ipt
	g.sweep()
	return g
}

func ensureGuardChain(ipt *iptables.IPTables) error {
	ok, err := ipt.ChainExists(Table, Chain)
	if err != nil {
		return err
	}
	if !ok {
		// Another node on the host may create it at the same moment.
		if err := ipt.NewChain(Table, Chain); err != nil {
			if ok, _ := ipt.ChainExists(Table, Chain); !ok {
				return err
			}
		}
	}
	return ipt.InsertUnique(Table, "FORWARD", 1, "-j", Chain)
}

// On reports whether the guard programs rules.
func (g *Guard) On() bool { return g.ipt != nil }

// Rules are the rules that keep bridge apart from every other Docker
// bridge, in order: its own traffic returns first.
func Rules(bridge string) [][]string {
	return [][]string{
		{"-i", bridge, "-o", bridge, "-j", "RETURN"},
		{"-i", bridge, "-o", "br-+", "-j", "DROP"},
		{"-i", bridge, "-o", "docker0", "-j", "DROP"},
		{"-i", "br-+", "-o", bridge, "-j", "DROP"},
		{"-i", "docker0", "-o", bridge, "-j", "DROP"},
	}
}

// Protect adds bridge's rules (those already there are kept).
func (g *Guard) Protect(bridge string) error {
	if !g.On() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// The chain or its jump may have been flushed since start.
	if err := ensureGuardChain(g.ipt); err != nil {
		return fmt.Errorf("firewall guard for %s: %w", bridge, err)
	}
	for _, r := range Rules(bridge) {
		if err := g.ipt.AppendUnique(Table, Chain, r...); err != nil {
			return fmt.Errorf("firewall guard for %s: %w", bridge, err)
		}
	}
	return nil
}

// Release removes bridge's rules.
func (g *Guard) Release(bridge string) {
	if !g.On() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range Rules(bridge) {
		if err := g.ipt.DeleteIfExists(Table, Chain, r...); err != nil {
			g.log.Warn("firewall guard: remove rule", "bridge", bridge, "err", err)
		}
	}
}

// sweep removes the rules of bridges that no longer exist on the host
// (their networks removed while no node was running to release them).
func (g *Guard) sweep() {
	g.mu.Lock()
	defer g.mu.Unlock()
	rules, err := g.ipt.List(Table, Chain)
	if err != nil {
		g.log.Warn("firewall guard: list rules", "err", err)
		return
	}
	for _, r := range rules {
		f := strings.Fields(r)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if (f[i] == "-i" || f[i] == "-o") && f[i+1] != "br-+" && f[i+1] != "docker0" {
				if _, err := net.InterfaceByName(f[i+1]); err != nil {
					_ = g.ipt.Delete(Table, Chain, f[2:]...)
				}
				break
			}
		}
	}
}

// Sweep removes the rules of bridges that no longer exist on this host,
// for a caller that removed networks itself (test clean-up).
func Sweep() { New(slog.New(slog.DiscardHandler)) }

// BridgeName is the Linux bridge of a Docker bridge network: the name
// its options give, else br- and the first 12 characters of its id.
func BridgeName(id string, options map[string]string) string {
	if b := options["com.docker.network.bridge.name"]; b != "" {
		return b
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return "br-" + id
}

// List returns the chain's rules as iptables -S prints them (none when
// iptables is not usable).
func List() []string {
	ipt, err := iptables.New()
	if err != nil {
		return nil
	}
	rules, _ := ipt.List(Table, Chain)
	return rules
}
