package view

import (
	"slices"

	"gantry/store"
	"gantry/wire"
)

// Licence is what the API shows of a licence version.
func Licence(l store.LicenceRef) wire.Licence {
	return wire.Licence{Expression: l.Expression, Version: l.Digest, Custom: l.Custom}
}

// Notice is what the API shows of an inherited licence notice.
func Notice(d *store.Derivation) wire.Notice {
	return wire.Notice{Base: d.Base, BaseOwner: d.BaseOwner, BaseManifest: d.BaseManifest, Licence: Licence(d.Licence), GenAI: d.GenAI, Recorded: d.Recorded}
}

// CatalogEntry is what the catalog shows of a publication and the notices
// its images inherit.
func CatalogEntry(p *store.Publication, notices []store.Derivation) wire.CatalogEntry {
	e := wire.CatalogEntry{Repo: p.Repo, Owner: p.Owner, Kind: p.KindOf(), Licence: Licence(p.Licence), Description: p.Description, Use: p.Use,
		GenAI: p.GenAI, GenAIFiled: p.GenAIFiled, Access: p.Access, Questions: slices.Clone(p.Questions), Command: slices.Clone(p.Command),
		Published: p.Published, Updated: p.Updated, Pulls: p.Pulls, Review: p.Review.State, ReviewReason: p.Review.Reason}
	if e.Review == "" {
		e.Review = store.ReviewApproved // published before review existed
	}
	for i := range notices {
		e.Notices = append(e.Notices, Notice(&notices[i]))
	}
	return e
}

// Acceptance is what the API shows of an acceptance.
func Acceptance(a *store.Acceptance) wire.Acceptance {
	return wire.Acceptance{Repo: a.Repo, User: a.User, Licence: Licence(a.Licence), Answers: slices.Clone(a.Answers), At: a.At}
}

// Acceptances is Acceptance for each of as.
func Acceptances(as []store.Acceptance) []wire.Acceptance {
	out := make([]wire.Acceptance, len(as))
	for i := range as {
		out[i] = Acceptance(&as[i])
	}
	return out
}

// AccessRequest is what the API shows of an access request.
func AccessRequest(r *store.AccessRequest) wire.AccessRequest {
	return wire.AccessRequest{Repo: r.Repo, User: r.User, Answers: slices.Clone(r.Answers), State: r.State, Reason: r.Reason,
		Requested: r.Requested, Decided: r.Decided, By: r.By}
}

// AccessRequests is AccessRequest for each of rs.
func AccessRequests(rs []store.AccessRequest) []wire.AccessRequest {
	out := make([]wire.AccessRequest, len(rs))
	for i := range rs {
		out[i] = AccessRequest(&rs[i])
	}
	return out
}
