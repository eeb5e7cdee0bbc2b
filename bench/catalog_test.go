//go:build bench

package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// registryToken fetches a pull token for repo as Docker does.
func registryToken(t *testing.T, n *gantrytest.Node, user, pw, repo string) string {
	t.Helper()
	var tok struct{ Token string }
	b := regBytes(t, n.URL+"/v2/token?service=gantry&scope=repository:"+repo+":pull", user, pw, nil)
	if err := json.Unmarshal(b, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token for %s: %s", repo, b)
	}
	return tok.Token
}

// pullAll fetches repo:tag's manifest and every blob it names with a
// bearer token, as a client pulling the image does, and returns the time.
func pullAll(t *testing.T, n *gantrytest.Node, token, repo, tag string) time.Duration {
	t.Helper()
	get := func(path string, accept string) []byte {
		req, _ := http.NewRequest("GET", n.URL+"/v2/"+repo+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		if accept != "" {
			_, err = io.Copy(&buf, resp.Body)
		} else {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s%s: %s %v", repo, path, resp.Status, err)
		}
		return buf.Bytes()
	}
	start := time.Now()
	var m struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(get("/manifests/"+tag, benchManifest), &m); err != nil {
		t.Fatal(err)
	}
	get("/blobs/"+m.Config.Digest, "")
	for _, l := range m.Layers {
		get("/blobs/"+l.Digest, "")
	}
	return time.Since(start)
}

// TestBenchCatalogPull: the licence gate's cost. bob pulls an accepted
// community image of alice's and a private image of his own of the same
// size, in alternating order; the ratio of the medians is the gate's cost
// (the gate checks the licence acceptance, inherited notices and counts the
// pull; the owner's own pull skips all of it).
func TestBenchCatalogPull(t *testing.T) {
	n := gantrytest.Start(t)
	ctx := context.Background()
	alice, alicePW := n.CreateUser(t, "alice")
	bob, bobPW := n.CreateUser(t, "bob")
	for _, sz := range []struct {
		name   string
		size   int64
		rounds int
	}{{"1 MiB", 1 << 20, 60}, {"64 MiB", 64 << 20, 15}} {
		tag := fmt.Sprintf("s%d", sz.size)
		pushBigImage(t, n, "alice", alicePW, "alice/pub", tag, sz.size, 7)
		pushBigImage(t, n, "bob", bobPW, "bob/priv", tag, sz.size, 8)
		if _, err := alice.Publish(ctx, wire.Publish{Repo: "alice/pub", License: "MIT"}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Client().Review(ctx, wire.ReviewDecision{Repo: "alice/pub", Decision: "approve"}); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Accept(ctx, "alice/pub", "", nil); err != nil {
			t.Fatal(err)
		}
		pubTok := registryToken(t, n, "bob", bobPW, "alice/pub")
		privTok := registryToken(t, n, "bob", bobPW, "bob/priv")
		pullAll(t, n, pubTok, "alice/pub", tag) // warm the page cache
		pullAll(t, n, privTok, "bob/priv", tag)
		var pub, priv []time.Duration
		for i := 0; i < sz.rounds; i++ {
			if i%2 == 0 {
				pub = append(pub, pullAll(t, n, pubTok, "alice/pub", tag))
				priv = append(priv, pullAll(t, n, privTok, "bob/priv", tag))
			} else {
				priv = append(priv, pullAll(t, n, privTok, "bob/priv", tag))
				pub = append(pub, pullAll(t, n, pubTok, "alice/pub", tag))
			}
		}
		mp, mq := median(pub), median(priv)
		report(t, "catalog: pull of an image with a %s layer over the toolbox layers (manifest, config, every layer; %d rounds): accepted community image median %s, own private image %s; ratio %.3f (goal <= 1.05)",
			sz.name, sz.rounds, mp.Round(10*time.Microsecond), mq.Round(10*time.Microsecond), mp.Seconds()/mq.Seconds())
	}
}

// TestBenchCatalogSearch: searches over 10,000 published images through
// the API, against a baseline of an authenticated API call that reads two
// records (GET /api/v1/catalog/trial) in the same run.
func TestBenchCatalogSearch(t *testing.T) {
	const images, publishers = 10000, 10
	n := gantrytest.Start(t)
	ctx := context.Background()
	type pub struct {
		c  *client.Client
		pw string
		n  string
	}
	var pubs []pub
	for i := 0; i < publishers; i++ {
		name := fmt.Sprintf("pub%d", i)
		c, pw := n.CreateUser(t, name)
		pubs = append(pubs, pub{c, pw, name})
	}
	reader, _ := n.CreateUser(t, "reader")
	puller, pullerPW := n.CreateUser(t, "puller")

	// One small image per publisher to mount from; each published
	// repository gets its own manifest (a distinct config) over the
	// mounted layer.
	type base struct {
		layer, config string
		size          int64
	}
	bases := make([]base, publishers)
	for i, p := range pubs {
		layer, config, _ := pushBigImage(t, n, p.n, p.pw, p.n+"/base", "1", 4096, byte(i))
		size, _ := io.Copy(io.Discard, bigLayer(4096, byte(i)))
		bases[i] = base{layer, config, size}
	}
	words := []string{"protein", "vision", "speech", "weather", "genome", "climate", "llm", "galaxy", "robot", "chemistry"}
	licences := []string{"MIT", "Apache-2.0", "GPL-3.0-only", "BSD-3-Clause", "CC-BY-4.0"}
	// Listed at once: the automatic review rules approve them (governance).
	if _, err := n.Client().SetReviewRules(ctx, wire.ReviewRules{Auto: true}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{}
			for {
				i := int(next.Add(1)) - 1
				if i >= images {
					return
				}
				p := pubs[i%publishers]
				repo := fmt.Sprintf("%s/img%05d", p.n, i)
				if err := pushTiny(hc, n, p.n, p.pw, repo, p.n+"/base", bases[i%publishers].layer, bases[i%publishers].size, i); err != nil {
					errs <- err
					return
				}
				_, err := p.c.Publish(ctx, wire.Publish{Repo: repo, License: licences[i%len(licences)],
					Description: fmt.Sprintf("a %s model number %d for %s research", words[i%len(words)], i, words[(i/10)%len(words)]),
					GenAI:       i%7 == 0, GenAIFiled: i%7 == 0})
				if err != nil {
					errs <- fmt.Errorf("publish %s: %w", repo, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	setup := time.Since(start)
	report(t, "catalog: pushed and published %d images in %s (%.0f a second)", images, setup.Round(time.Second), images/setup.Seconds())

	queries := []url.Values{
		{},                              // the first page, most recent first
		{"q": {"protein"}},              // ~1,000 matches
		{"q": {"img01234"}},             // one
		{"q": {"nothing matches this"}}, // none
		{"license": {"Apache-2.0"}, "sort": {"pulls"}},
		{"genai": {"true"}, "sort": {"name"}},
		{"q": {"climate research"}, "access": {"open"}},
	}
	timeIt := func(f func() error) time.Duration {
		s := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		return time.Since(s)
	}
	// Meanwhile another user pulls: the pull counts the node reports every
	// few seconds change the publications under the searches (the index
	// follows them in the background).
	for i := 0; i < 20; i++ {
		if _, err := puller.Accept(ctx, fmt.Sprintf("pub%d/img%05d", i%publishers, i), "", nil); err != nil {
			t.Fatal(err)
		}
	}
	before, err := reader.CatalogEntry(ctx, "pub0/img00000")
	if err != nil {
		t.Fatal(err)
	}
	stopPulls := make(chan struct{})
	var pulled atomic.Int64
	var pullers sync.WaitGroup
	pullers.Add(1)
	go func() {
		defer pullers.Done()
		for i := 0; ; i++ {
			select {
			case <-stopPulls:
				return
			default:
			}
			repo := fmt.Sprintf("pub%d/img%05d", i%publishers, i%20)
			req, _ := http.NewRequest("GET", n.URL+"/v2/"+repo+"/manifests/1", nil)
			req.SetBasicAuth("puller", pullerPW)
			req.Header.Set("Accept", benchManifest)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					pulled.Add(1)
				}
			}
			time.Sleep(20 * time.Millisecond) // pacing the puller, not waiting for a state
		}
	}()
	var search, me []time.Duration
	for i := 0; i < 2100; i++ {
		q := queries[i%len(queries)]
		search = append(search, timeIt(func() error {
			l, err := reader.Catalog(ctx, q)
			if err == nil && q.Get("q") == "img01234" && len(l.Entries) != 1 {
				err = fmt.Errorf("search img01234: %d entries", len(l.Entries))
			}
			return err
		}))
		me = append(me, timeIt(func() error { _, err := reader.Trial(ctx); return err }))
	}
	close(stopPulls)
	pullers.Wait()
	var after *wire.CatalogDetail
	gantrytest.Eventually(t, 30*time.Second, func() bool {
		after, err = reader.CatalogEntry(ctx, "pub0/img00000")
		return err == nil && after.Pulls > before.Pulls
	}, "pulls of pub0/img00000 counted during the searches")
	report(t, "catalog: %d manifest pulls by another user during the searches (pull counts reported every 5 s)", pulled.Load())
	ps, pm := pct(search, 0.99), pct(me, 0.99)
	report(t, "catalog: search over %d published images (%d queries, 7 kinds, through the API): p50 %s, p99 %s (goal <= 50ms); baseline GET /catalog/trial p50 %s, p99 %s; p99 ratio %.1f",
		images, len(search), pct(search, 0.5).Round(10*time.Microsecond), ps.Round(10*time.Microsecond),
		pct(me, 0.5).Round(10*time.Microsecond), pm.Round(10*time.Microsecond), ps.Seconds()/pm.Seconds())
	if ps > 50*time.Millisecond {
		t.Errorf("catalog search p99 %s over the 50ms goal", ps)
	}
}

// pushTiny pushes repo:1, a manifest over a layer mounted from src and a
// config of its own.
func pushTiny(hc *http.Client, n *gantrytest.Node, user, pw, repo, src, layer string, size int64, i int) error {
	do := func(method, u string, body []byte, ct string) (*http.Response, error) {
		req, _ := http.NewRequest(method, n.URL+u, bytes.NewReader(body))
		req.SetBasicAuth(user, pw)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	resp, err := do("POST", "/v2/"+repo+"/blobs/uploads/?mount="+layer+"&from="+src, nil, "")
	if err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("mount into %s: %v %v", repo, resp, err)
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]},"config":{"Labels":{"n":"%d"}}}`, layer, i))
	cd := fmt.Sprintf("sha256:%x", sha256.Sum256(cfg))
	resp, err = do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+cd, cfg, "application/octet-stream")
	if err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("config of %s: %v %v", repo, resp, err)
	}
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": benchManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": size}}})
	resp, err = do("PUT", "/v2/"+repo+"/manifests/1", man, benchManifest)
	if err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("manifest of %s: %v %v", repo, resp, err)
	}
	return nil
}
