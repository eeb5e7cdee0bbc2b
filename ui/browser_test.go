package ui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// chromium finds the browser the tests drive: $CHROME, or Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	gantrytest.Require(t, false, "no Chromium found for the console's browser tests (install Debian's chromium: apt-get install -y chromium, or set CHROME)")
	return ""
}

var (
	shotDirOnce sync.Once
	shotDir     string
)

// screenshotDir is $GANTRY_TEST_OUTPUT/screenshots, or test-output/screenshots
// at the module root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	shotDirOnce.Do(func() {
		base := os.Getenv("GANTRY_TEST_OUTPUT")
		if base == "" {
			root, err := gantrytest.ModuleRoot()
			if err != nil {
				t.Fatalf("find module root: %v", err)
			}
			base = filepath.Join(root, "test-output")
		}
		shotDir = filepath.Join(base, "screenshots")
		if err := os.MkdirAll(shotDir, 0o755); err != nil {
			t.Fatalf("create screenshot dir: %v", err)
		}
		fmt.Fprintf(os.Stderr, "ui: console screenshots are written to %s\n", shotDir)
	})
	return shotDir
}

// browser starts one headless Chromium for the test and returns its first
// tab's context; it is stopped when the test ends. extra adds flags, such
// as the browser's languages.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900))
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return ctx
}

// tab is one page of the console in a browser context.
type tab struct {
	t   *testing.T
	ctx context.Context
	url string
}

// newTab opens a page in a fresh browser context (its own cookies), as a
// second person on another computer would have.
func newTab(t *testing.T, b context.Context, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return &tab{t: t, ctx: ctx, url: url}
}

// do runs actions with a deadline.
func (p *tab) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v (page %s)", err, p.location())
	}
}

func (p *tab) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	return s
}

// eval evaluates a JavaScript expression.
func eval[T any](p *tab, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds or timeout passes.
func (p *tab) waitFor(timeout time.Duration, js, what string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		body, _ := chromedp.Run(context.WithoutCancel(p.ctx), chromedp.Evaluate[string](`document.getElementById('main')?.innerText.slice(0, 1500)`))
		p.t.Fatalf("waiting for %s (%s): %v\npage %s shows:\n%s", what, js, err, p.location(), body)
	}
}

// signIn signs in through the form.
func (p *tab) signIn(user, password string) {
	p.t.Helper()
	p.signInSeeing(user, password, "Jobs", "Live")
}

// signInSeeing signs in through the form and waits for the jobs page
// titled jobs and the live indicator saying live: the console's words in
// the language it shows.
func (p *tab) signInSeeing(user, password, jobs, live string) {
	p.t.Helper()
	p.do(60*time.Second,
		chromedp.Navigate(p.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#f-username")),
		chromedp.SendKeys(chromedp.CSS("#f-username"), user),
		chromedp.SendKeys(chromedp.CSS("#f-password"), password+"\r"),
	)
	p.waitFor(30*time.Second, fmt.Sprintf(`location.pathname === '/jobs' && document.querySelector('#main h1')?.textContent === %q`, jobs), "the jobs page after signing in")
	p.waitFor(20*time.Second, fmt.Sprintf(`document.getElementById('live').textContent === %q`, live), "the live connection")
}

// open navigates in place (no reload) to path and waits for cond.
func (p *tab) open(path, cond, what string) {
	p.t.Helper()
	eval[any](p, fmt.Sprintf(`history.pushState(null, '', %q); dispatchEvent(new PopStateEvent('popstate')); null`, path))
	p.waitFor(20*time.Second, cond, what)
}

// shootDark saves a screenshot at 1280 px with the dark colour scheme.
func (p *tab) shootDark(name string) {
	p.t.Helper()
	dark := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	})
	light := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		return err
	})
	p.do(20*time.Second, dark)
	defer p.do(20*time.Second, light)
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(p.t), name+"-dark-1280.png"), png, 0o644); err != nil {
		p.t.Fatalf("write screenshot: %v", err)
	}
}

// shoot saves full-page screenshots of the current page at 1280 and 390 px.
func (p *tab) shoot(name string) {
	p.t.Helper()
	dir := screenshotDir(p.t)
	for _, w := range []int64{1280, 390} {
		h := int64(900)
		if w == 390 {
			h = 844
		}
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		_ = chromedp.Do(ctx, chromedp.EmulateViewport(w, h))
		// Let layout, the canvas and one animation frame settle at this width,
		// scrolled to the top: a full-page shot of a scrolled page draws the
		// sticky header where the viewport was.
		_, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => { scrollTo(0, 0); requestAnimationFrame(() => requestAnimationFrame(() => r(true))); })`, chromedp.EvalAwaitPromise))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			p.t.Fatalf("screenshot %s: %v", name, err)
		}
		f := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, w))
		if err := os.WriteFile(f, png, 0o644); err != nil {
			p.t.Fatalf("write screenshot: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	_ = chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900))
}

// recordStates makes the page remember every job state its header shows and
// whether log lines appeared while it said "running".
const recordStates = `(() => {
  window.__marker = 'no reload';
  window.__seen = [];
  window.__ticksWhileRunning = 0;
  const look = () => {
    const s = document.querySelector('#main .head h1 .badge')?.textContent;
    if (s && window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s);
    const log = document.querySelector('pre.log')?.textContent || '';
    if (s === 'running' && /tick \d+/.test(log)) window.__ticksWhileRunning = (log.match(/tick \d+/g) || []).length;
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
  return true;
})()`

func TestConsole(t *testing.T) {
	t.Parallel()
	b := browser(t)
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--label", "zone=lab"}})
	ctx := context.Background()
	aliceAPI, alicePW := n.CreateUser(t, "alice")
	bobAPI, bobPW := n.CreateUser(t, "bob")
	nodes, err := n.Client().Nodes(ctx)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("list nodes: %v %v", nodes, err)
	}
	capacity := nodes[0].Capacity.CPU

	alice := newTab(t, b, n.URL)
	var firstJob string

	t.Run("a user signs in and sees what to do first", func(t *testing.T) {
		alice.t = t
		alice.do(20*time.Second, chromedp.Navigate(n.URL), chromedp.WaitVisible(chromedp.CSS("#f-username")))
		alice.shoot("login")
		alice.waitFor(5*time.Second, `document.querySelector('.ca-note a')?.getAttribute('href') === '/api/v1/cluster/ca' &&
			document.querySelector('.ca-note').textContent.includes('/etc/docker/certs.d/' + location.host + '/ca.crt')`, "the note on trusting the server's CA")
		alice.signIn("alice", alicePW)
		alice.waitFor(10*time.Second, `document.querySelector('.empty')?.textContent.includes('Submit your first job')`, "the empty state")
		alice.shoot("jobs-empty")
	})

	t.Run("the form shows the API's validation message next to the field", func(t *testing.T) {
		alice.t = t
		alice.open("/submit", `!!document.getElementById('f-array')`, "the submit form")
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS("#f-array"), "20000"),
			chromedp.Click(chromedp.CSS("form.submit button[type=submit]")))
		alice.waitFor(10*time.Second, `document.querySelector('.field[data-field=array] .err')?.textContent.includes('between 1 and 10000')`, "the array field's error")
		if got := eval[string](alice, `document.activeElement.id`); got != "f-array" {
			t.Errorf("focus is on %q after the error, want the array field", got)
		}
		alice.shoot("submit-invalid")
		alice.do(5*time.Second, chromedp.SetValue(chromedp.CSS("#f-array"), "1"))
	})

	t.Run("a constraint no node satisfies is refused next to its field", func(t *testing.T) {
		alice.t = t
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS("#f-constraints"), "zone=mars"),
			chromedp.Click(chromedp.CSS("form.submit button[type=submit]")))
		alice.waitFor(10*time.Second, `document.querySelector('.field[data-field=constraints] .err')?.textContent.includes('no node has zone=mars')`, "the constraints field's error")
		alice.do(5*time.Second, chromedp.SetValue(chromedp.CSS("#f-constraints"), "zone=lab"))
	})

	t.Run("a job submitted in the form goes queued, running, succeeded and its log streams live", func(t *testing.T) {
		alice.t = t
		// Fill the node first so the job visibly waits in the queue.
		blocker, err := aliceAPI.Submit(ctx, wire.JobSpec{Name: "blocker", Image: "gantry/toolbox", Command: []string{"sleep", "3"}, CPU: capacity})
		if err != nil {
			t.Fatalf("submit blocker: %v", err)
		}
		gantrytest.Eventually(t, 30*time.Second, func() bool {
			j, err := aliceAPI.Job(ctx, blocker.ID)
			return err == nil && j.State == wire.StateRunning
		}, "the blocker job to run")
		eval[bool](alice, recordStates)
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS("#f-name"), "ticker"),
			chromedp.SetValue(chromedp.CSS("#f-command"), "tick 200ms 3s"),
			chromedp.SetValue(chromedp.CSS("#f-cpu"), "500"),
			chromedp.Click(chromedp.CSS("form.submit button[type=submit]")))
		alice.waitFor(15*time.Second, `/^\/jobs\/[0-9A-Z]+$/.test(location.pathname)`, "the job page")
		firstJob = strings.TrimPrefix(eval[string](alice, `location.pathname`), "/jobs/")
		alice.waitFor(60*time.Second, `window.__seen.includes('succeeded')`, "the job to succeed on the page")
		seen := eval[[]string](alice, `window.__seen`)
		want := []string{"queued", "running", "succeeded"}
		if !inOrder(seen, want) {
			t.Errorf("the page showed states %v, want %v in that order", seen, want)
		}
		if m := eval[string](alice, `window.__marker || ''`); m != "no reload" {
			t.Errorf("the page reloaded")
		}
		if k := eval[int](alice, `window.__ticksWhileRunning`); k < 2 {
			t.Errorf("%d log lines appeared while the job ran, want them to stream live", k)
		}
		alice.waitFor(10*time.Second, `(document.querySelector('pre.log')?.textContent.match(/tick \d+/g) || []).length >= 14`, "the whole log")
		alice.waitFor(10*time.Second, `document.querySelector('.attempts td[data-label="Exit code"]')?.textContent === '0'`, "the attempt's exit code")
		alice.shoot("job")
		alice.open("/jobs", `document.querySelectorAll('table.jobs tbody tr').length >= 2`, "the jobs table")
		alice.waitFor(10*time.Second, `[...document.querySelectorAll('table.jobs tbody tr')].every(r => r.dataset.state === 'succeeded')`, "both jobs succeeded in the table")
		alice.shoot("jobs")
		alice.shootDark("jobs")
		alice.open("/jobs/"+firstJob, `document.querySelector('pre.log')?.textContent.includes('tick 14')`, "the job page again")
		alice.shootDark("job")
	})

	t.Run("another user in another browser does not see the job", func(t *testing.T) {
		bob := newTab(t, b, n.URL)
		bob.signIn("bob", bobPW)
		// Alice's new job is submitted before Bob's; when Bob's shows up
		// live, Alice's would have too.
		if _, err := aliceAPI.Submit(ctx, wire.JobSpec{Name: "alice-private", Image: "gantry/toolbox", Command: []string{"echo", "secret"}}); err != nil {
			t.Fatalf("submit: %v", err)
		}
		if _, err := bobAPI.Submit(ctx, wire.JobSpec{Name: "bob-job", Image: "gantry/toolbox", Command: []string{"echo", "hi"}}); err != nil {
			t.Fatalf("submit: %v", err)
		}
		bob.waitFor(20*time.Second, `document.querySelector('table.jobs tbody')?.textContent.includes('bob-job')`, "Bob's job to appear live")
		if rows := eval[string](bob, `document.querySelector('table.jobs tbody').textContent`); strings.Contains(rows, "alice") || strings.Contains(rows, "ticker") {
			t.Errorf("Bob's jobs table shows Alice's jobs: %q", rows)
		}
		bob.open("/jobs/"+firstJob, `document.querySelector('#main h1')?.textContent === 'Job not found'`, "Alice's job to be not found for Bob")
	})

	t.Run("the page reconnects after a server restart and shows the true final state", func(t *testing.T) {
		alice.t = t
		j, err := aliceAPI.Submit(ctx, wire.JobSpec{Name: "survivor", Image: "gantry/toolbox", Command: []string{"tick", "200ms", "6s"}})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		eval[bool](alice, recordStates)
		alice.open("/jobs/"+j.ID, `document.querySelector('#main .head h1 .badge')?.textContent === 'running'`, "the job running on the page")
		n.Kill9(t)
		alice.waitFor(10*time.Second, `document.getElementById('live').textContent === 'Reconnecting…'`, "the page to notice the lost connection")
		n.Restart(t)
		final, err := aliceAPI.Wait(ctx, j.ID, 90*time.Second)
		if err != nil || !wire.Terminal(final.State) {
			t.Fatalf("wait for the job: %v %+v", err, final)
		}
		alice.waitFor(30*time.Second, fmt.Sprintf(`document.getElementById('live').textContent === 'Live' && document.querySelector('#main .head h1 .badge')?.textContent === %q`, final.State), "the page to show the final state "+final.State)
		done := eval[string](alice, `document.querySelector('.summary')?.textContent || ''`)
		if want := fmt.Sprintf("%d/%d", final.Counts[wire.StateSucceeded], final.Total); !strings.Contains(done, want) {
			t.Errorf("summary %q does not show progress %s", done, want)
		}
		if m := eval[string](alice, `window.__marker || ''`); m != "no reload" {
			t.Errorf("the page reloaded")
		}
	})

	t.Run("the failed tasks of an array run again from the job page, in the same job", func(t *testing.T) {
		alice.t = t
		j, err := aliceAPI.Submit(ctx, wire.JobSpec{Name: "flaky", Image: "gantry/toolbox", Command: []string{"fail-tasks", "1,4", "3"}, Array: 6, CPU: 100, Memory: 32 << 20})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		if final, err := aliceAPI.Wait(ctx, j.ID, 2*time.Minute); err != nil || final.State != wire.StateFailed {
			t.Fatalf("first run: %+v %v", final, err)
		}
		alice.open("/jobs/"+j.ID, `document.querySelector('#rerun-failed')?.textContent === 'Retry 2 failed'`, "the retry button on the failed job")
		alice.shoot("job-failed")
		eval[bool](alice, recordStates)
		alice.do(10*time.Second, chromedp.Click(chromedp.CSS("#rerun-failed")))
		alice.waitFor(90*time.Second, `document.querySelector('#main .head h1 .badge')?.textContent === 'succeeded'`, "the job to succeed after the retry")
		if jj, err := aliceAPI.Job(ctx, j.ID); err != nil || jj.State != wire.StateSucceeded || jj.Counts[wire.StateSucceeded] != 6 {
			t.Fatalf("job after the retry: %+v %v", jj, err)
		}
		if seen := eval[[]string](alice, `window.__seen`); !inOrder(seen, []string{"running", "succeeded"}) {
			t.Errorf("the page showed %v after the retry, want running then succeeded", seen)
		}
		if m := eval[string](alice, `window.__marker || ''`); m != "no reload" {
			t.Errorf("the page reloaded")
		}
	})

	t.Run("a job with an output submitted in the form lists each task's output as it is kept and downloads it as a tar", func(t *testing.T) {
		alice.t = t
		alice.open("/submit", `document.querySelector('#f-output') !== null`, "the submit form")
		// A system path is refused next to the field.
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS("#f-command"), "task-output /out"),
			chromedp.SetValue(chromedp.CSS("#f-output"), "/etc"),
			chromedp.Click(chromedp.CSS("form.submit button[type=submit]")))
		alice.waitFor(15*time.Second, `document.querySelector('.field[data-field="output"] .err')?.textContent.includes('system path')`, "the output field's error")
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS("#f-name"), "outs"),
			chromedp.SetValue(chromedp.CSS("#f-array"), "3"),
			chromedp.SetValue(chromedp.CSS("#f-cpu"), "100"),
			chromedp.SetValue(chromedp.CSS("#f-memory"), "32"),
			chromedp.SetValue(chromedp.CSS("#f-output"), "/out"),
			chromedp.Click(chromedp.CSS("form.submit button[type=submit]")))
		// The rows come as the tasks end, without a reload.
		alice.waitFor(15*time.Second, `/^\/jobs\/[0-9A-Z]+$/.test(location.pathname)`, "the job page")
		id := strings.TrimPrefix(eval[string](alice, `location.pathname`), "/jobs/")
		j := &wire.Job{ID: id}
		alice.waitFor(90*time.Second, `document.querySelectorAll('#outputs tbody tr').length === 3`, "three outputs on the job page")
		alice.shoot("job-outputs")
		// The link downloads the task's files as one tar (the browser's session cookie).
		got := eval[string](alice, `(async () => {
			const a = document.querySelector('#outputs tbody tr:nth-child(2) a.button');
			const r = await fetch(a.href, {credentials: 'same-origin'});
			const b = new Uint8Array(await r.arrayBuffer());
			return r.status + ' ' + r.headers.get('content-type') + ' ' + a.getAttribute('download') + ' ' + new TextDecoder().decode(b).includes('task 1 of 3, job ');
		})()`)
		want := "200 application/x-tar " + strings.ToLower(j.ID) + "-task-0001-output.tar true"
		if got != want {
			t.Errorf("download: %q, want %q", got, want)
		}
	})

	t.Run("the job page shows its dependencies and dependents as links with kind and state", func(t *testing.T) {
		alice.t = t
		sub := func(s wire.JobSpec) *wire.Job {
			s.Image, s.CPU, s.Memory = "gantry/toolbox", 100, 32<<20
			j, err := aliceAPI.Submit(ctx, s)
			if err != nil {
				t.Fatalf("submit: %v", err)
			}
			return j
		}
		a := sub(wire.JobSpec{Name: "prep", Command: []string{"true"}})
		cleanup := sub(wire.JobSpec{Name: "cleanup", Command: []string{"true"}, Deps: []wire.Dependency{{Job: a.ID, Kind: wire.DepAfterNotOK}}})
		next := sub(wire.JobSpec{Name: "next", Command: []string{"true"}, Deps: []wire.Dependency{{Job: a.ID, Kind: wire.DepAfterOK}}})
		for _, id := range []string{cleanup.ID, next.ID} {
			if _, err := aliceAPI.Wait(ctx, id, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		alice.open("/jobs/"+a.ID, `document.querySelectorAll('#deps .dep').length === 2`, "the dependents of the job")
		got := eval[[]string](alice, `[...document.querySelectorAll('#deps .dep')].map((li) =>
			li.querySelector('a').getAttribute('href') + ' ' + li.querySelector('.kind').textContent + ' ' + li.querySelector('.badge').textContent)`)
		want := []string{"/jobs/" + cleanup.ID + " afternotok failed", "/jobs/" + next.ID + " afterok succeeded"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("dependents on the page:\n%v\nwant\n%v", got, want)
		}
		alice.open("/jobs/"+next.ID, `document.querySelector('#deps .dep a')?.textContent === 'prep'`, "the dependency of the job")
	})

	t.Run("a schedule made in the form submits jobs and shows live on the schedules page", func(t *testing.T) {
		alice.t = t
		alice.open("/submit", `!!document.getElementById('f-cron')`, "the submit form")
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS("#f-name"), "heartbeat"),
			chromedp.SetValue(chromedp.CSS("#f-command"), "echo beat"),
			chromedp.SetValue(chromedp.CSS("#f-cpu"), "100"),
			chromedp.SetValue(chromedp.CSS("#f-cron"), "@every 2s"),
			chromedp.Click(chromedp.CSS("form.submit button[type=submit]")))
		alice.waitFor(15*time.Second, `location.pathname === '/schedules' && !!document.querySelector('table.schedules tbody tr')`, "the schedules page")
		alice.waitFor(30*time.Second, `Number(document.querySelector('table.schedules tbody tr td.runs')?.textContent) >= 2`, "two runs counted live")
		alice.do(5*time.Second, chromedp.Click(chromedp.CSS("table.schedules tbody tr td.right button")))
		alice.waitFor(10*time.Second, `document.querySelector('table.schedules tbody tr td.next')?.textContent === 'paused'`, "the schedule paused")
		list, err := aliceAPI.Schedules(ctx)
		if err != nil || len(list) != 1 || !list[0].Paused || list[0].Runs < 2 || list[0].Name != "heartbeat" {
			t.Fatalf("alice's schedules after the form: %+v %v", list, err)
		}
		alice.shoot("schedules")
	})

	t.Run("an admin creates a queue in the form; a user sees it with its guaranteed share", func(t *testing.T) {
		admin := newTab(t, b, n.URL)
		admin.signIn("admin", n.AdminPassword)
		admin.open("/queues", `!!document.querySelector('tr[data-queue=default]') && !!document.getElementById('f-weight')`, "the queues page")
		admin.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS(".create-queue #f-name"), "gpu"),
			chromedp.SetValue(chromedp.CSS(".create-queue #f-weight"), "3"),
			chromedp.Click(chromedp.CSS(".create-queue #f-borrow")),
			chromedp.Click(chromedp.CSS(".create-queue button[type=submit]")))
		// default weighs 1, gpu 3: gpu is guaranteed 75%.
		admin.waitFor(10*time.Second, `document.querySelector('tr[data-queue=gpu] td.guaranteed')?.textContent === '75%'`, "the new queue's guarantee")
		admin.shoot("queues-admin")
		q, err := aliceAPI.Queue(ctx, "gpu")
		if err != nil || q.Weight != 3 || !q.Borrow || q.Guaranteed != 0.75 {
			t.Fatalf("queue gpu after the form: %+v %v", q, err)
		}
		alice.t = t
		alice.open("/queues", `document.querySelector('tr[data-queue=gpu] td.weight')?.textContent === '3'`, "the queues page as a user")
		if eval[bool](alice, `!!document.querySelector('.create-queue')`) {
			t.Fatalf("a user sees the admin's queue form")
		}
		alice.shoot("queues")
		if err := n.Client().DeleteQueue(ctx, "gpu"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("every page renders at 1280 and 390 pixels", func(t *testing.T) {
		admin := newTab(t, b, n.URL)
		admin.signIn("admin", n.AdminPassword)
		admin.open("/admin/users", `document.querySelectorAll('#main table tbody tr').length >= 3`, "the users page")
		admin.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS(".quota-form #f-user"), "alice"),
			chromedp.SetValue(chromedp.CSS(".quota-form #f-cpu"), "2"),
			chromedp.SetValue(chromedp.CSS(".quota-form #f-memory"), "4"),
			chromedp.SetValue(chromedp.CSS(".quota-form #f-storage_quota"), "50"),
			chromedp.Click(chromedp.CSS(".quota-form button[type=submit]")))
		admin.waitFor(10*time.Second, `document.querySelector('tr[data-user=alice] td.quota')?.textContent === '2 CPU, 4.0 GiB'`, "alice's quota in the users table")
		admin.waitFor(10*time.Second, `/^\S+ \S*B \/ 50 GiB$/.test(document.querySelector('tr[data-user=alice] td.storage')?.textContent)`, "alice's storage and its quota in the users table")
		if u, err := aliceAPI.Job(ctx, firstJob); err != nil || u == nil {
			t.Fatalf("alice's API still works: %v", err)
		}
		var me wire.User
		if err := aliceAPI.Do(ctx, "GET", "/api/v1/me", nil, &me); err != nil || me.Quota == nil || me.Quota.CPU != 2000 || me.Quota.Memory != 4<<30 || me.StorageQuota != 50<<30 {
			t.Fatalf("alice's quota after the form: %+v storage %d %v", me.Quota, me.StorageQuota, err)
		}
		// A 10,000-task array on a drained node stays queued: the grid at
		// its densest.
		node := nodes[0].Name
		if _, err := n.Client().DrainNode(ctx, node, "drain", 0); err != nil {
			t.Fatalf("drain: %v", err)
		}
		big, err := n.Client().Submit(ctx, wire.JobSpec{Name: "wide-array", Image: "gantry/toolbox", Command: []string{"echo"}, Array: 10000})
		if err != nil {
			t.Fatalf("submit array: %v", err)
		}
		admin.open("/jobs/"+big.ID, `document.querySelector('.legend')?.textContent.includes('queued 10000') && document.querySelector('.grid canvas')?.dataset.drawn === '10000'`, "the 10,000-task grid")
		admin.waitFor(10*time.Second, `document.querySelector('.kv.waiting .v')?.textContent === 'no node is ready (every node is draining or down)'`, "why the array waits")
		admin.shoot("job-array-10000")
		if _, err := n.Client().Cancel(ctx, big.ID); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		admin.waitFor(30*time.Second, `document.querySelector('#main .head h1 .badge')?.textContent === 'cancelled' && document.querySelector('.legend')?.textContent.includes('cancelled 10000')`, "the array to show cancelled")
		admin.shoot("job-array-10000-cancelled")
		if _, err := n.Client().DrainNode(ctx, node, "ready", 0); err != nil {
			t.Fatalf("ready: %v", err)
		}
		for _, pg := range []struct{ path, cond, name string }{
			{"/nodes", `document.querySelector('table.cards tbody tr .tag.label')?.textContent === 'zone=lab' && document.querySelector('td.role[data-role=leader]') !== null && document.querySelector('p.tolerance')?.dataset.tolerance === '0'`, "nodes"},
			{"/images", `!!document.querySelector('.steps')`, "images"},
			{"/account", `!!document.querySelector('#main section table, #main section .empty')`, "account"},
			{"/admin/users", `document.querySelectorAll('#main table tbody tr').length >= 3`, "admin-users"},
			{"/admin/jobs", `document.querySelectorAll('table.jobs tbody tr').length >= 4`, "admin-jobs"},
			{"/submit", `!!document.getElementById('f-image')`, "submit"},
			{"/schedules", `!!document.querySelector('table.schedules tbody tr')`, "admin-schedules"},
		} {
			admin.open(pg.path, pg.cond, pg.name)
			admin.shoot(pg.name)
		}
	})
	_ = client.New
}

// inOrder reports whether want appears in seen as a subsequence.
func inOrder(seen, want []string) bool {
	i := 0
	for _, s := range seen {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}
