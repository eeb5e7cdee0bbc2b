package catalog

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"gantry/store"
)

func TestLicence(t *testing.T) {
	for _, ok := range []string{"MIT", "Apache-2.0 OR MIT", "(GPL-2.0-only WITH Classpath-exception-2.0) AND BSD-3-Clause"} {
		ref, text, err := Licence(ok, "", "")
		if err != nil || ref.Expression != ok || !strings.HasPrefix(ref.Digest, "sha256:") || !strings.Contains(text, ok) {
			t.Errorf("Licence(%q) = %+v %q %v", ok, ref, text, err)
		}
	}
	for _, bad := range []string{"MIT-ish", "GPL OR", "Apache-2.0 AND AND MIT", ""} {
		if _, _, err := Licence(bad, "", ""); store.ErrorCode(err) != store.EInvalid || !strings.HasPrefix(err.Error(), "license") {
			t.Errorf("Licence(%q) accepted or misnamed: %v", bad, err)
		}
	}
	a, _, _ := Licence("", "Lab-1", "Use it for research.")
	b, _, _ := Licence("", "Lab-1", "Use it for research and teaching.")
	if a.Expression != "LicenseRef-Lab-1" || !a.Custom || a.Digest == b.Digest {
		t.Fatalf("custom licences %+v %+v: a changed text must be a new version", a, b)
	}
	if _, _, err := Licence("", "Lab 1", "x"); store.ErrorCode(err) != store.EInvalid {
		t.Fatalf("a custom name with a space: %v", err)
	}
	if _, _, err := Licence("", "Lab-1", ""); store.ErrorCode(err) != store.EInvalid {
		t.Fatalf("a custom licence without text: %v", err)
	}
}

// TestReadmeIsSafe: no script, no raw HTML, no remote image survives.
func TestReadmeIsSafe(t *testing.T) {
	c := New(Config{})
	html, err := c.RenderReadme("# Tool\n\nHello **world**.\n\n<script>alert(1)</script>\n\n<img src=\"http://evil.example/x.png\">\n\n![logo](http://evil.example/logo.png)\n\n[docs](https://example.org/docs) [bad](javascript:alert(1))\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"<h1", "<strong>world</strong>", `href="https://example.org/docs"`, "[logo]", "<table>"} {
		if !strings.Contains(html, must) {
			t.Errorf("README lost %q:\n%s", must, html)
		}
	}
	for _, mustNot := range []string{"<script", "<img", "javascript:", "alert(1)</script"} {
		if strings.Contains(html, mustNot) {
			t.Errorf("README kept %q:\n%s", mustNot, html)
		}
	}
	if _, err := c.RenderReadme(strings.Repeat("x", store.MaxReadme+1)); store.ErrorCode(err) != store.EInvalid {
		t.Fatalf("an oversized README: %v", err)
	}
}

// TestStatementsAreVerbatim: the Chinese statements are the terms' words
// exactly (the terms' bold markup and line breaks aside).
func TestStatementsAreVerbatim(t *testing.T) {
	b, err := os.ReadFile("../../docs/terms/service-terms.zh.txt")
	if err != nil {
		t.Fatal(err)
	}
	terms := regexp.MustCompile(`\s*\*\*\s*`).ReplaceAllString(string(b), "")
	terms = strings.ReplaceAll(terms, "\n", "")
	for _, s := range []Statement{GrantToUsers, Warranty, NonCommercial, ForLearning, AIOutput} {
		if !strings.Contains(terms, s.ZH) {
			t.Errorf("statement %s is not in the terms verbatim: %s", s.Clause, s.ZH)
		}
		if s.EN == "" {
			t.Errorf("statement %s has no English translation", s.Clause)
		}
	}
	if g, _ := grantStatement("zh"); !strings.Contains(g.Text, GrantToUsers.ZH) || g.Lang != "zh" {
		t.Fatalf("the grant in Chinese: %+v", g)
	}
}
