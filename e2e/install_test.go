package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gantry/gantrytest"
)

// TestInstallScript runs install.sh into temp dirs (GANTRY_UNIT keeps it
// away from the machine's systemd): it installs a static binary and a unit,
// prints the credentials, is idempotent, and refuses without Docker.
func TestInstallScript(t *testing.T) {
	gantrytest.Require(t, os.Geteuid() == 0, "install.sh must run as root")
	gantrytest.RequireDocker(t)
	root, err := gantrytest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prefix, data, unit := filepath.Join(dir, "prefix"), filepath.Join(dir, "data"), filepath.Join(dir, "gantry.service")
	if err := os.MkdirAll(filepath.Join(prefix, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) (string, error) {
		cmd := exec.Command("bash", filepath.Join(root, "install.sh"))
		cmd.Env = append(os.Environ(), append([]string{"PREFIX=" + prefix, "GANTRY_DATA=" + data, "GANTRY_UNIT=" + unit}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	pw := regexp.MustCompile(`Admin password: (\S+)`).FindStringSubmatch(out)
	if pw == nil || !strings.Contains(out, "Console:") || !strings.Contains(out, "Join command:") {
		t.Fatalf("install.sh did not print the console URL, password and join command:\n%s", out)
	}
	bin := filepath.Join(prefix, "bin", "gantry")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("installed binary: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the installed binary is dynamically linked; it must be static")
		}
	}
	f.Close()
	for _, f := range []struct{ path, want string }{
		{"share/man/man1/gantry.1", ".TH \"GANTRY\" \"1\""},
		{"share/man/man1/gantry-run.1", "gantry run [flags] IMAGE"},
		{"share/man/man1/gantry-job-ls.1", `\fB--watch\fP`},
		{"share/bash-completion/completions/gantry", "__start_gantry"},
		{"share/zsh/site-functions/_gantry", "#compdef gantry"},
		{"share/fish/vendor_completions.d/gantry.fish", "complete -c gantry"},
	} {
		b, err := os.ReadFile(filepath.Join(prefix, f.path))
		if err != nil || !strings.Contains(string(b), f.want) {
			t.Fatalf("installed %s: %v (want it to hold %q)\n%.300s", f.path, err, f.want, b)
		}
	}
	u, err := os.ReadFile(unit)
	if err != nil || !strings.Contains(string(u), bin+" server") || !strings.Contains(string(u), "GANTRY_DATA="+data) {
		t.Fatalf("unit file %s: %v\n%s", unit, err, u)
	}
	if st, err := os.Stat(data); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", st, err)
	}

	// Again: same credentials, same unit.
	out2, err := run()
	if err != nil {
		t.Fatalf("second install.sh: %v\n%s", err, out2)
	}
	if !strings.Contains(out2, "Admin password: "+pw[1]) {
		t.Fatalf("a second run changed the admin password:\n%s", out2)
	}
	if u2, _ := os.ReadFile(unit); string(u2) != string(u) {
		t.Fatal("a second run changed the unit file")
	}

	// Once the node has written the cluster CA, a run puts Docker's copy
	// in certs.d for the node's address; before, it says how.
	if !strings.Contains(out2, "Docker trust:") || !strings.Contains(out2, "run install.sh again") {
		t.Fatalf("install.sh before the CA exists does not say how Docker will trust it:\n%s", out2)
	}
	if err := os.MkdirAll(filepath.Join(data, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	caPEM := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(filepath.Join(data, "tls", "ca.pem"), []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs.d")
	out3, err := run("GANTRY_DOCKER_CERTS="+certs, "GANTRY_HTTP=127.0.0.1:7443")
	if err != nil {
		t.Fatalf("install.sh with the CA: %v\n%s", err, out3)
	}
	if b, err := os.ReadFile(filepath.Join(certs, "127.0.0.1:7443", "ca.crt")); err != nil || string(b) != caPEM {
		t.Fatalf("certs.d/127.0.0.1:7443/ca.crt: %v %q\n%s", err, b, out3)
	}
	if !strings.Contains(out3, "Console:        https://127.0.0.1:7443") {
		t.Fatalf("the console URL is not the https:// one:\n%s", out3)
	}

	// Without Docker: a clear refusal.
	noDocker := t.TempDir()
	for _, tool := range []string{"bash", "dirname", "id"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(noDocker, tool)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(noDocker, "bash"), filepath.Join(root, "install.sh"))
	cmd.Env = []string{"PATH=" + noDocker, "PREFIX=" + prefix, "GANTRY_DATA=" + data, "GANTRY_UNIT=" + unit}
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "Docker is not installed") {
		t.Fatalf("install.sh without Docker: %v\n%s", err, b)
	}
}
