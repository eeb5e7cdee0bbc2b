package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/gin-gonic/gin"

	"gantry/wire"
)

// The OpenAPI 3 description of the API is generated from the route table:
// each route's method, path, access, summary, query parameters and the
// wire types of its body and answer. Nothing describes a route but its
// declaration, so the description cannot drift from the router; the
// handler tests validate every request and answer they make against it
// (openapi_test.go), which catches a declaration that lies.

// OpenAPI returns the API's OpenAPI 3 description.
func (a *API) OpenAPI() *openapi3.T { return a.doc }

func (a *API) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", a.docJSON)
}

// errorStatuses are the error answers an operation may give, each with the
// wire.Error body.
var errorStatuses = map[int]string{
	400: "invalid: the request names what is wrong",
	401: "unauthorized: no or bad credentials",
	403: "forbidden: not allowed (admin only, not the owner, a CSRF header missing); or a refusal of the licence gate: licence_not_accepted, access_pending, access_rejected; or account_suspended (the message says why); or quota_exceeded (a push or an output over the owner's storage quota: the message says what was added and the limit)",
	404: "not_found: no such thing, or one the caller may not see",
	409: "conflict: the state does not allow it now",
	410: "gone: removed by policy (a task log after the log retention)",
	451: "taken_down: unavailable for legal reasons (RFC 7725): the image was taken down; the message names the decision and its reason",
	429: "rate_limited: too many failed sign-ins from this account or address; Retry-After says when to try again",
	500: "internal: details are in the server's log",
	503: "unavailable: no leader, the node is starting, or it cannot answer now; retry",
}

// described caches descriptions by the routes they describe: the
// description is a function of the table, which is the same for every API
// of a process with the same configuration.
var described sync.Map // route list -> describedDoc

type describedDoc struct {
	doc  *openapi3.T
	json []byte
}

func describe(routes []Route) (*openapi3.T, []byte, error) {
	var key strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&key, "%s %s %d %s\n", r.Method, r.Path, r.Access, r.Summary)
	}
	if d, ok := described.Load(key.String()); ok {
		dd := d.(describedDoc)
		return dd.doc, dd.json, nil
	}
	doc, b, err := buildOpenAPI(routes)
	if err != nil {
		return nil, nil, err
	}
	described.Store(key.String(), describedDoc{doc, b})
	return doc, b, nil
}

func buildOpenAPI(routes []Route) (*openapi3.T, []byte, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: "Gantry REST API", Version: "v1",
			Description: "The REST API of a Gantry node (docs/api.md). Every route but the public ones needs a bearer token, the console's session cookie (with the X-Gantry-CSRF header on writes) or HTTP Basic credentials. Errors answer {\"error\": message, \"code\": code}."},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				"bearer":  &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithBearerFormat("gantry token (gtk_...)")},
				"session": &openapi3.SecuritySchemeRef{Value: openapi3.NewCSRFSecurityScheme().WithIn("cookie").WithName(sessionCookie)},
				"basic":   &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("http").WithScheme("basic")},
			},
		},
	}
	gen := openapi3gen.NewGenerator(
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true}),
		openapi3gen.SchemaCustomizer(customizeSchema))
	schemaOf := func(v any) (*openapi3.SchemaRef, error) { return gen.NewSchemaRefForValue(v, doc.Components.Schemas) }
	errRef, err := schemaOf(wire.Error{})
	if err != nil {
		return nil, nil, err
	}
	if s := doc.Components.Schemas["Error"]; s != nil && s.Value != nil {
		s.Value.Required = []string{"error", "code"}
	}
	signedIn := openapi3.SecurityRequirements{{"bearer": {}}, {"session": {}}, {"basic": {}}}
	for _, r := range routes {
		if r.Summary == "" || (r.Answer == nil && r.Produces == "") {
			return nil, nil, fmt.Errorf("route %s %s: declare its summary and what it answers (routes.go)", r.Method, r.Path)
		}
		path, pathParams := openAPIPath(r.Path)
		op := openapi3.NewOperation()
		op.OperationID = operationID(r.Method, path)
		op.Summary = r.Summary
		switch r.Access {
		case Public:
			op.Security = &openapi3.SecurityRequirements{}
		case Admin:
			op.Description = "Admins only."
			op.Security = &signedIn
		default:
			op.Security = &signedIn
		}
		for _, p := range pathParams {
			op.AddParameter(openapi3.NewPathParameter(p).WithSchema(openapi3.NewStringSchema()))
		}
		query := r.Query
		if r.Method == http.MethodGet && r.Access != Public {
			query = append(append([]Param(nil), query...), pConsistent)
		}
		for _, q := range query {
			op.AddParameter(openapi3.NewQueryParameter(q.Name).WithDescription(q.Description).WithSchema(&openapi3.Schema{Type: &openapi3.Types{q.Type}}))
		}
		if r.Body != nil {
			ref, err := schemaOf(r.Body)
			if err != nil {
				return nil, nil, fmt.Errorf("route %s %s: %w", r.Method, r.Path, err)
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
		}
		ok := openapi3.NewResponse().WithDescription(http.StatusText(r.Status))
		switch {
		case r.Produces == "application/json":
			ok.WithJSONSchema(openapi3.NewObjectSchema())
		case r.Produces != "":
			ok.WithContent(openapi3.NewContentWithSchema(openapi3.NewStringSchema(), []string{r.Produces}))
		case reflect.TypeOf(r.Answer) != reflect.TypeOf(noBody{}):
			ref, err := schemaOf(r.Answer)
			if err != nil {
				return nil, nil, fmt.Errorf("route %s %s: %w", r.Method, r.Path, err)
			}
			ok.WithJSONSchemaRef(ref)
		}
		op.AddResponse(r.Status, ok)
		for status, desc := range errorStatuses {
			op.AddResponse(status, openapi3.NewResponse().WithDescription(desc).WithJSONSchemaRef(errRef))
		}
		doc.AddOperation(path, r.Method, op)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	// Read back as any client would, so references are resolved and the
	// document is checked against the OpenAPI 3 rules.
	loaded, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, nil, fmt.Errorf("read back: %w", err)
	}
	if err := loaded.Validate(context.Background()); err != nil {
		return nil, nil, fmt.Errorf("not valid OpenAPI 3: %w", err)
	}
	return loaded, b, nil
}

// openAPIPath turns gin's /jobs/:id into /jobs/{id} and names the
// parameters. A catch-all (*path) becomes {path}: the route's summary says
// what it holds (repository names contain slashes, which an OpenAPI path
// parameter cannot).
func openAPIPath(p string) (string, []string) {
	parts := strings.Split(p, "/")
	var params []string
	for i, s := range parts {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			parts[i] = "{" + s[1:] + "}"
			params = append(params, s[1:])
		}
	}
	return strings.Join(parts, "/"), params
}

func operationID(method, path string) string {
	id := strings.ToLower(method)
	for _, s := range strings.Split(strings.TrimPrefix(path, "/api/v1"), "/") {
		s = strings.Trim(s, "{}")
		if s == "" {
			continue
		}
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			id += strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return id
}

var (
	durationType = reflect.TypeFor[wire.Duration]()
	seriesType   = reflect.TypeFor[wire.Series]()
)

// customizeSchema tells what the Go types do not: wire.Duration is written
// as a Go duration string; omitempty fields are optional; states and codes
// are enums.
func customizeSchema(name string, t reflect.Type, tag reflect.StructTag, schema *openapi3.Schema) error {
	if t == durationType {
		*schema = openapi3.Schema{Type: &openapi3.Types{"string"}, Description: `a Go duration such as "90s" or "10m" ("" for none)`}
	}
	if t == seriesType {
		item := openapi3.NewFloat64Schema()
		item.Nullable = true
		*schema = openapi3.Schema{Type: &openapi3.Types{"array"}, Items: openapi3.NewSchemaRef("", item),
			Description: "figures aligned with times, oldest first; null where not measured"}
	}
	switch name {
	case "state":
		if t.Kind() == reflect.String {
			schema.Description = "queued, scheduled, running, succeeded, failed or cancelled (jobs and tasks); ready, draining, down or joining (nodes)"
		}
	case "code":
		if t.Kind() == reflect.String {
			schema.Description = "invalid, unauthorized, forbidden, not_found, conflict, gone, unavailable, internal; refusals: licence_not_accepted, access_pending, access_rejected, account_suspended, taken_down, quota_exceeded"
		}
	}
	return nil
}
