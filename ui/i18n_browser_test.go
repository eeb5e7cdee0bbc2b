package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/gantrytest"
	"gantry/wire"
)

// untranslated lists the visible text of the header and the page, and the
// placeholders, titles and labels in them, that hold an English word not
// in allowed: what a Chinese reader would find left in English. Code,
// preformatted text, ids (.mono) and the language switch (each language
// names itself) are not prose.
const untranslated = `((allowed) => {
  const ok = new Set(allowed);
  const bad = new Set();
  const check = (s, where) => {
    for (const w of (s.match(/[A-Za-z][A-Za-z0-9_'-]*/g) || [])) if (!ok.has(w)) bad.add(where + ': ' + s.trim());
  };
  const skip = (el) => el.closest('code, pre, .mono, select.lang, [hidden]');
  for (const root of [document.getElementById('top'), document.getElementById('main')]) {
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n; (n = walk.nextNode());) if (!skip(n.parentElement)) check(n.textContent, n.parentElement.tagName.toLowerCase());
    for (const el of root.querySelectorAll('[placeholder], [title], [aria-label], [data-label]')) {
      if (skip(el)) continue;
      for (const a of ['placeholder', 'title', 'aria-label', 'data-label']) if (el.hasAttribute(a)) check(el.getAttribute(a), a);
    }
  }
  return [...bad];
})`

// wordsNotTranslated are the words that stay as they are in Chinese: the
// product's and the tools' names, units and the technical terms Chinese
// users write in Latin letters.
var wordsNotTranslated = []string{
	"Gantry", "CPU", "GPU", "B", "KiB", "MiB", "GiB", "TiB", "s", "API", "ID", "CLI", "JSON", "README", "SPDX", "UTC", "Cron", "cron",
	"HTTP", "HTTPS", "CA", "AI", "KEY", "value", "SIGTERM", "SIGKILL",
	"Docker", "docker", "skopeo", "crane", "GANTRY_TASK_INDEX", "GANTRY_TASK_COUNT", "insecure-registries", "etc", "daemon", "json",
	// Examples a field shows as they are typed.
	"echo", "hello", "gantry", "toolbox", "alice", "model", "v2", "zone", "lab", "disk", "ssd", "gpu", "hourly", "daily", "every", "m", "i",
	"MIT", "Apache", "OR", "Markdown",
	// The syntax of an input and an output, as the submit form shows it.
	"REPO", "TAG", "path", "job", "JOB", "corpus", "v1", "data", "out",
}

// checkChinese fails on the English words left on the page.
func checkChinese(t *testing.T, p *tab, page string, data ...string) {
	t.Helper()
	allowed, _ := json.Marshal(append(append([]string{}, wordsNotTranslated...), data...))
	if bad := eval[[]string](p, untranslated+"("+string(allowed)+")"); len(bad) > 0 {
		t.Errorf("the %s page in Chinese still shows English:\n  %s", page, strings.Join(bad, "\n  "))
	}
	if missing := eval[[]string](p, `[...(window.__i18nMissing || [])]`); len(missing) > 0 {
		t.Errorf("the %s page looked up keys its catalog lacks: %v", page, missing)
	}
}

// TestConsoleInChinese: a browser whose languages are zh-CN, zh gets the
// console in Simplified Chinese (html lang, the sign-in form, the nav, the
// jobs and job pages and every other main page, relative times, known
// refusal codes in Chinese words around the server's message); the
// header's switch turns it to English, which a reload keeps although the
// browser still prefers Chinese, and back. Screenshots of each page in
// zh-CN at 1280 and 390 px.
func TestConsoleInChinese(t *testing.T) {
	t.Parallel()
	b := browser(t, chromedp.Flag("accept-lang", "zh-CN,zh"))
	n := gantrytest.Start(t)
	ctx := context.Background()
	aliceAPI, alicePW := n.CreateUser(t, "alice")
	_, carolPW := n.CreateUser(t, "carol")
	job, err := aliceAPI.Submit(ctx, wire.JobSpec{Name: "hello", Image: "gantry/toolbox", Command: []string{"echo", "hello"}, CPU: 100, Memory: 32 << 20})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if final, err := aliceAPI.Wait(ctx, job.ID, 2*time.Minute); err != nil || final.State != wire.StateSucceeded {
		t.Fatalf("wait: %+v %v", final, err)
	}
	nodes, err := n.Client().Nodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	// Data the pages show as it is, not English prose.
	data := []string{"hello", "default", "alice", "gantry", "toolbox", "echo", "myimage", "latest", "ARGS", "admin", "carol", "test", nodes[0].Name}

	alice := newTab(t, b, n.URL)
	t.Run("the sign-in form follows the browser's language", func(t *testing.T) {
		alice.t = t
		alice.do(20*time.Second, chromedp.Navigate(n.URL), chromedp.WaitVisible(chromedp.CSS("#f-username")))
		if got := eval[string](alice, `document.documentElement.lang + ' ' + document.querySelector('.login h1').textContent`); got != "zh-CN 登录 Gantry" {
			t.Errorf("html lang and the form's title: %q, want %q", got, "zh-CN 登录 Gantry")
		}
		checkChinese(t, alice, "sign-in", data...)
		alice.shoot("zh-CN-login")
	})

	t.Run("the nav and the jobs page are in Chinese", func(t *testing.T) {
		alice.t = t
		alice.signInSeeing("alice", alicePW, "作业", "实时")
		alice.waitFor(10*time.Second, `document.querySelector('table.jobs tbody tr[data-state=succeeded] .badge')?.textContent === '成功'`, "the job in the table, its state in Chinese")
		nav := eval[[]string](alice, `[...document.querySelectorAll('#nav a')].map((a) => a.textContent)`)
		want := []string{"作业", "提交", "定时计划", "队列", "仪表盘", "节点", "镜像", "社区镜像", "账号"}
		if strings.Join(nav, " ") != strings.Join(want, " ") {
			t.Errorf("nav %v, want %v", nav, want)
		}
		if got := eval[string](alice, `document.querySelector('table.jobs tbody tr time').textContent`); !strings.Contains(got, "前") && got != "现在" {
			t.Errorf("the submitted time reads %q, want a Chinese relative time (…前)", got)
		}
		checkChinese(t, alice, "jobs", data...)
		alice.shoot("zh-CN-jobs")
	})

	t.Run("every main page is in Chinese", func(t *testing.T) {
		alice.t = t
		for _, pg := range []struct{ path, cond, name string }{
			{"/jobs/" + job.ID, `document.querySelector('.attempts td[data-label="退出码"]')?.textContent === '0' && document.querySelector('pre.log')?.textContent.includes('hello')`, "job"},
			{"/submit", `!!document.getElementById('f-image')`, "submit"},
			{"/schedules", `!!document.querySelector('#main .empty')`, "schedules"},
			{"/queues", `!!document.querySelector('tr[data-queue=default]')`, "queues"},
			{"/dashboard", `document.querySelectorAll('figure[data-chart] path[data-key]').length > 0 && !!document.getElementById('dash-status').textContent`, "dashboard"},
			{"/nodes", `!!document.querySelector('table.cards tbody tr td.role')`, "nodes"},
			{"/images", `!!document.querySelector('.steps') && !!document.querySelector('#main .empty, #main table')`, "images"},
			{"/catalog", `!!document.querySelector('#catalog-list .empty, #catalog-list ul')`, "catalog"},
			{"/account", `!!document.querySelector('#main section table, #main section .empty') && !!document.querySelector('.quota-line')?.textContent && !!document.querySelector('.storage-line')?.textContent`, "account"},
		} {
			alice.open(pg.path, pg.cond, "the "+pg.name+" page")
			if h1 := eval[string](alice, `document.querySelector('#main h1')?.textContent || ''`); pg.name != "job" && !strings.ContainsFunc(h1, isHan) {
				t.Errorf("the %s page's title %q is not Chinese", pg.name, h1)
			}
			checkChinese(t, alice, pg.name, append(data, n.HTTPAddr, strings.Split(n.HTTPAddr, ":")[0])...)
			alice.shoot("zh-CN-" + pg.name)
		}
		admin := newTab(t, b, n.URL)
		admin.signInSeeing("admin", n.AdminPassword, "作业", "实时")
		for _, pg := range []struct{ path, cond, name string }{
			{"/admin/users", `document.querySelectorAll('#main table tbody tr').length >= 3`, "admin-users"},
			{"/admin/jobs", `document.querySelectorAll('table.jobs tbody tr').length >= 1`, "admin-jobs"},
		} {
			admin.open(pg.path, pg.cond, "the "+pg.name+" page")
			checkChinese(t, admin, pg.name, data...)
			admin.shoot("zh-CN-" + pg.name)
		}
	})

	t.Run("the header's switch turns the console to English and a reload keeps it", func(t *testing.T) {
		alice.t = t
		alice.open("/jobs", `document.querySelector('#main h1')?.textContent === '作业'`, "the jobs page in Chinese")
		alice.switchTo("en")
		alice.waitFor(10*time.Second, `document.documentElement.lang === 'en' && document.querySelector('#main h1')?.textContent === 'Jobs' && document.querySelector('#nav a').textContent === 'Jobs' && document.getElementById('live').textContent === 'Live'`, "the jobs page in English")
		alice.waitFor(10*time.Second, `document.querySelector('table.jobs tbody tr .badge')?.textContent === 'succeeded'`, "the job's state in English")
		if got := eval[string](alice, `localStorage.getItem('gantry.lang') || ''`); got != "en" {
			t.Errorf("the choice is remembered as %q, want en", got)
		}
		alice.do(30*time.Second, chromedp.Reload())
		alice.waitFor(30*time.Second, `document.documentElement.lang === 'en' && document.querySelector('#main h1')?.textContent === 'Jobs' && document.getElementById('signout').textContent === 'Sign out'`, "English after the reload")
		if langs := eval[[]string](alice, `navigator.languages`); len(langs) == 0 || langs[0] != "zh-CN" {
			t.Fatalf("the browser's languages are %v, want zh-CN first (the test's premise)", langs)
		}
		alice.shoot("en-jobs-chosen")

		alice.switchTo("zh-CN")
		alice.waitFor(10*time.Second, `document.documentElement.lang === 'zh-CN' && document.querySelector('#main h1')?.textContent === '作业'`, "the jobs page in Chinese again")
		alice.do(30*time.Second, chromedp.Reload())
		alice.waitFor(30*time.Second, `document.documentElement.lang === 'zh-CN' && document.querySelector('#nav a')?.textContent === '作业'`, "Chinese after the reload")
	})

	t.Run("a refusal with a known code is said in Chinese around the server's message", func(t *testing.T) {
		if _, err := n.Client().SuspendUser(ctx, "carol", wire.SuspendRequest{Reason: "spam"}); err != nil {
			t.Fatalf("suspend: %v", err)
		}
		carol := newTab(t, b, n.URL)
		carol.do(60*time.Second,
			chromedp.Navigate(carol.url+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#f-username")),
			chromedp.SendKeys(chromedp.CSS("#f-username"), "carol"),
			chromedp.SendKeys(chromedp.CSS("#f-password"), carolPW+"\r"))
		carol.waitFor(30*time.Second, `location.pathname === '/jobs'`, "carol signed in")
		carol.open("/submit", `!!document.getElementById('f-image')`, "the submit form")
		carol.do(10*time.Second, chromedp.Click(chromedp.CSS("form.submit button[type=submit]")))
		carol.waitFor(10*time.Second, `!document.querySelector('form.submit .form-err').hidden`, "the form's error")
		msg := eval[string](carol, `document.querySelector('form.submit .form-err').textContent`)
		if !strings.HasPrefix(msg, "您的账号已被暂停") || !strings.Contains(msg, "the account carol is suspended: spam") {
			t.Errorf("the refusal reads %q, want the Chinese words for account_suspended and the server's message", msg)
		}
		carol.shoot("zh-CN-refusal")
	})
}

// switchTo picks lang in the header's language switch.
func (p *tab) switchTo(lang string) {
	p.t.Helper()
	eval[bool](p, fmt.Sprintf(`(() => { const s = document.getElementById('lang'); s.value = %q; s.dispatchEvent(new Event('change')); return true; })()`, lang))
}

func isHan(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }
