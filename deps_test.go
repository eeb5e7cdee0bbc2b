package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageBoundaries: the dependency rules of the architecture (issue 9,
// store/DESIGN.md): Raft is only in store and raftcluster, the API's
// clients never see store records, and the console never reaches the
// credential code. Checked with `go list -deps`, so an indirect import
// breaks it too.
func TestPackageBoundaries(t *testing.T) {
	deps := func(pkg string) []string {
		t.Helper()
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, rule := range []struct{ pkg, forbidden string }{
		{"gantry/client", "gantry/store"},
		{"gantry/cli", "gantry/store"},
		{"gantry/ui", "gantry/node/auth"},
		{"gantry/data", "gantry/store"},
		{"gantry/data", "gantry/node/registry"},
	} {
		for _, d := range deps(rule.pkg) {
			if d == rule.forbidden {
				t.Errorf("%s depends on %s", rule.pkg, rule.forbidden)
			}
		}
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "gantry/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "gantry/store" || f[0] == "gantry/raftcluster" {
			continue
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, "github.com/hashicorp/raft") {
				t.Errorf("%s imports %s: Raft belongs to store and raftcluster", f[0], imp)
			}
		}
	}
}
