package view

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"gantry/gantrytest"
	"gantry/store"
	"gantry/wire"
)

// TestViewsShowEveryField: each view of a record, encoded, is the record
// encoded as the API sent it before records and wire types were split
// (less what a user must never see), so a field added to a record and
// forgotten in its view, or a view that renames a field, fails here.
func TestViewsShowEveryField(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	cases := []struct {
		name   string
		record reflect.Type
		view   func(rec any) any
		hidden []string // fields of the record the API never shows
		added  []string // fields the API adds to the record's
	}{
		{"job", reflect.TypeFor[store.Job](), func(r any) any { j := r.(store.Job); return Job(&j) }, []string{"key", "queue"}, nil}, // the spec names the queue
		{"job spec", reflect.TypeFor[store.JobSpec](), func(r any) any { return JobSpec(r.(store.JobSpec)) }, nil, nil},
		{"task", reflect.TypeFor[store.Task](), func(r any) any { t := r.(store.Task); return Task(&t) }, []string{"attempt_base"}, nil},
		{"attempt", reflect.TypeFor[store.Attempt](), func(r any) any { a := r.(store.Attempt); return Attempt(&a) }, nil, nil},
		{"node", reflect.TypeFor[store.Node](), func(r any) any { n := r.(store.Node); return Node(&n) }, nil, []string{"leader"}},
		{"token", reflect.TypeFor[store.Token](), func(r any) any { tk := r.(store.Token); return Token(&tk) }, nil, nil},
		{"schedule", reflect.TypeFor[store.Schedule](), func(r any) any { s := r.(store.Schedule); return Schedule(&s) }, nil, nil},
		{"user", reflect.TypeFor[store.User](), func(r any) any { u := r.(store.User); return User(&u) }, []string{"password_hash"}, nil},
		{"queue", reflect.TypeFor[store.Queue](), func(r any) any { q := r.(store.Queue); return Queue(&q) }, []string{"updated"}, []string{"guaranteed", "usage", "queued"}},
		{"usage", reflect.TypeFor[store.UserUsage](), func(r any) any { return Usage(r.(store.UserUsage)) }, nil, nil},
		{"resources", reflect.TypeFor[store.Resources](), func(r any) any { return Resources(r.(store.Resources)) }, nil, nil},
		{"audit record", reflect.TypeFor[store.AuditRecord](), func(r any) any { a := r.(store.AuditRecord); return AuditRecord(&a) }, nil, nil},
		{"message", reflect.TypeFor[store.Message](), func(r any) any { m := r.(store.Message); return Message(&m) }, nil, nil},
		{"infringement notice", reflect.TypeFor[store.Notice](), func(r any) any { n := r.(store.Notice); return InfringementNotice(&n, false) }, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 20; round++ {
				rec := gantrytest.RandomValue(tc.record, rng)
				want := gantrytest.JSONValue(t, rec)
				for _, h := range tc.hidden {
					delete(want.(map[string]any), h)
				}
				got := gantrytest.JSONValue(t, tc.view(rec))
				for _, a := range tc.added {
					delete(got.(map[string]any), a)
				}
				// A device's in_use is computed for the API (its holders, counted).
				if m, ok := got.(map[string]any); ok && tc.name == "node" {
					ds, _ := m["devices"].([]any)
					for _, d := range ds {
						delete(d.(map[string]any), "in_use")
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("view of %s\n%v\nis not the record as the API showed it\n%v", tc.name, got, want)
				}
			}
		})
	}
}

// TestWireSpecRoundTrip: a spec a user sends is stored as sent and shown
// back as sent.
func TestWireSpecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 50; i++ {
		w := gantrytest.RandomValue(reflect.TypeFor[wire.JobSpec](), rng).(wire.JobSpec)
		if back := JobSpec(StoreJobSpec(w)); !reflect.DeepEqual(back, w) {
			t.Fatalf("spec %+v came back as %+v", w, back)
		}
		r := gantrytest.RandomValue(reflect.TypeFor[wire.Resources](), rng).(wire.Resources)
		if back := Resources(StoreResources(r)); back != r {
			t.Fatalf("resources %+v came back as %+v", r, back)
		}
	}
}

// TestVocabularyMatchesTheStore: the states and reasons the API names are
// the store's.
func TestVocabularyMatchesTheStore(t *testing.T) {
	if !slices.Equal(wire.States, store.States) {
		t.Fatalf("states: wire %v, store %v", wire.States, store.States)
	}
	pairs := [][2]string{
		{wire.ReasonExited, store.ReasonExited}, {wire.ReasonOOMKilled, store.ReasonOOMKilled},
		{wire.ReasonTimedOut, store.ReasonTimedOut}, {wire.ReasonNodeLost, store.ReasonNodeLost},
		{wire.ReasonCancelled, store.ReasonCancelled}, {wire.ReasonImagePullFailed, store.ReasonImagePullFailed},
		{wire.ReasonDependency, store.ReasonDependency},
		{wire.NodeReady, store.NodeReady}, {wire.NodeDraining, store.NodeDraining}, {wire.NodeDown, store.NodeDown},
		{wire.ScheduleLabel, store.ScheduleLabel},
		{wire.DeviceNVIDIA, store.DeviceNVIDIA}, {wire.DevicePath, store.DevicePath},
		{wire.CodeInvalid, store.EInvalid}, {wire.CodeNotFound, store.ENotFound}, {wire.CodeConflict, store.EConflict},
		{wire.CodeUnauthorized, store.EUnauthorized}, {wire.CodeForbidden, store.EForbidden},
		{wire.CodeUnavailable, store.EUnavailable}, {wire.CodeGone, store.EGone}, {wire.CodeInternal, store.EInternal},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("wire says %q where the store says %q", p[0], p[1])
		}
	}
}
