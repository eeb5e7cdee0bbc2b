// Command benchclient measures push and pull throughput of OCI registries
// with plain distribution-API calls, the same client for every registry, and
// prints each figure with its ratio to the first target. Not shipped; run by
// scripts/bench-registry.sh.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

type target struct {
	name, base, user, pass string
	token                  string
	c                      *http.Client
}

type targets []*target

func (t *targets) String() string { return "" }
func (t *targets) Set(s string) error {
	// name=url[,user,password]
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return errors.New("want name=url[,user,password]")
	}
	parts := strings.Split(rest, ",")
	tg := &target{name: name, base: strings.TrimSuffix(parts[0], "/")}
	if len(parts) == 3 {
		tg.user, tg.pass = parts[1], parts[2]
	}
	tg.c = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true,
		WriteBufferSize: 1 << 20, ReadBufferSize: 1 << 20}}
	*t = append(*t, tg)
	return nil
}

func main() {
	var tgs targets
	flag.Var(&tgs, "target", "name=url[,user,password]; repeat; ratios are relative to the first")
	file := flag.String("file", "", "the big layer (random bytes)")
	small := flag.Int("small", 200, "number of small layers")
	smallSize := flag.Int("small-size", 32<<10, "bytes per small layer")
	runs := flag.Int("runs", 3, "runs per figure (the best is reported)")
	repo := flag.String("repo", "bench/img", "repository (a user's namespace for authenticated targets)")
	flag.Parse()
	if err := run(tgs, *file, *small, *smallSize, *runs, *repo); err != nil {
		fmt.Fprintln(os.Stderr, "benchclient:", err)
		os.Exit(1)
	}
}

type figure struct {
	name  string
	bytes int64
	secs  map[string]float64
}

func run(tgs targets, file string, nSmall, smallSize, runs int, repo string) error {
	if len(tgs) == 0 || file == "" {
		return errors.New("need -target and -file")
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	size := fi.Size()
	// The hashing limit: Go's sha256 over the same file (from page cache).
	bigDigest, hashSecs, err := hashFile(file, runs)
	if err != nil {
		return err
	}
	smalls := make([][]byte, nSmall)
	var smallTotal int64
	for i := range smalls {
		smalls[i] = make([]byte, smallSize)
		rand.Read(smalls[i])
		smallTotal += int64(smallSize)
	}
	figs := []*figure{
		{name: fmt.Sprintf("push %d MiB layer (POST+PUT)", size>>20), bytes: size, secs: map[string]float64{}},
		{name: fmt.Sprintf("push %d MiB layer (POST+PATCH+PUT)", size>>20), bytes: size, secs: map[string]float64{}},
		{name: fmt.Sprintf("pull %d MiB layer", size>>20), bytes: size, secs: map[string]float64{}},
		{name: fmt.Sprintf("push image of %d small layers", nSmall), bytes: smallTotal, secs: map[string]float64{}},
		{name: fmt.Sprintf("pull image of %d small layers", nSmall), bytes: smallTotal, secs: map[string]float64{}},
	}
	for _, tg := range tgs {
		for i := 0; i < runs; i++ {
			rp := fmt.Sprintf("%s%d", repo, i)
			rp2, rp3 := rp+"-stream", rp+"-small"
			if err := tg.auth(rp, rp2, rp3); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			quiesce()
			t := time.Now()
			if err := tg.pushMonolithic(rp, file, size, bigDigest); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			best(figs[0], tg.name, time.Since(t))
			quiesce()
			t = time.Now()
			if err := tg.pushStream(rp2, file, bigDigest); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			best(figs[1], tg.name, time.Since(t))
			quiesce()
			t = time.Now()
			if err := tg.pullBlob(rp, bigDigest, size); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			best(figs[2], tg.name, time.Since(t))
			// Fresh content each run, so no registry can skip work it saw.
			for _, b := range smalls {
				rand.Read(b[:16])
			}
			quiesce()
			t = time.Now()
			if err := tg.pushImage(rp3, smalls); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			best(figs[3], tg.name, time.Since(t))
			quiesce()
			t = time.Now()
			if err := tg.pullImage(rp3); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			best(figs[4], tg.name, time.Since(t))
		}
	}
	mbps := func(n int64, s float64) float64 { return float64(n) / s / 1e6 }
	fmt.Printf("sha256 over the %d MiB file: %.2fs, %.0f MB/s (the hashing limit)\n", size>>20, hashSecs, mbps(size, hashSecs))
	ref := tgs[0].name
	w := 44
	fmt.Printf("%-*s", w, "figure")
	for _, tg := range tgs {
		fmt.Printf(" %22s", tg.name)
	}
	fmt.Printf(" %8s\n", "ratio")
	for _, f := range figs {
		fmt.Printf("%-*s", w, f.name)
		for _, tg := range tgs {
			s := f.secs[tg.name]
			fmt.Printf(" %8.3fs %7.0f MB/s", s, mbps(f.bytes, s))
		}
		for _, tg := range tgs[1:] {
			fmt.Printf(" %7.2fx", f.secs[ref]/f.secs[tg.name])
		}
		if strings.Contains(f.name, "MiB layer") && !strings.HasPrefix(f.name, "pull") {
			fmt.Printf("  (sha256 limit %.2fx of %s)", hashSecs/f.secs[tgs[len(tgs)-1].name], tgs[len(tgs)-1].name)
		}
		fmt.Println()
	}
	return nil
}

// quiesce flushes every dirty page on the machine before a timed step, so
// no figure pays for write-back a previous step (or the other registry) left
// behind: Distribution acknowledges uploads before they reach the disk, and
// without this its deferred writes would land inside Gantry's timings, or
// inside its own next ones.
func quiesce() { syscall.Sync() }

func best(f *figure, name string, d time.Duration) {
	s := d.Seconds()
	if cur, ok := f.secs[name]; !ok || s < cur {
		f.secs[name] = s
	}
}

func hashFile(path string, runs int) (digest.Digest, float64, error) {
	var d digest.Digest
	bestS := 0.0
	for i := 0; i < runs; i++ {
		f, err := os.Open(path)
		if err != nil {
			return "", 0, err
		}
		t := time.Now()
		h := sha256.New()
		buf := make([]byte, 1<<20)
		if _, err := io.CopyBuffer(h, f, buf); err != nil {
			f.Close()
			return "", 0, err
		}
		s := time.Since(t).Seconds()
		f.Close()
		d = digest.NewDigest(digest.SHA256, h)
		if i == 0 || s < bestS {
			bestS = s
		}
	}
	return d, bestS, nil
}

// auth fetches a bearer token for push and pull on repos when the target
// answers /v2/ with a Bearer challenge; otherwise requests go unauthenticated.
func (t *target) auth(repos ...string) error {
	if t.user == "" {
		return nil
	}
	resp, err := t.c.Get(t.base + "/v2/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer ") {
		return nil
	}
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(ch, "Bearer "), ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[strings.TrimSpace(k)] = strings.Trim(v, `"`)
	}
	q := url.Values{"service": {params["service"]}}
	for _, r := range repos {
		q.Add("scope", "repository:"+r+":pull,push")
	}
	u := params["realm"] + "?" + q.Encode()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.SetBasicAuth(t.user, t.pass)
	resp, err = t.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		return fmt.Errorf("token: %s %v", resp.Status, err)
	}
	t.token = tok.Token
	return nil
}

func (t *target) do(method, u string, body io.Reader, n int64, hdr map[string]string, want int) (*http.Response, error) {
	if !strings.HasPrefix(u, "http") {
		u = t.base + u
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = n
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, b)
	}
	return resp, nil
}

func (t *target) startUpload(repo string) (string, error) {
	resp, err := t.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, 0, nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	return loc.String(), nil
}

func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(d.String())
}

func (t *target) pushMonolithic(repo, file string, size int64, d digest.Digest) error {
	loc, err := t.startUpload(repo)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := t.do(http.MethodPut, withDigest(loc, d), f, size, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// pushStream uploads as Docker does: one PATCH with a streamed body of
// unknown length, then PUT with the digest.
func (t *target) pushStream(repo, file string, d digest.Digest) error {
	loc, err := t.startUpload(repo)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := t.do(http.MethodPatch, loc, io.NopCloser(f), -1, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	resp, err = t.do(http.MethodPut, withDigest(next.String(), d), nil, 0, nil, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (t *target) pullBlob(repo string, d digest.Digest, size int64) error {
	resp, err := t.do(http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil, 0, nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 1<<20))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("pull %s: got %d bytes, want %d", d, n, size)
	}
	return nil
}

// parallel is the number of layers pushed or pulled at once, as Docker does.
const parallel = 5

func forEach(n int, fn func(i int) error) error {
	var mu sync.Mutex
	var first error
	ch := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	wg.Wait()
	return first
}

// pushImage pushes each layer as Docker does (HEAD, then POST and a
// monolithic PUT), then the config and the manifest.
func (t *target) pushImage(repo string, layers [][]byte) error {
	descs := make([]v1.Descriptor, len(layers))
	err := forEach(len(layers), func(i int) error {
		d := digest.FromBytes(layers[i])
		descs[i] = v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(layers[i]))}
		return t.pushSmallBlob(repo, layers[i], d)
	})
	if err != nil {
		return err
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"n":%d}`, time.Now().UnixNano()))
	cd := digest.FromBytes(cfg)
	if err := t.pushSmallBlob(repo, cfg, cd); err != nil {
		return err
	}
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))}, Layers: descs}
	m.SchemaVersion = 2
	b, _ := json.Marshal(m)
	resp, err := t.do(http.MethodPut, "/v2/"+repo+"/manifests/latest", bytes.NewReader(b), int64(len(b)), map[string]string{"Content-Type": v1.MediaTypeImageManifest}, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (t *target) pushSmallBlob(repo string, b []byte, d digest.Digest) error {
	resp, err := t.do(http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), nil, 0, nil, http.StatusNotFound)
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc, err := t.startUpload(repo)
	if err != nil {
		return err
	}
	resp, err = t.do(http.MethodPut, withDigest(loc, d), bytes.NewReader(b), int64(len(b)), map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (t *target) pullImage(repo string) error {
	resp, err := t.do(http.MethodGet, "/v2/"+repo+"/manifests/latest", nil, 0, map[string]string{"Accept": v1.MediaTypeImageManifest}, http.StatusOK)
	if err != nil {
		return err
	}
	var m v1.Manifest
	err = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if err != nil {
		return err
	}
	all := append([]v1.Descriptor{m.Config}, m.Layers...)
	sort.Slice(all, func(i, j int) bool { return i < j })
	return forEach(len(all), func(i int) error { return t.pullBlob(repo, all[i].Digest, all[i].Size) })
}
