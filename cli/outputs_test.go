package cli

import (
	"strings"
	"testing"

	"gantry/wire"
)

func TestRunOutputFlags(t *testing.T) {
	f := runFlags{output: "/out", outputLimit: "5G", keepFailedOutput: true}
	s, err := f.spec([]string{"gantry/toolbox"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Output == nil || *s.Output != (wire.Output{Path: "/out", Limit: 5 << 30, KeepFailed: true}) {
		t.Fatalf("output %+v", s.Output)
	}
	if s, _ := (&runFlags{}).spec([]string{"x"}); s.Output != nil {
		t.Errorf("an output without --output: %+v", s.Output)
	}
	for _, c := range []struct {
		f    runFlags
		want string
	}{
		{runFlags{outputLimit: "1G"}, "go with --output PATH"},
		{runFlags{keepFailedOutput: true}, "go with --output PATH"},
		{runFlags{output: "/out", outputLimit: "lots"}, `--output-limit: "lots" is not a size`},
	} {
		if _, err := c.f.spec([]string{"x"}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
		}
	}
}
