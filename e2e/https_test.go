package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/client"
	"gantry/gantrytest"
)

// TestHTTPSBeyondLoopback is the view from a second machine. Every 127.x
// address is loopback to Linux, so the node is told to serve plain HTTP to
// 127.0.0.1 only (--http-plain-from) and listens, and advertises, on
// 127.0.0.2: a client dialling from 127.0.0.2 stands for one on another
// machine. Plain HTTP from there is refused with a 400 naming https://; a
// client without the cluster CA fails TLS verification and one with it
// works; `gantry login` pins the CA by its fingerprint and later commands
// use it; the real docker CLI logs in and pushes over TLS with the CA in
// certs.d.
func TestHTTPSBeyondLoopback(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t, gantrytest.Options{Host: "127.0.0.2", Env: []string{"GANTRY_HTTP_PLAIN_FROM=127.0.0.1"}})
	ctx := context.Background()
	base := "https://" + n.HTTPAddr
	caPEM, err := os.ReadFile(filepath.Join(n.DataDir, "tls", "ca.pem")) // what an operator copies off the node
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		t.Fatalf("DATA/tls/ca.pem holds no PEM block")
	}
	sum := sha256.Sum256(blk.Bytes) // as `openssl x509 -noout -fingerprint -sha256` computes it
	fp := hex.EncodeToString(sum[:])
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("DATA/tls/ca.pem is not a certificate")
	}

	t.Run("the CA the node serves is the one in its data directory", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
		resp, err := hc.Get(base + "/api/v1/cluster/ca")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != strings.TrimSpace(string(caPEM)) {
			t.Fatalf("GET /api/v1/cluster/ca: %s %q", resp.Status, b)
		}
	})

	t.Run("plain HTTP from 127.0.0.2 is refused with a 400 naming https://", func(t *testing.T) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
		hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
		resp, err := hc.Get("http://" + n.HTTPAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "https://"+n.HTTPAddr) {
			t.Fatalf("plain GET /healthz from 127.0.0.2: %s %q", resp.Status, b)
		}
	})

	t.Run("plain HTTP from 127.0.0.1 is still served", func(t *testing.T) {
		resp, err := http.Get("http://" + n.HTTPAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("plain GET /healthz from 127.0.0.1: %s", resp.Status)
		}
	})

	t.Run("a Go client without the CA fails TLS verification", func(t *testing.T) {
		_, err := client.New(base, n.AdminToken).Nodes(ctx)
		var ce *client.CertError
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ce) || !errors.As(err, &ue) {
			t.Fatalf("want an unknown-authority certificate error, got %v", err)
		}
	})

	t.Run("a Go client with the CA works", func(t *testing.T) {
		c, err := client.NewTrusting(base, n.AdminToken, caPEM)
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := c.Nodes(ctx)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("nodes over TLS: %v %v", nodes, err)
		}
	})

	t.Run("curl verifies the certificate with --cacert and refuses it without", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			gantrytest.Require(t, false, "curl is not installed")
		}
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("curl", "-fsS", "--cacert", caFile, base+"/healthz").CombinedOutput(); err != nil {
			t.Fatalf("curl --cacert: %v\n%s", err, out)
		}
		out, err := exec.Command("curl", "-fsS", base+"/healthz").CombinedOutput()
		if err == nil || !strings.Contains(strings.ToLower(string(out)), "certificate") {
			t.Fatalf("curl without the CA: %v\n%s", err, out)
		}
	})

	t.Run("gantry login pins the CA and gantry job ls then works over TLS", func(t *testing.T) {
		home := t.TempDir()
		cli := func(args ...string) (string, int) {
			t.Helper()
			cmd := exec.Command(gantrytest.Binary(t), args...)
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GANTRY_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CONFIG_HOME="+home, "GANTRY_DATA="+t.TempDir(), "LANG=C")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("gantry %s: %v", strings.Join(args, " "), err)
			}
			return string(out), cmd.ProcessState.ExitCode()
		}
		login := []string{"login", "--addr", base, "-u", "admin", "-p", n.AdminPassword}
		out, code := cli(login...)
		colons := strings.ToUpper(fp[:2])
		for i := 2; i < len(fp); i += 2 {
			colons += ":" + strings.ToUpper(fp[i:i+2])
		}
		if code != 1 || !strings.Contains(out, "--ca-fingerprint "+colons) {
			t.Fatalf("login without a terminal or a fingerprint: exit %d\n%s", code, out)
		}
		if out, code := cli(append(login, "--ca-fingerprint", strings.Repeat("ab", 32))...); code != 1 || !strings.Contains(out, "refused") {
			t.Fatalf("login with a wrong fingerprint: exit %d\n%s", code, out)
		}
		if out, code := cli(append(login, "--ca-fingerprint", fp)...); code != 0 || !strings.Contains(out, "Pinned") {
			t.Fatalf("login with the CA's fingerprint: exit %d\n%s", code, out)
		}
		if out, code := cli("job", "ls"); code != 0 {
			t.Fatalf("job ls after login: exit %d\n%s", code, out)
		}
	})

	t.Run("docker login and push over TLS with the CA in certs.d", func(t *testing.T) {
		// Docker treats 127.0.0.0/8 as an insecure registry whatever
		// certs.d holds, so this push would succeed without the CA too:
		// it shows the docker CLI working against the TLS port; the TLS
		// check proper is the Go client's and curl's above, and Docker's
		// own on a non-loopback address in TestHTTPSDockerVerifiesTheCA.
		docker := newDockerCLI(t)
		if os.Geteuid() == 0 {
			dockerTrusts(t, n.HTTPAddr, caPEM)
		} else {
			t.Log("not root: /etc/docker/certs.d is left alone")
		}
		ref := n.HTTPAddr + "/admin/x:1"
		t.Cleanup(func() { untag(docker, ref) })
		buildUniqueImage(t, docker, ref)
		docker.login(t, n.HTTPAddr, "admin", n.AdminPassword)
		docker.must(t, "", "push", ref)
		c, err := client.NewTrusting(base, n.AdminToken, caPEM)
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := c.Images(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range imgs.Repositories {
			if r.Name == "admin/x" {
				return
			}
		}
		t.Fatalf("admin/x is not in the registry after the push: %+v", imgs.Repositories)
	})
}

// TestHTTPSDockerVerifiesTheCA: on an address Docker does not treat as an
// insecure registry (this machine's own non-loopback IPv4 address), the
// docker CLI really verifies the registry's certificate: docker login is
// refused with an unknown-authority error until the cluster CA is in
// /etc/docker/certs.d/HOST:PORT/ca.crt, then login and push work.
func TestHTTPSDockerVerifiesTheCA(t *testing.T) {
	t.Parallel()
	gantrytest.Require(t, os.Geteuid() == 0, "writing /etc/docker/certs.d needs root")
	var ip string
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				ip = n.IP.String()
				break
			}
		}
	}
	gantrytest.Require(t, ip != "", "this machine has no non-loopback IPv4 address")
	// The test's own health checks come from ip itself, so it may speak
	// plain HTTP; Docker never falls back to plain HTTP for a registry it
	// does not consider insecure.
	n := gantrytest.Start(t, gantrytest.Options{Host: ip, Env: []string{"GANTRY_HTTP_PLAIN_FROM=loopback," + ip}})
	caPEM, err := os.ReadFile(filepath.Join(n.DataDir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	docker := newDockerCLI(t)
	ref := n.HTTPAddr + "/admin/y:1"
	t.Cleanup(func() { untag(docker, ref) })

	if out, err := docker.run(n.AdminPassword, "login", n.HTTPAddr, "--username", "admin", "--password-stdin"); err == nil ||
		!strings.Contains(out, "certificate signed by unknown authority") {
		t.Fatalf("docker login without the CA in certs.d: %v\n%s", err, out)
	}
	dockerTrusts(t, n.HTTPAddr, caPEM)
	buildUniqueImage(t, docker, ref)
	docker.login(t, n.HTTPAddr, "admin", n.AdminPassword)
	docker.must(t, "", "push", ref)
	c, err := client.NewTrusting("https://"+n.HTTPAddr, n.AdminToken, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := c.Images(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range imgs.Repositories {
		if r.Name == "admin/y" {
			return
		}
	}
	t.Fatalf("admin/y is not in the registry after the push: %+v", imgs.Repositories)
}

// buildUniqueImage builds a one-file FROM-scratch image tagged ref whose
// content no other test's image has: tests running in parallel that build
// the same image (one id) race in Docker's legacy builder and in clean-up.
func buildUniqueImage(t *testing.T, docker *dockerCLI, ref string) {
	t.Helper()
	dir := t.TempDir()
	unique := fmt.Sprintf("%s %d\n", t.Name(), time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte(unique), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello /hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docker.must(t, "", "build", "-q", "-t", ref, dir)
}

// dockerCertsD is where Docker looks for a registry's CA; certsDExisted
// says whether it was there before the tests ran (then it stays).
const dockerCertsD = "/etc/docker/certs.d"

var certsDExisted = func() bool { _, err := os.Stat(dockerCertsD); return err == nil }()

// dockerTrusts puts caPEM in certs.d for hostPort until the test ends.
func dockerTrusts(t *testing.T, hostPort string, caPEM []byte) {
	t.Helper()
	dir := filepath.Join(dockerCertsD, hostPort)
	t.Cleanup(func() {
		_ = os.RemoveAll(dir)
		if !certsDExisted {
			_ = os.Remove(dockerCertsD) // only once empty: the last test out removes it
		}
	})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}
