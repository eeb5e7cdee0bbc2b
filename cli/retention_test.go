package cli

import (
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "0": 0, "0d": 0, "72h": 72 * time.Hour, "90m": 90 * time.Minute} {
		got, err := parseRetention("--x", in)
		if err != nil || got != want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "3x", "-1h", "-2d", "d", "1.5d"} {
		if _, err := parseRetention("--x", in); err == nil {
			t.Errorf("parseRetention(%q) accepted", in)
		}
	}
}
