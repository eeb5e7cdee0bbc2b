package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

// listQueues shows an admin every queue; a user the queues they may submit
// to, without the names of the other users allowed in them.
func (a *API) listQueues(c *gin.Context) {
	qs, err := a.cfg.Store.Queues()
	if err != nil {
		fail(c, err)
		return
	}
	id := identity(c)
	out := wire.QueueList{Queues: []wire.Queue{}}
	for i := range qs {
		if !id.Admin && !qs[i].Allows(id.User) {
			continue
		}
		v, err := a.queueView(qs, &qs[i], id.Admin)
		if err != nil {
			fail(c, err)
			return
		}
		out.Queues = append(out.Queues, v)
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) getQueue(c *gin.Context) {
	id := identity(c)
	q, err := a.cfg.Store.Queue(c.Param("name"))
	if err == nil && !id.Admin && !q.Allows(id.User) {
		err = store.Errorf(store.ENotFound, "queue %s does not exist (gantry queue ls lists them)", c.Param("name"))
	}
	if err != nil {
		fail(c, err)
		return
	}
	qs, err := a.cfg.Store.Queues()
	if err != nil {
		fail(c, err)
		return
	}
	v, err := a.queueView(qs, &q, id.Admin)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// queueView is a queue with its guaranteed share, usage and queued tasks.
func (a *API) queueView(all []store.Queue, q *store.Queue, admin bool) (wire.Queue, error) {
	v := view.Queue(q)
	if !admin {
		v.Users = nil
	}
	var sum float64
	for _, o := range all {
		sum += o.Weight
	}
	if sum > 0 {
		v.Guaranteed = q.Weight / sum
	}
	use, err := a.cfg.Store.QueueUsages()
	if err != nil {
		return v, err
	}
	u := use[q.Name]
	v.Usage = wire.Usage{Allocated: view.Resources(u.Allocated), Tasks: u.Tasks}
	v.Queued, err = a.cfg.Store.QueuedCount(q.Name)
	return v, err
}

func (a *API) createQueue(c *gin.Context) {
	var req wire.QueueRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	if req.Weight == nil {
		fail(c, store.Errorf(store.EInvalid, "weight: required (the queue's share when queues compete, e.g. 1)"))
		return
	}
	q := store.Queue{Name: req.Name}
	applyQueueRequest(&q, &req)
	res, ok := propose(c, a, store.CmdCreateQueue, store.CreateQueue{Queue: q})
	if !ok {
		return
	}
	a.queueAnswer(c, http.StatusCreated, res)
}

func (a *API) updateQueue(c *gin.Context) {
	var req wire.QueueRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	name := c.Param("name")
	if req.Name != "" && req.Name != name {
		fail(c, store.Errorf(store.EInvalid, "name: a queue cannot be renamed"))
		return
	}
	q, err := a.cfg.Store.Queue(name)
	if err != nil {
		fail(c, err)
		return
	}
	applyQueueRequest(&q, &req)
	res, ok := propose(c, a, store.CmdUpdateQueue, store.UpdateQueue{Queue: q})
	if !ok {
		return
	}
	a.queueAnswer(c, http.StatusOK, res)
}

func (a *API) deleteQueue(c *gin.Context) {
	if _, ok := propose(c, a, store.CmdDeleteQueue, store.DeleteQueue{Name: c.Param("name")}); ok {
		c.Status(http.StatusNoContent)
	}
}

func (a *API) queueAnswer(c *gin.Context, status int, q *store.Queue) {
	qs, err := a.cfg.Store.Queues()
	if err != nil {
		fail(c, err)
		return
	}
	v, err := a.queueView(qs, q, true)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(status, v)
}

// applyQueueRequest changes the fields the request gives.
func applyQueueRequest(q *store.Queue, r *wire.QueueRequest) {
	if r.Weight != nil {
		q.Weight = *r.Weight
	}
	if r.Limit != nil {
		q.Limit = view.StoreResources(*r.Limit)
	}
	if r.Borrow != nil {
		q.Borrow = *r.Borrow
	}
	if r.Users != nil {
		q.Users = slices.Clone(*r.Users)
	}
	if r.Priority != nil {
		q.Priority = *r.Priority
	}
	if r.MaxRunTime != nil {
		q.MaxRunTime = store.Duration(time.Duration(*r.MaxRunTime))
	}
	if r.Constraints != nil {
		q.Constraints = *r.Constraints
	}
	if r.Grace != nil {
		q.Grace = store.Duration(time.Duration(*r.Grace))
	}
	if r.Placement != nil {
		q.Placement = *r.Placement
	}
}
