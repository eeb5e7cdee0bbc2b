package view

import (
	"gantry/store"
	"gantry/wire"
)

// AuditRecord shows an audit record.
func AuditRecord(r *store.AuditRecord) wire.AuditRecord {
	return wire.AuditRecord{Seq: r.Seq, At: r.At, Actor: r.Actor, Source: r.Source, Action: r.Action, Target: r.Target,
		Outcome: r.Outcome, Detail: r.Detail, Prev: r.Prev, Hash: r.Hash}
}

// AuditRecords shows audit records.
func AuditRecords(rs []store.AuditRecord) []wire.AuditRecord {
	out := make([]wire.AuditRecord, len(rs))
	for i := range rs {
		out[i] = AuditRecord(&rs[i])
	}
	return out
}

// AuditVerification shows what a walk of the audit chain found.
func AuditVerification(v store.AuditVerification) wire.AuditVerification {
	return wire.AuditVerification{OK: v.OK, Records: v.Records, Broken: v.Broken, Reason: v.Reason}
}

// Message shows an inbox message.
func Message(m *store.Message) wire.Message {
	return wire.Message{ID: m.ID, User: m.User, At: m.At, Kind: m.Kind, Subject: m.Subject, Body: m.Body, Ref: m.Ref, Read: m.Read}
}

// Messages shows inbox messages.
func Messages(ms []store.Message) []wire.Message {
	out := make([]wire.Message, len(ms))
	for i := range ms {
		out[i] = Message(&ms[i])
	}
	return out
}
