package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/store"
)

// scriptedLeader stands in for the leader's Raft in forwarding tests (the
// real one needs a cluster): it checks the command it receives against the
// payload the test sent and answers with the result the test chose, as
// Raft answers with what Apply returned.
type scriptedLeader struct {
	t *testing.T

	mu      sync.Mutex
	payload any // what the command must carry
	result  any // what Apply "returned": a value or an error
	seen    int
}

func (l *scriptedLeader) ApplyIndex(ctx context.Context, cmd []byte) (any, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen++
	d, err := store.DecodeCommand(cmd)
	if err != nil {
		return nil, 0, fmt.Errorf("leader could not decode the forwarded command: %w", err)
	}
	if !reflect.DeepEqual(d.Payload, l.payload) {
		l.t.Errorf("%s: the leader received payload\n%#v\nwant\n%#v", d.Type, d.Payload, l.payload)
	}
	return l.result, 0, nil
}

func (l *scriptedLeader) script(payload, result any) {
	l.mu.Lock()
	l.payload, l.result = payload, result
	l.mu.Unlock()
}

// forwardPair is a follower's Cluster and a leader's forwarding endpoint
// over real HTTP (plain, not mutual TLS: the transport is raftcluster's
// concern and tested there).
func forwardPair(t *testing.T) (*Cluster, *scriptedLeader, string) {
	t.Helper()
	st, err := store.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	leader := &Cluster{log: log}
	sl := &scriptedLeader{t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/internal/v1/apply" {
			http.NotFound(w, r)
			return
		}
		leader.serveApply(w, r, sl)
	}))
	t.Cleanup(srv.Close)
	follower := &Cluster{log: log, st: st, hc: srv.Client()}
	return follower, sl, strings.TrimPrefix(srv.URL, "http://")
}

// TestEveryCommandRoundTripsThroughAForward walks the command table: for
// each command a random payload travels to the leader intact, and a random
// result of the command's result type comes back equal and of that type,
// so a command answered on a follower cannot differ from one answered on
// the leader.
func TestEveryCommandRoundTripsThroughAForward(t *testing.T) {
	follower, leader, addr := forwardPair(t)
	rng := rand.New(rand.NewPCG(1, 2))
	cmds := store.Commands()
	if len(cmds) < 25 {
		t.Fatalf("the table lists %d commands; want every command Gantry has", len(cmds))
	}
	for _, info := range cmds {
		for round := 0; round < 5; round++ {
			payload := gantrytest.RandomValue(info.Payload, rng)
			result := gantrytest.RandomValue(info.Result, rng)
			cmd, err := store.EncodeCommand(info.Type, time.Now(), payload)
			if err != nil {
				t.Fatalf("%s: %v", info.Type, err)
			}
			leader.script(payload, result)
			got, err, retry := follower.forward(context.Background(), addr, info.Type, cmd)
			if err != nil || retry {
				t.Fatalf("%s: forward: %v (retry %v)", info.Type, err, retry)
			}
			if reflect.TypeOf(got) != info.Result {
				t.Fatalf("%s: the forwarded result is a %T, want %s", info.Type, got, info.Result)
			}
			if !reflect.DeepEqual(got, result) {
				t.Fatalf("%s: the forwarded result\n%#v\nis not what the leader returned\n%#v", info.Type, got, result)
			}
		}
	}
}

// TestForwardedErrorsKeepTheirCode: an error Apply returned on the leader
// reaches the follower's caller with its code and message, and matches the
// store's sentinels by code; an internal error's details stay on the leader.
func TestForwardedErrorsKeepTheirCode(t *testing.T) {
	follower, leader, addr := forwardPair(t)
	payload := store.CancelJob{ID: "01J", Actor: "alice"}
	cmd, err := store.CmdCancelJob.Encode(time.Now(), payload)
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{store.EInvalid, store.ENotFound, store.EConflict, store.EUnauthorized, store.EForbidden, store.EUnavailable, store.EGone}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			leader.script(payload, store.Errorf(code, "message for %s", code))
			_, err, retry := follower.forward(context.Background(), addr, store.CmdCancelJob.Type(), cmd)
			if retry {
				t.Fatal("an answer from Apply must not be retried")
			}
			var se *store.Error
			if !errors.As(err, &se) || se.Code != code || se.Message != "message for "+code {
				t.Fatalf("forwarded error %#v, want code %s", err, code)
			}
			if errors.Is(err, store.ErrNotFound) != (code == store.ENotFound) {
				t.Fatalf("errors.Is(err, ErrNotFound) = %v for %s", errors.Is(err, store.ErrNotFound), code)
			}
		})
	}
	t.Run("internal", func(t *testing.T) {
		leader.script(payload, errors.New("badger: value log corrupt at /data/000001.vlog"))
		_, err, _ := follower.forward(context.Background(), addr, store.CmdCancelJob.Type(), cmd)
		if err == nil || store.ErrorCode(err) != store.EInternal || strings.Contains(err.Error(), "vlog") {
			t.Fatalf("forwarded internal error %v", err)
		}
	})
}

// TestProposeReturnsTheDeclaredType: Command.Propose hands back the type
// the table declares whether Apply ran here (store.Direct) or elsewhere.
func TestProposeReturnsTheDeclaredType(t *testing.T) {
	st, err := store.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := store.NewDirect(st)
	n, err := store.CmdUpsertNode.Propose(context.Background(), d, store.UpsertNode{Node: store.Node{Name: "n1", Capacity: store.Resources{CPU: 1000, Memory: 1 << 30}}})
	if err != nil || n.Name != "n1" || n.State != store.NodeReady {
		t.Fatalf("node %+v %v", n, err)
	}
	_, err = store.CmdSetNodeState.Propose(context.Background(), d, store.SetNodeState{Name: "zz", State: store.NodeDraining})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("draining a missing node: %v", err)
	}
}

// batchScript stands in for the leader's Raft for batched forwarding: it
// checks each command of the batch entry it receives against the payload
// the test sent and answers each with the result the test chose.
type batchScript struct {
	t        *testing.T
	payloads []any
	results  []any
}

func (b *batchScript) ApplyIndex(ctx context.Context, entry []byte) (any, uint64, error) {
	cmds, ok := store.DecodeBatch(entry)
	if !ok || len(cmds) != len(b.payloads) {
		b.t.Errorf("the leader received %d commands (a batch: %v), want %d", len(cmds), ok, len(b.payloads))
		return nil, 0, errors.New("not the batch sent")
	}
	out := make(store.BatchResults, len(cmds))
	for i, c := range cmds {
		d, err := store.DecodeCommand(c)
		if err != nil {
			return nil, 0, fmt.Errorf("leader could not decode command %d: %w", i, err)
		}
		if !reflect.DeepEqual(d.Payload, b.payloads[i]) {
			b.t.Errorf("%s: the leader received payload\n%#v\nwant\n%#v", d.Type, d.Payload, b.payloads[i])
		}
		out[i] = b.results[i]
	}
	return out, 0, nil
}

// TestEveryCommandRoundTripsThroughABatchedForward: every command of the
// table, with a random payload, travels to the leader in one batch, and
// each caller gets back its own result (random, of the command's result
// type) or its own error.
func TestEveryCommandRoundTripsThroughABatchedForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	script := &batchScript{t: t}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	leader := &Cluster{log: log}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leader.serveApplyBatch(w, r, script)
	}))
	defer srv.Close()
	st, err := store.Open(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	follower := &Cluster{log: log, st: st, hc: srv.Client()}
	var ps []*proposal
	for i, info := range store.Commands() {
		payload := gantrytest.RandomValue(info.Payload, rng)
		var result any = gantrytest.RandomValue(info.Result, rng)
		if i%3 == 1 {
			result = store.Errorf(store.EConflict, "refused %s", info.Type)
		}
		cmd, err := store.EncodeCommand(info.Type, time.Now(), payload)
		if err != nil {
			t.Fatal(err)
		}
		script.payloads = append(script.payloads, payload)
		script.results = append(script.results, result)
		ps = append(ps, &proposal{ctx: context.Background(), typ: info.Type, cmd: cmd, done: make(chan struct{})})
	}
	if retry := follower.forwardBatch(context.Background(), strings.TrimPrefix(srv.URL, "http://"), ps, false); len(retry) != 0 {
		t.Fatalf("%d commands to retry", len(retry))
	}
	for i, p := range ps {
		<-p.done
		want := script.results[i]
		if p.err != nil {
			t.Fatalf("%s: %v", p.typ, p.err)
		}
		if we, ok := want.(error); ok {
			if ge, _ := p.res.(error); ge == nil || store.ErrorCode(ge) != store.EConflict || ge.Error() != we.Error() {
				t.Fatalf("%s: got %#v, want the error %v", p.typ, p.res, we)
			}
			continue
		}
		if reflect.TypeOf(p.res) != reflect.TypeOf(want) || !reflect.DeepEqual(p.res, want) {
			t.Fatalf("%s: the forwarded result\n%#v\nis not what the leader returned\n%#v", p.typ, p.res, want)
		}
	}
}
