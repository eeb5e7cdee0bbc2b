package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"gantry/data"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestJobOutputs: each task of a 3-task array writes into its --output
// directory; gantry job output downloads one directory per task (and one
// task's with --task) with the files each task wrote; the stored artifact
// is in alice/outputs with its provenance annotations, read by a real
// `oras` (manifest and a large file by its title); bob can neither list
// nor download them; a task writing past its --output-limit fails with
// the reason and nothing is kept; the output dirs are gone from the node
// once recorded.
func TestJobOutputs(t *testing.T) {
	t.Parallel()
	gantrytest.RequireDocker(t)
	oras := gantrytest.Oras(t)
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	bob, _ := n.CreateUser(t, "bob")
	must := func(token string, args ...string) string { t.Helper(); return n.MustGantry(t, token, args...) }
	job := strings.TrimSpace(must(alice.Token, "run", "-d", "--name", "outs", "--array", "3", "--cpu", "200m", "--output", "/out",
		"gantry/toolbox", "--", "task-output", "/out"))
	must(alice.Token, "job", "wait", job)

	t.Run("gantry job output downloads one directory per task", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "got")
		out := must(alice.Token, "job", "output", job, dir)
		if !strings.Contains(out, "downloaded the output of 3 of 3 tasks") {
			t.Errorf("job output said:\n%s", out)
		}
		for i := range 3 {
			td := filepath.Join(dir, fmt.Sprintf("task-%04d", i))
			want := map[string]string{
				"task.txt":            fmt.Sprintf("task %d of 3, job %s, attempt 1\n", i, job),
				"nested/deeper/index": fmt.Sprintf("%d\n", i),
				"empty":               "",
			}
			for p, c := range want {
				if b, err := os.ReadFile(filepath.Join(td, p)); err != nil || string(b) != c {
					t.Errorf("task %d %s: %q, %v; want %q", i, p, b, err, c)
				}
			}
		}
		one := filepath.Join(t.TempDir(), "one")
		must(alice.Token, "job", "output", job, one, "--task", "2")
		if b, err := os.ReadFile(filepath.Join(one, "task.txt")); err != nil || !strings.HasPrefix(string(b), "task 2 of 3") {
			t.Errorf("--task 2 into DIR itself: %q, %v", b, err)
		}
	})

	t.Run("the output is an artifact with its provenance, readable by oras", func(t *testing.T) {
		var l wire.OutputList
		if err := alice.Do(t.Context(), "GET", "/api/v1/jobs/"+job+"/outputs", nil, &l); err != nil || len(l.Outputs) != 3 {
			t.Fatalf("outputs: %+v, %v", l, err)
		}
		o := l.Outputs[1]
		if o.Repo != "alice/outputs" || o.Tag != strings.ToLower(job)+"-0001" || o.Files != 3 || o.Ref != n.HTTPAddr+"/alice/outputs@"+o.Digest {
			t.Errorf("task 1's output %+v", o)
		}
		cmd := exec.Command(oras, "manifest", "fetch", "--plain-http", "-u", "token", "-p", alice.Token, o.Ref)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		body, err := cmd.Output()
		if err != nil {
			t.Fatalf("oras manifest fetch: %v", err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		var task wire.TaskDetail
		if err := alice.Do(t.Context(), "GET", "/api/v1/jobs/"+job+"/tasks/1", nil, &task); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{data.AnnotationJob: job, data.AnnotationTask: "1", data.AnnotationAttempt: "1",
			data.AnnotationExitCode: "0", data.AnnotationImageDigest: task.AttemptList[0].ImageDigest}
		if m.ArtifactType != data.ArtifactTypeOutput {
			t.Errorf("artifactType %q", m.ArtifactType)
		}
		for k, v := range want {
			if m.Annotations[k] != v || v == "" {
				t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
			}
		}
		if _, ok := m.Annotations[data.AnnotationGenAI]; ok {
			t.Errorf("the output of an image not marked generative AI is labelled so")
		}
	})

	t.Run("oras pull reads a large output file by its title", func(t *testing.T) {
		big := strings.TrimSpace(must(alice.Token, "run", "-d", "--output", "/out", "gantry/toolbox", "--", "write", "/out/weights/big.bin", "5000000"))
		must(alice.Token, "job", "wait", big)
		got := filepath.Join(t.TempDir(), "gantry")
		must(alice.Token, "job", "output", big, got)
		var l wire.OutputList
		if err := alice.Do(t.Context(), "GET", "/api/v1/jobs/"+big+"/outputs", nil, &l); err != nil || len(l.Outputs) != 1 {
			t.Fatalf("outputs: %+v, %v", l, err)
		}
		dst := t.TempDir()
		cmd := exec.Command(oras, "pull", "--plain-http", "-u", "token", "-p", alice.Token, "-o", dst, l.Outputs[0].Ref)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("oras pull: %v\n%s", err, out)
		}
		if a, b := fileSHA256(t, filepath.Join(dst, "weights/big.bin")), fileSHA256(t, filepath.Join(got, "weights/big.bin")); a != b {
			t.Errorf("oras pulled %s, gantry job output %s", a, b)
		}
	})

	t.Run("another user can neither list nor download them", func(t *testing.T) {
		_, errOut, code := n.GantryAs(t, bob.Token, "job", "output", job, t.TempDir())
		if code == 0 || !strings.Contains(errOut, "not found") {
			t.Errorf("bob's job output: exit %d: %s", code, errOut)
		}
		req, _ := http.NewRequest("GET", n.URL+"/v2/alice/outputs/tags/list", nil)
		req.SetBasicAuth("token", bob.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("bob listed alice/outputs: %s", b)
		}
	})

	t.Run("a task over its output limit fails and keeps nothing", func(t *testing.T) {
		over := strings.TrimSpace(must(alice.Token, "run", "-d", "--output", "/out", "--output-limit", "1M", "gantry/toolbox", "--", "write", "/out/big", "3000000"))
		_, _, code := n.GantryAs(t, alice.Token, "job", "wait", over)
		if code == 0 {
			t.Fatal("the job over its output limit succeeded")
		}
		var task wire.TaskDetail
		if err := alice.Do(t.Context(), "GET", "/api/v1/jobs/"+over+"/tasks/0", nil, &task); err != nil {
			t.Fatal(err)
		}
		if task.Reason != "output_limit" || !strings.Contains(task.AttemptList[0].Message, "output limit of 1.0 MiB") || task.Output != nil {
			t.Errorf("task over its limit: reason %q, message %q, output %+v", task.Reason, task.AttemptList[0].Message, task.Output)
		}
		_, errOut, code := n.GantryAs(t, alice.Token, "job", "output", over, t.TempDir())
		if code == 0 || !strings.Contains(errOut, "none of its tasks has a stored output") {
			t.Errorf("job output of the failed job: exit %d: %s", code, errOut)
		}
	})

	t.Run("the node keeps no output directory once the results are recorded", func(t *testing.T) {
		// The runner removes each right after its result is recorded,
		// which is when the job is seen ended: poll.
		var left []string
		gantrytest.Eventually(t, 20*time.Second, func() bool {
			left, _ = filepath.Glob(filepath.Join(n.DataDir, "outputs", "*", "*"))
			return len(left) == 0
		}, "the output directories to go (left: %v)", left)
	})
}

// TestPipelineReadsAnotherJobsOutputs: a 3-task array writes its outputs;
// a second 3-task array with --array-after reads task i's output at /in
// (N-to-N), and a single task after it reads all three at
// /in/task-NNNN; a job input without a dependency on a running job, or of
// a job that keeps no outputs, is refused at submission.
func TestPipelineReadsAnotherJobsOutputs(t *testing.T) {
	t.Parallel()
	gantrytest.RequireDocker(t)
	n := gantrytest.Start(t)
	alice, _ := n.CreateUser(t, "alice")
	must := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(n.MustGantry(t, alice.Token, args...))
	}
	first := must("run", "-d", "--array", "3", "--cpu", "200m", "--output", "/out", "gantry/toolbox", "--", "task-output", "/out")
	// Task i checks the index file task i of the first job wrote.
	nton := must("run", "-d", "--array", "3", "--cpu", "200m", "--array-after", first, "--input", "job:"+first+"=/in",
		"gantry/toolbox", "--", "cat", "/in/nested/deeper/index")
	all := must("run", "-d", "--after", first, "--input", "job:"+first+"=/in", "gantry/toolbox", "--", "cat", "/in/task-0002/task.txt")
	for _, j := range []string{first, nton, all} {
		must("job", "wait", j)
	}
	for i := range 3 {
		if got := must("job", "logs", nton, "--task", fmt.Sprint(i)); got != fmt.Sprint(i) {
			t.Errorf("task %d of the n-to-n job read %q, want %d (its own task's output)", i, got, i)
		}
	}
	if got := must("job", "logs", all); !strings.HasPrefix(got, "task 2 of 3, job "+first) {
		t.Errorf("the job reading every output read %q", got)
	}
	// The consumer's provenance names the outputs it read.
	var task wire.TaskDetail
	if err := alice.Do(t.Context(), "GET", "/api/v1/jobs/"+first+"/tasks/1", nil, &task); err != nil || task.Output == nil {
		t.Fatalf("first job's task 1: %+v %v", task, err)
	}
	show := must("job", "show", nton)
	if !strings.Contains(show, "input job:"+first+" at /in (the outputs of job "+first+"'s tasks, read-only)") {
		t.Errorf("job show:\n%s", show)
	}

	running := must("run", "-d", "--output", "/out", "gantry/toolbox", "--", "sleep", "30")
	_, errOut, code := n.GantryAs(t, alice.Token, "run", "--input", "job:"+running+"=/in", "gantry/toolbox", "--", "true")
	if code == 0 || !strings.Contains(errOut, "add --after "+running) {
		t.Errorf("a job input of a running job without --after: exit %d: %s", code, errOut)
	}
	must("job", "cancel", running)
	plain := must("run", "-d", "gantry/toolbox", "--", "true")
	_, errOut, code = n.GantryAs(t, alice.Token, "run", "--after", plain, "--input", "job:"+plain+"=/in", "gantry/toolbox", "--", "true")
	if code == 0 || !strings.Contains(errOut, "keeps no outputs") {
		t.Errorf("a job input of a job without --output: exit %d: %s", code, errOut)
	}
}
