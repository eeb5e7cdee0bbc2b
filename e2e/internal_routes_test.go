package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/node/cluster"
	"gantry/raftcluster"
)

// TestInternalRoutesAdmitOnlyNodes is the isolation matrix of the cluster
// port, built from the internal router's own route list: for every
// node-to-node call and every caller (a node certificate of this cluster,
// one of another cluster, TLS without a certificate, plain HTTP with the
// admin's API token), only the node gets an answer from the handler;
// every other caller is stopped before any route. A route added without a
// row here fails the test.
func TestInternalRoutesAdmitOnlyNodes(t *testing.T) {
	n := gantrytest.Start(t)
	// What a node's call gets with an empty or harmless request: the
	// handler's own answer (never the router's 404/405 or a refusal).
	served := map[string]int{
		"POST /internal/v1/apply":                  http.StatusOK, // the command's refusal is in the body
		"POST /internal/v1/apply-batch":            http.StatusBadRequest,
		"GET /internal/v1/read-index":              http.StatusOK,
		"POST /internal/v1/heartbeat":              http.StatusBadRequest,
		"GET /internal/v1/roles":                   http.StatusOK,
		"POST /internal/v1/members":                http.StatusBadRequest,
		"DELETE /internal/v1/members/{id}":         http.StatusNoContent, // removing no member is done
		"GET /internal/v1/ca-key":                  http.StatusOK,
		"GET /internal/v1/logs":                    http.StatusBadRequest,
		"GET /internal/v1/usage":                   http.StatusOK,
		"GET /internal/v1/registry/blobs/{digest}": http.StatusNotFound,
		"POST /internal/v1/registry/replicate":     http.StatusBadRequest,
		"POST /internal/v1/registry/gc":            http.StatusOK,
	}
	routes := cluster.Routes()
	for _, r := range routes {
		if _, ok := served[r]; !ok {
			t.Errorf("internal route %s has no row in this matrix", r)
		}
	}
	if len(served) != len(routes) {
		t.Errorf("the matrix has %d rows for %d internal routes", len(served), len(routes))
	}

	own, err := raftcluster.LoadOrCreatePKI(filepath.Join(n.DataDir, "tls"), n.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := raftcluster.LoadOrCreatePKI(t.TempDir(), "intruder", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	noCert := raftcluster.InternalTransport(foreign, "")
	noCert.TLSClientConfig = nil
	noCert.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
		// The cluster's CA is trusted, but no certificate is offered.
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{RootCAs: own.Pool, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err != nil {
			return nil, err
		}
		if _, err := c.Write([]byte{'H'}); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	callers := []struct {
		name  string
		rt    http.RoundTripper
		token string
		node  bool
	}{
		{"a node of this cluster", raftcluster.InternalTransport(own, ""), "", true},
		{"a node of another cluster", raftcluster.InternalTransport(foreign, ""), "", false},
		{"TLS without a certificate", noCert, "", false},
		{"plain HTTP with the admin's token", &http.Transport{}, n.AdminToken, false},
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		path = strings.NewReplacer("{id}", "no-such-node", "{digest}", "sha256:"+strings.Repeat("0", 64)).Replace(path)
		for _, c := range callers {
			t.Run(fmt.Sprintf("%s by %s", r, c.name), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, method, "http://"+n.ClusterAddr+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				resp, err := (&http.Client{Transport: c.rt}).Do(req)
				if !c.node {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("answered %s: the call got past the cluster port", resp.Status)
					}
					return
				}
				if err != nil {
					t.Fatalf("a node's call failed: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != served[r] {
					t.Fatalf("a node's call answered %s, want %d", resp.Status, served[r])
				}
			})
		}
	}
}
