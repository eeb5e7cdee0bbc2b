package cli

import (
	"reflect"
	"strings"
	"testing"

	"gantry/wire"
)

// TestRunDependencyFlags: each dependency flag is repeatable and takes
// comma-separated ids, each becoming one entry of deps with its kind.
func TestRunDependencyFlags(t *testing.T) {
	c := runCmd(&globals{})
	if err := c.Flags().Parse([]string{"--after", "a,b", "--after", "c", "--after-failure", "d", "--after-any", "e",
		"--array-after", "f", "--sequential", "--array", "4", "gantry/toolbox"}); err != nil {
		t.Fatal(err)
	}
	var f runFlags
	for _, name := range []string{"after", "after-failure", "after-any", "array-after"} {
		vals, _ := c.Flags().GetStringArray(name)
		switch name {
		case "after":
			f.after = vals
		case "after-failure":
			f.afterFailure = vals
		case "after-any":
			f.afterAny = vals
		case "array-after":
			f.arrayAfter = vals
		}
	}
	f.sequential, _ = c.Flags().GetBool("sequential")
	s, err := f.spec([]string{"gantry/toolbox"})
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.Dependency{{Job: "a", Kind: "afterok"}, {Job: "b", Kind: "afterok"}, {Job: "c", Kind: "afterok"},
		{Job: "d", Kind: "afternotok"}, {Job: "e", Kind: "afterany"}, {Job: "f", Kind: "n-to-n"}}
	if !reflect.DeepEqual(s.Deps, want) || !s.Sequential {
		t.Fatalf("deps %+v sequential %v", s.Deps, s.Sequential)
	}
	f = runFlags{after: []string{"a,,b"}}
	if _, err := f.spec([]string{"x"}); err == nil || !strings.Contains(err.Error(), "--after: a job id is empty") {
		t.Fatalf("an empty id: %v", err)
	}
}
