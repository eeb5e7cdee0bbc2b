package api

import (
	"errors"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

func (a *API) listNodes(c *gin.Context) {
	nodes, err := a.cfg.Store.Nodes()
	if err != nil {
		fail(c, err)
		return
	}
	leaderName := ""
	if a.cfg.Leader != nil {
		_, leaderName = a.cfg.Leader()
	}
	roles := a.roles(c.Request.Context())
	out := make([]wire.Node, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = view.Node(&n)
		out[i].Leader = n.Name == leaderName
		out[i].Role = roles.Of[n.Name]
		if a.cfg.Usage != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if u := a.cfg.Usage(c.Request.Context(), n); u != nil {
					r := view.Resources(*u)
					out[i].Used = &r
				}
			}()
		}
	}
	wg.Wait()
	for i := range out {
		a.showHolders(c, &out[i])
	}
	// Members of Raft that have not registered yet (a joiner finishing its
	// start) are listed too: a vote node ls did not show would be a lie.
	listed := map[string]bool{}
	for _, n := range nodes {
		listed[n.Name] = true
	}
	var joining []string
	for name := range roles.Of {
		if !listed[name] {
			joining = append(joining, name)
		}
	}
	sort.Strings(joining)
	for _, name := range joining {
		out = append(out, wire.Node{Name: name, State: wire.NodeJoining, Role: roles.Of[name], Leader: name == leaderName})
	}
	c.JSON(http.StatusOK, wire.NodeList{Nodes: out, Votes: votesOf(roles)})
}

// getNode is one node with its load, role and each of its GPUs with the
// attempts holding it.
func (a *API) getNode(c *gin.Context) {
	name := c.Param("name")
	n, err := a.cfg.Store.Node(name)
	if errors.Is(err, store.ErrNotFound) {
		err = store.Errorf(store.ENotFound, "node %q not found", name)
	}
	if err != nil {
		fail(c, err)
		return
	}
	out := view.Node(n)
	if a.cfg.Leader != nil {
		_, leader := a.cfg.Leader()
		out.Leader = n.Name == leader
	}
	out.Role = a.roles(c.Request.Context()).Of[n.Name]
	if a.cfg.Usage != nil {
		if u := a.cfg.Usage(c.Request.Context(), *n); u != nil {
			r := view.Resources(*u)
			out.Used = &r
		}
	}
	a.showHolders(c, &out)
	c.JSON(http.StatusOK, out)
}

// showHolders keeps, of the attempts holding each of a node's GPUs, those
// the caller may see: every one for an admin, a user's own otherwise (a
// job of someone else is not found for them, so its id is not shown
// either). InUse still counts them all.
func (a *API) showHolders(c *gin.Context, n *wire.Node) {
	id := identity(c)
	owners := map[string]string{}
	for i := range n.Devices {
		d := &n.Devices[i]
		d.InUse = len(d.Holders)
		if id.Admin || d.Holders == nil {
			continue
		}
		var mine []wire.AttemptRef
		for _, h := range d.Holders {
			owner, ok := owners[h.JobID]
			if !ok {
				if j, err := a.cfg.Store.Job(h.JobID); err == nil {
					owner = j.Owner
				}
				owners[h.JobID] = owner
			}
			if owner == id.User {
				mine = append(mine, h)
			}
		}
		d.Holders = mine
	}
}

func (a *API) setNodeState(state string) gin.HandlerFunc {
	return func(c *gin.Context) {
		name := c.Param("name")
		cmd := store.SetNodeState{Name: name, State: state}
		if v := c.Query("deadline"); v != "" && state == store.NodeDraining {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				fail(c, store.Errorf(store.EInvalid, "deadline: want a duration such as 10m"))
				return
			}
			cmd.Deadline = time.Now().Add(d)
		}
		res, err := store.CmdSetNodeState.Propose(c.Request.Context(), a.cfg.Proposer, cmd)
		if errors.Is(err, store.ErrNotFound) {
			err = store.Errorf(store.ENotFound, "node %q not found", name)
		}
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, view.Node(res))
	}
}

func (a *API) cluster(c *gin.Context) {
	info, err := a.cfg.Store.Cluster()
	if err != nil {
		fail(c, err)
		return
	}
	nodes, err := a.cfg.Store.Nodes()
	if err != nil {
		fail(c, err)
		return
	}
	leaderName := ""
	if a.cfg.Leader != nil {
		_, leaderName = a.cfg.Leader()
	}
	c.JSON(http.StatusOK, wire.Cluster{ID: info.ID, Created: info.Created, Leader: leaderName, Nodes: len(nodes)})
}
