package registry

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// requestCount reads gantry_registry_requests_total{method,code}.
func (e *env) requestCount(method, code string) float64 {
	e.t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gantry_registry_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "method") == method && label(m, "code") == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestRequestsAreCountedByMethodAndStatus: every answer of the registry,
// a challenge, a refusal, an upload and a download alike, is counted
// under its method and status code.
func TestRequestsAreCountedByMethodAndStatus(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		name, user, method, path string
		body                     []byte
		want                     int
	}{
		{"an anonymous ping is challenged", "", "GET", "/v2/", nil, http.StatusUnauthorized},
		{"a signed-in ping answers", "alice", "GET", "/v2/", nil, http.StatusOK},
		{"an unknown manifest is not found", "alice", "GET", "/v2/alice/app/manifests/v1", nil, http.StatusNotFound},
		{"a wrong password is refused", "mallory", "GET", "/v2/", nil, http.StatusUnauthorized},
		{"a method the route lacks is refused", "alice", "PATCH", "/v2/", nil, http.StatusMethodNotAllowed},
	}
	for _, s := range steps {
		if r := e.do(s.user, s.method, s.path, s.body); r.code != s.want {
			t.Fatalf("%s: %d, want %d", s.name, r.code, s.want)
		}
	}
	d := e.pushBlob("alice", "alice/app", []byte("layer bytes"))
	for _, m := range []string{"HEAD", "GET"} {
		if r := e.do("alice", m, "/v2/alice/app/blobs/"+d.String(), nil); r.code != http.StatusOK {
			t.Fatalf("%s blob: %d", m, r.code)
		}
	}
	for _, c := range []struct {
		method, code string
		want         float64
	}{
		{"GET", "401", 2}, {"GET", "200", 2}, {"GET", "404", 1}, {"PATCH", "405", 1},
		{"POST", "201", 1}, {"HEAD", "200", 1}, {"GET", "500", 0},
	} {
		if got := e.requestCount(c.method, c.code); got != c.want {
			t.Errorf("gantry_registry_requests_total{method=%q,code=%q} = %v, want %v", c.method, c.code, got, c.want)
		}
	}
}
