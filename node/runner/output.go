package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dustin/go-humanize"
)

// Output is a task's writable output directory, mounted at Path; what the
// task leaves there is handed to Config.Outputs when the attempt ends.
type Output struct {
	Path string
	// Limit bounds the bytes of the files the task writes there.
	Limit int64
	// KeepFailed: collect a failed attempt's output too.
	KeepFailed bool
}

// OutputRef is the artifact an output was stored as.
type OutputRef struct {
	Repo, Tag, Digest string
	Files             int
	Bytes             int64
}

// Outputs stores what an attempt left in its output directory (the node
// packs it into an artifact of its registry).
type Outputs interface {
	// Collect stores dir, the output of the attempt spec that ended with
	// res, and says where. It may be called again for the same attempt
	// (after a restart) and must then give the same artifact.
	Collect(ctx context.Context, spec Spec, res Result, dir string) (*OutputRef, error)
}

// Reasons an attempt with an output ends with besides the others.
const (
	ReasonOutputLimit  = "output_limit"  // the task wrote more than its output limit
	ReasonOutputFailed = "output_failed" // its output could not be stored
)

// outputPoll is how often a running task's output directory is measured.
const outputPoll = time.Second

// OutputDir is the host directory of attempt k's output. It lives under
// Config.OutputDir until the attempt's result is recorded, so a runner that
// restarts collects what the task wrote.
func (r *Runner) OutputDir(k Key) string {
	return filepath.Join(r.cfg.OutputDir, safeName(k.JobID), strconv.Itoa(k.Task)+"."+strconv.Itoa(k.Attempt))
}

// prepareOutput creates the attempt's output directory, writable by any
// user: the container's processes run as the image's user, whoever that
// is, with every capability dropped. Only the container sees it through
// the mount; on the host it sits in Config.OutputDir, which only the node's
// user can enter.
func (r *Runner) prepareOutput(k Key) (string, error) {
	if r.cfg.OutputDir == "" {
		return "", errors.New("this node cannot keep outputs")
	}
	dir := r.OutputDir(k)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("create output dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("create output dir: %w", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		return "", fmt.Errorf("create output dir: %w", err)
	}
	return dir, nil
}

// removeOutput deletes the attempt's output directory (and its job's
// directory once empty).
func (r *Runner) removeOutput(k Key) {
	if r.cfg.OutputDir == "" {
		return
	}
	dir := r.OutputDir(k)
	if err := os.RemoveAll(dir); err != nil {
		r.log.Warn("remove output dir", "dir", dir, "err", err)
	}
	_ = os.Remove(filepath.Dir(dir)) // fails while other attempts of the job have theirs
}

// sweepOutputs removes, once after a start, the output directories of
// attempts that are not placed here any more (their result was recorded
// before the node stopped, or they were moved while it was down): nothing
// will collect them. Those of wanted attempts stay for the collection.
func (r *Runner) sweepOutputs(wanted map[Key]bool) {
	if r.cfg.OutputDir == "" {
		return
	}
	keep := map[string]bool{}
	for k := range wanted {
		keep[r.OutputDir(k)] = true
	}
	jobs, err := os.ReadDir(r.cfg.OutputDir)
	if err != nil {
		return // none yet
	}
	for _, j := range jobs {
		jd := filepath.Join(r.cfg.OutputDir, j.Name())
		atts, _ := os.ReadDir(jd)
		for _, a := range atts {
			if d := filepath.Join(jd, a.Name()); !keep[d] {
				r.log.Info("removing the output dir of an attempt no longer here", "dir", d)
				if err := os.RemoveAll(d); err != nil {
					r.log.Warn("remove output dir", "dir", d, "err", err)
				}
			}
		}
		_ = os.Remove(jd) // only once empty
	}
}

// outputSize is the bytes of the regular files under dir.
func outputSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // removed by the task while we walked
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}

// watchOutput measures the attempt's output directory every outputPoll
// while its container runs and closes over when it holds more than the
// limit; it returns when ctx ends.
func watchOutput(ctx context.Context, dir string, limit int64, over chan<- struct{}) {
	t := time.NewTicker(outputPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := outputSize(dir); err == nil && n > limit {
				close(over)
				return
			}
		}
	}
}

// collectOutput decides what becomes of an ended attempt's output and
// stores it when it is kept: a directory over the limit ends the attempt
// output_limit with nothing kept; a succeeded attempt's output (a failed
// one's too with KeepFailed) is handed to Config.Outputs, and an error
// there ends it output_failed. False: the runner is closing or the
// attempt was abandoned during the collection (not reported, the next
// start collects again).
func (r *Runner) collectOutput(a *attempt, res *Result) bool {
	o := a.spec.Output
	if o == nil {
		return true
	}
	dir := r.OutputDir(a.spec.Key)
	size, err := outputSize(dir)
	if err != nil {
		res.Reason, res.Message = ReasonOutputFailed, truncate("measure the output directory: "+err.Error())
		return true
	}
	if size > o.Limit || res.Reason == ReasonOutputLimit {
		res.Reason = ReasonOutputLimit
		res.Message = fmt.Sprintf("wrote more than its output limit of %s to %s (%s when it ended); nothing was kept", humanize.IBytes(uint64(o.Limit)), o.Path, humanize.IBytes(uint64(size)))
		return true
	}
	succeeded := res.Reason == ReasonExited && res.ExitCode == 0
	failed := res.Reason == ReasonExited || res.Reason == ReasonOOMKilled || res.Reason == ReasonTimedOut
	if !succeeded && !(o.KeepFailed && failed) {
		return true
	}
	if r.cfg.Outputs == nil {
		res.Reason, res.Message = ReasonOutputFailed, "this node cannot keep outputs"
		return true
	}
	start := time.Now()
	ended := *res
	ended.ImageDigest = pinnedDigest(a.spec.Image, res.ImageDigest) // as finish records it
	ref, err := r.cfg.Outputs.Collect(a.ctx, a.spec, ended, dir)
	if err != nil {
		if a.ctx.Err() != nil {
			return false
		}
		r.attemptLog(a).Warn("output not stored", "err", err)
		msg := "its output could not be stored: " + err.Error()
		if succeeded {
			res.Reason, res.Message = ReasonOutputFailed, truncate(msg)
		} else if res.Message == "" {
			res.Message = truncate(msg)
		} else {
			res.Message = truncate(res.Message + "; " + msg)
		}
		return true
	}
	r.attemptLog(a).Info("output stored", "repo", ref.Repo, "tag", ref.Tag, "digest", ref.Digest, "bytes", ref.Bytes, "files", ref.Files, "took", time.Since(start))
	res.Output = ref
	return true
}
