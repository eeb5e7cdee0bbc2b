package raftcluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter lets hashicorp/raft, which logs through hclog, log through the
// node's slog logger: each raft line becomes one slog record with raft's
// level, message and key/value pairs as attributes, instead of raft's own
// formatted line (with a second time stamp and level) inside a message.
type slogAdapter struct {
	l    *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*slogAdapter)(nil)

// hclogger adapts l for raft. Raft's Info lines (elections, leadership,
// membership changes) are what an operator wants to see; its Debug and
// Trace lines pass through at slog's Debug and are kept or dropped by the
// handler's level like every other Debug line.
func hclogger(l *slog.Logger) hclog.Logger { return &slogAdapter{l: l} }

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (s *slogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := slogLevel(level)
	ctx := context.Background()
	if !s.l.Enabled(ctx, lv) {
		return
	}
	attrs := make([]any, 0, len(s.args)+len(args)+2)
	if s.name != "" {
		attrs = append(attrs, "logger", s.name)
	}
	attrs = append(attrs, s.args...)
	attrs = append(attrs, pairs(args)...)
	s.l.Log(ctx, lv, msg, attrs...)
}

// pairs turns hclog's alternating keys and values into slog's, keeping an
// odd value out under a key that says so.
func pairs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		k, ok := args[i].(string)
		if !ok || i+1 == len(args) {
			out = append(out, "extra", args[i])
			i--
			continue
		}
		v := args[i+1]
		if f, ok := v.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				v = fmt.Sprintf(format, f[1:]...)
			}
		}
		out = append(out, k, v)
	}
	return out
}

func (s *slogAdapter) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogAdapter) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogAdapter) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogAdapter) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogAdapter) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }

func (s *slogAdapter) IsTrace() bool { return s.l.Enabled(context.Background(), slog.LevelDebug) }
func (s *slogAdapter) IsDebug() bool { return s.l.Enabled(context.Background(), slog.LevelDebug) }
func (s *slogAdapter) IsInfo() bool  { return s.l.Enabled(context.Background(), slog.LevelInfo) }
func (s *slogAdapter) IsWarn() bool  { return s.l.Enabled(context.Background(), slog.LevelWarn) }
func (s *slogAdapter) IsError() bool { return s.l.Enabled(context.Background(), slog.LevelError) }

func (s *slogAdapter) ImpliedArgs() []any { return s.args }

func (s *slogAdapter) With(args ...any) hclog.Logger {
	return &slogAdapter{l: s.l, name: s.name, args: append(append([]any(nil), s.args...), pairs(args)...)}
}

func (s *slogAdapter) Name() string { return s.name }

func (s *slogAdapter) Named(name string) hclog.Logger {
	if s.name != "" {
		name = s.name + "." + name
	}
	return &slogAdapter{l: s.l, name: name, args: s.args}
}

func (s *slogAdapter) ResetNamed(name string) hclog.Logger {
	return &slogAdapter{l: s.l, name: name, args: s.args}
}

// SetLevel is a no-op: the slog handler's level decides.
func (s *slogAdapter) SetLevel(hclog.Level) {}

func (s *slogAdapter) GetLevel() hclog.Level {
	switch {
	case s.IsDebug():
		return hclog.Debug
	case s.IsInfo():
		return hclog.Info
	case s.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (s *slogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

func (s *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return stdWriter{s} }

// stdWriter takes lines from a standard library logger (raft's network
// transport uses one), reading a leading "[LEVEL]" as hclog does.
type stdWriter struct{ s *slogAdapter }

func (w stdWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := hclog.Info
	for _, l := range []struct {
		tag   string
		level hclog.Level
	}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error}} {
		if rest, ok := strings.CutPrefix(line, l.tag); ok {
			level, line = l.level, strings.TrimSpace(rest)
			break
		}
	}
	w.s.Log(level, line)
	return len(p), nil
}
