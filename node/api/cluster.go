package api

import (
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"gantry/node/view"
	"gantry/store"
	"gantry/wire"
)

func (a *API) clusterCA(c *gin.Context) {
	c.Data(http.StatusOK, "application/x-pem-file", a.cfg.Cluster.CACert())
}

func (a *API) clusterJoin(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10))
	if err != nil {
		fail(c, store.Errorf(store.EInvalid, "join request too large"))
		return
	}
	res, err := a.cfg.Cluster.Admit(c.Request.Context(), body)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (a *API) joinCommand(rotate bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		cmd, tok, err := a.cfg.Cluster.JoinCommand(c.Request.Context(), rotate)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, wire.JoinCommand{Command: cmd, Token: tok})
	}
}

func (a *API) clusterMembers(c *gin.Context) {
	ms, err := a.cfg.Cluster.Members(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]wire.Member, len(ms))
	for i, m := range ms {
		out[i] = wire.Member{ID: m.ID, Addr: m.Addr, Voter: m.Voter, Leader: m.Leader}
	}
	c.JSON(http.StatusOK, wire.MemberList{Members: out})
}

func (a *API) removeNode(c *gin.Context) {
	res, err := a.cfg.Cluster.RemoveNode(c.Request.Context(), c.Param("name"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, view.Node(res))
}

// consistentRead makes a GET with ?consistent=true linearizable: it waits
// until this node has applied everything the leader committed before the
// request arrived.
func (a *API) consistentRead(c *gin.Context) {
	if c.Request.Method != http.MethodGet || a.cfg.Cluster == nil {
		return
	}
	if v := c.Query("consistent"); v != "1" && v != "true" {
		return
	}
	if err := a.cfg.Cluster.Linearize(c.Request.Context()); err != nil {
		fail(c, err)
	}
}

// proxyLog serves an attempt's log from the node that ran it.
func (a *API) proxyLog(c *gin.Context, at *store.Attempt, follow bool) {
	if a.cfg.Cluster == nil {
		fail(c, store.Errorf(store.EUnavailable, "the log is on node %s", at.Node))
		return
	}
	rc, err := a.cfg.Cluster.NodeLog(c.Request.Context(), at.Node, at.JobID, at.Task, at.N, follow)
	if err != nil {
		fail(c, err)
		return
	}
	defer rc.Close()
	c.Header("X-Gantry-Node", at.Node)
	c.Header("X-Gantry-Attempt", strconv.Itoa(at.N))
	c.Status(http.StatusOK)
	buf := make([]byte, 32<<10)
	for {
		k, err := rc.Read(buf)
		if k > 0 {
			if _, werr := c.Writer.Write(buf[:k]); werr != nil {
				return
			}
			c.Writer.Flush()
		}
		if err != nil {
			return
		}
	}
}
