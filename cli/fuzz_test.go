package cli

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The seed corpora of these targets are in testdata/fuzz/<target>/.

// FuzzParseTaskList checks that any --tasks value is refused or yields at
// most a million non-negative indexes, in a bounded time, that read back
// the same when printed.
func FuzzParseTaskList(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseTaskList(s)
		if err != nil {
			return
		}
		if len(ts) == 0 || len(ts) > 1000000 {
			t.Fatalf("parseTaskList(%q): %d indexes", s, len(ts))
		}
		for _, i := range ts {
			if i < 0 {
				t.Fatalf("parseTaskList(%q): negative index %d", s, i)
			}
		}
		strs := make([]string, len(ts))
		for i, x := range ts {
			strs[i] = strconv.Itoa(x)
		}
		if again, err := parseTaskList(strings.Join(strs, ",")); err != nil || !slices.Equal(again, ts) {
			t.Fatalf("parseTaskList(%q) = %v, but its list reads back as %v, %v", s, ts, again, err)
		}
		if slices.IsSorted(ts) && len(slices.Compact(slices.Clone(ts))) == len(ts) {
			// What the CLI prints of a rerun reads back as the same tasks.
			if again, err := parseTaskList(taskRanges(ts)); err != nil || !slices.Equal(again, ts) {
				t.Fatalf("parseTaskList(taskRanges(%v)) = %v, %v", ts, again, err)
			}
		}
	})
}

// FuzzParseCPU checks that an accepted --cpu is at least one millicore
// (never zero, which the server reads as "the default", nor an overflow)
// and that the amount reads back the same in millicores.
func FuzzParseCPU(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCPU(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--cpu: ") {
				t.Fatalf("parseCPU(%q): error %q does not name the flag", s, err)
			}
			return
		}
		if n < 1 {
			t.Fatalf("parseCPU(%q) = %d millicores", s, n)
		}
		if again, err := parseCPU(strconv.FormatInt(n, 10) + "m"); err != nil || again != n {
			t.Fatalf("parseCPU(%q) = %d, but %dm reads as %d, %v", s, n, n, again, err)
		}
	})
}

// FuzzParseBytes checks that an accepted --memory is a size that did not
// overflow and that reads back the same in bytes.
func FuzzParseBytes(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseBytes(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("parseBytes(%q) = %d", s, n)
		}
		if again, err := parseBytes(strconv.FormatInt(n, 10)); err != nil || again != n {
			t.Fatalf("parseBytes(%q) = %d, but %d reads as %d, %v", s, n, n, again, err)
		}
	})
}

// FuzzParseRetention checks that an accepted retention is not negative (no
// overflow), that days are whole days, and that the duration reads back.
func FuzzParseRetention(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseRetention("--log-retention", s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--log-retention: ") {
				t.Fatalf("parseRetention(%q): error %q does not name the flag", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("parseRetention(%q) = %v", s, d)
		}
		if strings.HasSuffix(s, "d") && d%(24*time.Hour) != 0 {
			t.Fatalf("parseRetention(%q) = %v, not whole days", s, d)
		}
		if again, err := parseRetention("--log-retention", d.String()); err != nil || again != d {
			t.Fatalf("parseRetention(%q) = %v, but %q reads as %v, %v", s, d, d.String(), again, err)
		}
	})
}
