package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/oklog/ulid/v2"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// createSchedule checks the spec as a submission would (a schedule whose
// jobs could never run is refused now, not at 3 a.m.) and stores it.
func (a *API) createSchedule(c *gin.Context) {
	var req wire.ScheduleRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	spec := view.StoreJobSpec(req.Spec)
	spec.Defaults()
	if err := store.ValidateScheduleSpec(req.Name, req.Cron, &spec); err != nil {
		fail(c, prefixed("spec.", err))
		return
	}
	id := identity(c)
	if err := a.checkImage(c, id.User, id.Admin, spec.Image); err != nil {
		fail(c, prefixed("spec.", err))
		return
	}
	// A schedule's inputs are checked and pinned when it is created; each
	// run then reads what an input's tag names at that run (schedule.fire
	// v2), an input given by digest always the same.
	if err := a.pinInputs(c.Request.Context(), &spec, id.User, id.Admin); err != nil {
		fail(c, prefixed("spec.", err))
		return
	}
	if err := a.checkPlaceable(&spec, id.User); err != nil {
		fail(c, prefixed("spec.", err))
		return
	}
	repo := a.imageRepo(spec.Image)
	genai, err := a.genAI(repo)
	if err != nil {
		fail(c, err)
		return
	}
	res, ok := propose(c, a, store.CmdCreateSchedule, store.CreateSchedule{Schedule: store.Schedule{
		ID: ulid.Make().String(), Owner: id.User, Name: req.Name, Cron: req.Cron, Spec: spec, AllowOverlap: req.AllowOverlap,
		ImageRepo: repo, GenAI: genai}})
	if !ok {
		return
	}
	c.JSON(http.StatusCreated, view.Schedule(res))
}

// prefixed puts a spec field's error under "spec." (so "image: …" becomes
// "spec.image: …"), leaving the schedule's own fields (cron, name) as they
// are.
func prefixed(prefix string, err error) error {
	msg := store.ErrorMessage(err)
	code := store.ErrorCode(err)
	if code == store.EInternal {
		return err
	}
	for _, own := range []string{"cron:", "name:"} {
		if len(msg) >= len(own) && msg[:len(own)] == own {
			return err
		}
	}
	return store.Errorf(code, "%s%s", prefix, msg)
}

func (a *API) listSchedules(c *gin.Context) {
	id := identity(c)
	owner := id.User
	if id.Admin {
		owner = c.Query("owner")
	}
	list, err := a.cfg.Store.Schedules(owner)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.ScheduleList{Schedules: view.Schedules(list)})
}

// readableSchedule loads a schedule the caller may see; others' private
// schedules are not found.
func (a *API) readableSchedule(c *gin.Context) (*store.Schedule, bool) {
	s, err := a.cfg.Store.Schedule(c.Param("id"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		fail(c, err)
		return nil, false
	}
	id := identity(c)
	if err != nil || (s.Owner != id.User && !id.Admin) {
		fail(c, store.Errorf(store.ENotFound, "schedule %s not found", c.Param("id")))
		return nil, false
	}
	return s, true
}

func (a *API) getSchedule(c *gin.Context) {
	if s, ok := a.readableSchedule(c); ok {
		c.JSON(http.StatusOK, view.Schedule(s))
	}
}

func (a *API) pauseSchedule(paused bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		s, ok := a.readableSchedule(c)
		if !ok {
			return
		}
		id := identity(c)
		res, ok := propose(c, a, store.CmdUpdateSchedule, store.UpdateSchedule{ID: s.ID, Paused: paused, Actor: id.User, Admin: id.Admin})
		if ok {
			c.JSON(http.StatusOK, view.Schedule(res))
		}
	}
}

func (a *API) deleteSchedule(c *gin.Context) {
	s, ok := a.readableSchedule(c)
	if !ok {
		return
	}
	id := identity(c)
	if _, ok := propose(c, a, store.CmdDeleteSchedule, store.DeleteSchedule{ID: s.ID, Actor: id.User, Admin: id.Admin}); ok {
		c.Status(http.StatusNoContent)
	}
}
