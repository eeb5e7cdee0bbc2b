package raftcluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestLogStoreRoundTripAndRange(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLogStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := s.LastIndex(); i != 0 {
		t.Fatalf("empty store last index %d", i)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 100; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 2, Type: raft.LogCommand, Data: []byte{byte(i)}, Extensions: []byte("x"), AppendedAt: time.Unix(0, int64(i))})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 11 || last != 100 {
		t.Fatalf("first %d last %d, want 11 and 100", first, last)
	}
	s.Close()

	// Reopen: what was acknowledged is still there.
	s, err = OpenLogStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var l raft.Log
	if err := s.GetLog(42, &l); err != nil {
		t.Fatal(err)
	}
	if l.Index != 42 || l.Term != 2 || l.Data[0] != 42 || string(l.Extensions) != "x" || l.AppendedAt.UnixNano() != 42 {
		t.Fatalf("read back %+v", l)
	}
	if err := s.GetLog(5, &l); err != raft.ErrLogNotFound {
		t.Fatalf("deleted entry: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetUint64([]byte("CurrentTerm")); v != 7 {
		t.Fatalf("stable value %d", v)
	}
	if v, err := s.GetUint64([]byte("missing")); v != 0 || err != nil {
		t.Fatalf("missing stable key: %d %v", v, err)
	}
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing key error %v, want \"not found\" as raft expects", err)
	}
}

func TestDecodeRejectsCorruptEntries(t *testing.T) {
	var l raft.Log
	for _, b := range [][]byte{nil, make([]byte, 10), append(make([]byte, 25), 0xff)} {
		if decodeLog(b, &l) == nil {
			t.Fatalf("decoded corrupt entry %x", b)
		}
	}
}
