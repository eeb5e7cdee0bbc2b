package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// routerCache holds a kin-openapi router per API description, by its
// text (every fixture builds the same description).
var routerCache sync.Map // string(docJSON) -> routers.Router

var registerDecoders sync.Once

func openAPIRouter(t testing.TB, a *API) routers.Router {
	registerDecoders.Do(func() {
		// Bodies that are not JSON are checked as text.
		for _, ct := range []string{"application/x-pem-file", "application/octet-stream", "application/x-ndjson", "application/x-tar", "application/pdf", "image/png", "image/jpeg", "image/gif"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		}
	})
	if r, ok := routerCache.Load(string(a.docJSON)); ok {
		return r.(routers.Router)
	}
	r, err := gorillamux.NewRouter(a.doc)
	if err != nil {
		t.Fatalf("OpenAPI router: %v", err)
	}
	routerCache.Store(string(a.docJSON), r)
	return r
}

// checkAgainstOpenAPI validates a request the API accepted, and every
// answer it gave, against its OpenAPI description: a handler that answers
// what its route does not declare fails the test that made the request.
// Refused requests are not validated (many tests send malformed ones on
// purpose); their error answers are.
func checkAgainstOpenAPI(t testing.TB, a *API, req *http.Request, body any, w *httptest.ResponseRecorder) {
	t.Helper()
	p := req.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/v1/images/") && req.Method == http.MethodDelete,
		strings.HasPrefix(p, "/debug/pprof/"):
		return // catch-all paths: an OpenAPI parameter cannot hold their slashes
	case p == "/api/v1/events":
		return // a WebSocket, served here by a fake (the browser tests drive the real one)
	case !strings.HasPrefix(p, "/api/") && p != "/healthz" && p != "/metrics":
		return
	}
	vreq := req.Clone(context.Background())
	if b := rawBody(body); b != nil {
		vreq.Body = io.NopCloser(bytes.NewReader(b))
	}
	route, params, err := openAPIRouter(t, a).FindRoute(vreq)
	if err != nil {
		if w.Code == http.StatusNotFound {
			return // no such endpoint, and the API said so
		}
		t.Fatalf("%s %s is answered %d but the OpenAPI description has no such operation: %v", req.Method, p, w.Code, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if w.Code < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Fatalf("%s %s was accepted (%d) but does not match its OpenAPI description: %v", req.Method, p, w.Code, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: w.Code, Header: w.Header(),
		Body: io.NopCloser(bytes.NewReader(w.Body.Bytes())), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Fatalf("%s %s answered %d %.300s, which its OpenAPI description does not allow: %v", req.Method, p, w.Code, w.Body.String(), err)
	}
}

func rawBody(body any) []byte {
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return []byte(b)
	case []byte:
		return b
	default:
		js, _ := json.Marshal(b)
		return js
	}
}

// TestOpenAPIDescribesTheRouter: the description is valid OpenAPI 3, is
// served at /api/v1/openapi.json, and has exactly the operations gin
// serves (walked from the router itself, not from the table).
func TestOpenAPIDescribesTheRouter(t *testing.T) {
	f := newFixture(t)
	w := f.do(owner, "GET", "/api/v1/openapi.json", nil)
	if w.Code != 200 {
		t.Fatalf("openapi.json: %d", w.Code)
	}
	doc, err := openapi3.NewLoader().LoadFromData(w.Body.Bytes())
	if err != nil {
		t.Fatalf("load the served description: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the description is not valid OpenAPI 3: %v", err)
	}
	described := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range f.api.engine.Routes() {
		p, _ := openAPIPath(r.Path)
		k := r.Method + " " + p
		served[k] = true
		if !described[k] {
			t.Errorf("the router serves %s, which the description lacks", k)
		}
	}
	for k := range described {
		if !served[k] {
			t.Errorf("the description has %s, which the router does not serve", k)
		}
	}
	if len(served) < 40 {
		t.Fatalf("only %d routes walked", len(served))
	}
	for _, code := range []string{"invalid", "not_found", "unavailable"} {
		if !strings.Contains(w.Body.String(), code) {
			t.Errorf("the description does not name the error code %s", code)
		}
	}
}

// TestARouteWithoutADescriptionIsRefused: adding a route without its
// summary or answer type fails (New panics at start-up, and this test,
// and every handler test with it, fails first).
func TestARouteWithoutADescriptionIsRefused(t *testing.T) {
	f := newFixture(t)
	routes := append(f.api.Routes(), Route{Method: "GET", Path: "/api/v1/new-thing", Access: Signed})
	if _, _, err := buildOpenAPI(routes); err == nil || !strings.Contains(err.Error(), "/api/v1/new-thing") {
		t.Fatalf("a route without a description was accepted: %v", err)
	}
}

// TestOpenAPIDocInTheRepositoryIsCurrent: docs/openapi.json is the
// description a node serves (with a registry, a cluster and the live feed);
// regenerate it with GANTRY_UPDATE_OPENAPI=1 go test ./node/api -run
// TestOpenAPIDocInTheRepositoryIsCurrent.
func TestOpenAPIDocInTheRepositoryIsCurrent(t *testing.T) {
	f := newFixture(t)
	const path = "../../docs/openapi.json"
	if os.Getenv("GANTRY_UPDATE_OPENAPI") == "1" {
		if err := os.WriteFile(path, append(f.api.docJSON, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(f.api.docJSON)) {
		t.Fatalf("docs/openapi.json is not the description the API serves (%v): run GANTRY_UPDATE_OPENAPI=1 go test ./node/api -run TestOpenAPIDocInTheRepositoryIsCurrent", err)
	}
}
