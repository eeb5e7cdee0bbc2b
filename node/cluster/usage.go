package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/store"
)

// usage samples what this machine actually uses (CPU from /proc/stat over
// the last interval, memory as MemTotal - MemAvailable), for the nodes page
// next to what the scheduler has allocated. Not replicated: any node asks
// its peers over the internal listener when a user lists nodes.
type usage struct {
	mu        sync.Mutex
	used      store.Resources
	lastBusy  uint64
	lastTotal uint64
}

func (u *usage) run(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	u.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			u.sample()
		}
	}
}

func (u *usage) sample() {
	busy, total, err := readCPU()
	mem, merr := readMemUsed()
	u.mu.Lock()
	defer u.mu.Unlock()
	if err == nil {
		if u.lastTotal != 0 && total > u.lastTotal {
			frac := float64(busy-u.lastBusy) / float64(total-u.lastTotal)
			u.used.CPU = int64(frac * float64(runtime.NumCPU()) * 1000)
		}
		u.lastBusy, u.lastTotal = busy, total
	}
	if merr == nil {
		u.used.Memory = mem
	}
}

// Used returns the latest sample.
func (u *usage) Used() store.Resources {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.used
}

func readCPU() (busy, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, fmt.Errorf("read /proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("read /proc/stat: unexpected %q", sc.Text())
	}
	for i, v := range fields[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
		}
		total += n
		if i != 3 && i != 4 { // idle and iowait are not busy
			busy += n
		}
	}
	return busy, total, nil
}

func readMemUsed() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	var total, avail int64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			total = v << 10
		case "MemAvailable:":
			avail = v << 10
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("read /proc/meminfo: no MemTotal")
	}
	return total - avail, nil
}

// handleUsage serves this node's usage to peers (internal listener).
func (c *Cluster) handleUsage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.use.Used())
}

// NodeUsage returns what a node uses: this node's own sample, or a peer's
// over the internal listener (nil when it does not answer quickly).
func (c *Cluster) NodeUsage(ctx context.Context, nd store.Node) *store.Resources {
	if nd.Name == c.cfg.Name {
		u := c.use.Used()
		return &u
	}
	if nd.State == store.NodeDown || nd.Addr == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	resp, err := c.internalDo(ctx, http.MethodGet, nd.Addr, "/internal/v1/usage", nil)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var u store.Resources
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&u) != nil {
		return nil
	}
	return &u
}
