package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"gantry/wire"
)

// TestSubmitIsRetriedWithItsKey: a submission answered 503 (an election)
// is sent again with the same idempotency key until it is taken; a write
// without a key is not sent twice.
func TestSubmitIsRetriedWithItsKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	cancels := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/api/v1/jobs/x/cancel" {
			cancels++
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"no leader","code":"unavailable"}`))
			return
		}
		keys = append(keys, r.Header.Get(wire.IdempotencyKeyHeader))
		if len(keys) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"this node is not the leader; try again","code":"unavailable"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"01J","state":"queued"}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "gtk_x")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, err := c.Submit(ctx, wire.JobSpec{Image: "x"})
	if err != nil || j.ID != "01J" {
		t.Fatalf("submit: %+v %v", j, err)
	}
	if len(keys) != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("keys sent: %q, want one key three times", keys)
	}
	_, err = c.Cancel(ctx, "x")
	var e *Error
	if !errors.As(err, &e) || e.Code != wire.CodeUnavailable || cancels != 1 {
		t.Fatalf("cancel: %v after %d tries, want one try and the 503", err, cancels)
	}
}
