package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"

	"gantry/wire"
)

// EventStream is an open connection to the live change feed
// (GET /api/v1/events).
type EventStream struct {
	conn    *websocket.Conn
	pending [][]byte // messages of the last frame not yet returned
}

// Events opens the change feed; with follow set it also asks for the task
// events of that job. Close it when done; cancelling ctx closes it too.
func (c *Client) Events(ctx context.Context, follow string) (*EventStream, error) {
	u := "ws" + strings.TrimPrefix(c.Addr, "http") + "/api/v1/events"
	t := c.httpTransport()
	d := websocket.Dialer{NetDialContext: t.DialContext, TLSClientConfig: t.TLSClientConfig, Proxy: http.ProxyFromEnvironment}
	hdr := http.Header{}
	if c.Token != "" {
		hdr.Set("Authorization", "Bearer "+c.Token)
	}
	conn, resp, err := d.DialContext(ctx, u, hdr)
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			defer resp.Body.Close()
			return nil, errorOf(resp)
		}
		return nil, c.reachError(err)
	}
	s := &EventStream{conn: conn}
	context.AfterFunc(ctx, func() { conn.Close() })
	if follow != "" {
		msg, _ := json.Marshal(map[string]any{"follow": map[string]string{"job": follow}})
		if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return s, nil
}

// NextRaw returns the next message as the server sent it (one JSON
// object). A frame may carry several messages, one per line.
func (s *EventStream) NextRaw() ([]byte, error) {
	for len(s.pending) == 0 {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				s.pending = append(s.pending, line)
			}
		}
	}
	m := s.pending[0]
	s.pending = s.pending[1:]
	return m, nil
}

// Next returns the next event.
func (s *EventStream) Next() (*wire.Event, error) {
	b, err := s.NextRaw()
	if err != nil {
		return nil, err
	}
	var ev wire.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("decode an event: %w", err)
	}
	return &ev, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.conn.Close() }
