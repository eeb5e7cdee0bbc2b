package api

import (
	"net/http"
	"testing"
	"time"

	"gantry/store"
	"gantry/wire"
)

func TestQueues(t *testing.T) {
	t.Run("an admin creates a queue and everyone it admits sees it with its share", func(t *testing.T) {
		f := newFixture(t)
		w := f.do(admin, "POST", "/api/v1/queues", map[string]any{"name": "gpu", "weight": 3, "borrow": true,
			"limit": map[string]any{"cpu": 4000}, "max_run_time": "1h", "constraints": map[string]string{"gpu": "yes"}, "placement": "pack"})
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		q := decodeAs[wire.Queue](t, w)
		// default (1) + lab (2, the fixture's) + gpu (3).
		if q.Name != "gpu" || q.Weight != 3 || !q.Borrow || q.Limit == nil || q.Limit.CPU != 4000 || q.Placement != "pack" ||
			time.Duration(q.Grace) != store.DefaultGrace || q.Guaranteed != 0.5 {
			t.Fatalf("queue %+v", q)
		}
		list := decodeAs[wire.QueueList](t, f.do(other, "GET", "/api/v1/queues", nil))
		var names []string
		for _, q := range list.Queues {
			names = append(names, q.Name)
		}
		if len(names) != 2 || names[0] != "default" || names[1] != "gpu" {
			t.Fatalf("bob sees queues %v, want default and gpu (lab is alice's)", names)
		}
		lab := decodeAs[wire.Queue](t, f.do(owner, "GET", "/api/v1/queues/lab", nil))
		if len(lab.Users) != 0 {
			t.Fatalf("a user sees who else may use lab: %v", lab.Users)
		}
		if lab = decodeAs[wire.Queue](t, f.do(admin, "GET", "/api/v1/queues/lab", nil)); len(lab.Users) != 1 {
			t.Fatalf("the admin sees lab's users %v, want [alice]", lab.Users)
		}
	})
	t.Run("an update changes only the fields it gives", func(t *testing.T) {
		f := newFixture(t)
		q := decodeAs[wire.Queue](t, f.do(admin, "PATCH", "/api/v1/queues/lab", map[string]any{"borrow": true, "grace": "5s"}))
		if q.Weight != 2 || !q.Borrow || time.Duration(q.Grace) != 5*time.Second || len(q.Users) != 1 {
			t.Fatalf("queue after update %+v", q)
		}
		d := decodeAs[wire.Queue](t, f.do(admin, "PATCH", "/api/v1/queues/default", map[string]any{"weight": 4}))
		if d.Weight != 4 || !d.Borrow {
			t.Fatalf("default queue after update %+v", d)
		}
	})
	bad := []struct {
		name, method, path string
		body               any
		status             int
		code, want         string
	}{
		{"a queue needs a weight", "POST", "/api/v1/queues", map[string]any{"name": "x"}, 400, wire.CodeInvalid, "weight: required"},
		{"a weight must be positive", "POST", "/api/v1/queues", map[string]any{"name": "x", "weight": 0}, 400, wire.CodeInvalid, "weight: must be more than 0"},
		{"a bad name is refused", "POST", "/api/v1/queues", map[string]any{"name": "GPU!", "weight": 1}, 400, wire.CodeInvalid, `"GPU!" is not a valid name`},
		{"a queue exists once", "POST", "/api/v1/queues", map[string]any{"name": "lab", "weight": 1}, 409, wire.CodeConflict, "queue lab already exists"},
		{"placement is spread or pack", "PATCH", "/api/v1/queues/lab", map[string]any{"placement": "scatter"}, 400, wire.CodeInvalid, `"scatter" is neither spread nor pack`},
		{"a queue is not renamed", "PATCH", "/api/v1/queues/lab", map[string]any{"name": "lab2"}, 400, wire.CodeInvalid, "cannot be renamed"},
		{"an unknown queue is not found", "PATCH", "/api/v1/queues/nope", map[string]any{"weight": 1}, 404, wire.CodeNotFound, "queue nope does not exist"},
		{"the default queue stays", "DELETE", "/api/v1/queues/default", nil, 409, wire.CodeConflict, "default cannot be removed"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			wantError(t, f.do(admin, tc.method, tc.path, tc.body), tc.status, tc.code, tc.want)
		})
	}
	t.Run("a job names its queue: an unknown one or one the user may not use is refused naming it", func(t *testing.T) {
		f := newFixture(t)
		wantError(t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "queue": "nope"}), 400, wire.CodeInvalid, "queue: nope does not exist")
		wantError(t, f.do(other, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "queue": "lab"}), 403, wire.CodeForbidden, "you may not submit to lab")
		w := f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "queue": "lab", "no_preempt": true})
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if j := decodeAs[wire.Job](t, w); j.Spec.Queue != "lab" || !j.Spec.NoPreempt {
			t.Fatalf("job %+v", j.Spec)
		}
		q := decodeAs[wire.Queue](t, f.do(owner, "GET", "/api/v1/queues/lab", nil))
		if q.Queued != 1 {
			t.Fatalf("lab has %d queued tasks, want 1", q.Queued)
		}
		wantError(t, f.do(admin, "DELETE", "/api/v1/queues/lab", nil), 409, wire.CodeConflict, "still has queued or running tasks")
	})
	t.Run("a queue's maximum run time bounds and defaults a job's timeout, its priority fills an unset one", func(t *testing.T) {
		f := newFixture(t)
		f.do(admin, "PATCH", "/api/v1/queues/lab", map[string]any{"max_run_time": "10m", "priority": 7})
		wantError(t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "queue": "lab", "timeout": "1h"}), 400, wire.CodeInvalid, "timeout: 1h0m0s is more than queue lab allows (10m0s)")
		j := decodeAs[wire.Job](t, f.do(owner, "POST", "/api/v1/jobs", map[string]any{"image": "gantry/toolbox", "queue": "lab"}))
		if time.Duration(j.Spec.Timeout) != 10*time.Minute || j.Spec.Priority != 7 {
			t.Fatalf("spec %+v, want the queue's timeout and priority", j.Spec)
		}
	})
	t.Run("an admin sets a user's fair-share weight", func(t *testing.T) {
		f := newFixture(t)
		u := decodeAs[wire.User](t, f.do(admin, "PATCH", "/api/v1/users/bob", map[string]any{"weight": 2.5}))
		if u.Weight != 2.5 {
			t.Fatalf("user %+v", u)
		}
		wantError(t, f.do(admin, "PATCH", "/api/v1/users/bob", map[string]any{"weight": -1}), 400, wire.CodeInvalid, "weight: must be more than 0")
	})
}
