package e2e

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"gantry/wire"
)

// The fault campaign's history and the models porcupine checks it
// against (fault_test.go drives the cluster).
//
// Two models, each partitioned (porcupine checks every partition alone):
//
//   - submissions, one partition per idempotency key: every submission
//     of a key that answered gives the same job;
//   - a job's life, one partition per acknowledged job: consistent reads
//     and cancels. A job becomes terminal on its own (its tasks end: the
//     runner's reports are not in the history), so a read may see it
//     become terminal at any point, but once terminal it never changes
//     again, a cancel is accepted only while it is not terminal, and a
//     cancel once accepted stays visible (cancel_requested).
//
// An operation whose outcome is unknown (no answer, or an answer that says
// it may still take effect) may take effect at any point after its call:
// its return is put after the end of the history. A read without an
// answer tells nothing and is left out.

// opKind is what a client did.
type opKind string

const (
	opSubmit opKind = "submit"
	opCancel opKind = "cancel"
	opRead   opKind = "read"
)

// faultIn is an operation's input.
type faultIn struct {
	Kind opKind
	Key  string // submit
	Job  string // cancel, read
}

// faultOut is what came back.
type faultOut struct {
	Unknown bool   // no answer that says what happened
	Refused bool   // a definite refusal: it had no effect
	ID      string // submit: the job
	// State and CancelRequested of the job a read returned; for a cancel
	// refused as conflict, the terminal state it named.
	State           string
	CancelRequested bool
}

// history records operations as they end.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func newHistory() *history { return &history{start: time.Now()} }

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, in faultIn, call int64, out faultOut) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: h.now()})
}

// longestUnavailability is, over the faults that began at starts, the
// longest time from a fault's start to the return of the next submission
// acknowledged after it, and which fault that was.
func (h *history) longestUnavailability(starts []int64) (time.Duration, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var longest time.Duration
	at := 0
	for i, t0 := range starts {
		next := int64(-1)
		for _, op := range h.ops {
			in, out := op.Input.(faultIn), op.Output.(faultOut)
			if in.Kind == opSubmit && !out.Unknown && !out.Refused && out.ID != "" && op.Call >= t0 && (next < 0 || op.Return < next) {
				next = op.Return
			}
		}
		if next < 0 {
			next = h.now()
		}
		if d := time.Duration(next - t0); d > longest {
			longest, at = d, i
		}
	}
	return longest, at
}

// split returns the submissions and the job operations, with unknown
// outcomes returning after everything else and reads without an answer
// left out (they tell nothing).
func (h *history) split() (submits, jobs []porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.now() + int64(time.Hour)
	for _, op := range h.ops {
		in, out := op.Input.(faultIn), op.Output.(faultOut)
		if in.Kind == opRead && (out.Unknown || out.Refused) {
			continue
		}
		if out.Unknown {
			op.Return = end
		}
		if in.Kind == opSubmit {
			submits = append(submits, op)
		} else {
			jobs = append(jobs, op)
		}
	}
	return submits, jobs
}

func partitionBy(key func(faultIn) string) func([]porcupine.Operation) [][]porcupine.Operation {
	return func(ops []porcupine.Operation) [][]porcupine.Operation {
		groups := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			k := key(op.Input.(faultIn))
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, groups[k])
		}
		return out
	}
}

// submitModel: the state is the key's job id ("" while none is known).
var submitModel = porcupine.Model{
	Partition: partitionBy(func(in faultIn) string { return in.Key }),
	Init:      func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		id, out := state.(string), output.(faultOut)
		switch {
		case out.Unknown || out.Refused:
			// It made the key's job or it did not; an answer naming the
			// job comes with the next submission of the key.
			return true, id
		case id == "" || id == out.ID:
			return true, out.ID
		}
		return false, id
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(faultIn), output.(faultOut)
		return fmt.Sprintf("submit %s -> %s", in.Key, describeOut(out, out.ID))
	},
	DescribeState: func(state any) string { return "job " + state.(string) },
}

// jobState is what the model knows of one job.
type jobState struct {
	Terminal        string // "" while it may still run
	CancelRequested bool
}

func terminalState(s string) bool {
	return s == wire.StateSucceeded || s == wire.StateFailed || s == wire.StateCancelled
}

var jobModel = porcupine.NondeterministicModel{
	Partition: partitionBy(func(in faultIn) string { return in.Job }),
	Init:      func() []any { return []any{jobState{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(jobState), input.(faultIn), output.(faultOut)
		switch in.Kind {
		case opRead:
			if st.Terminal != "" && out.State != st.Terminal {
				return nil // a terminal job changed
			}
			if st.CancelRequested && !out.CancelRequested {
				return nil // an accepted cancel was forgotten
			}
			if terminalState(out.State) {
				st.Terminal = out.State
			}
			st.CancelRequested = st.CancelRequested || out.CancelRequested
			return []any{st}
		case opCancel:
			switch {
			case out.Unknown:
				if st.Terminal != "" {
					return []any{st}
				}
				took := st
				took.CancelRequested = true
				return []any{st, took}
			case out.Refused:
				return []any{st}
			case out.State != "": // refused as conflict: already terminal
				if st.Terminal != "" && st.Terminal != out.State {
					return nil
				}
				st.Terminal = out.State
				return []any{st}
			case st.Terminal != "":
				return nil // a terminal job was cancelled
			default:
				st.CancelRequested = true
				return []any{st}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(faultIn), output.(faultOut)
		detail := out.State
		if out.CancelRequested {
			detail += " (cancel requested)"
		}
		return fmt.Sprintf("%s %s -> %s", in.Kind, in.Job, describeOut(out, detail))
	},
	DescribeState: func(state any) string {
		st := state.(jobState)
		return fmt.Sprintf("terminal=%q cancel_requested=%v", st.Terminal, st.CancelRequested)
	},
}

func describeOut(out faultOut, ok string) string {
	switch {
	case out.Unknown:
		return "unknown"
	case out.Refused:
		return "refused"
	}
	return ok
}

// TestFaultModels: the models accept what a correct cluster may answer and
// refuse what it may not (so the campaign's check can fail).
func TestFaultModels(t *testing.T) {
	type op struct {
		in        faultIn
		out       faultOut
		call, ret int64
	}
	check := func(ops []op) porcupine.CheckResult {
		var sub, job []porcupine.Operation
		for _, o := range ops {
			p := porcupine.Operation{Input: o.in, Output: o.out, Call: o.call, Return: o.ret}
			if o.in.Kind == opSubmit {
				sub = append(sub, p)
			} else {
				job = append(job, p)
			}
		}
		if r := porcupine.CheckOperationsTimeout(submitModel, sub, 10*time.Second); r != porcupine.Ok {
			return r
		}
		return porcupine.CheckOperationsTimeout(jobModel.ToModel(), job, 10*time.Second)
	}
	read := func(state string, cancel bool, call, ret int64) op {
		return op{faultIn{Kind: opRead, Job: "J"}, faultOut{State: state, CancelRequested: cancel}, call, ret}
	}
	cancel := func(out faultOut, call, ret int64) op {
		return op{faultIn{Kind: opCancel, Job: "J"}, out, call, ret}
	}
	submit := func(out faultOut, call, ret int64) op {
		return op{faultIn{Kind: opSubmit, Key: "k"}, out, call, ret}
	}
	cases := []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"a job runs and succeeds", []op{read("queued", false, 0, 1), read("running", false, 2, 3), read("succeeded", false, 4, 5)}, porcupine.Ok},
		{"a terminal job runs again", []op{read("succeeded", false, 0, 1), read("running", false, 2, 3)}, porcupine.Illegal},
		{"concurrent reads around the end", []op{read("succeeded", false, 0, 10), read("running", false, 1, 11)}, porcupine.Ok},
		{"a cancel is forgotten", []op{cancel(faultOut{}, 0, 1), read("running", false, 2, 3)}, porcupine.Illegal},
		{"a cancel is kept", []op{cancel(faultOut{}, 0, 1), read("running", true, 2, 3), read("cancelled", true, 4, 5)}, porcupine.Ok},
		{"a terminal job is cancelled", []op{read("failed", false, 0, 1), cancel(faultOut{}, 2, 3)}, porcupine.Illegal},
		{"a conflict names another end", []op{read("failed", false, 0, 1), cancel(faultOut{State: "succeeded"}, 2, 3)}, porcupine.Illegal},
		{"an unknown cancel shows later", []op{cancel(faultOut{Unknown: true}, 0, 100), read("running", false, 2, 3), read("running", true, 4, 5)}, porcupine.Ok},
		{"one key, one job", []op{submit(faultOut{ID: "A"}, 0, 1), submit(faultOut{Unknown: true}, 2, 100), submit(faultOut{ID: "A"}, 3, 4)}, porcupine.Ok},
		{"one key, two jobs", []op{submit(faultOut{ID: "A"}, 0, 1), submit(faultOut{ID: "B"}, 2, 3)}, porcupine.Illegal},
	}
	for _, tc := range cases {
		if got := check(tc.ops); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
