package ui_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"gantry/store"
	"gantry/ui"
)

// BenchmarkConsoleHub measures what `make bench` reports for the console:
// 200 browser-like WebSocket clients follow a job of 2,000 tasks while every
// task goes scheduled → running → succeeded. The node side (a real Badger
// store, the hub, the HTTP server) runs in this process; the clients run in a
// child process so that the CPU time reported is the node's alone. Delay is
// from the moment a change is applied to the store (the command's time,
// stamped just before Apply) to its arrival at a client.
//
//	go test -run '^$' -bench ConsoleHub -benchtime 1x ./ui/
//
// UI_BENCH_CLIENTS, UI_BENCH_TASKS and UI_BENCH_RATE (task transitions per
// second, 0 = as fast as the store applies them) change the load.
func BenchmarkConsoleHub(b *testing.B) {
	clients := envInt("UI_BENCH_CLIENTS", 200)
	tasks := envInt("UI_BENCH_TASKS", 2000)
	rate := envInt("UI_BENCH_RATE", 2000)
	for i := 0; i < b.N; i++ {
		runHubBench(b, clients, tasks, rate)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

type benchStore struct{ d *store.Direct }

// apply applies payloads of one command as one batch, as Raft hands a
// burst of entries to the state machine.
func (s *benchStore) apply(b testing.TB, cmd interface{ Type() string }, payloads ...any) {
	b.Helper()
	cmds := make([][]byte, 0, len(payloads))
	now := time.Now()
	for _, p := range payloads {
		data, err := store.EncodeCommand(cmd.Type(), now, p)
		if err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, data)
	}
	for _, r := range s.d.ApplyBatch(cmds) {
		if err, ok := r.(error); ok && err != nil {
			b.Fatalf("apply %s: %v", cmd.Type(), err)
		}
	}
}

func runHubBench(b *testing.B, nClients, nTasks, rate int) {
	b.StopTimer()
	st, err := store.Open(b.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	bs := &benchStore{d: store.NewDirect(st)}
	bs.apply(b, store.CmdUpsertNode, store.UpsertNode{Node: store.Node{Name: "n1", Addr: "127.0.0.1:1",
		Capacity: store.Resources{CPU: 1 << 40, Memory: 1 << 60}}})
	jobID := "01BENCHJOB0000000000000000"
	bs.apply(b, store.CmdSubmitJob, store.SubmitJob{ID: jobID, Owner: "alice", Spec: store.JobSpec{
		Image: "gantry/toolbox", Command: []string{"echo"}, CPU: 10, Memory: 6 << 20, Array: nTasks, Queue: "default"}})

	// Every request comes from alice, as if node/api's middleware had
	// authenticated her session.
	alice := func(*http.Request) (ui.Viewer, bool) { return ui.Viewer{User: "alice"}, true }
	hub := ui.NewHub(ui.HubConfig{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Viewer: alice})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	// Every client must see 3 changes per task: scheduled, running, succeeded.
	want := nTasks * 3
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "UI_BENCH_CHILD=1", "UI_BENCH_URL="+strings.Replace(srv.URL, "http", "ws", 1),
		"UI_BENCH_JOB="+jobID, fmt.Sprintf("UI_BENCH_CLIENTS=%d", nClients), fmt.Sprintf("UI_BENCH_WANT=%d", want))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(out)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	waitLine := func(prefix string) string {
		for lines.Scan() {
			if s, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return s
			}
		}
		b.Fatalf("client process ended before %q: %v", prefix, lines.Err())
		return ""
	}
	waitLine("READY")

	cpu0 := cpuTime()
	start := time.Now()
	b.StartTimer()
	// The scheduler places in batches; runners report each attempt.
	const batch = 50
	pace := func(done int) {
		if rate <= 0 {
			return
		}
		ahead := time.Until(start.Add(time.Duration(done) * time.Second / time.Duration(rate)))
		if ahead > 0 {
			time.Sleep(ahead) // pacing the producer, not waiting for a state
		}
	}
	done := 0
	for lo := 0; lo < nTasks; lo += batch {
		hi := min(lo+batch, nTasks)
		var place store.Place
		var started, ended []any
		now := time.Now()
		for i := lo; i < hi; i++ {
			place.Placements = append(place.Placements, store.Placement{JobID: jobID, Task: i, Node: "n1"})
			started = append(started, store.AttemptStarted{JobID: jobID, Task: i, N: 1, Container: "c", At: now})
			ended = append(ended, store.AttemptEnded{JobID: jobID, Task: i, N: 1, Container: "c", ExitCode: 0, Reason: store.ReasonExited, Ended: now})
		}
		bs.apply(b, store.CmdPlace, place)
		done += hi - lo
		pace(done)
		bs.apply(b, store.CmdAttemptStarted, started...)
		done += hi - lo
		pace(done)
		bs.apply(b, store.CmdAttemptEnded, ended...)
		done += hi - lo
		pace(done)
	}
	produced := time.Since(start)
	res := waitLine("RESULT ")
	b.StopTimer()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0

	var r benchResult
	if err := json.Unmarshal([]byte(res), &r); err != nil {
		b.Fatalf("decode result %q: %v", res, err)
	}
	if r.Incomplete > 0 {
		b.Errorf("%d of %d clients did not receive all %d task changes (dropped by the hub: %d)", r.Incomplete, nClients, want, hub.Dropped())
	}
	msgs := float64(r.Messages)
	b.ReportMetric(float64(r.P50)/1e6, "p50-ms")
	b.ReportMetric(float64(r.P99)/1e6, "p99-ms")
	b.ReportMetric(float64(r.Max)/1e6, "max-ms")
	b.ReportMetric(cpu.Seconds(), "node-cpu-s")
	b.ReportMetric(msgs/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/msgs, "node-cpu-ns/msg")
	fmt.Fprintf(os.Stderr, "console hub: %d clients x %d tasks (%d changes each, produced in %s at %d/s): delivered %d messages in %s; store-to-client delay p50 %s p99 %s max %s; node CPU %s; clients dropped %d\n",
		nClients, nTasks, want, produced.Round(time.Millisecond), rate, r.Messages, elapsed.Round(time.Millisecond),
		time.Duration(r.P50).Round(10*time.Microsecond), time.Duration(r.P99).Round(10*time.Microsecond), time.Duration(r.Max).Round(10*time.Microsecond),
		cpu.Round(time.Millisecond), hub.Dropped())
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchResult struct {
	Messages   int   `json:"messages"`
	P50        int64 `json:"p50"`
	P99        int64 `json:"p99"`
	Max        int64 `json:"max"`
	Incomplete int   `json:"incomplete"`
}

var (
	taskPrefix = []byte(`{"type":"task"`)
	updatedKey = []byte(`"updated":"`)
)

// TestMain turns the test binary into the benchmark's client process when
// BenchmarkConsoleHub starts it with UI_BENCH_CHILD=1.
func TestMain(m *testing.M) {
	if os.Getenv("UI_BENCH_CHILD") == "1" {
		benchClients()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchClients is the client side of BenchmarkConsoleHub: browser-like
// WebSocket clients that report the delay of each task change they receive.
func benchClients() {
	url, job := os.Getenv("UI_BENCH_URL"), os.Getenv("UI_BENCH_JOB")
	n, want := envInt("UI_BENCH_CLIENTS", 200), envInt("UI_BENCH_WANT", 0)
	type clientResult struct {
		delays []int64
		tasks  int
		msgs   int
	}
	results := make([]clientResult, n)
	var ready, finished sync.WaitGroup
	ready.Add(n)
	finished.Add(n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		go func(i int) {
			defer finished.Done()
			hdr := http.Header{"Origin": {strings.Replace(url, "ws", "http", 1)}}
			conn, _, err := websocket.DefaultDialer.Dial(url, hdr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "dial: %v\n", err)
				ready.Done()
				return
			}
			defer conn.Close()
			_ = conn.WriteJSON(map[string]any{"follow": map[string]any{"job": job}})
			var msg struct {
				Type string      `json:"type"`
				Task *store.Task `json:"task"`
			}
			for {
				if err := conn.ReadJSON(&msg); err != nil {
					ready.Done()
					return
				}
				if msg.Type == "following" {
					break
				}
			}
			ready.Done()
			<-start
			r := &results[i]
			r.delays = make([]int64, 0, want)
			_ = conn.SetReadDeadline(time.Now().Add(120 * time.Second))
			for r.tasks < want {
				_, b, err := conn.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				for len(b) > 0 {
					line := b
					if k := bytes.IndexByte(b, '\n'); k >= 0 {
						line, b = b[:k], b[k+1:]
					} else {
						b = nil
					}
					r.msgs++
					// Read only what the measurement needs, as cheaply as a
					// browser's JSON.parse, so the clients are not the bottleneck.
					if !bytes.HasPrefix(line, taskPrefix) {
						continue
					}
					k := bytes.Index(line, updatedKey)
					if k < 0 {
						continue
					}
					v := line[k+len(updatedKey):]
					if e := bytes.IndexByte(v, '"'); e > 0 {
						if at, err := time.Parse(time.RFC3339Nano, string(v[:e])); err == nil {
							r.tasks++
							r.delays = append(r.delays, now.Sub(at).Nanoseconds())
						}
					}
				}
			}
		}(i)
	}
	ready.Wait()
	close(start)
	fmt.Println("READY")
	finished.Wait()
	var all []int64
	res := benchResult{}
	for _, r := range results {
		all = append(all, r.delays...)
		res.Messages += r.msgs
		if r.tasks < want {
			res.Incomplete++
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		res.P50, res.P99, res.Max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
	out, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", out)
}
