package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"gantry/data"
	"gantry/store"
	"gantry/wire"
)

// listOutputs answers GET /api/v1/jobs/:id/outputs: the outputs stored of
// a page of the job's tasks (the owner's and an admin's to read, like the
// job). Each names a digest reference on the host the client asked, so
// `oras pull` or `gantry data pull` of it reads that very artifact even
// after a rerun moves the tag.
func (a *API) listOutputs(c *gin.Context) {
	j, ok := a.readableJob(c)
	if !ok {
		return
	}
	cursor, limit, err := taskPage(c, 1000)
	if err != nil {
		fail(c, err)
		return
	}
	tasks, next, err := a.cfg.Store.Tasks(j.ID, "", cursor, limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.OutputList{Outputs: []wire.TaskOutput{}}
	for _, t := range tasks {
		o := t.Output
		if o == nil {
			continue
		}
		out.Outputs = append(out.Outputs, wire.TaskOutput{Task: t.Index, Repo: o.Repo, Tag: o.Tag, Digest: o.Digest,
			Files: o.Files, Bytes: o.Bytes, Ref: c.Request.Host + "/" + o.Repo + "@" + o.Digest})
	}
	if next >= 0 {
		out.Next = strconv.Itoa(next)
	}
	c.JSON(http.StatusOK, out)
}

// downloadOutput answers GET /api/v1/jobs/:id/tasks/:index/output: the
// task's newest stored output as one tar (what the console's download
// link gets; the CLI and oras read the artifact itself). A blob that
// fails its digest check midway cuts the connection, so the client never
// takes a truncated archive for a whole one.
func (a *API) downloadOutput(c *gin.Context) {
	j, t, ok := a.readableTask(c)
	if !ok {
		return
	}
	i := t.Index
	if t.Output == nil {
		fail(c, store.Errorf(store.ENotFound, "task %d of job %s has no stored output", i, j.ID))
		return
	}
	if a.cfg.Images == nil {
		fail(c, store.Errorf(store.EUnavailable, "this node has no registry"))
		return
	}
	ctx := c.Request.Context()
	src := a.cfg.Images.Local(t.Output.Repo, j.Owner)
	_, tree, err := data.Fetch(ctx, src, t.Output.Digest)
	if err != nil {
		fail(c, fmt.Errorf("read the output of task %d: %w", i, err))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-task-%04d-output.tar"`, strings.ToLower(j.ID), i))
	h.Set("Docker-Content-Digest", t.Output.Digest)
	c.Status(http.StatusOK)
	if err := data.WriteTar(ctx, c.Writer, tree, src); err != nil {
		a.log.Warn("output download cut short", "job", j.ID, "task", i, "err", err)
		panic(http.ErrAbortHandler)
	}
}
