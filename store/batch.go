package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// A batch is one Raft log entry that carries several encoded commands
// (each an ordinary envelope, with its own type, version and time), so
// that proposals arriving together cost one entry, one replication and
// one forward instead of one each. It is an envelope of its own kind,
// {"t":"batch","v":1,"d":[cmd, cmd, ...]}: not a command of the table,
// because it has no payload type of its own, and every entry written
// before batches existed is a plain command and applies as it always did.
//
// Applying a batch applies its commands in order, in the transaction of
// the entries around it, exactly as consecutive entries would be: each
// command's result or error is its own (BatchResults), a command that
// fails leaves no write (every command validates before its first write,
// see DESIGN.md), and the others apply regardless.

const (
	batchType    = "batch"
	batchVersion = 1
)

// BatchResults is what Apply returns for a batch entry: for each command,
// in order, the value its apply function returned or its error (an *Error
// with its code).
type BatchResults []any

// ErrBatchTooBig is the result of a batch entry whose commands together
// do not fit in one transaction; nothing of it was applied. The proposer
// proposes its commands again, one entry each (a single command that does
// not fit is refused with EInvalid, as before).
var ErrBatchTooBig = errors.New("store: batch does not fit in one transaction; propose its commands one by one")

// EncodeBatch encodes commands (each from Command.Encode or
// EncodeCommand) as one log entry. A batch is never nested.
func EncodeBatch(cmds [][]byte) ([]byte, error) {
	raw := make([]json.RawMessage, len(cmds))
	for i, c := range cmds {
		raw[i] = c
	}
	d, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return json.Marshal(envelope{Type: batchType, V: batchVersion, Data: d})
}

// DecodeBatch returns the commands of a batch entry, and false for an
// entry that is a single command (or not an entry at all).
func DecodeBatch(entry []byte) ([][]byte, bool) {
	var env envelope
	if json.Unmarshal(entry, &env) != nil || env.Type != batchType {
		return nil, false
	}
	var raw []json.RawMessage
	if json.Unmarshal(env.Data, &raw) != nil {
		return nil, false
	}
	out := make([][]byte, len(raw))
	for i, r := range raw {
		out[i] = r
	}
	return out, true
}

// isBatch reports whether an entry is a batch, without decoding its
// commands.
func isBatch(entry []byte) bool {
	var head struct {
		Type string `json:"t"`
	}
	return json.Unmarshal(entry, &head) == nil && head.Type == batchType
}

// applyBatch applies the commands of a batch entry in order. Only a
// transaction grown too big fails the whole entry (the caller splits or
// refuses it); every other error is one command's own.
func (a *applier) applyBatch(env *envelope) (any, error) {
	if env.V > batchVersion {
		return nil, Errorf(EUnavailable, "batch v%d is newer than this binary (v%d)", env.V, batchVersion)
	}
	var cmds []json.RawMessage
	if err := json.Unmarshal(env.Data, &cmds); err != nil {
		return nil, Errorf(EInvalid, "undecodable batch")
	}
	out := make(BatchResults, len(cmds))
	for i, c := range cmds {
		var sub envelope
		if err := json.Unmarshal(c, &sub); err != nil {
			out[i] = Errorf(EInvalid, "undecodable command")
			continue
		}
		if sub.Type == batchType {
			out[i] = Errorf(EInvalid, "a batch inside a batch")
			continue
		}
		res, err := a.applyCommand(&sub)
		switch {
		case errors.Is(err, badger.ErrTxnTooBig):
			return nil, err
		case err != nil:
			out[i] = err
		default:
			out[i] = res
		}
	}
	return out, nil
}
