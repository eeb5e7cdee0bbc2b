package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func runLine(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	t.Setenv("GANTRY_TOKEN", "gtk_test") // never reached: usage is checked first
	t.Setenv("GANTRY_ADDR", "http://127.0.0.1:1")
	t.Setenv("LC_ALL", "") // the English messages this test reads
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "C.UTF-8")
	code := run(context.Background(), args, func(context.Context, ServerConfig) error {
		t.Fatal("the server must not start for a bad command line")
		return nil
	}, &out, &errb)
	return code, errb.String()
}

// TestUsageErrorsExit2: over every command of the tree, an unknown
// subcommand, a missing subcommand, a bad flag and a wrong number of
// arguments print one line naming the command and --help, and exit 2,
// so a script calling a command this version lacks does not think it
// worked.
func TestUsageErrorsExit2(t *testing.T) {
	check := func(t *testing.T, want string, args ...string) {
		t.Helper()
		code, stderr := runLine(t, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "--help") || !strings.Contains(lines[0], want) {
			t.Fatalf("gantry %s: exit %d, stderr %q; want exit 2 and one line saying %q and --help", strings.Join(args, " "), code, stderr, want)
		}
	}
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.HasSubCommands() {
			t.Run(strings.Join(append(path, "nosuch"), " "), func(t *testing.T) {
				check(t, `unknown command "nosuch"`, append(path, "nosuch")...)
			})
			if len(path) > 0 {
				t.Run(strings.Join(path, " ")+" (no subcommand)", func(t *testing.T) {
					check(t, "missing subcommand", path...)
				})
			}
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() {
					walk(sub, append(append([]string(nil), path...), sub.Name()))
				}
			}
			return
		}
		t.Run(strings.Join(path, " ")+" --no-such-flag", func(t *testing.T) {
			check(t, "unknown flag: --no-such-flag", append(path, "--no-such-flag")...)
		})
		// Too few arguments, or one too many for a command that takes none.
		switch {
		case c.Args != nil && c.Args(c, nil) != nil:
			t.Run(strings.Join(path, " ")+" (no arguments)", func(t *testing.T) {
				check(t, strings.Join(path, " "), path...)
			})
		case c.Args != nil && c.Args(c, []string{"x", "y", "z", "w", "v", "u"}) != nil:
			t.Run(strings.Join(path, " ")+" (too many arguments)", func(t *testing.T) {
				check(t, strings.Join(path, " "), append(path, "x", "y", "z", "w", "v", "u")...)
			})
		}
	}
	walk(newRoot(nil), nil)
	t.Run("a bare gantry prints its help and succeeds", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := run(context.Background(), nil, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "Available Commands") {
			t.Fatalf("exit %d, out %q", code, out.String())
		}
	})
}

func TestParseTaskList(t *testing.T) {
	got, err := parseTaskList("3, 17,40-45")
	want := []int{3, 17, 40, 41, 42, 43, 44, 45}
	if err != nil || len(got) != len(want) {
		t.Fatalf("parseTaskList: %v %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("parseTaskList: %v", got)
		}
	}
	if s := taskRanges(want); s != "3, 17, 40-45" {
		t.Fatalf("taskRanges: %q", s)
	}
	for _, bad := range []string{"", "x", "3x", "-1", "5-2", "1-", "1,,a"} {
		if _, err := parseTaskList(bad); err == nil {
			t.Errorf("parseTaskList(%q) accepted", bad)
		}
	}
}
