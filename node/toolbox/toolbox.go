// Package toolbox is the program inside the gantry/toolbox image and the
// code that builds that image from the running gantry binary.
//
// Main implements the small commands used for smoke tests and benchmarks
// (echo, sleep, graceful, exit, env, burn, alloc, write, cat, tick, fail-until, lines,
// devices);
// they need no shell and no other file in the image. Build packs a gantry
// binary (and, for a dynamically linked binary, its ELF interpreter and shared
// libraries) into a one-layer OCI image. The package does not push or store
// images: the registry and the runner consume the pieces Build returns.
package toolbox

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ExitUnknownCommand is the exit code for a command the toolbox does not know,
// as a shell uses for "command not found".
const ExitUnknownCommand = 127

// exitUsage is the exit code for a known command with bad arguments.
const exitUsage = 2

// env is what a command may read from its process environment; tests
// substitute it.
type env struct {
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	environ func() []string
	stat    func(string) (os.FileInfo, error)
}

type command struct {
	usage string
	run   func(e *env, args []string) (int, error)
}

var commands = map[string]command{
	"echo":        {"echo ARGS...", cmdEcho},
	"true":        {"true", func(*env, []string) (int, error) { return 0, nil }},
	"false":       {"false", func(*env, []string) (int, error) { return 1, nil }},
	"exit":        {"exit CODE", cmdExit},
	"sleep":       {"sleep SECONDS", cmdSleep},
	"graceful":    {"graceful SECONDS CLEANUP", cmdGraceful},
	"env":         {"env", cmdEnv},
	"burn":        {"burn SECONDS", cmdBurn},
	"alloc":       {"alloc MEGABYTES", cmdAlloc},
	"write":       {"write PATH BYTES [SECONDS]", cmdWrite},
	"task-output": {"task-output DIR", cmdTaskOutput},
	"files":       {"files DIR COUNT BYTES [COUNT BYTES]...", cmdFiles},
	"read-all":    {"read-all DIR", cmdReadAll},
	"cat":         {"cat PATH", cmdCat},
	"sha256":      {"sha256 PATH [WANT]", cmdSHA256},
	"tick":        {"tick INTERVAL DURATION", cmdTick},
	"fail-until":  {"fail-until N CODE", cmdFailUntil},
	"fail-tasks":  {"fail-tasks INDEX,INDEX... CODE", cmdFailTasks},
	"lines":       {"lines N", cmdLines},
	"devices":     {"devices SECONDS PATH...", cmdDevices},
	"listen":      {"listen PORT SECONDS", cmdListen}, // net.go
	"dial":        {"dial HOST:PORT TIMEOUT", cmdDial},
	"probe":       {"probe HOST:PORT SECONDS", cmdProbe},
}

// Main runs one toolbox command, args[0] being its name, writing to the
// process's stdout and stderr, and returns the process exit code. An unknown
// command prints one line on stderr and returns 127; bad arguments to a known
// command return 2.
func Main(args []string) int {
	return run(&env{
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		getenv:  os.Getenv,
		environ: os.Environ,
		stat:    os.Stat,
	}, args)
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "toolbox: no command given; commands: %s\n", commandNames())
		return exitUsage
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "toolbox: unknown command %q; commands: %s\n", args[0], commandNames())
		return ExitUnknownCommand
	}
	code, err := c.run(e, args[1:])
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(e.stderr, "toolbox: %s; usage: %s\n", ue.msg, c.usage)
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "toolbox %s: %v\n", args[0], err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func commandNames() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func wantArgs(args []string, n int) error {
	if len(args) != n {
		return usagef("want %d argument(s), got %d", n, len(args))
	}
	return nil
}

// parseDuration accepts a Go duration ("200ms", "1m30s") or a number of
// seconds, fractions allowed ("0.5").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > float64(1<<62)/float64(time.Second) {
			return 0, usagef("duration %q out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usagef("bad duration %q (want seconds like 1.5 or a duration like 200ms)", s)
	}
	return d, nil
}

func parseInt(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, usagef("bad %s %q: want an integer", what, s)
	}
	return n, nil
}

func cmdEcho(e *env, args []string) (int, error) {
	_, err := fmt.Fprintln(e.stdout, strings.Join(args, " "))
	return 0, err
}

func cmdExit(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	code, err := parseInt("exit code", args[0])
	if err != nil {
		return 0, err
	}
	if code < 0 || code > 255 {
		return 0, usagef("exit code %d out of range 0-255", code)
	}
	return code, nil
}

func cmdSleep(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	d, err := parseDuration(args[0])
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	return 0, nil
}

// cmdDevices says which of the paths exist in the container ("PATH
// present" or "PATH absent", one a line), prints the GPUs Gantry gave the
// task (GANTRY_GPUS and CUDA_VISIBLE_DEVICES), then holds them for SECONDS.
func cmdDevices(e *env, args []string) (int, error) {
	if len(args) < 2 {
		return 0, usagef("want SECONDS and at least one PATH")
	}
	d, err := parseDuration(args[0])
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(e.stdout)
	for _, p := range args[1:] {
		state := "present"
		if _, err := e.stat(p); err != nil {
			state = "absent"
		}
		fmt.Fprintln(w, p, state)
	}
	fmt.Fprintf(w, "GANTRY_GPUS=%s\nCUDA_VISIBLE_DEVICES=%s\n", e.getenv("GANTRY_GPUS"), e.getenv("CUDA_VISIBLE_DEVICES"))
	if err := w.Flush(); err != nil {
		return 0, err
	}
	time.Sleep(d)
	return 0, nil
}

// cmdGraceful sleeps like sleep, but stops on SIGTERM: it says so, takes
// CLEANUP to finish (as a task saving its work would), says it stopped and
// exits 143, the code of a process ended by SIGTERM.
func cmdGraceful(e *env, args []string) (int, error) {
	if err := wantArgs(args, 2); err != nil {
		return 0, err
	}
	d, err := parseDuration(args[0])
	if err != nil {
		return 0, err
	}
	cleanup, err := parseDuration(args[1])
	if err != nil {
		return 0, err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	defer signal.Stop(term)
	start := time.Now()
	fmt.Fprintln(e.stdout, "working")
	select {
	case <-time.After(d):
		fmt.Fprintln(e.stdout, "done")
		return 0, nil
	case <-term:
	}
	fmt.Fprintf(e.stdout, "received SIGTERM after %s; cleaning up for %s\n", time.Since(start).Round(time.Second), cleanup)
	time.Sleep(cleanup)
	fmt.Fprintln(e.stdout, "stopped cleanly")
	return 143, nil
}

func cmdEnv(e *env, args []string) (int, error) {
	vars := e.environ()
	sort.Strings(vars)
	w := bufio.NewWriter(e.stdout)
	for _, v := range vars {
		fmt.Fprintln(w, v)
	}
	return 0, w.Flush()
}

func cmdBurn(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	d, err := parseDuration(args[0])
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(d)
	var x uint64 = 1
	var rounds uint64
	for time.Now().Before(deadline) {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		rounds++
	}
	_, err = fmt.Fprintf(e.stdout, "burned %s (%d rounds, %x)\n", d, rounds, x&0xff)
	return 0, err
}

// allocHold is how long alloc keeps its memory, so that a memory limit is
// enforced (and an OOM kill observed) before the process exits on its own.
var allocHold = 2 * time.Second

func cmdAlloc(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	mb, err := parseInt("megabytes", args[0])
	if err != nil {
		return 0, err
	}
	if mb < 0 {
		return 0, usagef("megabytes must not be negative")
	}
	const chunk = 1 << 20
	held := make([][]byte, 0, mb)
	for i := 0; i < mb; i++ {
		b := make([]byte, chunk)
		// Touch every page so the memory is resident, not just reserved.
		for j := 0; j < chunk; j += 4096 {
			b[j] = byte(i + 1)
		}
		held = append(held, b)
	}
	fmt.Fprintf(e.stdout, "allocated %d MB\n", mb)
	time.Sleep(allocHold)
	var sum byte
	for _, b := range held {
		sum += b[0]
	}
	_, err = fmt.Fprintf(e.stdout, "released %d MB (%d)\n", mb, sum)
	return 0, err
}

// cmdWrite writes BYTES bytes to PATH (creating its directories) and,
// given SECONDS, then waits that long before exiting.
func cmdWrite(e *env, args []string) (int, error) {
	if len(args) != 2 && len(args) != 3 {
		return 0, usagef("want PATH, BYTES and optionally SECONDS")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || n < 0 {
		return 0, usagef("bad byte count %q", args[1])
	}
	var hold time.Duration
	if len(args) == 3 {
		secs, err := strconv.ParseFloat(args[2], 64)
		if err != nil || secs < 0 {
			return 0, usagef("bad seconds %q", args[2])
		}
		hold = time.Duration(secs * float64(time.Second))
	}
	if err := os.MkdirAll(filepath.Dir(args[0]), 0o755); err != nil {
		return 1, fmt.Errorf("create: %w", err)
	}
	f, err := os.Create(args[0])
	if err != nil {
		return 1, fmt.Errorf("create: %w", err)
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	rest := n
	for rest > 0 {
		k := min(rest, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return 1, fmt.Errorf("write %s: %w", args[0], err)
		}
		rest -= k
	}
	if err := f.Close(); err != nil {
		return 1, fmt.Errorf("close %s: %w", args[0], err)
	}
	if _, err := fmt.Fprintf(e.stdout, "wrote %d bytes to %s\n", n, args[0]); err != nil {
		return 1, err
	}
	time.Sleep(hold)
	return 0, nil
}

// cmdTaskOutput leaves a small tree in DIR that says which task made it:
// DIR/task.txt ("task I of N, job J, attempt A"), DIR/nested/deeper/index
// (I) and an empty file DIR/empty. Tests of job outputs check it.
func cmdTaskOutput(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	dir := args[0]
	i := e.getenv("GANTRY_TASK_INDEX")
	files := map[string]string{
		"task.txt":            fmt.Sprintf("task %s of %s, job %s, attempt %s\n", i, e.getenv("GANTRY_TASK_COUNT"), e.getenv("GANTRY_JOB_ID"), e.getenv("GANTRY_ATTEMPT")),
		"nested/deeper/index": i + "\n",
		"empty":               "",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 1, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return 1, err
		}
	}
	_, err := fmt.Fprintf(e.stdout, "wrote %d files to %s\n", len(files), dir)
	return 0, err
}

// cmdFiles writes, for each COUNT BYTES pair K, COUNT files of BYTES
// each at DIR/gK/fNNNNNN, every file with bytes of its own (no two alike,
// so nothing stores them once): a tree of a chosen shape for benchmarks.
func cmdFiles(e *env, args []string) (int, error) {
	if len(args) < 3 || len(args)%2 != 1 {
		return 0, usagef("want DIR and one or more COUNT BYTES pairs")
	}
	var files, total int64
	buf := make([]byte, 1<<20)
	for k := 0; 2*k+1 < len(args); k++ {
		count, err1 := strconv.ParseInt(args[2*k+1], 10, 64)
		size, err2 := strconv.ParseInt(args[2*k+2], 10, 64)
		if err1 != nil || err2 != nil || count < 0 || size < 0 {
			return 0, usagef("bad COUNT BYTES pair %q %q", args[2*k+1], args[2*k+2])
		}
		dir := filepath.Join(args[0], fmt.Sprintf("g%d", k))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 1, err
		}
		for i := range count {
			rng := rand.New(rand.NewPCG(uint64(k), uint64(i)))
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%06d", i)))
			if err != nil {
				return 1, err
			}
			for rest := size; rest > 0; {
				n := min(rest, int64(len(buf)))
				for j := 0; j < int(n); j += 8 {
					binary.LittleEndian.PutUint64(buf[j:min(j+8, len(buf))], rng.Uint64())
				}
				if _, err := f.Write(buf[:n]); err != nil {
					f.Close()
					return 1, err
				}
				rest -= n
			}
			if err := f.Close(); err != nil {
				return 1, err
			}
			files++
			total += size
		}
	}
	_, err := fmt.Fprintf(e.stdout, "wrote %d files, %d bytes, to %s\n", files, total, args[0])
	return 0, err
}

// cmdReadAll reads every file under DIR to its end (what a task reading
// its whole dataset does) and prints how many files and bytes.
func cmdReadAll(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	var files, total int64
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(args[0], func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.Discard, f, buf)
		f.Close()
		files++
		total += n
		return err
	})
	if err != nil {
		return 1, err
	}
	_, err = fmt.Fprintf(e.stdout, "read %d files, %d bytes\n", files, total)
	return 0, err
}

func cmdCat(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	f, err := os.Open(args[0])
	if err != nil {
		return 1, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(e.stdout, f); err != nil {
		return 1, fmt.Errorf("read %s: %w", args[0], err)
	}
	return 0, nil
}

// cmdSHA256 prints a file's sha256 and, given WANT (hex, or sha256:hex),
// exits 1 when the file's differs: a task checks the data it was given.
func cmdSHA256(e *env, args []string) (int, error) {
	if len(args) != 1 && len(args) != 2 {
		return 0, usagef("want PATH and optionally the digest expected")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return 1, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return 1, fmt.Errorf("read %s: %w", args[0], err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if _, err := fmt.Fprintf(e.stdout, "%s  %s\n", got, args[0]); err != nil {
		return 1, err
	}
	if len(args) == 2 && strings.TrimPrefix(strings.ToLower(args[1]), "sha256:") != got {
		return 1, fmt.Errorf("%s: sha256 %s, want %s", args[0], got, args[1])
	}
	return 0, nil
}

func cmdTick(e *env, args []string) (int, error) {
	if err := wantArgs(args, 2); err != nil {
		return 0, err
	}
	interval, err := parseDuration(args[0])
	if err != nil {
		return 0, err
	}
	if interval <= 0 {
		return 0, usagef("interval must be positive")
	}
	total, err := parseDuration(args[1])
	if err != nil {
		return 0, err
	}
	end := time.Now().Add(total)
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		now := <-t.C
		if now.After(end) {
			return 0, nil
		}
		// e.stdout is unbuffered (os.Stdout), so each line leaves at once.
		if _, err := fmt.Fprintf(e.stdout, "tick %d\n", n); err != nil {
			return 1, err
		}
	}
}

// cmdFailTasks fails with CODE on the first attempt of the listed tasks
// (GANTRY_TASK_INDEX) and succeeds otherwise: arrays whose chosen tasks
// fail once, for tests of reruns and retries.
func cmdFailTasks(e *env, args []string) (int, error) {
	if err := wantArgs(args, 2); err != nil {
		return 0, err
	}
	code, err := parseInt("exit code", args[1])
	if err != nil {
		return 0, err
	}
	if code < 0 || code > 255 {
		return 0, usagef("exit code %d out of range 0-255", code)
	}
	index, attempt := e.getenv("GANTRY_TASK_INDEX"), e.getenv("GANTRY_ATTEMPT")
	for _, s := range strings.Split(args[0], ",") {
		if strings.TrimSpace(s) == index && attempt == "1" {
			fmt.Fprintf(e.stderr, "task %s, attempt 1: failing with exit code %d\n", index, code)
			return code, nil
		}
	}
	_, err = fmt.Fprintf(e.stdout, "task %s, attempt %s: succeeding\n", index, attempt)
	return 0, err
}

func cmdFailUntil(e *env, args []string) (int, error) {
	if err := wantArgs(args, 2); err != nil {
		return 0, err
	}
	n, err := parseInt("attempt", args[0])
	if err != nil {
		return 0, err
	}
	code, err := parseInt("exit code", args[1])
	if err != nil {
		return 0, err
	}
	if code < 0 || code > 255 {
		return 0, usagef("exit code %d out of range 0-255", code)
	}
	raw := e.getenv("GANTRY_ATTEMPT")
	attempt, err := strconv.Atoi(raw)
	if err != nil {
		return 1, fmt.Errorf("GANTRY_ATTEMPT=%q is not a number", raw)
	}
	if attempt < n {
		fmt.Fprintf(e.stderr, "attempt %d < %d: failing with exit code %d\n", attempt, n, code)
		return code, nil
	}
	_, err = fmt.Fprintf(e.stdout, "attempt %d >= %d: succeeding\n", attempt, n)
	return 0, err
}

func cmdLines(e *env, args []string) (int, error) {
	if err := wantArgs(args, 1); err != nil {
		return 0, err
	}
	n, err := parseInt("line count", args[0])
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(e.stdout)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	return 0, w.Flush()
}
