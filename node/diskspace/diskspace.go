// Package diskspace owns a node's reserve of free space on the file system
// of its data directory. Below the reserve the node takes no more writes
// (proposals, image uploads, imports) and says why; when space returns it
// takes them again, on its own. The reserve is what keeps the embedded
// stores from ever meeting a full disk: Badger writes its memtables
// through memory-mapped files, and a page of one that the file system
// cannot back kills the process (SIGBUS) instead of failing a write. So
// the guard must trip while there is still room for what is already
// under way.
package diskspace

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gantry/store"
)

// DefaultReserve is the free space kept by default: room for the stores'
// memtables (64 MiB each) and the writes in flight when the guard trips.
const DefaultReserve = 512 << 20

// ReserveFromEnv is GANTRY_DISK_RESERVE (bytes, or with a KiB/MiB/GiB
// suffix), DefaultReserve when unset.
func ReserveFromEnv() (uint64, error) {
	v := os.Getenv("GANTRY_DISK_RESERVE")
	if v == "" {
		return DefaultReserve, nil
	}
	n, err := parseSize(v)
	if err != nil {
		return 0, fmt.Errorf("GANTRY_DISK_RESERVE=%q: want a size such as 512MiB", v)
	}
	return n, nil
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		m      uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if len(s) > len(u.suffix) && s[len(s)-len(u.suffix):] == u.suffix {
			s, mult = s[:len(s)-len(u.suffix)], u.m
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

// Guard watches the free space of one file system.
type Guard struct {
	dir     string
	reserve uint64
	node    string
	log     *slog.Logger

	free atomic.Uint64 // bytes free at the last look
	full atomic.Bool   // free < reserve at the last look
	mu   sync.Mutex    // serializes looks
	last time.Time
}

// New returns a guard of dir's file system that keeps reserve bytes free.
// It has looked once when New returns.
func New(dir string, reserve uint64, node string, log *slog.Logger) (*Guard, error) {
	if log == nil {
		log = slog.Default()
	}
	g := &Guard{dir: dir, reserve: reserve, node: node, log: log.With("component", "diskspace")}
	if err := g.look(); err != nil {
		return nil, err
	}
	return g, nil
}

// Run looks every interval until ctx ends (between looks, Check looks
// itself when the last look is old).
func (g *Guard) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.look(); err != nil {
				g.log.Warn("cannot read free disk space", "dir", g.dir, "err", err)
			}
		}
	}
}

func (g *Guard) look() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", g.dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	g.mu.Lock()
	g.last = time.Now()
	g.mu.Unlock()
	g.free.Store(free)
	was := g.full.Swap(free < g.reserve)
	switch {
	case !was && free < g.reserve:
		g.log.Warn("disk nearly full: this node takes no writes until space returns",
			"dir", g.dir, "free", free, "reserve", g.reserve)
	case was && free >= g.reserve:
		g.log.Info("disk space back: this node takes writes again", "dir", g.dir, "free", free, "reserve", g.reserve)
	}
	return nil
}

// Check returns nil while the file system has more than the reserve free,
// and otherwise an error that says so, for users: a *store.Error of code
// store.EDiskFull. It looks again when the last look is over 100 ms old.
func (g *Guard) Check() error { return g.Fits(0) }

// Fits is Check for a write of n more bytes: it refuses when they would
// take the file system below the reserve (by the last look).
func (g *Guard) Fits(n uint64) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	stale := time.Since(g.last) > 100*time.Millisecond
	g.mu.Unlock()
	if stale {
		_ = g.look()
	}
	free := g.free.Load()
	if !g.full.Load() && free >= g.reserve+n {
		return nil
	}
	return store.Errorf(store.EDiskFull, "node %s is nearly out of disk space (%d MiB free, %d MiB kept in reserve): it takes no writes until space is freed (delete images or data, or add disk); then try again",
		g.node, free>>20, g.reserve>>20)
}
