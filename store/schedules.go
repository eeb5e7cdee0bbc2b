package store

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/robfig/cron/v3"
)

// Schedule submits a job from its spec at the times its cron expression
// names (in UTC). By default a run is skipped while the job of the previous
// run has not ended.
type Schedule struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`
	Name         string    `json:"name,omitempty"`
	Cron         string    `json:"cron"`
	Spec         JobSpec   `json:"spec"`
	AllowOverlap bool      `json:"allow_overlap,omitempty"`
	Paused       bool      `json:"paused,omitempty"`
	Created      time.Time `json:"created"`
	// NextRun is when the leader submits the next job (zero while paused).
	NextRun time.Time `json:"next_run,omitzero"`
	LastRun time.Time `json:"last_run,omitzero"`
	LastJob string    `json:"last_job,omitempty"`
	Runs    int       `json:"runs"`
	// Skipped counts runs not submitted because the previous job was still
	// going (AllowOverlap unset), or the image could not be used.
	Skipped int `json:"skipped,omitempty"`
	// SkipReason says why the last run was skipped ("" after a run).
	SkipReason string `json:"skip_reason,omitempty"`
	// ImageRepo is the repository of this registry the spec's image is in
	// ("" for another registry), checked at every run against the
	// licence gate; GenAI marks its jobs as generative AI.
	ImageRepo string `json:"image_repo,omitempty"`
	GenAI     bool   `json:"genai,omitempty"`
}

// CreateSchedule adds a schedule (the API validated the spec).
type CreateSchedule struct {
	Schedule Schedule `json:"schedule"`
}

// UpdateSchedule pauses or resumes a schedule. Actor must own it unless
// Admin.
type UpdateSchedule struct {
	ID     string `json:"id"`
	Paused bool   `json:"paused"`
	Actor  string `json:"actor"`
	Admin  bool   `json:"admin"`
}

// DeleteSchedule removes a schedule (jobs it submitted stay).
type DeleteSchedule struct {
	ID    string `json:"id"`
	Actor string `json:"actor"`
	Admin bool   `json:"admin"`
}

// FireSchedule is the leader's "run due now": Due must equal the
// schedule's NextRun, so a repeated or stale fire does nothing. JobID is the
// id of the job it submits.
type FireSchedule struct {
	ID    string    `json:"id"`
	Due   time.Time `json:"due"`
	JobID string    `json:"job_id"`
	// ResolveInputs (v2): the job reads what each input's tag names at
	// this run, not what it named when the schedule was made; an input
	// whose tag is gone, or that the owner may no longer read, skips the
	// run. Without it (v1, a cluster with older members) the inputs stay
	// as pinned at creation.
	ResolveInputs bool `json:"resolve_inputs,omitempty"`
}

func needsFireSchedule(c *FireSchedule) int {
	if c.ResolveInputs {
		return 2
	}
	return 1
}

// ResolvesInputs reports whether a fire of s re-resolves input tags: it
// has inputs of the registry named by tag.
func (s *Schedule) ResolvesInputs() bool {
	for _, in := range s.Spec.Inputs {
		if in.Job == "" && !strings.Contains(in.Ref, "@") {
			return true
		}
	}
	return false
}

// inputTag is the tag an input's reference names ("latest" when none).
func inputTag(ref string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return "latest"
}

// FireResult says what a fire did.
type FireResult struct {
	Job     *Job `json:"job,omitempty"`
	Skipped bool `json:"skipped,omitempty"`
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron checks a cron expression: five fields (minute hour day-of-month
// month day-of-week) or a descriptor (@hourly, @daily, @every 10m), in UTC.
func ParseCron(expr string) (cron.Schedule, error) {
	if strings.Contains(expr, "TZ=") {
		return nil, Errorf(EInvalid, "cron: time zones are not supported; schedules run in UTC")
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, Errorf(EInvalid, "cron: %q: %v (want 5 fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @every 10m)", expr, err)
	}
	if d, ok := strings.CutPrefix(expr, "@every "); ok {
		if every, err := time.ParseDuration(strings.TrimSpace(d)); err == nil && every < time.Second {
			return nil, Errorf(EInvalid, "cron: @every needs at least 1s")
		}
	}
	return s, nil
}

// nextRun is the first run strictly after t, in UTC.
func nextRun(expr string, t time.Time) (time.Time, error) {
	s, err := ParseCron(expr)
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(t.UTC()), nil
}

func (a *applier) createSchedule(c *CreateSchedule) (*Schedule, error) {
	s := c.Schedule
	if ok, err := exists(a.txn, scheduleKey(s.ID)); err != nil || ok {
		if ok {
			return nil, Errorf(EConflict, "schedule %s already exists", s.ID)
		}
		return nil, err
	}
	next, err := nextRun(s.Cron, a.at)
	if err != nil {
		return nil, err
	}
	s.Created, s.NextRun, s.Runs, s.Skipped, s.LastJob, s.LastRun = a.at, next, 0, 0, "", time.Time{}
	if s.Paused {
		s.NextRun = time.Time{}
	}
	return &s, a.putSchedule(&s)
}

// ownSchedule loads a schedule the actor may change; others' schedules are
// not found (their existence is not revealed).
func (a *applier) ownSchedule(id, actor string, admin bool) (*Schedule, error) {
	var s Schedule
	if err := getJSON(a.txn, scheduleKey(id), &s); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(ENotFound, "schedule %s not found", id)
		}
		return nil, err
	}
	if s.Owner != actor && !admin {
		return nil, Errorf(ENotFound, "schedule %s not found", id)
	}
	return &s, nil
}

func (a *applier) updateSchedule(c *UpdateSchedule) (*Schedule, error) {
	s, err := a.ownSchedule(c.ID, c.Actor, c.Admin)
	if err != nil {
		return nil, err
	}
	if s.Paused == c.Paused {
		return s, nil
	}
	s.Paused = c.Paused
	s.NextRun = time.Time{}
	if !s.Paused {
		if s.NextRun, err = nextRun(s.Cron, a.at); err != nil {
			return nil, err
		}
	}
	return s, a.putSchedule(s)
}

func (a *applier) deleteSchedule(c *DeleteSchedule) (None, error) {
	s, err := a.ownSchedule(c.ID, c.Actor, c.Admin)
	if err != nil {
		return None{}, err
	}
	if err := a.txn.Delete(scheduleKey(s.ID)); err != nil {
		return None{}, err
	}
	if err := a.txn.Delete(scheduleOwnerKey(s.Owner, s.ID)); err != nil {
		return None{}, err
	}
	a.events = append(a.events, Event{Type: "schedule", Owner: s.Owner, Name: s.ID})
	return None{}, nil
}

func (a *applier) fireSchedule(c *FireSchedule) (*FireResult, error) {
	var s Schedule
	if err := getJSON(a.txn, scheduleKey(c.ID), &s); err != nil {
		if errors.Is(err, ErrNotFound) {
			return &FireResult{}, nil // deleted meanwhile
		}
		return nil, err
	}
	if s.Paused || s.NextRun.IsZero() || !s.NextRun.Equal(c.Due) {
		return &FireResult{}, nil // paused, or this run was already handled
	}
	res := &FireResult{}
	running := false
	if s.LastJob != "" && !s.AllowOverlap {
		if j, err := a.job(s.LastJob); err == nil {
			running = !Terminal(j.State)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	// The owner's right to the image, now: a lapsed acceptance (a new
	// licence version, revoked access) or an image no longer shared skips
	// the run and says why.
	gateReason := ""
	var owner User
	err := getJSON(a.txn, userKey(s.Owner), &owner)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if owner.Suspension != nil && !running {
		gateReason = owner.Suspension.Refusal(s.Owner).Message
	}
	if s.ImageRepo != "" && !running && gateReason == "" {
		if gateReason, err = a.scheduleReadGate(s.Owner, s.ImageRepo, "the image's repository "); err != nil {
			return nil, err
		}
	}
	inputs := s.Spec.Inputs
	if c.ResolveInputs && !running && gateReason == "" {
		if inputs, gateReason, err = a.resolveScheduleInputs(&s); err != nil {
			return nil, err
		}
	}
	switch {
	case running:
		s.Skipped++
		s.SkipReason = "the previous run's job " + s.LastJob + " had not ended"
		res.Skipped = true
	case gateReason != "":
		s.Skipped++
		s.SkipReason = gateReason
		res.Skipped = true
	default:
		spec := s.Spec
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		} else {
			spec.Labels = maps.Clone(spec.Labels)
		}
		spec.Labels[ScheduleLabel] = s.ID
		spec.Inputs = inputs
		out, err := a.submitJob(&SubmitJob{ID: c.JobID, Owner: s.Owner, Spec: spec, GenAI: s.GenAI})
		if err != nil {
			// A spec that cannot be submitted any more (an `after` job
			// gone, say) must not stop the schedule: count it as skipped.
			var e *Error
			if !errors.As(err, &e) {
				return nil, err
			}
			s.Skipped++
			s.SkipReason = e.Message
			res.Skipped = true
		} else {
			res.Job = out
			s.LastJob, s.Runs, s.SkipReason = out.ID, s.Runs+1, ""
		}
	}
	s.LastRun = c.Due
	// Runs missed while there was no leader are not made up: the next run
	// is the first after now.
	next, err := nextRun(s.Cron, maxTime(c.Due, a.at))
	if err != nil {
		return nil, err
	}
	s.NextRun = next
	return res, a.putSchedule(&s)
}

// scheduleReadGate says why the owner of a schedule may not read repo
// now ("" when they may): it is gone, taken down, its licence not (or no
// longer) accepted, or no longer shared with them.
func (a *applier) scheduleReadGate(owner, repo, what string) (string, error) {
	var r RegRepo
	err := getJSON(a.txn, regRepoKey(repo), &r)
	switch {
	case errors.Is(err, ErrNotFound):
		return what + repo + " no longer exists", nil
	case err != nil:
		return "", err
	case r.Owner == owner || r.Owner == "gantry":
		return "", nil
	}
	shared, gerr := pullGate(a.txn, owner, repo)
	var ge *Error
	switch {
	case gerr != nil && !errors.As(gerr, &ge):
		return "", gerr
	case gerr != nil:
		return ge.Message, nil
	case !shared:
		return repo + " is no longer shared with you", nil
	}
	return "", nil
}

// resolveScheduleInputs pins a run's inputs named by tag to what the tag
// names now, each checked as the image is; reason says why the run is
// skipped instead.
func (a *applier) resolveScheduleInputs(s *Schedule) (inputs []Input, reason string, err error) {
	inputs = slices.Clone(s.Spec.Inputs)
	for i := range inputs {
		in := &inputs[i]
		if in.Job != "" || strings.Contains(in.Ref, "@") {
			continue // another job's outputs, or pinned by digest
		}
		if reason, err := a.scheduleReadGate(s.Owner, in.Repo, "input "+in.Ref+": its repository "); err != nil || reason != "" {
			return nil, reason, err
		}
		var t RegTag
		switch err := getJSON(a.txn, regTagKey(in.Repo, inputTag(in.Ref)), &t); {
		case errors.Is(err, ErrNotFound):
			return nil, "input " + in.Ref + " no longer exists", nil
		case err != nil:
			return nil, "", err
		}
		in.Digest = t.Digest
	}
	return inputs, "", nil
}

// ScheduleLabel is the job label naming the schedule that submitted it.
const ScheduleLabel = "gantry.schedule"

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (a *applier) putSchedule(s *Schedule) error {
	if err := putJSON(a.txn, scheduleKey(s.ID), s); err != nil {
		return err
	}
	if err := a.txn.Set(scheduleOwnerKey(s.Owner, s.ID), nil); err != nil {
		return err
	}
	sc := *s
	a.events = append(a.events, Event{Type: "schedule", Owner: s.Owner, Name: s.ID, Schedule: &sc})
	return nil
}

// Schedule returns one schedule.
func (s *Store) Schedule(id string) (*Schedule, error) {
	var sc Schedule
	if err := s.view(func(txn *badger.Txn) error { return getJSON(txn, scheduleKey(id), &sc) }); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Schedules lists the schedules of owner (every schedule when owner is
// empty), oldest first.
func (s *Store) Schedules(owner string) ([]Schedule, error) {
	var out []Schedule
	if owner == "" {
		err := s.scan(pSchedule, func(_, v []byte) (bool, error) {
			var sc Schedule
			if err := json.Unmarshal(v, &sc); err != nil {
				return false, err
			}
			out = append(out, sc)
			return true, nil
		})
		return out, err
	}
	var ids []string
	err := s.scan(pScheduleOwner+owner+"/", func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[len(pScheduleOwner)+len(owner)+1:]))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		sc, err := s.Schedule(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *sc)
	}
	return out, nil
}

// DueSchedules returns the schedules whose next run is at or before now.
func (s *Store) DueSchedules(now time.Time) ([]Schedule, error) {
	all, err := s.Schedules("")
	if err != nil {
		return nil, err
	}
	var out []Schedule
	for _, sc := range all {
		if !sc.Paused && !sc.NextRun.IsZero() && !sc.NextRun.After(now) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// ValidateScheduleSpec checks what a schedule may carry beyond a valid
// job spec: a cron expression that fires, a name, no dependencies. Errors
// are *Error with code EInvalid, naming the field.
func ValidateScheduleSpec(name, expr string, spec *JobSpec) error {
	sched, err := ParseCron(expr)
	if err != nil {
		return err
	}
	// The parser accepts fields that match nothing ("0 0 30 2 *", "0 0 , * *");
	// such a schedule would get no next run and silently never fire. The
	// check is here, not in ParseCron, so that applying commands already in
	// the Raft log gives the results it gave before.
	if sched.Next(time.Now().UTC()).IsZero() {
		return Errorf(EInvalid, "cron: %q never fires: no time in the next five years matches it", expr)
	}
	if len(name) > 200 {
		return Errorf(EInvalid, "name: at most 200 characters")
	}
	if len(spec.Dependencies()) > 0 {
		return Errorf(EInvalid, "deps: a scheduled job cannot depend on other jobs")
	}
	if _, ok := spec.Labels[ScheduleLabel]; ok {
		return Errorf(EInvalid, "labels: %s is set by Gantry", ScheduleLabel)
	}
	return spec.Validate()
}
