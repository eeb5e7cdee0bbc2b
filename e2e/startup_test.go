package e2e

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/wire"
)

// TestStartupFailuresExitAtOnce: a server that cannot start (a busy HTTP
// port, a busy cluster port, an unwritable data directory) says why in one
// line and exits non-zero within a second, having released what it took:
// under systemd such a unit restarts instead of hanging.
func TestStartupFailuresExitAtOnce(t *testing.T) {
	bin := gantrytest.Binary(t)
	listen := func(t *testing.T) (net.Listener, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln, ln.Addr().String()
	}
	free := func(t *testing.T) string {
		return "127.0.0.1:" + strconv.Itoa(gantrytest.FreePort(t))
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) (data, httpAddr, clusterAddr, busy string)
		want  string
	}{
		{"a busy HTTP port", func(t *testing.T) (string, string, string, string) {
			_, busy := listen(t)
			return t.TempDir(), busy, free(t), busy
		}, "--http"},
		{"a busy cluster port", func(t *testing.T) (string, string, string, string) {
			_, busy := listen(t)
			return t.TempDir(), free(t), busy, busy
		}, "--cluster"},
		{"an unwritable data directory", func(t *testing.T) (string, string, string, string) {
			return unwritableDir(t), free(t), free(t), ""
		}, "--data"},
		{"a data directory that is a file", func(t *testing.T) (string, string, string, string) {
			p := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p, free(t), free(t), ""
		}, "--data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, httpAddr, clusterAddr, busy := tc.setup(t)
			cmd := exec.Command(bin, "server", "--data", data, "--http", httpAddr, "--cluster", clusterAddr, "--name", "startup")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running 5 s after start; stderr:\n%s", stderr.String())
			}
			took := time.Since(start)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero exit code; stderr:\n%s", err, stderr.String())
			}
			if took > time.Second {
				t.Fatalf("took %s to exit, want under a second; stderr:\n%s", took, stderr.String())
			}
			last := lastLine(stderr.String())
			if !strings.HasPrefix(last, "gantry: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("last line %q does not say %q", last, tc.want)
			}
			// What it took is released: every port but the one another
			// process holds can be bound again.
			for _, a := range []string{httpAddr, clusterAddr} {
				if a == busy {
					continue
				}
				ln, err := net.Listen("tcp", a)
				if err != nil {
					t.Fatalf("port %s still taken after the server exited: %v", a, err)
				}
				ln.Close()
			}
			t.Logf("exited %d after %s: %s", ee.ExitCode(), took.Round(time.Millisecond), last)
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// unwritableDir is a directory nobody can write to: a read-only tmpfs for
// root (who ignores file modes), else a directory of mode 0500.
func unwritableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return dir
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err == nil {
		t.Cleanup(func() { syscall.Unmount(dir, 0) })
		return dir
	}
	// Without the right to mount: sysfs refuses new files to everyone.
	return "/sys/kernel/gantry-unwritable"
}

// TestTheJoinTokenIsNeverPrinted: the join token admits a machine as a
// node with all the state, so the first start writes it to a file only
// its user reads and prints where it is, not the token (the output lands
// in the journal); the file holds the token the admin's API gives.
func TestTheJoinTokenIsNeverPrinted(t *testing.T) {
	n := gantrytest.Start(t)
	path := filepath.Join(n.DataDir, "join-token")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("join token file: %v %v, want mode 0600", st, err)
	}
	b, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))
	var jc wire.JoinCommand
	if err := n.Client().Do(t.Context(), "GET", "/api/v1/cluster/join-command", nil, &jc); err != nil {
		t.Fatal(err)
	}
	if jc.Token != tok || !strings.HasPrefix(tok, "gantry1-") {
		t.Fatalf("the file holds %q, the API gives %q", tok, jc.Token)
	}
	out, _ := os.ReadFile(n.LogPath)
	_, secret, _ := strings.Cut(tok[len("gantry1-"):], "-")
	if bytes.Contains(out, []byte(secret)) {
		t.Fatalf("the output holds the join secret:\n%s", out)
	}
	if !bytes.Contains(out, []byte("Join token:      "+path)) {
		t.Fatalf("the output does not say where the join token is:\n%s", out)
	}
}
