package api

import (
	"errors"
	"net/http"
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
	out := make([]wire.Node, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = view.Node(&n)
		out[i].Leader = n.Name == leaderName
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
	c.JSON(http.StatusOK, wire.NodeList{Nodes: out})
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
