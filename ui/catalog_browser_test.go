package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/gantrytest"
	"gantry/wire"
)

// pushAs tags the toolbox image Docker pulled from the node as repo:tag and
// pushes it with the real docker CLI as user (the layers are mounted from
// gantry/toolbox, which everyone may read).
func pushAs(t *testing.T, n *gantrytest.Node, user, password, repo string) {
	t.Helper()
	cfg := t.TempDir()
	docker := func(stdin string, args ...string) string {
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	docker(password, "login", n.HTTPAddr, "--username", user, "--password-stdin")
	src := n.HTTPAddr + "/gantry/toolbox:latest"
	docker("", "pull", src)
	dst := n.HTTPAddr + "/" + repo
	docker("", "tag", src, dst)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", dst).Run() })
	docker("", "push", dst)
}

// TestCatalogConsole drives the community catalog in real Chromium: alice
// publishes from the images page; bob browses and searches, reads an
// image's page, accepts its licence and tries it with its log streaming
// live until the trial allowance runs out; bob asks for access to an image
// in approval mode and alice approves him on her access page.
func TestCatalogConsole(t *testing.T) {
	t.Parallel()
	b := browser(t)
	n := gantrytest.Start(t)
	ctx := context.Background()
	aliceAPI, alicePW := n.CreateUser(t, "alice")
	_, bobPW := n.CreateUser(t, "bob")
	pushAs(t, n, "alice", alicePW, "alice/tool:1")
	pushAs(t, n, "alice", alicePW, "alice/model:1")
	// Trials: 6 CPU-seconds a day at 1 CPU, at most 4 s a run.
	if err := n.Client().Do(ctx, "PUT", "/api/v1/admin/trial", wire.TrialAllowance{CPUSecondsPerDay: 6, MaxRunTime: wire.Duration(4 * time.Second), CPU: 1000, Memory: 32 << 20}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := aliceAPI.Publish(ctx, wire.Publish{Repo: "alice/model", License: "Apache-2.0", Access: "approval", GenAI: true,
		Questions: []string{"What will you use it for?"}, Description: "a small model"}); err != nil {
		t.Fatal(err)
	}
	approve := func(repo string) {
		t.Helper()
		if _, err := n.Client().Review(ctx, wire.ReviewDecision{Repo: repo, Decision: "approve"}); err != nil {
			t.Fatal(err)
		}
	}
	approve("alice/model") // listed once reviewed (governance)
	// A dataset, published like an image; the catalog says what it is.
	corpus := t.TempDir()
	if err := os.WriteFile(filepath.Join(corpus, "edition.txt"), []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.MustGantry(t, aliceAPI.Token, "data", "push", corpus, "corpus:v1")
	if _, err := aliceAPI.Publish(ctx, wire.Publish{Repo: "alice/corpus", License: "CC-BY-4.0", Description: "a text corpus"}); err != nil {
		t.Fatal(err)
	}
	approve("alice/corpus")
	alice, bob := newTab(t, b, n.URL), newTab(t, b, n.URL)

	t.Run("alice publishes from the images page", func(t *testing.T) {
		alice.t = t
		alice.signIn("alice", alicePW)
		alice.open("/images", `!!document.querySelector('tr[data-repo="alice/tool"] button.publish')`, "the publish button")
		alice.do(10*time.Second, chromedp.Click(chromedp.CSS(`tr[data-repo="alice/tool"] button.publish`)))
		alice.waitFor(10*time.Second, `!!document.querySelector('form.publish')`, "the publish form")
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS(`form.publish [name=license]`), "MIT-ish"),
			chromedp.Click(chromedp.CSS(`form.publish button[type=submit]`)))
		alice.waitFor(10*time.Second, `document.querySelector('form.publish .error')?.textContent.includes('not a valid SPDX expression')`, "the licence error")
		alice.shoot("catalog-publish")
		alice.do(10*time.Second,
			chromedp.SetValue(chromedp.CSS(`form.publish [name=license]`), "MIT"),
			chromedp.SetValue(chromedp.CSS(`form.publish [name=description]`), "says what you tell it"),
			chromedp.SetValue(chromedp.CSS(`form.publish [name=readme]`), "# Tool\n\nIt **ticks**.\n\n<script>window.__pwned = 1</script>\n\n![x](http://example.invalid/x.png)"),
			chromedp.Click(chromedp.CSS(`form.publish button[type=submit]`)))
		alice.waitFor(15*time.Second, `location.pathname === '/catalog/alice/tool' && document.querySelector('#status')?.dataset.state === 'owner'`, "alice's catalog page of alice/tool")
		if got := eval[bool](alice, `!!document.querySelector('.readme strong') && !document.querySelector('.readme img') && !window.__pwned`); !got {
			t.Fatal("the README is not rendered safely")
		}
		// Her images page now says it is in the catalog, and under what.
		alice.open("/images", `document.querySelector('tr[data-repo="alice/tool"] td.licence')?.textContent === 'MIT (in the catalog, open)'`, "alice/tool's licence on the images page")
		if !eval[bool](alice, `document.querySelector('tr[data-repo="alice/tool"] button.publish')?.textContent === 'Update publication…'`) {
			t.Error("the images page offers to publish an image already published")
		}
		approve("alice/tool")
	})
	// "Try it" runs alice/tool's own command; give it one that ticks.
	if _, err := aliceAPI.Publish(ctx, wire.Publish{Repo: "alice/tool", License: "MIT", Description: "says what you tell it",
		Readme: "# Tool\n\nIt **ticks**.", Command: []string{"tick", "500ms", "10s"}}); err != nil {
		t.Fatal(err)
	}
	approve("alice/tool") // its README changed: reviewed again

	t.Run("bob browses, searches and filters the catalog", func(t *testing.T) {
		bob.t = t
		bob.signIn("bob", bobPW)
		bob.open("/catalog", `document.querySelectorAll('ul.catalog li').length === 3`, "the three published repositories")
		if !eval[bool](bob, `document.querySelector('li[data-repo="alice/corpus"] .tag.kind')?.textContent === 'Dataset' && !document.querySelector('li[data-repo="alice/tool"] .tag.kind')`) {
			t.Error("the dataset is not labelled as one in the list (or an image is)")
		}
		if !eval[bool](bob, `!!document.querySelector('li[data-repo="alice/model"] .tag.genai')`) {
			t.Error("the generative-AI image is not labelled in the list")
		}
		bob.shoot("catalog")
		bob.do(10*time.Second, chromedp.SendKeys(chromedp.CSS("#c-q"), "model"))
		bob.waitFor(10*time.Second, `document.querySelectorAll('ul.catalog li').length === 1 && !!document.querySelector('li[data-repo="alice/model"]')`, "the search for model")
		eval[any](bob, `(() => { const q = document.getElementById('c-q'); q.value = ''; const a = document.getElementById('c-access'); a.value = 'open'; a.dispatchEvent(new Event('change')); return null; })()`)
		bob.waitFor(10*time.Second, `document.querySelectorAll('ul.catalog li').length === 2 && !!document.querySelector('li[data-repo="alice/tool"]') && !!document.querySelector('li[data-repo="alice/corpus"]')`, "the open repositories")
		eval[any](bob, `(() => { const a = document.getElementById('c-access'); a.value = ''; const k = document.getElementById('c-kind'); k.value = 'dataset'; k.dispatchEvent(new Event('change')); return null; })()`)
		bob.waitFor(10*time.Second, `document.querySelectorAll('ul.catalog li').length === 1 && !!document.querySelector('li[data-repo="alice/corpus"]')`, "the datasets")
		eval[any](bob, `(() => { const k = document.getElementById('c-kind'); k.value = ''; k.dispatchEvent(new Event('change')); return null; })()`)
		bob.waitFor(10*time.Second, `document.querySelectorAll('ul.catalog li').length === 3`, "every kind again")
	})

	t.Run("bob reads an image's page, accepts its licence and tries it until the allowance runs out", func(t *testing.T) {
		bob.t = t
		bob.open("/catalog/alice/tool", `document.querySelector('#status')?.dataset.state === 'must_accept'`, "bob must accept")
		if eval[bool](bob, `!document.getElementById('try-it')?.disabled`) {
			t.Error("Try it is enabled before the licence is accepted")
		}
		if txt := eval[string](bob, `document.getElementById('try').textContent`); strings.Contains(txt, "null") || strings.Contains(txt, "undefined") {
			t.Errorf("the Try it box shows a missing value: %q", txt)
		}
		if !eval[bool](bob, `document.getElementById('licence-expr')?.textContent === 'MIT' && document.querySelector('.terms')?.textContent.includes('2.2.2.2 (1)')`) {
			t.Error("the licence or the terms are not shown before the accept button")
		}
		bob.shoot("catalog-entry")
		bob.do(10*time.Second, chromedp.Click(chromedp.CSS("#accept")))
		bob.waitFor(15*time.Second, `document.querySelector('#status')?.dataset.state === 'accepted'`, "bob accepted")
		bob.waitFor(10*time.Second, `document.getElementById('trial-left')?.textContent.startsWith('6 of 6')`, "the full allowance")
		bob.do(10*time.Second, chromedp.Click(chromedp.CSS("#try-it")))
		bob.waitFor(60*time.Second, `(document.querySelector('#try pre.log')?.textContent.match(/tick \d+/g) || []).length >= 2`, "the trial's log streaming")
		bob.shoot("catalog-try")
		// A run stops at 4 s (the longest trial run), charged at 1 CPU.
		bob.waitFor(60*time.Second, `!!document.getElementById('trial-left') && !document.getElementById('trial-left').textContent.startsWith('6 of 6')`, "the allowance after the run")
		if left := eval[string](bob, `document.getElementById('trial-left').textContent`); !strings.HasPrefix(left, "2 of 6") && !strings.HasPrefix(left, "1 of 6") && !strings.HasPrefix(left, "0 of 6") {
			t.Fatalf("after a 4 s run at 1 CPU: %q", left)
		}
		if eval[bool](bob, `!document.getElementById('try-it').disabled`) {
			bob.do(10*time.Second, chromedp.Click(chromedp.CSS("#try-it")))
		}
		bob.waitFor(60*time.Second, `document.getElementById('try-it')?.textContent === 'Allowance used up' && document.getElementById('try-it').disabled`, "the allowance used up")
		bob.shoot("catalog-try-used-up")
		tr := struct {
			Left float64 `json:"left_cpu_seconds"`
		}{}
		if err := clientFor(t, n, "bob", bobPW).Do(ctx, "GET", "/api/v1/catalog/trial", nil, &tr); err != nil || tr.Left >= 1 {
			t.Fatalf("bob's trial allowance after two runs: %+v %v", tr, err)
		}
	})

	t.Run("bob asks for access; alice approves on her access page", func(t *testing.T) {
		bob.t = t
		bob.open("/catalog/alice/model", `document.querySelector('#status')?.dataset.state === 'must_request'`, "bob must ask")
		bob.do(10*time.Second, chromedp.SendKeys(chromedp.CSS("#answer-0"), "my thesis"), chromedp.Click(chromedp.CSS("#request")))
		bob.waitFor(15*time.Second, `document.querySelector('#status')?.dataset.state === 'pending'`, "bob's request pending")
		alice.t = t
		alice.open("/catalog/alice/model/access", `!!document.querySelector('tr[data-user=bob][data-state=pending]')`, "bob's request on alice's page")
		alice.shoot("catalog-access")
		alice.do(10*time.Second, chromedp.Click(chromedp.CSS(`tr[data-user=bob] button.approve`)))
		alice.waitFor(15*time.Second, `!!document.querySelector('tr[data-user=bob][data-state=approved]')`, "bob approved")
		bob.open("/catalog", `document.querySelectorAll('ul.catalog li').length >= 1`, "the catalog")
		bob.open("/catalog/alice/model", `document.querySelector('#status')?.dataset.state === 'must_accept'`, "approved, licence to accept")
		bob.do(10*time.Second, chromedp.Click(chromedp.CSS("#accept")))
		bob.waitFor(15*time.Second, `document.querySelector('#status')?.dataset.state === 'accepted'`, "bob accepted alice/model")
		bob.shoot("catalog-entry-accepted")
	})
}

func clientFor(t *testing.T, n *gantrytest.Node, user, password string) interface {
	Do(ctx context.Context, method, path string, in, out any) error
} {
	t.Helper()
	tok, err := n.Client().Login(context.Background(), user, password, "test")
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return n.ClientAs(tok)
}
