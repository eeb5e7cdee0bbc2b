package registry

import (
	"io"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics counts the registry's answers by method and HTTP status
// (gantry_registry_requests_total), so an operator can alert on 5xx
// answers and watch pushes and pulls. 401 is part of the Docker login
// handshake, not an error.
type requestMetrics struct {
	requests *prometheus.CounterVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	if reg == nil {
		return nil
	}
	m := &requestMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gantry_registry_requests_total",
		Help: "Registry (/v2/) requests answered, by method and HTTP status code.",
	}, []string{"method", "code"})}
	reg.MustRegister(m.requests)
	return m
}

// methodLabel bounds the method label to the methods the registry serves.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}

func (m *requestMetrics) observe(method string, status int) {
	m.requests.WithLabelValues(methodLabel(method), strconv.Itoa(status)).Inc()
}

// statusWriter records the status a handler answers with. It passes
// Flush and ReadFrom (sendfile for blob downloads) through to the
// connection's writer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
