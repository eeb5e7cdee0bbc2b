//go:build bench

package bench

import (
	"archive/tar"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// Versions of the tools the client benchmarks build from the Go module
// proxy (the registry baseline and crane).
const (
	distributionPkg = "github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
	cranePkg        = "github.com/google/go-containerregistry/cmd/crane@v0.22.1"
)

// benchTools builds CNCF Distribution, crane and the minimal registry
// (bench/minireg) into dir and returns their paths by name.
func benchTools(t *testing.T, dir string) map[string]string {
	t.Helper()
	root, err := gantrytest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{distributionPkg, cranePkg} {
		cmd := exec.Command("go", "install", pkg)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go install %s: %v\n%s", pkg, err, out)
		}
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "minireg"), "./bench/minireg")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build minireg: %v\n%s", err, out)
	}
	return map[string]string{"registry": filepath.Join(dir, "registry"), "crane": filepath.Join(dir, "crane"), "minireg": filepath.Join(dir, "minireg")}
}

// startProc starts a server process and waits until url answers; it is
// killed when the test ends.
func startProc(t *testing.T, url, logPath, name string, args ...string) *exec.Cmd {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		lf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s did not answer %s: %v\n%s", name, url, err, b)
		}
		time.Sleep(50 * time.Millisecond) // polling a server's start, bounded by the deadline
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDistribution runs CNCF Distribution with filesystem storage in dir.
func startDistribution(t *testing.T, bin, dir string) (addr string, pid int) {
	t.Helper()
	addr = freeAddr(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := startProc(t, "http://"+addr+"/v2/", filepath.Join(dir, "distribution.log"), bin, "serve", filepath.Join(dir, "config.yml"))
	return addr, cmd.Process.Pid
}

// cpuTime is a process's user+system CPU time so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ
}

// layoutFile adds a blob to an OCI layout and returns its descriptor.
func layoutBlob(dir string, write func(w io.Writer) error) (string, int64, error) {
	tmp, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	if err := write(cw); err != nil {
		tmp.Close()
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, err
	}
	hx := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "blobs", "sha256", hx)); err != nil {
		return "", 0, err
	}
	return "sha256:" + hx, cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type layoutLayer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// writeLayout writes an OCI image layout in dir holding one image, tagged
// tag, whose layers are base (blobs already in baseDir's layout, with their
// diff IDs) followed by one uncompressed tar layer per size, each one file
// of fresh random bytes. baseCfg, when not nil, is the base image's config
// (its entrypoint and environment are kept). It returns the config digest
// (Docker's image ID).
func writeLayout(t *testing.T, dir, tag string, sizes []int64, baseDir string, base []layoutLayer, baseDiffs []string, baseCfg map[string]any) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.NewChaCha8(seed)
	layers := append([]layoutLayer(nil), base...)
	diffs := append([]string(nil), baseDiffs...)
	for _, l := range base {
		src := filepath.Join(baseDir, "blobs", "sha256", l.Digest[7:])
		if err := os.Link(src, filepath.Join(dir, "blobs", "sha256", l.Digest[7:])); err != nil {
			t.Fatal(err)
		}
	}
	for i, size := range sizes {
		d, n, err := layoutBlob(dir, func(w io.Writer) error {
			tw := tar.NewWriter(w)
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data-%d.bin", i), Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
				return err
			}
			return writeFresh(tw, rng, size)
		})
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, layoutLayer{"application/vnd.oci.image.layer.v1.tar", d, n})
		diffs = append(diffs, d)
	}
	c := map[string]any{"architecture": "amd64", "os": "linux"}
	for k, v := range baseCfg {
		c[k] = v
	}
	c["rootfs"] = map[string]any{"type": "layers", "diff_ids": diffs}
	cfg, _ := json.Marshal(c)
	put := func(b []byte) (string, int64) {
		d, n, err := layoutBlob(dir, func(w io.Writer) error { _, err := w.Write(b); return err })
		if err != nil {
			t.Fatal(err)
		}
		return d, n
	}
	cd, cn := put(cfg)
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": benchManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": layers})
	md, mn := put(man)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{"mediaType": benchManifest, "digest": md, "size": mn,
			"annotations": map[string]string{"org.opencontainers.image.ref.name": tag}}}})
	for name, b := range map[string][]byte{"index.json": idx, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cd
}

// writeFresh writes size bytes that no other layer holds: a random block
// drawn for this layer, repeated with each repetition's offset stamped in.
// Nothing on the path compresses, so this is as good as random bytes for a
// registry and much cheaper to make than size bytes from a generator.
func writeFresh(tw *tar.Writer, rng *mrand.ChaCha8, size int64) error {
	block := make([]byte, 1<<20)
	_, _ = rng.Read(block)
	for off := int64(0); off < size; off += int64(len(block)) {
		binary.LittleEndian.PutUint64(block, uint64(off))
		if _, err := tw.Write(block[:min(int64(len(block)), size-off)]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// benchRegistry is one registry under test; pullOnly for the minimal one.
type benchRegistry struct {
	name     string
	host     string // host:port
	prefix   string // repository prefix ("bench/" where names are per user)
	user, pw string
	pid      int
	pullOnly bool
}

// clientEnv runs the real clients: crane and docker read credentials from
// DOCKER_CONFIG (a temp dir, never the user's), skopeo takes them as flags.
type clientEnv struct {
	t         *testing.T
	crane     string
	dockerCfg string
}

func (c *clientEnv) run(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+c.dockerCfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (c *clientEnv) login(regs []*benchRegistry) {
	auths := map[string]any{}
	for _, r := range regs {
		if r.user != "" {
			auths[r.host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.pw))}
		}
	}
	b, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.WriteFile(filepath.Join(c.dockerCfg, "config.json"), b, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

func skopeoCreds(flag string, r *benchRegistry) []string {
	if r.user == "" {
		return nil
	}
	return []string{flag, r.user + ":" + r.pw}
}

type sample struct{ took, cpu time.Duration }

func medianSample(s []sample, get func(sample) time.Duration) (med, lo, hi time.Duration) {
	d := make([]time.Duration, len(s))
	for i, x := range s {
		d[i] = get(x)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	m := d[len(d)/2]
	if len(d)%2 == 0 {
		m = (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	return m, d[0], d[len(d)-1]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// selected reports whether s passes the comma-separated filter in env var
// name (empty: everything).
func selected(name, s string) bool {
	f := os.Getenv(name)
	if f == "" {
		return true
	}
	for _, w := range strings.Split(f, ",") {
		if w != "" && strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// quiesce flushes dirty pages (sync(2)) and then waits, up to 10 s, until
// no disk has requests in flight for 300 ms: a buffered push leaves the
// disk busy after sync returns, and that would land in the next step's
// time, whichever registry it measures.
func quiesce() {
	syscall.Sync()
	deadline := time.Now().Add(10 * time.Second)
	idle := 0
	for idle < 3 && time.Now().Before(deadline) {
		if diskInFlight() == 0 {
			idle++
		} else {
			idle = 0
		}
		time.Sleep(100 * time.Millisecond) // polling the disk's state, bounded by the deadline
	}
}

// diskInFlight sums the I/O requests in flight on whole disks
// (/proc/diskstats' ninth statistic), or 0 when unreadable.
func diskInFlight() int {
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return 0
	}
	total := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 12 || strings.HasPrefix(f[2], "loop") || strings.HasPrefix(f[2], "ram") {
			continue
		}
		if _, err := os.Stat("/sys/block/" + f[2]); err != nil {
			continue // a partition: its disk is counted
		}
		n, _ := strconv.Atoi(f[11])
		total += n
	}
	return total
}

// TestBenchRegistryClients: Gantry's registry against CNCF Distribution
// (and, for pulls, the minimal registry of bench/minireg, each client's own
// limit) with the clients people use: docker pull, skopeo copy to and from
// an OCI layout, crane push and pull. Three image shapes, fresh random
// content each run, the registries alternating operation by operation
// (their order flipped every run), sync(2) and a quiet disk before every timed step. It
// reports the median, min and max time per cell, Gantry's speed relative
// to Distribution's, its fraction of the client's limit, and the server
// CPU per operation.
//
// BENCH_RUNS (default 5; QUICK=1: 2), BENCH_SHAPES and BENCH_OPS
// (comma-separated substrings, e.g. BENCH_SHAPES=512 BENCH_OPS="crane pull")
// pick what runs.
func TestBenchRegistryClients(t *testing.T) {
	gantrytest.RequireDocker(t)
	if _, err := exec.LookPath("skopeo"); err != nil {
		gantrytest.Require(t, false, "skopeo is not installed (apt-get install -y skopeo)")
	}
	runs := envInt("BENCH_RUNS", 5)
	if os.Getenv("QUICK") != "" {
		runs = envInt("BENCH_RUNS", 2)
	}
	work := t.TempDir()
	began := time.Now()
	tools := benchTools(t, filepath.Join(work, "bin"))
	t.Logf("tools built in %s", time.Since(began).Round(time.Second))
	// The clients' side (the layouts pushed, the pulls' output) lives in
	// memory where it can, so the clients' own disk writes, which skopeo
	// fsyncs, do not swamp the registries' differences.
	clientDir := work
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && os.Getenv("BENCH_CLIENT_DISK") == "" {
		if clientDir, err = os.MkdirTemp("/dev/shm", "gantry-bench-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(clientDir) })
	}
	layouts := filepath.Join(clientDir, "layouts")
	if err := os.MkdirAll(layouts, 0o755); err != nil {
		t.Fatal(err)
	}
	ddir := filepath.Join(work, "distribution")
	os.MkdirAll(ddir, 0o755)
	daddr, dpid := startDistribution(t, tools["registry"], ddir)
	maddr := freeAddr(t)
	mini := startProc(t, "http://"+maddr+"/v2/", filepath.Join(work, "minireg.log"), tools["minireg"], "-addr", maddr, "-root", layouts)
	t.Cleanup(func() { // what a failed run left in Docker (Gantry's node removes its own)
		gantrytest.RemoveRegistryImages(daddr)
		gantrytest.RemoveRegistryImages(maddr)
	})
	n := gantrytest.Start(t)
	_, pw := n.CreateUser(t, "bench")

	gantry := &benchRegistry{name: "gantry", host: n.HTTPAddr, prefix: "bench/", user: "bench", pw: pw, pid: n.PID()}
	dist := &benchRegistry{name: "distribution", host: daddr, pid: dpid}
	limit := &benchRegistry{name: "limit", host: maddr, pid: mini.Process.Pid, pullOnly: true}
	regs := []*benchRegistry{dist, gantry, limit}
	// BENCH_SENDFILE=1 adds a second Gantry that always sends blobs with
	// sendfile (GANTRY_REGISTRY_SEND), to compare the two in one run.
	var extra []*benchRegistry
	if os.Getenv("BENCH_SENDFILE") != "" {
		n2 := gantrytest.Start(t, gantrytest.Options{Name: "sendfile", Env: []string{"GANTRY_REGISTRY_SEND=sendfile"}})
		_, pw2 := n2.CreateUser(t, "bench")
		extra = append(extra, &benchRegistry{name: "gantry-sendfile", host: n2.HTTPAddr, prefix: "bench/", user: "bench", pw: pw2, pid: n2.PID()})
		regs = append(regs, extra...)
	}
	ce := &clientEnv{t: t, crane: tools["crane"], dockerCfg: filepath.Join(work, "docker")}
	os.MkdirAll(ce.dockerCfg, 0o700)
	ce.login(regs)

	const mib = 1 << 20
	shapes := []struct {
		name  string
		sizes []int64
	}{
		{"one 512 MiB layer", []int64{512 * mib}},
		{"200 layers of 64 KiB", func() []int64 {
			s := make([]int64, 200)
			for i := range s {
				s[i] = 64 << 10
			}
			return s
		}()},
		{"5 layers, 300 MiB", []int64{140 * mib, 80 * mib, 45 * mib, 25 * mib, 10 * mib}},
	}
	ops := []string{"skopeo push", "skopeo pull", "crane push", "crane pull", "docker pull"}
	results := map[string]map[string][]sample{} // shape|op -> registry -> samples
	key := func(shape, op string) string { return shape + "|" + op }
	out := filepath.Join(clientDir, "out")
	for run := 0; run < runs; run++ {
		order := append([]*benchRegistry{dist, gantry}, extra...)
		if run%2 == 1 {
			order = append([]*benchRegistry{gantry}, append(extra, dist)...)
		}
		order = append(order, limit)
		for si, sh := range shapes {
			if !selected("BENCH_SHAPES", sh.name) {
				continue
			}
			// One layout for skopeo (also docker's and the limit's), one
			// for crane, so no push finds a blob already stored.
			lname := map[string]string{}
			for _, tool := range []string{"skopeo", "crane"} {
				lname[tool] = fmt.Sprintf("s%d-r%d-%s", si, run, tool)
				writeLayout(t, filepath.Join(layouts, lname[tool]), "v1", sh.sizes, "", nil, nil, nil)
			}
			t.Logf("run %d, %s: layouts written (%s since start)", run, sh.name, time.Since(began).Round(time.Second))
			repo := func(r *benchRegistry, tool string) string {
				if r.pullOnly {
					return r.host + "/" + lname[tool]
				}
				return r.host + "/" + r.prefix + lname[tool]
			}
			for _, op := range ops {
				if !selected("BENCH_OPS", op) {
					continue
				}
				if op == "docker pull" && len(sh.sizes) > 120 {
					continue // Docker refuses images of more than 125 layers (max depth exceeded)
				}
				tool, verb, _ := strings.Cut(op, " ")
				src := tool
				if tool == "docker" {
					src = "skopeo"
				}
				for _, r := range order {
					if r.pullOnly && verb == "push" {
						continue
					}
					os.RemoveAll(out)
					ref := repo(r, src) + ":v1"
					var cmd []string
					switch op {
					case "skopeo push":
						cmd = append([]string{"skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false"}, skopeoCreds("--dest-creds", r)...)
						cmd = append(cmd, "oci:"+filepath.Join(layouts, lname[tool])+":v1", "docker://"+ref)
					case "skopeo pull":
						cmd = append([]string{"skopeo", "copy", "--preserve-digests", "--src-tls-verify=false"}, skopeoCreds("--src-creds", r)...)
						cmd = append(cmd, "docker://"+ref, "oci:"+out+":v1")
					case "crane push":
						cmd = []string{ce.crane, "push", "--insecure", filepath.Join(layouts, lname[tool]), ref}
					case "crane pull":
						cmd = []string{ce.crane, "pull", "--insecure", "--format", "oci", ref, out}
					case "docker pull":
						cmd = []string{"docker", "pull", "-q", ref}
					}
					quiesce()
					c0, t0 := cpuTime(r.pid), time.Now()
					ce.run(cmd[0], cmd[1:]...)
					s := sample{time.Since(t0), cpuTime(r.pid) - c0}
					k := key(sh.name, op)
					if results[k] == nil {
						results[k] = map[string][]sample{}
					}
					results[k][r.name] = append(results[k][r.name], s)
					t.Logf("run %d, %s, %s, %s: %s (server CPU %s)", run, sh.name, op, r.name, s.took.Round(time.Millisecond), s.cpu)
					if op == "docker pull" {
						ce.run("docker", "image", "rm", ref)
					}
				}
			}
			os.RemoveAll(out)
			for _, l := range lname {
				os.RemoveAll(filepath.Join(layouts, l))
			}
			// Distribution's blobs of this run are not needed again.
			os.RemoveAll(filepath.Join(ddir, "data"))
		}
	}
	report(t, "registry clients (%d runs a cell; median (min–max); speed = Distribution time / Gantry time; limit = minimal registry time / Gantry time; CPU = server CPU per operation, median):", runs)
	report(t, "| image | operation | Distribution | Gantry | Gantry speed | client limit | Gantry / limit | server CPU D / G |")
	report(t, "|---|---|---|---|---|---|---|---|")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
	for _, sh := range shapes {
		for _, op := range ops {
			res := results[key(sh.name, op)]
			if res == nil {
				continue
			}
			took := func(s sample) time.Duration { return s.took }
			cpu := func(s sample) time.Duration { return s.cpu }
			dm, dl, dh := medianSample(res["distribution"], took)
			gm, gl, gh := medianSample(res["gantry"], took)
			dc, _, _ := medianSample(res["distribution"], cpu)
			gc, _, _ := medianSample(res["gantry"], cpu)
			lim, frac := "—", "—"
			if l := res["limit"]; len(l) > 0 {
				lm, ll, lh := medianSample(l, took)
				lim = fmt.Sprintf("%s s (%s–%s)", ms(lm), ms(ll), ms(lh))
				frac = fmt.Sprintf("%.2f", lm.Seconds()/gm.Seconds())
			}
			report(t, "| %s | %s | %s s (%s–%s) | %s s (%s–%s) | %.2f× | %s | %s | %s / %s s |",
				sh.name, op, ms(dm), ms(dl), ms(dh), ms(gm), ms(gl), ms(gh), dm.Seconds()/gm.Seconds(), lim, frac, ms(dc), ms(gc))
			for _, x := range extra {
				xm, xl, xh := medianSample(res[x.name], took)
				xc, _, _ := medianSample(res[x.name], cpu)
				report(t, "|  | %s, %s | | %s s (%s–%s) | %.2f× | | | %s s |", op, x.name, ms(xm), ms(xl), ms(xh), dm.Seconds()/xm.Seconds(), ms(xc))
			}
		}
	}
}

// TestBenchJobStartFromRegistry: the runner's view. An image (the toolbox's
// layers plus a fresh 200 MiB layer) is pushed with crane to Gantry's
// registry and to Distribution a moment before a job from it is submitted;
// the figure is the time from submission to the container's start
// (the attempt's start as the runner recorded it), the same Docker daemon
// pulling from Gantry (its own node's registry) or from Distribution
// (allowed with --allow-registry), alternating, the image removed from
// Docker between jobs. BENCH_RUNS (default 5; QUICK=1: 2).
func TestBenchJobStartFromRegistry(t *testing.T) {
	gantrytest.RequireDocker(t)
	runs := envInt("BENCH_RUNS", 5)
	if os.Getenv("QUICK") != "" {
		runs = envInt("BENCH_RUNS", 2)
	}
	work := t.TempDir()
	tools := benchTools(t, filepath.Join(work, "bin"))
	ddir := filepath.Join(work, "distribution")
	os.MkdirAll(ddir, 0o755)
	daddr, _ := startDistribution(t, tools["registry"], ddir)
	t.Cleanup(func() { gantrytest.RemoveRegistryImages(daddr) })
	n := gantrytest.Start(t, gantrytest.Options{Args: []string{"--allow-registry", daddr}})
	alice, pw := n.CreateUser(t, "alice")
	gantry := &benchRegistry{name: "gantry", host: n.HTTPAddr, prefix: "alice/", user: "alice", pw: pw}
	ce := &clientEnv{t: t, crane: tools["crane"], dockerCfg: filepath.Join(work, "docker")}
	os.MkdirAll(ce.dockerCfg, 0o700)
	ce.login([]*benchRegistry{gantry})

	// The toolbox's layers, as the base of every image.
	base := filepath.Join(work, "toolbox")
	ce.run(ce.crane, "pull", "--insecure", "--format", "oci", n.HTTPAddr+"/gantry/toolbox:latest", base)
	var idx struct{ Manifests []layoutLayer }
	var man struct {
		Config layoutLayer
		Layers []layoutLayer
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	var rawCfg map[string]any
	blob := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(base, "blobs", "sha256", d[7:]))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b, err := os.ReadFile(filepath.Join(base, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	gantrytest.JSON(t, b, &idx)
	gantrytest.JSON(t, blob(idx.Manifests[0].Digest), &man)
	gantrytest.JSON(t, blob(man.Config.Digest), &cfg)
	gantrytest.JSON(t, blob(man.Config.Digest), &rawCfg)

	start := func(image, config string) time.Duration {
		t.Helper()
		_ = exec.Command("docker", "image", "rm", "-f", config).Run()
		quiesce()
		t0 := time.Now()
		j, err := alice.Submit(t.Context(), wire.JobSpec{Image: image, Command: []string{"true"}, CPU: 100, Memory: 32 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for !wire.Terminal(j.State) {
			if j, err = alice.Wait(t.Context(), j.ID, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			if time.Since(t0) > 5*time.Minute {
				t.Fatalf("job %s from %s still %s after 5 minutes", j.ID, image, j.State)
			}
		}
		if j.State != wire.StateSucceeded || j.Started.IsZero() {
			t.Fatalf("job from %s: %s", image, j.State)
		}
		_ = exec.Command("docker", "image", "rm", "-f", config).Run()
		return j.Started.Sub(t0)
	}
	var g, d []sample
	for run := 0; run < runs; run++ {
		dir := filepath.Join(work, fmt.Sprintf("img-%d", run))
		config := writeLayout(t, dir, "v1", []int64{200 << 20}, base, man.Layers, cfg.RootFS.DiffIDs, rawCfg)
		tag := fmt.Sprintf("r%d", run)
		ce.run(ce.crane, "push", "--insecure", dir, daddr+"/job:"+tag)
		ce.run(ce.crane, "push", "--insecure", dir, n.HTTPAddr+"/alice/job:"+tag)
		if run%2 == 0 {
			d = append(d, sample{took: start(daddr+"/job:"+tag, config)})
			g = append(g, sample{took: start("alice/job:"+tag, config)})
		} else {
			g = append(g, sample{took: start("alice/job:"+tag, config)})
			d = append(d, sample{took: start(daddr+"/job:"+tag, config)})
		}
		os.RemoveAll(dir)
	}
	took := func(s sample) time.Duration { return s.took }
	gm, gl, gh := medianSample(g, took)
	dm, dl, dh := medianSample(d, took)
	report(t, "job start (submission to container start) from an image pushed a moment before (toolbox + a fresh 200 MiB layer), %d runs: served by Gantry's registry %s (%s–%s), by Distribution %s (%s–%s); Gantry / Distribution %.2f (goal <= 1.0)",
		runs, gm.Round(time.Millisecond), gl.Round(time.Millisecond), gh.Round(time.Millisecond),
		dm.Round(time.Millisecond), dl.Round(time.Millisecond), dh.Round(time.Millisecond), gm.Seconds()/dm.Seconds())
}
