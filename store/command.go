package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"
)

// A command is one kind of change to the replicated state. Each is declared
// once, in the table in commands.go, with its type name, version, payload
// type, result type and apply function; proposing, applying, forwarding to
// the leader and decoding a forwarded result all read that one declaration,
// so a command cannot be half-registered.

// Command is a declared command with payload type P whose apply returns R.
type Command[P, R any] struct {
	typ     string
	version int
	apply   func(*applier, *P) (R, error)
	// auditFrom: from this version on, an entry of the command may carry
	// the audit record of the action it performs (0: never).
	auditFrom int
	// needs, when set, is the lowest version that carries a payload (the
	// versions after it only added fields the payload leaves empty); nil:
	// every payload needs the newest (Gate).
	needs func(*P) int
}

// lowestFor declares the lowest version each payload needs, so a write
// that uses nothing a newer version added can be applied by a member of
// an older release during a rolling upgrade (versions.go).
func (c *Command[P, R]) lowestFor(f func(*P) int) *Command[P, R] {
	c.needs = f
	return c
}

func (c *Command[P, R]) lowest(data json.RawMessage) (int, error) {
	if c.needs == nil {
		return c.version, nil
	}
	var p P
	if err := json.Unmarshal(data, &p); err != nil {
		return 0, err
	}
	return c.needs(&p), nil
}

// carriesAudit declares that from version v the command's entries may
// carry the audit record of the request that proposed them (WithAudit),
// appended in the same transaction as the command's change. The version
// guards a rolling upgrade: a binary that predates it refuses such an
// entry instead of applying it without its record.
func (c *Command[P, R]) carriesAudit(v int) *Command[P, R] {
	c.auditFrom = v
	return c
}

// Type is the command's name in the log ("job.submit").
func (c *Command[P, R]) Type() string { return c.typ }

// Version is the newest version of the payload this binary writes and
// applies; Apply refuses a newer one instead of guessing at it.
func (c *Command[P, R]) Version() int { return c.version }

// Encode stamps the payload with the proposer's time into a log entry.
// Apply never reads the clock: at is the command's time on every node.
func (c *Command[P, R]) Encode(at time.Time, payload P) ([]byte, error) {
	return c.encode(at, payload, nil)
}

func (c *Command[P, R]) encode(at time.Time, payload P, audit *AuditEntry) ([]byte, error) {
	d, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.typ, err)
	}
	return json.Marshal(envelope{Type: c.typ, V: c.version, Time: at.UTC(), Data: d, Audit: audit})
}

// Propose commits the command through p, stamped with the current time, and
// returns Apply's result. An error Apply returned comes back as the error,
// an *Error with its code even when the command was forwarded.
func (c *Command[P, R]) Propose(ctx context.Context, p Proposer, payload P) (R, error) {
	var zero R
	// The request's audit record rides on the first command of its action
	// that can carry one (see WithAudit).
	var audit *AuditEntry
	slot := auditSlotOf(ctx)
	if slot != nil && c.auditFrom > 0 {
		audit = slot.claim()
	}
	b, err := c.encode(time.Now(), payload, audit)
	if err != nil {
		if audit != nil {
			slot.settle(false)
		}
		return zero, err
	}
	res, err := p.Propose(ctx, c.typ, b)
	if audit != nil {
		slot.settle(err == nil)
	}
	if err != nil {
		return zero, err
	}
	if res == nil {
		return zero, nil
	}
	r, ok := res.(R)
	if !ok {
		return zero, fmt.Errorf("propose %s: result is %T, want %T", c.typ, res, zero)
	}
	return r, nil
}

// Proposer commits an encoded command (from Command.Encode) through the
// Raft log. It returns the value Apply returned, as the type the command's
// apply function returns (a forwarded result is decoded with
// DecodeResult), or the error Apply returned, or the reason the command
// could not be committed.
type Proposer interface {
	Propose(ctx context.Context, typ string, cmd []byte) (any, error)
}

// None is the result of a command that returns nothing.
type None struct{}

// envelope is the encoding of every entry in the Raft log. The proposer
// stamps Time; Apply never reads the clock.
type envelope struct {
	Type string          `json:"t"`
	V    int             `json:"v"`
	Time time.Time       `json:"at"`
	Data json.RawMessage `json:"d"`
	// Audit is the audit record of the action the command performs,
	// appended by Apply with the command's change (commands declared
	// carriesAudit only).
	Audit *AuditEntry `json:"audit,omitempty"`
}

// entry is a command as the table holds it, without its type parameters.
type entry interface {
	info() CommandInfo
	auditsFrom() int
	applyData(a *applier, data json.RawMessage) (any, error)
	decodeResult(raw json.RawMessage) (any, error)
	decodePayload(raw json.RawMessage) (any, error)
	lowest(data json.RawMessage) (int, error)
}

func (c *Command[P, R]) info() CommandInfo {
	return CommandInfo{Type: c.typ, Version: c.version,
		Payload: reflect.TypeFor[P](), Result: reflect.TypeFor[R]()}
}

func (c *Command[P, R]) auditsFrom() int { return c.auditFrom }

func (c *Command[P, R]) applyData(a *applier, data json.RawMessage) (any, error) {
	var p P
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, Errorf(EInvalid, "undecodable %s payload", c.typ)
	}
	r, err := c.apply(a, &p)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (c *Command[P, R]) decodeResult(raw json.RawMessage) (any, error) {
	var r R
	if len(raw) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode %s result: %w", c.typ, err)
	}
	return r, nil
}

func (c *Command[P, R]) decodePayload(raw json.RawMessage) (any, error) {
	var p P
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode %s payload: %w", c.typ, err)
	}
	return p, nil
}

// commands is the table, by type name; define fills it from commands.go.
var commands = map[string]entry{}

// define declares a command. It is called only from the table in
// commands.go; a type declared twice is a programming error caught when
// the package loads.
func define[P, R any](typ string, version int, apply func(*applier, *P) (R, error)) *Command[P, R] {
	if _, dup := commands[typ]; dup {
		panic("store: command " + typ + " declared twice")
	}
	c := &Command[P, R]{typ: typ, version: version, apply: apply}
	commands[typ] = c
	return c
}

// CommandInfo describes a declared command.
type CommandInfo struct {
	Type    string
	Version int
	Payload reflect.Type
	Result  reflect.Type
}

// Commands lists every declared command, by type name.
func Commands() []CommandInfo {
	out := make([]CommandInfo, 0, len(commands))
	for _, e := range commands {
		out = append(out, e.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// DecodeResult turns the JSON of a command's result, as the leader sends it
// back to a follower that forwarded the command, into the value Apply
// returned, so callers cannot tell a forwarded write from a local one.
func DecodeResult(typ string, raw []byte) (any, error) {
	e, ok := commands[typ]
	if !ok {
		return nil, fmt.Errorf("decode result: unknown command %q", typ)
	}
	return e.decodeResult(raw)
}

// Decoded is an encoded command read back.
type Decoded struct {
	Type    string
	Version int
	Time    time.Time
	Payload any // the payload type the table declares, as a value
}

// DecodeCommand reads an encoded command back (tests, tools, forwarding
// checks); an unknown type or a payload that does not decode is an error.
func DecodeCommand(cmd []byte) (Decoded, error) {
	var env envelope
	if err := json.Unmarshal(cmd, &env); err != nil {
		return Decoded{}, Errorf(EInvalid, "undecodable command")
	}
	e, ok := commands[env.Type]
	if !ok {
		return Decoded{}, Errorf(EInvalid, "unknown command %q", env.Type)
	}
	p, err := e.decodePayload(env.Data)
	if err != nil {
		return Decoded{}, Errorf(EInvalid, "%v", err)
	}
	return Decoded{Type: env.Type, Version: env.V, Time: env.Time, Payload: p}, nil
}

// EncodeCommand encodes a payload given as a value of the type the table
// declares for typ; for tools and tests that hold payloads untyped. Code
// that knows its command uses Command.Encode.
func EncodeCommand(typ string, at time.Time, payload any) ([]byte, error) {
	e, ok := commands[typ]
	if !ok {
		return nil, fmt.Errorf("encode: unknown command %q", typ)
	}
	if want := e.info().Payload; reflect.TypeOf(payload) != want {
		return nil, fmt.Errorf("encode %s: payload is %T, want %s", typ, payload, want)
	}
	d, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return json.Marshal(envelope{Type: typ, V: e.info().Version, Time: at.UTC(), Data: d})
}
