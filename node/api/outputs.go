package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

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
