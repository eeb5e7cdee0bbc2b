package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzScheduleCron checks the cron expression of a schedule: a refusal is
// an invalid error naming the cron field; an accepted expression has a next
// run strictly after now (in UTC, on a whole second; a whole minute for the
// five-field form), and another run after that one, so a schedule never
// stops or fires twice for one time. Seeds: testdata/fuzz/FuzzScheduleCron.
func FuzzScheduleCron(f *testing.F) {
	spec := JobSpec{Image: "x"}
	spec.Defaults()
	starts := []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2027, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2028, 2, 29, 12, 30, 15, 0, time.FixedZone("east", 5*3600)),
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s := spec
		err := ValidateScheduleSpec("", expr, &s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EInvalid || !strings.HasPrefix(e.Message, "cron: ") {
				t.Fatalf("cron %q: %v (%T), want an invalid error starting \"cron: \"", expr, err, err)
			}
			return
		}
		for _, now := range append(starts, time.Now()) {
			next, err := nextRun(expr, now)
			if err != nil {
				t.Fatalf("cron %q accepted, but its next run after %s: %v", expr, now, err)
			}
			if !next.After(now) || next.Location() != time.UTC || next.Nanosecond() != 0 {
				t.Fatalf("cron %q: next run after %s is %s", expr, now, next)
			}
			if !strings.HasPrefix(strings.TrimSpace(expr), "@every") && next.Second() != 0 {
				t.Fatalf("cron %q: next run after %s is %s, not on a minute", expr, now, next)
			}
			after, err := nextRun(expr, next)
			if err != nil || !after.After(next) {
				t.Fatalf("cron %q: the run after %s is %s, %v", expr, next, after, err)
			}
		}
	})
}

// FuzzApplyEntry applies arbitrary bytes as a log entry, single command or
// batch: Apply never panics, answers a value or an error (for a batch, one
// per command), and counts the entry as applied. Seeds:
// testdata/fuzz/FuzzApplyEntry.
func FuzzApplyEntry(f *testing.F) {
	st, err := Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	d := NewDirect(st)
	f.Fuzz(func(t *testing.T, entry []byte) {
		before := st.AppliedIndex()
		res := d.ApplyBatch([][]byte{entry})[0]
		if after := st.AppliedIndex(); after != before+1 {
			t.Fatalf("%q: applied index %d after %d", entry, after, before)
		}
		if br, ok := res.(BatchResults); ok {
			cmds, isBatch := DecodeBatch(entry)
			if !isBatch || len(cmds) != len(br) {
				t.Fatalf("%q: %d results for a batch of %d (a batch: %v)", entry, len(br), len(cmds), isBatch)
			}
		}
	})
}
