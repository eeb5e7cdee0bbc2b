package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/store"
)

// BodyTimeout bounds how long a JSON request body may take to arrive
// ($GANTRY_BODY_TIMEOUT, a duration, changes it: tests).
var BodyTimeout = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("GANTRY_BODY_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}()

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors whose message names the field.
func decode(c *gin.Context, v any) error { return decodeUpTo(c, v, 1<<20) }

// decodeUpTo is decode for a body of at most limit bytes.
func decodeUpTo(c *gin.Context, v any, limit int64) error {
	// A body must arrive within BodyTimeout: a client trickling a byte at a
	// time would otherwise hold a connection and a goroutine for ever.
	rc := http.NewResponseController(c.Writer)
	timed := rc.SetReadDeadline(time.Now().Add(BodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		// The deadline stays: net/http would otherwise wait for the rest
		// of the body before answering. The connection closes after.
		c.Header("Connection", "close")
		return store.Errorf(store.EInvalid, "request body: not received within %s", BodyTimeout)
	}
	if timed {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		return store.Errorf(store.EInvalid, "%s", describeJSONError(err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := describeJSONError(err)
		if f := culprit(body, v); f != "" && !strings.HasPrefix(msg, f+":") && !strings.HasPrefix(msg, "unknown field") {
			msg = f + ": " + msg
		}
		return store.Errorf(store.EInvalid, "%s", msg)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return store.Errorf(store.EInvalid, "request body: unexpected data after the JSON object")
	}
	return nil
}

// culprit finds the top-level field whose value failed to decode, so errors
// from custom decoders (durations) still name their field. It reads the
// first JSON value only, as decode does: data after it is a later error.
func culprit(body []byte, v any) string {
	var fields map[string]json.RawMessage
	if json.NewDecoder(bytes.NewReader(body)).Decode(&fields) != nil {
		return ""
	}
	t := reflect.TypeOf(v).Elem()
	for k, raw := range fields {
		one, _ := json.Marshal(map[string]json.RawMessage{k: raw})
		if json.Unmarshal(one, reflect.New(t).Interface()) != nil {
			return k
		}
	}
	return ""
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "request body"
		}
		return fmt.Sprintf("%s: want %s, got %s", field, te.Type.String(), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("request body: invalid JSON at byte %d", se.Offset)
	case errors.As(err, &mbe):
		return fmt.Sprintf("request body: more than %d bytes (%d KiB), too large", mbe.Limit, mbe.Limit>>10)
	case errors.Is(err, io.EOF):
		return "request body: empty, want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "request body: invalid JSON (it ends too early)"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	msg = strings.TrimPrefix(msg, "json: ")
	// Errors from our own UnmarshalJSON methods come wrapped with the field.
	return msg
}
