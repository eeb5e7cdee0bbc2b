package api

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"gantry/store"
)

// ClusterAdmin is what the API needs from the node's cluster membership.
type ClusterAdmin interface {
	// CACert is the cluster CA certificate (PEM); public, pinned by joiners.
	CACert() []byte
	// Join checks a join request (JSON), signs the node's certificate and
	// adds it to Raft; EUnauthorized for a wrong or rotated token.
	Join(ctx context.Context, req []byte) (any, error)
	// JoinCommand returns the join command and token, first replacing the
	// secret when rotate is set.
	JoinCommand(ctx context.Context, rotate bool) (command, token string, err error)
	// RemoveNode takes a node out of Raft and the state.
	RemoveNode(ctx context.Context, name string) (any, error)
	// Members lists the Raft configuration.
	Members(ctx context.Context) (any, error)
	// Linearize makes the next local read see every acknowledged write.
	Linearize(ctx context.Context) error
	// NodeLog opens an attempt's log on the node that ran it.
	NodeLog(ctx context.Context, node, job string, task, attempt int, follow bool) (io.ReadCloser, error)
}

func (a *API) clusterRoutes(public, authed *gin.RouterGroup) {
	public.GET("/cluster/ca", a.clusterCA)
	public.POST("/cluster/join", a.clusterJoin)
	authed.GET("/cluster/join-command", a.adminOnly, a.joinCommand(false))
	authed.POST("/cluster/join-token/rotate", a.adminOnly, a.joinCommand(true))
	authed.GET("/cluster/members", a.adminOnly, a.clusterMembers)
	authed.POST("/nodes/:name/remove", a.adminOnly, a.removeNode)
}

func (a *API) clusterOnly(c *gin.Context) bool {
	if a.cfg.Cluster == nil {
		fail(c, store.Errorf(store.ENotFound, "this node does not take part in a cluster"))
		return false
	}
	return true
}

func (a *API) clusterCA(c *gin.Context) {
	if !a.clusterOnly(c) {
		return
	}
	c.Data(http.StatusOK, "application/x-pem-file", a.cfg.Cluster.CACert())
}

func (a *API) clusterJoin(c *gin.Context) {
	if !a.clusterOnly(c) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10))
	if err != nil {
		fail(c, store.Errorf(store.EInvalid, "join request too large"))
		return
	}
	res, err := a.cfg.Cluster.Join(c.Request.Context(), body)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (a *API) joinCommand(rotate bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !a.clusterOnly(c) {
			return
		}
		cmd, tok, err := a.cfg.Cluster.JoinCommand(c.Request.Context(), rotate)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"command": cmd, "token": tok})
	}
}

func (a *API) clusterMembers(c *gin.Context) {
	if !a.clusterOnly(c) {
		return
	}
	m, err := a.cfg.Cluster.Members(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"members": m})
}

func (a *API) removeNode(c *gin.Context) {
	if !a.clusterOnly(c) {
		return
	}
	res, err := a.cfg.Cluster.RemoveNode(c.Request.Context(), c.Param("name"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
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
