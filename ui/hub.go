package ui

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// Defaults of HubConfig.
const (
	// DefaultClientBuffer holds every task event of the largest array job.
	DefaultClientBuffer = 16384
	DefaultStoreBuffer  = 65536
)

const (
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = 25 * time.Second
	// maxClientMessage bounds what a browser may send (follow requests).
	maxClientMessage = 4096
)

// Viewer is who a console client is: what they may see of the feed.
type Viewer struct {
	User  string
	Admin bool
}

// HubConfig configures a Hub.
type HubConfig struct {
	Store  *store.Store
	Logger *slog.Logger
	// Viewer tells who sent an authenticated request (the API's
	// middleware authenticates /api/v1/events before the hub sees it);
	// ok is false for a request nobody authenticated.
	Viewer func(r *http.Request) (v Viewer, ok bool)
	// ClientBuffer is how many messages may wait for one client before it is
	// dropped (it reconnects and resynchronises). 0 means DefaultClientBuffer.
	ClientBuffer int
	// StoreBuffer is the hub's store subscription buffer. 0 means
	// DefaultStoreBuffer.
	StoreBuffer int
}

// Hub is the console's WebSocket endpoint (/api/v1/events). It holds one
// store subscription while at least one client is connected and fans each
// event out to the clients allowed to read it. Every client has a bounded
// queue; a client whose queue is full is disconnected rather than allowed to
// slow the node down.
type Hub struct {
	cfg      HubConfig
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu      sync.RWMutex
	clients map[*client]struct{}
	running bool // the fan-out goroutine is alive
	stop    chan struct{}

	dropped atomic.Int64
}

// NewHub returns a hub over cfg.Store. It starts no goroutine until the first
// client connects, and stops its subscription when the last one leaves or the
// store closes.
func NewHub(cfg HubConfig) *Hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ClientBuffer <= 0 {
		cfg.ClientBuffer = DefaultClientBuffer
	}
	if cfg.StoreBuffer <= 0 {
		cfg.StoreBuffer = DefaultStoreBuffer
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "ui-hub"), clients: map[*client]struct{}{}}
	h.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 16 << 10,
		CheckOrigin:     sameOrigin,
	}
	return h
}

// Dropped reports how many clients were disconnected for falling behind.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// Clients reports the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// sameOrigin accepts requests without an Origin header (non-browser
// clients, which authenticate with a token) and browser requests whose
// Origin names the host they connect to, so another site cannot open a
// WebSocket with the user's cookies.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// message is what the hub sends; it follows docs/api.md ("Events").
type message = wire.Event

// request is what a browser may send.
type request struct {
	Follow *struct {
		Job  string `json:"job"`
		Task *int   `json:"task,omitempty"`
	} `json:"follow,omitempty"`
	Unfollow *struct{} `json:"unfollow,omitempty"`
}

type client struct {
	id   Viewer
	conn atomic.Pointer[websocket.Conn] // nil until the handshake completes

	// The queue of encoded messages grows on demand up to max, so an idle
	// client costs nothing and a burst costs only pointers to shared bytes.
	qmu    sync.Mutex
	queue  [][]byte
	max    int
	notify chan struct{}

	follow atomic.Pointer[string] // job whose task events this client wants

	closeOnce sync.Once
	done      chan struct{}
}

// drop disconnects the client; safe to call more than once.
func (c *client) drop(code int, reason string) {
	c.closeOnce.Do(func() {
		close(c.done)
		conn := c.conn.Load()
		if conn == nil {
			return
		}
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = conn.Close()
	})
}

// enqueue queues b for the writer; false means the queue is full.
func (c *client) enqueue(b []byte) bool {
	c.qmu.Lock()
	if len(c.queue) >= c.max {
		c.qmu.Unlock()
		return false
	}
	c.queue = append(c.queue, b)
	c.qmu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return true
}

// enqueueAll queues the encoded events c wants; false means its queue is full.
func (c *client) enqueueAll(evs []store.Event, enc [][]byte) bool {
	added := false
	c.qmu.Lock()
	for i := range evs {
		if enc[i] == nil || !c.wants(&evs[i]) {
			continue
		}
		if len(c.queue) >= c.max {
			c.qmu.Unlock()
			return false
		}
		c.queue = append(c.queue, enc[i])
		added = true
	}
	c.qmu.Unlock()
	if added {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	return true
}

func (c *client) canRead(owner string) bool { return c.id.Admin || owner == c.id.User }

// wants reports whether ev is for this client.
func (c *client) wants(ev *store.Event) bool {
	switch ev.Type {
	case "job":
		return c.canRead(ev.Owner)
	case "task":
		f := c.follow.Load()
		return f != nil && *f == ev.Task.JobID && c.canRead(ev.Owner)
	case "schedule":
		return c.canRead(ev.Owner)
	case "node", "resync":
		return true
	}
	return false
}

// ServeHTTP upgrades an authenticated request to a WebSocket. The API's
// middleware has already authenticated it and put the identity in the
// request context.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var id Viewer
	ok := false
	if h.cfg.Viewer != nil {
		id, ok = h.cfg.Viewer(r)
	}
	if !ok || id.User == "" {
		http.Error(w, `{"error":"authentication required","code":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, `{"error":"cross-origin WebSocket refused","code":"forbidden"}`, http.StatusForbidden)
		return
	}
	// Register before the handshake completes: once the browser sees the
	// connection open it fetches the current state, and every change after
	// that fetch must already be on its way to this client.
	c := &client{id: id, max: h.cfg.ClientBuffer, notify: make(chan struct{}, 1), done: make(chan struct{})}
	h.add(c)
	defer h.remove(c)
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the client.
		h.log.Debug("websocket upgrade failed", "user", id.User, "err", err)
		c.closeOnce.Do(func() { close(c.done) })
		return
	}
	c.conn.Store(conn)
	select {
	case <-c.done: // dropped during the handshake
		_ = conn.Close()
		return
	default:
	}
	go h.writeLoop(c)
	h.readLoop(c)
}

func (h *Hub) add(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	if !h.running {
		h.running = true
		h.stop = make(chan struct{})
		go h.fanOut(h.cfg.Store.Subscribe(h.cfg.StoreBuffer), h.stop)
	}
}

func (h *Hub) remove(c *client) {
	c.drop(websocket.CloseNormalClosure, "")
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	if len(h.clients) == 0 && h.running {
		h.running = false
		close(h.stop)
	}
}

func (h *Hub) readLoop(c *client) {
	conn := c.conn.Load()
	conn.SetReadLimit(maxClientMessage)
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		var req request
		if err := json.Unmarshal(b, &req); err != nil {
			continue // ignore what we do not understand, as browsers may evolve first
		}
		switch {
		case req.Follow != nil && req.Follow.Job != "":
			j := req.Follow.Job
			c.follow.Store(&j)
			// The acknowledgement tells the browser that task events of j
			// are flowing, so the tasks it fetches now miss nothing.
			h.send(c, message{Type: "following", JobID: j})
		case req.Unfollow != nil:
			c.follow.Store(nil)
		}
	}
}

func (h *Hub) writeLoop(c *client) {
	conn := c.conn.Load()
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.notify:
			c.qmu.Lock()
			batch := c.queue
			c.queue = nil
			c.qmu.Unlock()
			if err := writeBatch(conn, batch); err != nil {
				c.drop(websocket.CloseGoingAway, "")
				return
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.drop(websocket.CloseGoingAway, "")
				return
			}
		}
	}
}

// maxFrame bounds the bytes of messages packed into one WebSocket frame.
const maxFrame = 256 << 10

// writeBatch writes queued messages, packing several into one frame, one
// JSON object per line: a burst of thousands of task changes then costs a
// few writes instead of one system call per change.
func writeBatch(conn *websocket.Conn, batch [][]byte) error {
	for len(batch) > 0 {
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		w, err := conn.NextWriter(websocket.TextMessage)
		if err != nil {
			return err
		}
		size := 0
		for len(batch) > 0 && (size == 0 || size+len(batch[0]) <= maxFrame) {
			if size > 0 {
				if _, err := w.Write(newline); err != nil {
					return err
				}
			}
			if _, err := w.Write(batch[0]); err != nil {
				return err
			}
			size += len(batch[0]) + 1
			batch = batch[1:]
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}

var newline = []byte{'\n'}

// fanOut reads the store's change feed and delivers each event to the
// clients that may read it, until stop closes or the store closes.
func (h *Hub) fanOut(sub *store.Subscription, stop chan struct{}) {
	defer func() { sub.Close() }()
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-sub.C:
			if !ok {
				if !sub.Lost() {
					// The store closed: the node is shutting down.
					h.closeAll(websocket.CloseGoingAway, "server shutting down")
					return
				}
				// The hub itself fell behind: every client must resynchronise.
				h.log.Warn("event feed overflowed; asking clients to resynchronise")
				sub.Close()
				sub = h.cfg.Store.Subscribe(h.cfg.StoreBuffer)
				h.deliver(&store.Event{Type: "resync"}, time.Now())
				continue
			}
			select {
			case <-stop:
				return // a newer fan-out serves the clients now
			default:
			}
			// Take what else is already waiting, so a burst is delivered to
			// each client under one lock and one wake-up.
			evs := []store.Event{ev}
		drain:
			for len(evs) < 1024 {
				select {
				case e, ok := <-sub.C:
					if !ok {
						break drain // handled on the next turn
					}
					evs = append(evs, e)
				default:
					break drain
				}
			}
			h.deliverAll(evs, time.Now())
		}
	}
}

// eventMessage is the WebSocket message for a store event.
func eventMessage(ev *store.Event, at time.Time) message {
	m := message{Type: ev.Type, Sent: at.UnixNano()}
	if ev.Job != nil {
		j := view.Job(ev.Job)
		m.Job = &j
	}
	if ev.Task != nil {
		t := view.Task(ev.Task)
		m.Task = &t
	}
	if ev.Node != nil {
		n := view.Node(ev.Node)
		// One message goes to every client: which attempts hold a GPU is
		// for admins and their owners (GET /nodes), how many is for all.
		for i := range n.Devices {
			n.Devices[i].Holders = nil
		}
		m.Node = &n
	}
	if ev.Schedule != nil {
		s := view.Schedule(ev.Schedule)
		m.Schedule = &s
	}
	if ev.Type == "schedule" {
		m.ScheduleID = ev.Name
	}
	return m
}

// deliverAll delivers a burst of events, encoding each once.
func (h *Hub) deliverAll(evs []store.Event, at time.Time) {
	enc := make([][]byte, len(evs))
	for i := range evs {
		ev := &evs[i]
		if ev.Type != "job" && ev.Type != "task" && ev.Type != "node" && ev.Type != "resync" && ev.Type != "schedule" {
			continue
		}
		b, err := json.Marshal(eventMessage(ev, at))
		if err != nil {
			h.log.Error("encode event", "type", ev.Type, "err", err)
			continue
		}
		enc[i] = b
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		if !c.enqueueAll(evs, enc) {
			h.dropped.Add(1)
			h.log.Debug("dropping slow console client", "user", c.id.User)
			go c.drop(websocket.CloseTryAgainLater, "too slow; resynchronise")
		}
	}
}

func (h *Hub) deliver(ev *store.Event, at time.Time) {
	var b []byte
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		if !c.wants(ev) {
			continue
		}
		if b == nil {
			var err error
			b, err = json.Marshal(eventMessage(ev, at))
			if err != nil {
				h.log.Error("encode event", "type", ev.Type, "err", err)
				return
			}
		}
		if !c.enqueue(b) {
			// Too slow: disconnect; the browser reconnects and refetches.
			h.dropped.Add(1)
			h.log.Debug("dropping slow console client", "user", c.id.User)
			go c.drop(websocket.CloseTryAgainLater, "too slow; resynchronise")
		}
	}
}

// Broadcast sends every connected client a message of type typ that
// carries nothing another user may not see (e.g. "stats": the node took a
// new sample of its history, so open dashboards fetch it).
func (h *Hub) Broadcast(typ string, at time.Time) {
	b, err := json.Marshal(message{Type: typ, Sent: at.UnixNano()})
	if err != nil {
		h.log.Error("encode message", "type", typ, "err", err)
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		if !c.enqueue(b) {
			h.dropped.Add(1)
			go c.drop(websocket.CloseTryAgainLater, "too slow; resynchronise")
		}
	}
}

// send queues one message for c, dropping c when its queue is full.
func (h *Hub) send(c *client, m message) {
	b, err := json.Marshal(m)
	if err != nil {
		h.log.Error("encode message", "type", m.Type, "err", err)
		return
	}
	if !c.enqueue(b) {
		h.dropped.Add(1)
		go c.drop(websocket.CloseTryAgainLater, "too slow; resynchronise")
	}
}

func (h *Hub) closeAll(code int, reason string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		go c.drop(code, reason)
	}
}

// Shutdown disconnects every client; used by tests and embedding programs.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.closeAll(websocket.CloseGoingAway, "server shutting down")
	for h.Clients() > 0 {
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("close console clients"), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
