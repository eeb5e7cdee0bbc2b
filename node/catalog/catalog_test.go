package catalog

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gantry/data"
	"gantry/gantrytest"
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

// TestSearch: filters, the three orders, pages, and an index that follows
// publish, pull counts and unpublish without going stale.
func TestSearch(t *testing.T) {
	st, p := openStore(t)
	ctx := context.Background()
	c := New(Config{Store: st, Proposer: p, FlushEvery: 10 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { c.Run(runCtx); close(ran) }()
	t.Cleanup(func() { stop(); <-ran })
	digest := func(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }
	publish := func(owner, repo, licence, desc string, genai bool) {
		t.Helper()
		layer, man := digest("layer of "+repo), digest("manifest of "+repo)
		if _, err := store.CmdRegLinkBlob.Propose(ctx, p, store.RegLinkBlob{Repo: repo, Owner: owner, Digest: layer, Size: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CmdRegPutManifest.Propose(ctx, p, store.RegPutManifest{Owner: owner, Tags: []string{"1"}, Manifest: store.RegManifest{Repo: repo,
			Digest: man, MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte("{}"),
			Blobs: []string{layer}, Layers: []string{layer}}}); err != nil {
			t.Fatal(err)
		}
		pub := store.Publication{Repo: repo, Licence: store.LicenceRef{Expression: licence, Digest: digest(licence)}, Description: desc,
			Use: store.UseResearch, Access: store.AccessOpen, GenAI: genai, GenAIFiled: genai}
		if _, err := store.CmdPublishRepo.Propose(ctx, p, store.PublishRepo{Publication: pub, LicenceText: licence, Actor: owner}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CmdReview.Propose(ctx, p, store.DecideReview{Meta: store.Meta{Actor: "admin", Admin: true}, Repo: repo, Decision: store.ReviewApproved}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(f Filter) ([]string, string) {
		t.Helper()
		ps, next, err := c.Search(f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, p.Repo)
		}
		return out, next
	}
	publish("alice", "alice/a", "MIT", "Protein folding", false)
	publish("bob", "bob/b", "Apache-2.0", "a vision model", true)
	publish("alice", "alice/c", "Apache-2.0 OR MIT", "speech to text", false)

	for _, tc := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "alice/c bob/b alice/a"}, // most recent first
		{Filter{Sort: "name"}, "alice/a alice/c bob/b"},
		{Filter{Query: "PROTEIN"}, "alice/a"},
		{Filter{Query: "bob/"}, "bob/b"},
		{Filter{License: "mit", Sort: "name"}, "alice/a alice/c"},
		{Filter{GenAI: func() *bool { b := true; return &b }()}, "bob/b"},
		{Filter{Access: store.AccessApproval}, ""},
	} {
		if got, _ := names(tc.f); strings.Join(got, " ") != tc.want {
			t.Errorf("Search(%+v) = %v, want %s", tc.f, got, tc.want)
		}
	}
	if got, next := names(Filter{Sort: "name", Limit: 2}); strings.Join(got, " ") != "alice/a alice/c" || next != "2" {
		t.Fatalf("first page %v next %q", got, next)
	}
	if got, next := names(Filter{Sort: "name", Limit: 2, Cursor: "2"}); strings.Join(got, " ") != "bob/b" || next != "" {
		t.Fatalf("second page %v next %q", got, next)
	}

	// The index follows the store: pull counts reorder (soon: Run brings
	// them in), publish adds, unpublish removes (at once).
	if _, err := store.CmdCountPulls.Propose(ctx, p, store.CountPulls{Counts: map[string]int64{"alice/a": 5, "bob/b": 2}}); err != nil {
		t.Fatal(err)
	}
	gantrytest.Eventually(t, 5*time.Second, func() bool {
		got, _ := names(Filter{Sort: "pulls"})
		return strings.Join(got, " ") == "alice/a bob/b alice/c"
	}, "the order by pulls after counting")
	publish("carol", "carol/d", "MIT", "more protein", false)
	if got, _ := names(Filter{Query: "protein", Sort: "name"}); strings.Join(got, " ") != "alice/a carol/d" {
		t.Fatalf("after a new publication: %v", got)
	}
	if _, err := store.CmdUnpublishRepo.Propose(ctx, p, store.UnpublishRepo{Repo: "alice/a", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := names(Filter{Query: "protein"}); strings.Join(got, " ") != "carol/d" {
		t.Fatalf("after unpublishing alice/a: %v", got)
	}
}

// TestPublishSaysWhatTheRepositoryHolds: the kind comes from the newest
// artifact that is not a referrer (a Gantry dataset or output: dataset; a
// ModelPack manifest: model; else image), and the catalog filters by it.
func TestPublishSaysWhatTheRepositoryHolds(t *testing.T) {
	st, p := openStore(t)
	ctx := context.Background()
	c := New(Config{Store: st, Proposer: p})
	digest := func(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }
	push := func(repo, artifactType, tag string) {
		t.Helper()
		blob, man := digest("blob of "+repo+tag), digest("manifest of "+repo+tag)
		if _, err := store.CmdRegLinkBlob.Propose(ctx, p, store.RegLinkBlob{Repo: repo, Owner: "alice", Digest: blob, Size: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CmdRegPutManifest.Propose(ctx, p, store.RegPutManifest{Owner: "alice", Tags: []string{tag}, Manifest: store.RegManifest{Repo: repo,
			Digest: man, MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: artifactType, Content: []byte("{}"), Blobs: []string{blob}}}); err != nil {
			t.Fatal(err)
		}
	}
	push("alice/tool", "", "1")
	push("alice/corpus", data.ArtifactTypeDataset, "v1")
	push("alice/outputs", data.ArtifactTypeOutput, "job-0000")
	push("alice/llm", data.ArtifactTypeModel, "v1")
	want := map[string]string{"alice/tool": store.KindImage, "alice/corpus": store.KindDataset, "alice/outputs": store.KindDataset, "alice/llm": store.KindModel}
	for repo, kind := range want {
		pub, err := c.Publish(ctx, "alice", Publish{Repo: repo, License: "MIT"})
		if err != nil {
			t.Fatal(err)
		}
		if pub.KindOf() != kind {
			t.Errorf("%s published as %q, want %q", repo, pub.KindOf(), kind)
		}
		if _, err := store.CmdReview.Propose(ctx, p, store.DecideReview{Meta: store.Meta{Actor: "admin", Admin: true}, Repo: repo, Decision: store.ReviewApproved}); err != nil {
			t.Fatal(err)
		}
	}
	for kind, repos := range map[string][]string{store.KindDataset: {"alice/corpus", "alice/outputs"}, store.KindModel: {"alice/llm"}, store.KindImage: {"alice/tool"}} {
		ps, _, err := c.Search(Filter{Kind: kind, Sort: "name"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.Repo)
		}
		if strings.Join(got, " ") != strings.Join(repos, " ") {
			t.Errorf("kind %s lists %v, want %v", kind, got, repos)
		}
	}
}

// openStore opens a store in a temporary directory with a proposer that
// applies commands to it directly.
func openStore(t *testing.T) (*store.Store, *store.Direct) {
	t.Helper()
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, store.NewDirect(st)
}
