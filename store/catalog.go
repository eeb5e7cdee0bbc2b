package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The community catalog (node/catalog, DESIGN.md there): repositories their
// owners publish under a licence, users' acceptances of licence versions,
// access requests for repositories in approval mode, and lineage: images
// built on a published image inherit its licence notice. The licence gate
// (pullGate) is here, next to the records it reads, so the registry, the
// API and a schedule firing in Apply all decide alike.

// Catalog keys. Variable parts are separated by sep ("\x00").
const (
	pPub      = "cp/" // cp/<repo> -> Publication (no README)
	pReadme   = "cr/" // cr/<repo> -> Readme
	pLicence  = "cl/" // cl/<licence digest> -> LicenceText
	pAccept   = "ca/" // ca/<repo>\x00<user> -> Acceptance (the latest)
	pAccepted = "cu/" // cu/<user>\x00<repo> -> "" (a user's acceptances)
	pAccess   = "cq/" // cq/<repo>\x00<user> -> AccessRequest
	pDerived  = "cd/" // cd/<repo>\x00<base repo> -> Derivation (an inherited notice)
	pLayerIdx = "cf/" // cf/<first layer>\x00<repo>\x00<manifest> -> "" (published images by first layer)
	kTrial    = "m/trial"
	pTrialUse = "tu/" // tu/<user>\x00<day> -> TrialUse
)

func pubKey(repo string) []byte            { return []byte(pPub + repo) }
func readmeKey(repo string) []byte         { return []byte(pReadme + repo) }
func licenceKey(d string) []byte           { return []byte(pLicence + d) }
func acceptKey(repo, user string) []byte   { return []byte(pAccept + repo + sep + user) }
func acceptedKey(user, repo string) []byte { return []byte(pAccepted + user + sep + repo) }
func accessKey(repo, user string) []byte   { return []byte(pAccess + repo + sep + user) }
func derivedKey(repo, base string) []byte  { return []byte(pDerived + repo + sep + base) }
func layerIdxKey(first, repo, manifest string) []byte {
	return []byte(pLayerIdx + first + sep + repo + sep + manifest)
}
func trialUseKey(user, day string) []byte { return []byte(pTrialUse + user + sep + day) }

// Access modes of a published repository.
const (
	AccessOpen     = "open"     // any signed-in user who accepts the licence
	AccessApproval = "approval" // the publisher approves each user (invitation)
)

// Intended uses a publisher declares.
const (
	UseResearch   = "research" // learning and research, the platform's default
	UseCommercial = "commercial"
)

// Access request states.
const (
	AccessPending  = "pending"
	AccessApproved = "approved"
	AccessRejected = "rejected"
	AccessRevoked  = "revoked"
)

// Limits on what a publisher sends.
const (
	MaxDescription  = 1000
	MaxReadme       = 256 << 10
	MaxLicenceText  = 256 << 10
	MaxQuestions    = 10
	MaxQuestionLen  = 500
	MaxAnswerLen    = 2000
	MaxTryCommand   = 64
	MaxAcceptedList = 10000
)

// LicenceRef names a licence version: an SPDX expression, or a custom
// licence (LicenseRef-<name>, with its text); Digest is the version, the
// sha256 of the canonical text (node/catalog), so changing the text makes
// a new version users must accept again.
type LicenceRef struct {
	Expression string `json:"expression"`
	Digest     string `json:"digest"`
	Custom     bool   `json:"custom,omitempty"`
}

// LicenceText is a licence version's text, content-addressed.
type LicenceText struct {
	LicenceRef
	Text  string    `json:"text"`
	First time.Time `json:"first"`
}

// Statement is a text someone agreed to: its language and exact words.
type Statement struct {
	Lang string    `json:"lang"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Publication is a repository in the community catalog.
type Publication struct {
	Repo        string     `json:"repo"`
	Owner       string     `json:"owner"`
	Licence     LicenceRef `json:"licence"`
	Description string     `json:"description,omitempty"`
	Use         string     `json:"use"`
	GenAI       bool       `json:"genai,omitempty"`
	GenAIFiled  bool       `json:"genai_filed,omitempty"`
	Access      string     `json:"access"`
	Questions   []string   `json:"questions,omitempty"`
	// Command is what "Try it" runs (empty: the image's default).
	Command []string `json:"command,omitempty"`
	// Kind is what the repository holds, as its newest artifact said when
	// it was published: KindImage (also when empty), KindDataset or
	// KindModel.
	Kind string `json:"kind,omitempty"`
	// Grant is the publisher's licence to the platform and warranty of
	// rights, as agreed (service terms 2.1.2, 2.1.4.1 (5)).
	Grant     Statement `json:"grant"`
	Published time.Time `json:"published"`
	Updated   time.Time `json:"updated"`
	Pulls     int64     `json:"pulls"`
	// Review is where review stands (governance): only a listed
	// publication is shown to and pullable by others.
	Review Review `json:"review,omitzero"`
	// TakenDown is the image's takedown, filled in by the store's reads
	// (Publication, Publications) from gt/<repo>; never written with it.
	TakenDown *Takedown `json:"-"`
}

// What a published repository holds (Publication.Kind).
const (
	KindImage   = "image"
	KindDataset = "dataset"
	KindModel   = "model"
)

// KindOf is p's kind, KindImage for a publication that names none.
func (p *Publication) KindOf() string {
	if p.Kind == "" {
		return KindImage
	}
	return p.Kind
}

// needsPublishRepo: a dataset's or model's publication carries its kind
// (v4); any other is written as before.
func needsPublishRepo(c *PublishRepo) int {
	if c.Publication.Kind != "" && c.Publication.Kind != KindImage {
		return 4
	}
	return 3
}

// Readme is a publication's README: the Markdown as sent and its HTML,
// rendered and sanitised by the proposer (node/catalog).
type Readme struct {
	Markdown string `json:"markdown"`
	HTML     string `json:"html"`
}

// Acceptance records that a user accepted a licence version of a repository.
type Acceptance struct {
	Repo    string     `json:"repo"`
	User    string     `json:"user"`
	Licence LicenceRef `json:"licence"`
	Answers []string   `json:"answers,omitempty"`
	At      time.Time  `json:"at"`
}

// AccessRequest is a user's request for a repository in approval mode and
// its publisher's decision.
type AccessRequest struct {
	Repo      string    `json:"repo"`
	User      string    `json:"user"`
	Answers   []string  `json:"answers,omitempty"`
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Requested time.Time `json:"requested"`
	Decided   time.Time `json:"decided,omitzero"`
	By        string    `json:"by,omitempty"`
}

// Derivation records that an image of Repo is built on the layers of a
// published image of Base: Repo carries Base's licence notice, removable
// only by Base's owner.
type Derivation struct {
	Repo         string     `json:"repo"`
	Manifest     string     `json:"manifest"`
	Base         string     `json:"base"`
	BaseOwner    string     `json:"base_owner"`
	BaseManifest string     `json:"base_manifest"`
	Licence      LicenceRef `json:"licence"` // the base's licence when the derivation was recorded
	GenAI        bool       `json:"genai,omitempty"`
	Recorded     time.Time  `json:"recorded"`
}

// TrialAllowance is what "Try it" may use (admin-set; zero CPUSeconds: no
// trials).
type TrialAllowance struct {
	CPUSecondsPerDay int64    `json:"cpu_seconds_per_day"`
	MaxRunTime       Duration `json:"max_run_time"`
	CPU              int64    `json:"cpu"`    // millicores per trial task
	Memory           int64    `json:"memory"` // bytes per trial task
}

// TrialUse is what a user's trials used on one UTC day.
type TrialUse struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	Runs       int     `json:"runs"`
}

// Catalog payloads.

// PublishRepo publishes (or updates the publication of) a repository.
type PublishRepo struct {
	Publication Publication `json:"publication"`
	Readme      Readme      `json:"readme"`
	LicenceText string      `json:"licence_text"`
	Actor       string      `json:"actor"`
}

// UnpublishRepo returns a repository to private.
type UnpublishRepo struct {
	Repo  string `json:"repo"`
	Actor string `json:"actor"`
	Admin bool   `json:"admin,omitempty"`
}

// AcceptLicence records a user's acceptance of the licence version they
// were shown (Licence): a licence changed meanwhile is refused.
type AcceptLicence struct {
	Repo    string   `json:"repo"`
	User    string   `json:"user"`
	Licence string   `json:"licence"`
	Answers []string `json:"answers,omitempty"`
}

// RequestAccess asks the publisher of a repository in approval mode.
type RequestAccess struct {
	Repo    string   `json:"repo"`
	User    string   `json:"user"`
	Answers []string `json:"answers,omitempty"`
}

// DecideAccess is the publisher's approve, reject or revoke.
type DecideAccess struct {
	Repo     string `json:"repo"`
	User     string `json:"user"`
	Decision string `json:"decision"` // approved, rejected, revoked
	Reason   string `json:"reason,omitempty"`
	Actor    string `json:"actor"`
	Admin    bool   `json:"admin,omitempty"`
}

// RemoveNotice removes an inherited licence notice from a derived
// repository: only the base's rights holder (or an admin) may.
type RemoveNotice struct {
	Repo  string `json:"repo"`
	Base  string `json:"base"`
	Actor string `json:"actor"`
	Admin bool   `json:"admin,omitempty"`
}

// CountPulls adds pulls of published repositories counted by a node since
// its last report.
type CountPulls struct {
	Counts map[string]int64 `json:"counts"`
}

// SetTrialAllowance replaces the trial allowance (admin).
type SetTrialAllowance struct {
	Allowance TrialAllowance `json:"allowance"`
}

func (a *applier) publishRepo(c *PublishRepo) (*Publication, error) {
	p := c.Publication
	var repo RegRepo
	if err := getJSON(a.txn, regRepoKey(p.Repo), &repo); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "repository %s not found", p.Repo)
		}
		return nil, err
	}
	if repo.Owner != c.Actor {
		return nil, Errorf(EForbidden, "only the owner of %s can publish it", p.Repo)
	}
	if err := validPublication(&p, len(c.Readme.Markdown), len(c.LicenceText)); err != nil {
		return nil, err
	}
	var old Publication
	var prev *Publication
	var oldReadme Readme
	err := getJSON(a.txn, pubKey(p.Repo), &old)
	switch {
	case err == nil:
		p.Published, p.Pulls = old.Published, old.Pulls
		prev = &old
		if err := getJSON(a.txn, readmeKey(p.Repo), &oldReadme); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	case errors.Is(err, ErrNotFound):
		p.Published = a.at
	default:
		return nil, err
	}
	p.Owner, p.Updated = repo.Owner, a.at
	var publisher User
	if err := getJSON(a.txn, userKey(c.Actor), &publisher); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// v2: review (governance).
	if err := a.reviewOnPublish(&p, prev, c.Readme.Markdown, oldReadme.Markdown, publisher.Admin); err != nil {
		return nil, err
	}
	a.auditDetail = strings.TrimSpace("review: " + p.Review.State + " " + p.Review.Reason)
	p.Grant.At = a.at
	ok, err := exists(a.txn, licenceKey(p.Licence.Digest))
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := putJSON(a.txn, licenceKey(p.Licence.Digest), LicenceText{LicenceRef: p.Licence, Text: c.LicenceText, First: a.at}); err != nil {
			return nil, err
		}
	}
	a.pubs = true
	if err := putJSON(a.txn, pubKey(p.Repo), p); err != nil {
		return nil, err
	}
	if err := putJSON(a.txn, readmeKey(p.Repo), c.Readme); err != nil {
		return nil, err
	}
	// Index the repository's images, so images built on them are found.
	if err := regScanManifests(a.txn, p.Repo, func(m *RegManifest) error { return a.indexLayers(m) }); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: p.Owner, Name: p.Repo})
	return &p, nil
}

// validPublication checks a publication's fields (the proposer validated
// the licence expression and rendered the README; Apply re-checks what it
// can without them).
func validPublication(p *Publication, readme, licence int) error {
	bad := func(format string, args ...any) error { return Errorf(EInvalid, format, args...) }
	switch {
	case p.Licence.Expression == "" || p.Licence.Digest == "":
		return bad("license: give an SPDX expression or a custom licence")
	case len(p.Description) > MaxDescription:
		return bad("description: at most %d characters", MaxDescription)
	case readme > MaxReadme:
		return bad("readme: at most %d KiB", MaxReadme>>10)
	case licence > MaxLicenceText:
		return bad("license_text: at most %d KiB", MaxLicenceText>>10)
	case p.Use != UseResearch && p.Use != UseCommercial:
		return bad("use: research or commercial")
	case p.Access != AccessOpen && p.Access != AccessApproval:
		return bad("access: open or approval")
	case p.GenAI && !p.GenAIFiled && p.Access != AccessApproval:
		return bad("access: a generative-AI image whose safety assessment and filing are not declared complete can only be published in approval (invitation) mode (service terms 2.2.2.1 (2))")
	case len(p.Questions) > MaxQuestions:
		return bad("questions: at most %d", MaxQuestions)
	case len(p.Command) > MaxTryCommand:
		return bad("command: at most %d arguments", MaxTryCommand)
	case p.Access == AccessOpen && len(p.Questions) > 0:
		return bad("questions: only for approval mode (the publisher reads the answers)")
	case p.Kind != "" && p.Kind != KindImage && p.Kind != KindDataset && p.Kind != KindModel:
		return bad("kind: image, dataset or model")
	}
	for _, q := range p.Questions {
		if strings.TrimSpace(q) == "" || len(q) > MaxQuestionLen {
			return bad("questions: each 1 to %d characters", MaxQuestionLen)
		}
	}
	return nil
}

// indexLayers records a published repository's image by its first layer.
func (a *applier) indexLayers(m *RegManifest) error {
	if len(m.Layers) == 0 || m.Subject != "" {
		return nil
	}
	return a.txn.Set(layerIdxKey(m.Layers[0], m.Repo, m.Digest), nil)
}

func (a *applier) unpublishRepo(c *UnpublishRepo) (None, error) {
	var p Publication
	if err := getJSON(a.txn, pubKey(c.Repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return None{}, Errorf(ENotFound, "%s is not published", c.Repo)
		}
		return None{}, err
	}
	if p.Owner != c.Actor && !c.Admin {
		return None{}, Errorf(EForbidden, "only the owner of %s can unpublish it", c.Repo)
	}
	a.pubs = true
	if err := a.txn.Delete(pubKey(c.Repo)); err != nil {
		return None{}, err
	}
	if err := a.txn.Delete(readmeKey(c.Repo)); err != nil {
		return None{}, err
	}
	// Its images no longer pass their notice to new images built on them;
	// notices already inherited stay (only the rights holder removes them).
	if err := regScanManifests(a.txn, c.Repo, func(m *RegManifest) error {
		if len(m.Layers) == 0 {
			return nil
		}
		return a.txn.Delete(layerIdxKey(m.Layers[0], m.Repo, m.Digest))
	}); err != nil {
		return None{}, err
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: p.Owner, Name: c.Repo})
	return None{}, nil
}

func (a *applier) acceptLicence(c *AcceptLicence) (*Acceptance, error) {
	var p Publication
	if err := getJSON(a.txn, pubKey(c.Repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "%s is not in the catalog", c.Repo)
		}
		return nil, err
	}
	if c.Licence != p.Licence.Digest {
		return nil, Errorf(EConflict, "the licence of %s changed (now %s, version %s): read it again before you accept it", c.Repo, p.Licence.Expression, shortDigest(p.Licence.Digest))
	}
	if err := validAnswers(c.Answers, p.Questions); err != nil {
		return nil, err
	}
	ac := Acceptance{Repo: c.Repo, User: c.User, Licence: p.Licence, Answers: c.Answers, At: a.at}
	if err := putJSON(a.txn, acceptKey(c.Repo, c.User), ac); err != nil {
		return nil, err
	}
	if err := a.txn.Set(acceptedKey(c.User, c.Repo), nil); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: c.User, Name: c.Repo})
	return &ac, nil
}

func validAnswers(answers, questions []string) error {
	if len(answers) > MaxQuestions {
		return Errorf(EInvalid, "answers: at most %d", MaxQuestions)
	}
	for _, s := range answers {
		if len(s) > MaxAnswerLen {
			return Errorf(EInvalid, "answers: each at most %d characters", MaxAnswerLen)
		}
	}
	return nil
}

func (a *applier) requestAccess(c *RequestAccess) (*AccessRequest, error) {
	var p Publication
	if err := getJSON(a.txn, pubKey(c.Repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "%s is not in the catalog", c.Repo)
		}
		return nil, err
	}
	if p.Access != AccessApproval {
		return nil, Errorf(EConflict, "%s is open to everyone who accepts its licence: gantry image accept %s", c.Repo, c.Repo)
	}
	if p.Owner == c.User {
		return nil, Errorf(EConflict, "you publish %s", c.Repo)
	}
	if err := validAnswers(c.Answers, p.Questions); err != nil {
		return nil, err
	}
	if len(p.Questions) > 0 && len(c.Answers) < len(p.Questions) {
		return nil, Errorf(EInvalid, "answers: the publisher asks %d question(s); answer each", len(p.Questions))
	}
	var r AccessRequest
	err := getJSON(a.txn, accessKey(c.Repo, c.User), &r)
	if err == nil && r.State == AccessApproved {
		return &r, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	r = AccessRequest{Repo: c.Repo, User: c.User, Answers: c.Answers, State: AccessPending, Requested: a.at}
	if err := putJSON(a.txn, accessKey(c.Repo, c.User), r); err != nil {
		return nil, err
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: p.Owner, Name: c.Repo})
	return &r, nil
}

func (a *applier) decideAccess(c *DecideAccess) (*AccessRequest, error) {
	var p Publication
	if err := getJSON(a.txn, pubKey(c.Repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "%s is not in the catalog", c.Repo)
		}
		return nil, err
	}
	if p.Owner != c.Actor && !c.Admin {
		return nil, Errorf(EForbidden, "only the publisher of %s decides who may use it", c.Repo)
	}
	switch c.Decision {
	case AccessApproved, AccessRejected, AccessRevoked:
	default:
		return nil, Errorf(EInvalid, "decision: approved, rejected or revoked")
	}
	if (c.Decision == AccessRejected || c.Decision == AccessRevoked) && strings.TrimSpace(c.Reason) == "" {
		return nil, Errorf(EInvalid, "reason: say why (the user is shown it)")
	}
	if len(c.Reason) > MaxAnswerLen {
		return nil, Errorf(EInvalid, "reason: at most %d characters", MaxAnswerLen)
	}
	var r AccessRequest
	err := getJSON(a.txn, accessKey(c.Repo, c.User), &r)
	switch {
	case errors.Is(err, ErrNotFound) && c.Decision == AccessRevoked:
		// Revoking an open repository's user: their acceptance goes.
		ok, err := exists(a.txn, acceptKey(c.Repo, c.User))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, Errorf(ENotFound, "%s has neither accepted the licence of %s nor asked for access", c.User, c.Repo)
		}
		r = AccessRequest{Repo: c.Repo, User: c.User, Requested: a.at}
	case errors.Is(err, ErrNotFound):
		return nil, Errorf(ENotFound, "%s has not asked for access to %s", c.User, c.Repo)
	case err != nil:
		return nil, err
	}
	r.State, r.Reason, r.Decided, r.By = c.Decision, c.Reason, a.at, c.Actor
	if err := putJSON(a.txn, accessKey(c.Repo, c.User), r); err != nil {
		return nil, err
	}
	if c.Decision == AccessRevoked {
		if err := a.txn.Delete(acceptKey(c.Repo, c.User)); err != nil {
			return nil, err
		}
		if err := a.txn.Delete(acceptedKey(c.User, c.Repo)); err != nil {
			return nil, err
		}
	}
	a.events = append(a.events, Event{Type: "catalog", Owner: c.User, Name: c.Repo})
	return &r, nil
}

func (a *applier) removeNotice(c *RemoveNotice) (None, error) {
	var d Derivation
	if err := getJSON(a.txn, derivedKey(c.Repo, c.Base), &d); err != nil {
		if errors.Is(err, ErrNotFound) {
			return None{}, Errorf(ENotFound, "%s carries no notice of %s", c.Repo, c.Base)
		}
		return None{}, err
	}
	if d.BaseOwner != c.Actor && !c.Admin {
		return None{}, Errorf(EForbidden, "only the rights holder of %s (%s) can remove its licence notice from %s (service terms 2.3.1.3)", c.Base, d.BaseOwner, c.Repo)
	}
	if err := a.txn.Delete(derivedKey(c.Repo, c.Base)); err != nil {
		return None{}, err
	}
	a.events = append(a.events, Event{Type: "catalog", Name: c.Repo})
	return None{}, nil
}

func (a *applier) countPulls(c *CountPulls) (None, error) {
	repos := make([]string, 0, len(c.Counts))
	for r := range c.Counts {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, r := range repos {
		var p Publication
		err := getJSON(a.txn, pubKey(r), &p)
		if errors.Is(err, ErrNotFound) {
			continue // unpublished meanwhile
		}
		if err != nil {
			return None{}, err
		}
		if n := c.Counts[r]; n > 0 {
			p.Pulls += n
			a.pulls = true
			if err := putJSON(a.txn, pubKey(r), p); err != nil {
				return None{}, err
			}
		}
	}
	return None{}, nil
}

func (a *applier) setTrialAllowance(c *SetTrialAllowance) (*TrialAllowance, error) {
	t := c.Allowance
	if t.CPUSecondsPerDay < 0 || t.MaxRunTime < 0 || t.CPU < 0 || t.Memory < 0 {
		return nil, Errorf(EInvalid, "trial allowance: must not be negative")
	}
	if t.CPU > 0 && t.CPU < 10 {
		return nil, Errorf(EInvalid, "cpu: at least 10 millicores")
	}
	if t.Memory > 0 && t.Memory < 6<<20 {
		return nil, Errorf(EInvalid, "memory: at least 6 MiB")
	}
	if err := putJSON(a.txn, []byte(kTrial), t); err != nil {
		return nil, err
	}
	return &t, nil
}

// recordLineage records, for a manifest just stored, every published image
// whose layers its own begin with (a FROM of it): the repository inherits
// their licence notices. Images of the same owner do not count: the
// rights holder is the same, and the licence of the new image is theirs to
// choose (a publisher's many images on one base would otherwise inherit
// each other's notices).
func (a *applier) recordLineage(m *RegManifest) error {
	if len(m.Layers) == 0 || m.Subject != "" {
		return nil
	}
	var pub Publication
	err := getJSON(a.txn, pubKey(m.Repo), &pub)
	switch {
	case err == nil:
		if err := a.indexLayers(m); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	prefix := []byte(pLayerIdx + m.Layers[0] + sep)
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	type cand struct{ repo, manifest string }
	var cands []cand
	for it.Rewind(); it.Valid(); it.Next() {
		rest := string(it.Item().Key()[len(prefix):])
		repo, manifest, ok := strings.Cut(rest, sep)
		if ok && registryOwner(repo) != registryOwner(m.Repo) {
			cands = append(cands, cand{repo, manifest})
		}
	}
	it.Close()
	for _, c := range cands {
		var base RegManifest
		if err := getJSON(a.txn, regManifestKey(c.repo, c.manifest), &base); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return err
		}
		if len(base.Layers) > len(m.Layers) || !slices.Equal(base.Layers, m.Layers[:len(base.Layers)]) {
			continue
		}
		ok, err := exists(a.txn, derivedKey(m.Repo, c.repo))
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		var bp Publication
		if err := getJSON(a.txn, pubKey(c.repo), &bp); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return err
		}
		d := Derivation{Repo: m.Repo, Manifest: m.Digest, Base: c.repo, BaseOwner: bp.Owner, BaseManifest: c.manifest,
			Licence: bp.Licence, GenAI: bp.GenAI, Recorded: a.at}
		if err := putJSON(a.txn, derivedKey(m.Repo, c.repo), d); err != nil {
			return err
		}
		a.events = append(a.events, Event{Type: "catalog", Name: m.Repo})
	}
	return nil
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// pullGate decides whether user, who neither owns repo nor is an admin, may
// pull it (or run it, or mount its blobs): shared is false when the
// repository is not published (private: the caller is told nothing more);
// err says what the user must do first: accept the licence (a new version
// too), ask for or wait for access, or accept the licence of an image it
// is built on. The registry and the API turn the error into their answers.
func pullGate(txn *badger.Txn, user, repo string) (shared bool, err error) {
	// A takedown comes first, published or not (unpublishing does not
	// lift it); the owner is still served.
	if t, err := takedownOf(txn, repo); err != nil {
		return false, err
	} else if t != nil && t.Owner != user {
		return true, t.Refusal()
	}
	var p Publication
	if err := getJSON(txn, pubKey(repo), &p); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if !p.Listed() && p.Owner != user {
		return false, nil // not approved by review: private to others still
	}
	if p.Owner != user { // the owner is not asked (the registry does not ask for them)
		// In approval mode the publisher's decision comes first: a user
		// refused or revoked is told why, not to accept the licence.
		if p.Access == AccessApproval {
			var r AccessRequest
			err := getJSON(txn, accessKey(repo, user), &r)
			switch {
			case errors.Is(err, ErrNotFound):
				return true, Errorf(EAccessPending, "%s is shared by invitation: ask for access first: gantry image request %s", repo, repo)
			case err != nil:
				return true, err
			case r.State == AccessPending:
				return true, Errorf(EAccessPending, "your request for access to %s waits for its publisher (%s) to decide", repo, p.Owner)
			case r.State == AccessRejected:
				return true, Errorf(EAccessRejected, "the publisher of %s refused your request: %s", repo, r.Reason)
			case r.State == AccessRevoked:
				return true, Errorf(EAccessRejected, "the publisher of %s revoked your access: %s", repo, r.Reason)
			}
		}
		if err := accepted(txn, user, repo, p.Licence); err != nil {
			return true, err
		}
	}
	if err := inheritedAccepted(txn, user, repo); err != nil {
		return true, err
	}
	return true, nil
}

// inheritedAccepted checks the licences repo's images inherit (lineage):
// whoever pulls or runs them needs each base's licence accepted, the
// derived image's owner too; the base's own owner does not.
func inheritedAccepted(txn *badger.Txn, user, repo string) error {
	return scanJSON(txn, []byte(pDerived+repo+sep), func(d *Derivation) error {
		if d.BaseOwner == user {
			return nil
		}
		want := d.Licence
		var bp Publication
		if err := getJSON(txn, pubKey(d.Base), &bp); err == nil {
			want = bp.Licence // the base's licence now
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := accepted(txn, user, d.Base, want); err != nil {
			var se *Error
			if errors.As(err, &se) {
				return Errorf(se.Code, "%s is built on %s: %s", repo, d.Base, se.Message)
			}
			return err
		}
		return nil
	})
}

// accepted checks that user accepted licence version want of repo.
func accepted(txn *badger.Txn, user, repo string, want LicenceRef) error {
	var ac Acceptance
	err := getJSON(txn, acceptKey(repo, user), &ac)
	switch {
	case errors.Is(err, ErrNotFound):
		return Errorf(ELicenceNotAccepted, "accept the licence of %s (%s) first: gantry image accept %s", repo, want.Expression, repo)
	case err != nil:
		return err
	case ac.Licence.Digest != want.Digest:
		return Errorf(ELicenceNotAccepted, "the licence of %s changed (now %s, version %s; you accepted %s): accept it again: gantry image accept %s",
			repo, want.Expression, shortDigest(want.Digest), shortDigest(ac.Licence.Digest), repo)
	}
	return nil
}

// scanJSON decodes every value under prefix into a T and calls fn.
func scanJSON[T any](txn *badger.Txn, prefix []byte, fn func(*T) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var v T
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &v) }); err != nil {
			return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
		}
		if err := fn(&v); err != nil {
			return err
		}
	}
	return nil
}

// Catalog queries.

// PublicationsGeneration changes whenever a publication is written or
// removed (publish, unpublish, a snapshot restored), PullsGeneration when
// only pull counts were added. Each moves after the change is committed, so
// a cache built from Publications read after loading generation g is
// current while the generation is still g.
func (s *Store) PublicationsGeneration() uint64 { return s.pubGen.Load() }

// PullsGeneration: see PublicationsGeneration.
func (s *Store) PullsGeneration() uint64 { return s.pullsGen.Load() }

// PullGate is pullGate in a read of the current state.
func (s *Store) PullGate(user, repo string) (shared bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		var e error
		shared, e = pullGate(txn, user, repo)
		return e
	})
	return shared, err
}

// Publication returns a repository's publication, or ErrNotFound.
func (s *Store) Publication(repo string) (*Publication, error) {
	var p Publication
	err := s.view(func(txn *badger.Txn) error {
		if err := getJSON(txn, pubKey(repo), &p); err != nil {
			return err
		}
		var err error
		p.TakenDown, err = takedownOf(txn, repo)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// PublicationReadme returns a publication's README.
func (s *Store) PublicationReadme(repo string) (*Readme, error) {
	var r Readme
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, readmeKey(repo), &r) }); err != nil {
		return nil, err
	}
	return &r, nil
}

// Licence returns a licence version's text.
func (s *Store) Licence(digest string) (*LicenceText, error) {
	var l LicenceText
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, licenceKey(digest), &l) }); err != nil {
		return nil, err
	}
	return &l, nil
}

// Publications calls fn for every publication, in repository order, until
// fn returns false.
//
// Read PublicationsGeneration before calling it to cache what it returns.
func (s *Store) Publications(fn func(*Publication) bool) error {
	return s.view(func(txn *badger.Txn) error {
		errStop := errors.New("stop")
		err := scanJSON(txn, []byte(pPub), func(p *Publication) error {
			var err error
			if p.TakenDown, err = takedownOf(txn, p.Repo); err != nil {
				return err
			}
			if !fn(p) {
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return nil
		}
		return err
	})
}

// Acceptance returns user's acceptance of repo's licence, or ErrNotFound.
func (s *Store) Acceptance(repo, user string) (*Acceptance, error) {
	var ac Acceptance
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, acceptKey(repo, user), &ac) }); err != nil {
		return nil, err
	}
	return &ac, nil
}

// AccessRequest returns user's access request for repo, or ErrNotFound.
func (s *Store) AccessRequest(repo, user string) (*AccessRequest, error) {
	var r AccessRequest
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, accessKey(repo, user), &r) }); err != nil {
		return nil, err
	}
	return &r, nil
}

// RepoAccess lists repo's acceptances and access requests, by user.
func (s *Store) RepoAccess(repo string) ([]Acceptance, []AccessRequest, error) {
	var acs []Acceptance
	var reqs []AccessRequest
	err := s.view(func(txn *badger.Txn) error {
		if err := scanJSON(txn, []byte(pAccept+repo+sep), func(a *Acceptance) error { acs = append(acs, *a); return nil }); err != nil {
			return err
		}
		return scanJSON(txn, []byte(pAccess+repo+sep), func(r *AccessRequest) error { reqs = append(reqs, *r); return nil })
	})
	return acs, reqs, err
}

// UserAcceptances lists what user accepted, by repository.
func (s *Store) UserAcceptances(user string) ([]Acceptance, error) {
	var out []Acceptance
	err := s.view(func(txn *badger.Txn) error {
		prefix := []byte(pAccepted + user + sep)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		var repos []string
		for it.Rewind(); it.Valid() && len(repos) < MaxAcceptedList; it.Next() {
			repos = append(repos, string(bytes.TrimPrefix(it.Item().Key(), prefix)))
		}
		it.Close()
		for _, r := range repos {
			var ac Acceptance
			if err := getJSON(txn, acceptKey(r, user), &ac); err == nil {
				out = append(out, ac)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Derivations lists the licence notices repo inherits.
func (s *Store) Derivations(repo string) ([]Derivation, error) {
	var out []Derivation
	err := s.view(func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(pDerived+repo+sep), func(d *Derivation) error { out = append(out, *d); return nil })
	})
	return out, err
}

// TrialAllowance returns the trial allowance (zero: no trials).
func (s *Store) TrialAllowance() (TrialAllowance, error) {
	var t TrialAllowance
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, []byte(kTrial), &t) })
	if errors.Is(err, ErrNotFound) {
		return TrialAllowance{}, nil
	}
	return t, err
}

// TrialUse returns what user's trials used on day (YYYY-MM-DD, UTC).
func (s *Store) TrialUse(user, day string) (TrialUse, error) {
	var u TrialUse
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, trialUseKey(user, day), &u) })
	if errors.Is(err, ErrNotFound) {
		return TrialUse{}, nil
	}
	return u, err
}

// TrialDay is the UTC day a trial's use counts toward.
func TrialDay(t time.Time) string { return t.UTC().Format("2006-01-02") }

// addTrialUse charges an ended trial attempt's CPU time (its CPU share
// times how long it ran) to its owner's trial use of the day it ended.
func (a *applier) addTrialUse(owner string, at *Attempt) error {
	key := trialUseKey(owner, TrialDay(at.Ended))
	var u TrialUse
	if err := getJSON(a.txn, key, &u); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if !at.Started.IsZero() && at.Ended.After(at.Started) {
		u.CPUSeconds += float64(at.CPU) / 1000 * at.Ended.Sub(at.Started).Seconds()
	}
	u.Runs++
	return putJSON(a.txn, key, u)
}

// registryOwner is the namespace of a repository: its owner.
func registryOwner(repo string) string {
	owner, _, _ := strings.Cut(repo, "/")
	return owner
}
