// Package gantrytest starts real `gantry server` processes for end-to-end
// tests: one node or several, on free loopback ports, each with its own data
// directory. Every end-to-end test uses it. Cleanup stops the processes and
// removes the containers they started (found by Gantry's labels).
package gantrytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/client"
	"gantry/node/firewall"
)

// Require fails the test under CI=true and skips it otherwise, with msg.
func Require(t testing.TB, ok bool, msg string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("required for this test and missing under CI=true: %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// RequireDocker needs a reachable Docker Engine.
func RequireDocker(t testing.TB) {
	t.Helper()
	err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").Run()
	Require(t, err == nil, "the Docker Engine is not reachable (docker info failed)")
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// ModuleRoot is the directory of go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Binary builds the gantry binary once per test process (static, as the
// README's build does) and returns its path. GANTRY_BIN overrides it.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GANTRY_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "gantry-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "gantry")
		cmd := exec.Command("go", "build", "-o", buildPath, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build gantry: %v", buildErr)
	}
	return buildPath
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortOn(t, "127.0.0.1")
}

// FreePortOn returns a port on host that was free a moment ago.
func FreePortOn(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Options adjust a node.
type Options struct {
	Name          string
	DataDir       string // default: a new temp dir
	AdminPassword string // default: "admin-password-123"
	// AdminToken is the admin's API token for a node whose first start
	// writes none (one restored from a backup keeps the old cluster's).
	AdminToken string
	Args       []string
	Env        []string
	// Host is the loopback address the node listens on and advertises
	// (default 127.0.0.1); nodes on their own 127.x addresses can be cut
	// off from each other with firewall rules.
	Host string
	// Binary is the gantry server the node runs (default Binary(t)): an
	// upgrade test starts a node on an earlier build and restarts it on
	// this one (SetBinary).
	Binary string
}

func (o Options) host() string {
	if o.Host == "" {
		return "127.0.0.1"
	}
	return o.Host
}

// SetBinary makes the node's next start (Restart) run the gantry server
// at path; "" is this build.
func (n *Node) SetBinary(path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.opts.Binary = path
}

// BuildAt builds the gantry server of commit rev of this repository (a
// detached worktree in a temp dir, removed after) and returns its path.
func BuildAt(t testing.TB, rev string) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	wt := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "-C", root, "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s", rev, err, out)
	}
	defer exec.Command("git", "-C", root, "worktree", "remove", "--force", wt).Run()
	bin := filepath.Join(t.TempDir(), "gantry-"+rev[:min(len(rev), 12)])
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = wt
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build gantry at %s: %v\n%s", rev, err, out)
	}
	return bin
}

// Node is a running (or stopped) gantry server process.
type Node struct {
	t             testing.TB
	opts          Options
	Name          string
	URL           string
	HTTPAddr      string
	ClusterAddr   string
	DataDir       string
	AdminToken    string
	AdminPassword string
	ClusterID     string
	LogPath       string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
	// portRetries counts fresh starts on other ports after a port was taken.
	portRetries int
	// restartRetries counts starts again on the same ports after they were briefly taken.
	restartRetries int
}

// Start starts a single-node Gantry and waits until it is healthy. It is
// stopped, and its containers removed, when the test ends.
func Start(t testing.TB, opts ...Options) *Node {
	t.Helper()
	RequireDocker(t)
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Name == "" {
		o.Name = "node1"
	}
	n := newNode(t, o)
	n.Restart(t)
	return n
}

// newNode fills o's defaults and prepares a node on free ports whose process
// is stopped, and whose containers are removed, when the test ends.
func newNode(t testing.TB, o Options) *Node {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.AdminPassword == "" {
		o.AdminPassword = "admin-password-123"
	}
	n := &Node{t: t, opts: o, Name: o.Name, DataDir: o.DataDir, AdminPassword: o.AdminPassword, AdminToken: o.AdminToken,
		HTTPAddr:    net.JoinHostPort(o.host(), fmt.Sprint(FreePortOn(t, o.host()))),
		ClusterAddr: net.JoinHostPort(o.host(), fmt.Sprint(FreePortOn(t, o.host()))),
		LogPath:     filepath.Join(o.DataDir, "server.log"),
	}
	n.URL = "http://" + n.HTTPAddr
	t.Cleanup(func() {
		if t.Failed() {
			n.dumpLog()
		}
		// Images first, while the node still holds its port: once it is
		// free, a node of a test running in parallel may take it, and
		// its images have the same host:port names.
		n.removeImages()
		n.Stop()
		n.removeContainers()
	})
	return n
}

// boundTaken reports whether the last start failed because a port was in
// use.
// waitPortsFree polls until every address can be bound, or timeout passes.
func waitPortsFree(timeout time.Duration, addrs ...string) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) { // polling until its deadline
		free := true
		for _, a := range addrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return true
		}
	}
	return false
}

func (n *Node) boundTaken() bool {
	b, _ := os.ReadFile(n.LogPath)
	i := bytes.LastIndex(b, []byte("==== start"))
	return i >= 0 && bytes.Contains(b[i:], []byte("address already in use"))
}

// Restart starts the process again on the same ports and data directory
// (after Kill9 or Stop) and waits until it is healthy.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		t.Fatalf("node %s is already running", n.Name)
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		t.Fatalf("open server log: %v", err)
	}
	n.runs++
	fmt.Fprintf(logf, "\n==== start %d ====\n", n.runs)
	args := append([]string{"server", "--data", n.DataDir, "--http", n.HTTPAddr, "--cluster", n.ClusterAddr, "--name", n.Name}, n.opts.Args...)
	bin := n.opts.Binary
	if bin == "" {
		bin = Binary(t)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GANTRY_ADMIN_PASSWORD="+n.AdminPassword)
	cmd.Env = append(cmd.Env, n.opts.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		logf.Close()
		t.Fatalf("start gantry server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	if err := n.waitHealthy(90 * time.Second); err != nil {
		// A port found free a moment ago can be taken by another process
		// before the node binds it: a fresh node tries other ports.
		// (Ports are bound before anything is written: a joiner or a
		// restored node starts over just as well.)
		if n.runs == n.portRetries+1 && n.portRetries < 3 && n.boundTaken() {
			n.mu.Lock()
			n.cmd, n.done = nil, nil
			n.portRetries++
			n.HTTPAddr = net.JoinHostPort(n.opts.host(), fmt.Sprint(FreePortOn(t, n.opts.host())))
			n.ClusterAddr = net.JoinHostPort(n.opts.host(), fmt.Sprint(FreePortOn(t, n.opts.host())))
			n.URL = "http://" + n.HTTPAddr
			n.mu.Unlock()
			n.Restart(t)
			return
		}
		// A restarted member keeps its ports (its cluster address is in the
		// Raft configuration): when the old one is briefly held by another
		// socket (an outgoing connection given it as its local port), wait
		// until both are free again and start once more.
		if n.runs > n.portRetries+1 && n.restartRetries < 3 && n.boundTaken() && waitPortsFree(30*time.Second, n.HTTPAddr, n.ClusterAddr) {
			n.mu.Lock()
			n.cmd, n.done = nil, nil
			n.restartRetries++
			n.mu.Unlock()
			n.Restart(t)
			return
		}
		n.dumpLog()
		t.Fatalf("node %s did not become healthy: %v", n.Name, err)
	}
	if n.AdminToken == "" {
		b, err := os.ReadFile(filepath.Join(n.DataDir, "admin-token"))
		if err != nil {
			t.Fatalf("read admin token: %v", err)
		}
		n.AdminToken = strings.TrimSpace(string(b))
	}
	if n.ClusterID == "" {
		var info struct {
			ID string `json:"id"`
		}
		if err := n.Client().Do(context.Background(), "GET", "/api/v1/cluster", nil, &info); err != nil {
			t.Fatalf("read cluster id: %v", err)
		}
		n.ClusterID = info.ID
	}
}

func (n *Node) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			return fmt.Errorf("process exited during start-up")
		default:
		}
		resp, err := hc.Get(n.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-n.done:
			return fmt.Errorf("process exited during start-up")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out after %s", timeout)
}

// Running reports whether the process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Kill9 kills the process with SIGKILL, as a crash would.
func (n *Node) Kill9(t testing.TB) {
	t.Helper()
	n.signal(syscall.SIGKILL, 10*time.Second)
}

// Stop ends the process with SIGTERM (SIGKILL after 20 s).
func (n *Node) Stop() {
	if !n.signal(syscall.SIGTERM, 20*time.Second) {
		n.signal(syscall.SIGKILL, 10*time.Second)
	}
}

func (n *Node) signal(sig syscall.Signal, wait time.Duration) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
		n.mu.Lock()
		n.cmd = nil
		n.mu.Unlock()
		return true
	case <-time.After(wait):
		return false
	}
}

// PID is the server's process id (0 when stopped).
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Client is an API client with the admin token.
func (n *Node) Client() *client.Client { return client.New(n.URL, n.AdminToken) }

// CreateUser creates an account and returns a client logged in as it.
func (n *Node) CreateUser(t testing.TB, name string) (*client.Client, string) {
	t.Helper()
	pw := name + "-password-1"
	ctx := context.Background()
	if err := n.Client().CreateUser(ctx, name, pw, false); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	tok, err := client.New(n.URL, "").Login(ctx, name, pw, "test")
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return client.New(n.URL, tok), pw
}

// Gantry runs the gantry CLI against this node with the admin token and
// returns stdout, stderr and the exit code.
func (n *Node) Gantry(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return n.GantryAs(t, n.AdminToken, args...)
}

// GantryCmd is the gantry CLI command args, talking to n with token, with a
// home directory of its own; the caller starts it (long-running commands).
func (n *Node) GantryCmd(t testing.TB, token string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	// English messages, whatever the machine's locale: the tests read them.
	cmd.Env = append(os.Environ(), "GANTRY_ADDR="+n.URL, "GANTRY_TOKEN="+token, "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(),
		"LC_ALL=", "LC_MESSAGES=", "LANG=C.UTF-8")
	return cmd
}

// GantryAs runs the CLI with a given token.
func (n *Node) GantryAs(t testing.TB, token string, args ...string) (string, string, int) {
	t.Helper()
	return runCLI(t, n.GantryCmd(t, token, args...), args)
}

// MustGantry runs the CLI with a given token and returns its stdout,
// failing the test (with both outputs) unless it exits 0.
func (n *Node) MustGantry(t testing.TB, token string, args ...string) string {
	t.Helper()
	out, errOut, code := n.GantryAs(t, token, args...)
	if code != 0 {
		t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// GantryLocale runs the CLI with a given token under the locale
// LANG=locale (e.g. zh_CN.UTF-8), where the others run in English.
func (n *Node) GantryLocale(t testing.TB, token, locale string, args ...string) (string, string, int) {
	t.Helper()
	cmd := n.GantryCmd(t, token, args...)
	cmd.Env = append(cmd.Env, "LANG="+locale)
	return runCLI(t, cmd, args)
}

// runCLI runs cmd and returns stdout, stderr and the exit code.
func runCLI(t testing.TB, cmd *exec.Cmd, args []string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run gantry %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// Containers lists the ids of containers this node's cluster started.
func (n *Node) Containers(t testing.TB) []string {
	t.Helper()
	if n.ClusterID == "" {
		return nil
	}
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=gantry.cluster="+n.ClusterID).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

func (n *Node) removeContainers() {
	if n.ClusterID == "" {
		return
	}
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=gantry.cluster="+n.ClusterID).Output()
	if err != nil {
		return
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
	// The users' networks the runner made (node/runner/network.go).
	_ = exec.Command("docker", "network", "prune", "-f", "--filter", "label=gantry.cluster="+n.ClusterID).Run()
	firewall.Sweep() // and the firewall rules of their bridges
}

// removeImages untags the images Docker pulled from this node's registry
// (their names start with its host:port, which no other running node shares), so
// test runs do not pile up tags.
func (n *Node) removeImages() { RemoveRegistryImages(n.HTTPAddr) }

// RemoveRegistryImages removes the images Docker pulled from the registry
// at host:port (a test node's), tags and digests alike.
func RemoveRegistryImages(hostPort string) {
	out, err := exec.Command("docker", "images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}").Output()
	if err != nil {
		return
	}
	var refs []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || !strings.HasPrefix(f[0], hostPort+"/") {
			continue
		}
		switch {
		case f[1] != "<none>":
			refs = append(refs, f[0]+":"+f[1])
		case f[2] != "<none>":
			refs = append(refs, f[0]+"@"+f[2])
		}
	}
	if len(refs) > 0 {
		_ = exec.Command("docker", append([]string{"rmi"}, refs...)...).Run()
	}
}

func (n *Node) dumpLog() {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return
	}
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	n.t.Logf("---- log of %s (%s) ----\n%s", n.Name, n.LogPath, b)
}

// Eventually polls cond every interval until it returns true or timeout
// passes, then fails the test with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for a state
	}
}

// JSON is a tiny helper for ad-hoc decoding in tests.
func JSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
