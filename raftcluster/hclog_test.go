package raftcluster

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestRaftLogsThroughSlog: raft's lines become slog records with raft's
// level, message and fields, not a formatted line inside a message.
func TestRaftLogsThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	l := hclogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "raft"))
	l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "10.0.0.1:7071")
	l.Named("transport").Error("failed to append entries", "peer", "n2", "error", "EOF")
	l.Info("initial configuration", "servers", hclog.Fmt("%+v", []string{"n1"}))
	l.Debug("dropped: below the handler's level")
	l.StandardLogger(nil).Print("[WARN] raft-net: connection reset")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d records, want 4:\n%s", len(lines), buf.String())
	}
	var recs []map[string]any
	for _, ln := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	want := []struct{ level, msg, key, val string }{
		{"WARN", "heartbeat timeout reached, starting election", "last-leader-addr", "10.0.0.1:7071"},
		{"ERROR", "failed to append entries", "logger", "transport"},
		{"INFO", "initial configuration", "servers", "[n1]"},
		{"WARN", "raft-net: connection reset", "component", "raft"},
	}
	for i, w := range want {
		r := recs[i]
		if r["level"] != w.level || r["msg"] != w.msg || r[w.key] != w.val || r["component"] != "raft" {
			t.Errorf("record %d = %v, want level %s msg %q %s=%s", i, r, w.level, w.msg, w.key, w.val)
		}
		if strings.Contains(r["msg"].(string), "[") && i != 2 {
			t.Errorf("record %d carries a formatted raft line: %q", i, r["msg"])
		}
	}
}
