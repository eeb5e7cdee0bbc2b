package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestCommandTable: every command is declared once with a dotted name, a
// version from 1, a struct payload and an apply function.
func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Commands() {
		if seen[c.Type] {
			t.Errorf("%s declared twice", c.Type)
		}
		seen[c.Type] = true
		if c.Version < 1 {
			t.Errorf("%s: version %d", c.Type, c.Version)
		}
		if c.Payload.Kind() != reflect.Struct {
			t.Errorf("%s: payload %s is not a struct", c.Type, c.Payload)
		}
		if c.Type != "bootstrap" && !strings.Contains(c.Type, ".") {
			t.Errorf("%s: want subject.verb", c.Type)
		}
	}
	if !seen[CmdSubmitJob.Type()] || !seen[CmdRegPutManifest.Type()] {
		t.Fatalf("table lacks core commands: %v", seen)
	}
}

// TestApplyRefusesWhatItCannotRead: an unknown command, a newer version
// than this binary and a payload of the wrong shape are refused with a
// code, not applied.
func TestApplyRefusesWhatItCannotRead(t *testing.T) {
	f := newFSM(t)
	apply := func(b []byte) error {
		f.n++
		res := f.st.ApplyBatch([]*raft.Log{{Index: f.n, Type: raft.LogCommand, Data: b}})[0]
		err, _ := res.(error)
		return err
	}
	cases := []struct {
		name string
		cmd  string
		code string
	}{
		{"an unknown command", `{"t":"job.teleport","v":1,"at":"2026-01-01T00:00:00Z","d":{}}`, EInvalid},
		{"a newer version", `{"t":"job.cancel","v":99,"at":"2026-01-01T00:00:00Z","d":{"id":"x"}}`, EUnavailable},
		{"a payload of the wrong shape", `{"t":"job.cancel","v":1,"at":"2026-01-01T00:00:00Z","d":{"id":7}}`, EInvalid},
		{"something that is not a command", `not json`, EInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := apply([]byte(tc.cmd))
			var se *Error
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("apply: %v, want code %s", err, tc.code)
			}
		})
	}
	if applied := f.st.AppliedIndex(); applied != f.n {
		t.Fatalf("refused entries must still count as applied: %d of %d", applied, f.n)
	}
}

// TestEncodeCommandChecksThePayloadType: the untyped encoder refuses a
// payload the table does not declare for the command.
func TestEncodeCommandChecksThePayloadType(t *testing.T) {
	if _, err := EncodeCommand(CmdCancelJob.Type(), time.Now(), SubmitJob{}); err == nil {
		t.Fatal("a SubmitJob was accepted as the payload of job.cancel")
	}
	b, err := EncodeCommand(CmdCancelJob.Type(), time.Now(), CancelJob{ID: "j"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeCommand(b)
	if err != nil || d.Type != "job.cancel" || d.Payload.(CancelJob).ID != "j" || d.Version != CmdCancelJob.Version() {
		t.Fatalf("decoded %+v %v", d, err)
	}
}
