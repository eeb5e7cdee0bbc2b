package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"gantry/store"
	"gantry/wire"
)

// maxBackupHave bounds the have list of a backup request (a million
// digests).
const maxBackupHave = 80 << 20

func (a *API) backup(c *gin.Context) {
	var req wire.BackupRequest
	if c.Request.ContentLength != 0 {
		if err := decodeUpTo(c, &req, maxBackupHave); err != nil {
			fail(c, err)
			return
		}
	}
	have := make(map[string]bool, len(req.Have))
	for _, d := range req.Have {
		if len(d) != len("sha256:")+64 || d[:7] != "sha256:" {
			fail(c, store.Errorf(store.EInvalid, "have: %q is not a sha256 digest", d))
			return
		}
		have[d] = true
	}
	c.Header("Content-Type", "application/x-tar")
	c.Status(http.StatusOK)
	// Once the archive streams, an error can only cut it short: the
	// client sees no backup.json and says the backup failed.
	if err := a.cfg.Backup(c.Request.Context(), c.Writer, have); err != nil {
		a.log.Warn("backup failed", "user", identity(c).User, "err", err)
	}
}
