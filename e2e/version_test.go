package e2e

import (
	"encoding/json"
	"testing"

	"gantry/gantrytest"
	"gantry/version"
)

// TestVersion: `gantry version` names this release for the binary and for
// the server it talks to, the same build on both sides.
func TestVersion(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	out, errOut, code := n.Gantry(t, "version", "-o", "json")
	if code != 0 {
		t.Fatalf("gantry version: exit %d: %s", code, errOut)
	}
	var v struct {
		Client version.Info `json:"client"`
		Server *struct {
			Version string `json:"version"`
			Commit  string `json:"commit"`
		} `json:"server"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("gantry version -o json: %v\n%s", err, out)
	}
	if v.Client.Release != version.Release || v.Server == nil || v.Server.Version != version.Release {
		t.Fatalf("versions: %s, want release %s on both sides", out, version.Release)
	}
	if v.Server.Commit != v.Client.Commit {
		t.Fatalf("client built from %q, server from %q: the same binary", v.Client.Commit, v.Server.Commit)
	}
	text, _, _ := n.Gantry(t, "version")
	t.Logf("%s", text)
}
