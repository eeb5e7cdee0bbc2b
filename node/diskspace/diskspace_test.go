package diskspace

import (
	"errors"
	"strings"
	"testing"

	"gantry/store"
)

func TestReserveFromEnv(t *testing.T) {
	for in, want := range map[string]uint64{"": DefaultReserve, "1048576": 1 << 20, "64MiB": 64 << 20, "2GiB": 2 << 30, "512KiB": 512 << 10} {
		t.Setenv("GANTRY_DISK_RESERVE", in)
		got, err := ReserveFromEnv()
		if err != nil || got != want {
			t.Errorf("GANTRY_DISK_RESERVE=%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"lots", "-1", "1.5GiB", "MiB"} {
		t.Setenv("GANTRY_DISK_RESERVE", bad)
		if _, err := ReserveFromEnv(); err == nil || !strings.Contains(err.Error(), "GANTRY_DISK_RESERVE") {
			t.Errorf("GANTRY_DISK_RESERVE=%q: %v, want a refusal naming the variable", bad, err)
		}
	}
}

// TestGuard: a reserve beyond the disk refuses every write with the
// disk_full code and a message that says what to do; none refuses none.
func TestGuard(t *testing.T) {
	dir := t.TempDir()
	g, err := New(dir, 1<<62, "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = g.Check()
	var se *store.Error
	if !errors.As(err, &se) || se.Code != store.EDiskFull || !strings.Contains(se.Message, "node n1") || !strings.Contains(se.Message, "free") {
		t.Fatalf("check with a reserve beyond the disk: %v", err)
	}
	g, err = New(dir, 0, "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
	if err := g.Fits(1 << 62); err == nil {
		t.Fatal("a write larger than the disk fits")
	}
	var none *Guard
	if err := none.Fits(1 << 62); err != nil {
		t.Fatalf("a nil guard refuses: %v", err)
	}
}
