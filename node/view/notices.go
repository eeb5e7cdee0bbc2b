package view

import (
	"gantry/store"
	"gantry/wire"
)

// InfringementNotice shows an infringement notice. With redact (the accused
// publisher's view) the notifier's and their agent's identity document
// and contact are left out: the publisher is told who claims what and
// why, not how to reach them privately.
func InfringementNotice(n *store.Notice, redact bool) wire.InfringementNotice {
	party := func(p store.Party) wire.NoticeParty {
		if redact {
			return wire.NoticeParty{Name: p.Name, Kind: p.Kind}
		}
		return noticeParty(p)
	}
	out := wire.InfringementNotice{ID: n.ID, State: n.State, Filer: n.Filer, Public: n.Public, At: n.At, RightsHolder: party(n.RightsHolder),
		Works: n.Works, Proof: attachments(n.Proof), Content: n.Content, Repos: n.Repos, Accused: n.Accused, Reasons: n.Reasons,
		Evidence: attachments(n.Evidence), Statement: signedStatement(n.Statement), Signature: n.Signature,
		Decision: noticeDecision(n.Decision), RestoreAfter: n.RestoreAfter, Resolution: noticeDecision(n.Resolution), Redacted: redact}
	if n.Agent != nil {
		out.Agent = &wire.NoticeAgent{NoticeParty: party(n.Agent.Party), Scope: n.Agent.Scope, Authorisation: attachments(n.Agent.Authorisation)}
	}
	if c := n.Counter; c != nil {
		out.Counter = &wire.CounterNotice{Filer: c.Filer, At: c.At, Party: noticeParty(c.Party), Content: c.Content, Reasons: c.Reasons,
			Evidence: attachments(c.Evidence), Statement: signedStatement(c.Statement), Signature: c.Signature}
		if c.Agent != nil {
			out.Counter.Agent = &wire.NoticeAgent{NoticeParty: noticeParty(c.Agent.Party), Scope: c.Agent.Scope, Authorisation: attachments(c.Agent.Authorisation)}
		}
	}
	if c := n.Court; c != nil {
		out.Court = &wire.CourtAction{By: c.By, At: c.At, Detail: c.Detail}
	}
	for _, s := range n.Timeline {
		out.Timeline = append(out.Timeline, wire.NoticeStep(s))
	}
	return out
}

func noticeParty(p store.Party) wire.NoticeParty { return wire.NoticeParty(p) }

func signedStatement(s store.Statement) wire.SignedStatement {
	return wire.SignedStatement{Lang: s.Lang, Text: s.Text, At: s.At}
}

func attachments(as []store.AttachmentRef) []wire.Attachment {
	var out []wire.Attachment
	for _, a := range as {
		out = append(out, wire.Attachment(a))
	}
	return out
}

func noticeDecision(d *store.NoticeDecision) *wire.NoticeDecision {
	if d == nil {
		return nil
	}
	v := wire.NoticeDecision(*d)
	return &v
}

// NoticeSettings shows the notice procedure's settings, the default
// waiting period filled in.
func NoticeSettings(s store.NoticeSettings) wire.NoticeSettings {
	days := s.WaitBusinessDays
	if days == 0 && s.Wait == 0 {
		days = store.DefaultWaitBusinessDays
	}
	return wire.NoticeSettings{WaitBusinessDays: days, Wait: wire.Duration(s.Wait), PublicForm: s.PublicForm}
}

// Upload is a form's attachment as the store takes it.
func Upload(u wire.Upload) store.Upload { return store.Upload(u) }
