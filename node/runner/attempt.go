package runner

import (
	"context"
	"errors"
	"strings"

	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// cleanupTimeout bounds the Docker calls made after an attempt's context is
// gone (killing and removing an abandoned container).
const cleanupTimeout = 30 * time.Second

// logDrainTimeout is how long, after a container ends, the runner waits for
// the rest of its output before reporting.
const logDrainTimeout = 10 * time.Second

// attempt is one live attempt: the goroutine that runs or follows it.
type attempt struct {
	spec Spec

	// ctx ends when the runner closes or the attempt is abandoned.
	ctx    context.Context
	cancel context.CancelFunc

	cancelOnce sync.Once
	cancelCh   chan struct{} // closed when cancellation (or preemption) is requested
	// preempt: the stop is a preemption (SIGTERM, grace, then SIGKILL;
	// reported "preempted"); set before cancelCh is closed.
	preempt     bool
	grace       time.Duration
	abandonOnce sync.Once
	abandonCh   chan struct{} // closed when the attempt is no longer wanted here

	// mounts are the host directories of the inputs, in spec order, and
	// releases let the cache evict them once the attempt is over.
	mounts   []string
	releases []func()

	// over is closed when the task's output directory outgrows its limit
	// (nil without an output: never ready).
	over chan struct{}
}

func (a *attempt) releaseInputs() {
	for _, rel := range a.releases {
		rel()
	}
	a.releases, a.mounts = nil, nil
}

func newAttempt(parent context.Context, spec Spec) *attempt {
	ctx, cancel := context.WithCancel(parent)
	a := &attempt{spec: spec, ctx: ctx, cancel: cancel, cancelCh: make(chan struct{}), abandonCh: make(chan struct{})}
	if spec.Output != nil {
		a.over = make(chan struct{})
	}
	return a
}

func (a *attempt) cancelNow() { a.cancelOnce.Do(func() { close(a.cancelCh) }) }

// preemptNow asks the attempt to stop for a preemption: its container gets
// SIGTERM and grace to end before SIGKILL.
func (a *attempt) preemptNow(grace time.Duration) {
	a.cancelOnce.Do(func() {
		a.preempt, a.grace = true, grace
		close(a.cancelCh)
	})
}

// stopIfAsked acts on a cancellation or preemption the spec asks for.
func (a *attempt) stopIfAsked(spec Spec) {
	switch {
	case spec.Cancel:
		a.cancelNow()
	case spec.Preempt:
		a.preemptNow(spec.Grace)
	}
}

// stopReason is the reason an attempt stopped on request reports.
func (a *attempt) stopReason() string {
	if a.preempt {
		return ReasonPreempted
	}
	return ReasonCancelled
}

// notStarted is the message of an attempt stopped before its container ran.
func (a *attempt) notStarted() string {
	if a.preempt {
		return "preempted before it started"
	}
	return "cancelled before it started"
}

func (a *attempt) abandonNow() {
	a.abandonOnce.Do(func() { close(a.abandonCh) })
	a.cancel()
}

func (a *attempt) stop() { a.cancel() }

func (a *attempt) cancelled() bool {
	select {
	case <-a.cancelCh:
		return true
	default:
		return false
	}
}

func (a *attempt) abandoned() bool {
	select {
	case <-a.abandonCh:
		return true
	default:
		return false
	}
}

func (r *Runner) attemptLog(a *attempt) *slog.Logger {
	return r.log.With("attempt", a.spec.Key.String())
}

// launch pulls, creates and starts a new container for the attempt, then
// follows it.
func (r *Runner) launch(a *attempt) {
	log := r.attemptLog(a)
	spec := a.spec
	// A cancellation must not wait for a slow pull to finish.
	pullCtx, stopPull := context.WithCancel(a.ctx)
	go func() {
		select {
		case <-a.cancelCh:
			stopPull()
		case <-pullCtx.Done():
		}
	}()
	_, err := r.ensureImage(pullCtx, spec.Image)
	stopPull()
	if err != nil {
		if a.ctx.Err() != nil {
			r.done(a, false)
			return
		}
		if a.cancelled() {
			r.finishWithout(a, a.stopReason(), a.notStarted())
			return
		}
		log.Warn("image pull failed", "image", spec.Image, "err", err)
		r.finish(a, Result{
			Key:      spec.Key,
			ExitCode: -1,
			Reason:   ReasonImagePullFailed,
			Message:  pullFailure(spec.Image, err),
			EndedAt:  time.Now(),
		}, "")
		return
	}
	if a.cancelled() {
		r.finishWithout(a, a.stopReason(), a.notStarted())
		return
	}
	if err := r.holdInputs(a); err != nil {
		if a.ctx.Err() != nil {
			r.done(a, false)
			return
		}
		if a.cancelled() {
			r.finishWithout(a, a.stopReason(), a.notStarted())
			return
		}
		log.Warn("input not available", "err", err)
		r.finish(a, Result{Key: spec.Key, ExitCode: -1, Reason: ReasonInputFailed, Message: truncate(err.Error()), EndedAt: time.Now()}, "")
		return
	}
	outDir := ""
	if spec.Output != nil {
		if outDir, err = r.prepareOutput(spec.Key); err != nil {
			log.Warn("output directory not available", "err", err)
			r.finish(a, Result{Key: spec.Key, ExitCode: -1, Reason: ReasonOutputFailed, Message: truncate(err.Error()), EndedAt: time.Now()}, "")
			return
		}
	}
	r.netMu.RLock()
	err = r.ensureNetwork(a.ctx, spec)
	if err != nil {
		r.netMu.RUnlock()
		if a.ctx.Err() == nil {
			log.Warn("network unavailable; retrying on next sync", "err", err)
			if strings.Contains(err.Error(), "address pool") {
				r.prunePending.Store(true) // the next Sync prunes at once
			}
		}
		r.done(a, false)
		return
	}
	id, err := r.createContainer(a.ctx, spec, a.mounts, outDir)
	r.netMu.RUnlock()
	switch {
	case err == nil:
		log.Info("container created", "container", shortID(id), "image", spec.Image)
	case cerrdefs.IsConflict(err):
		// Created earlier (by us before a restart, or a racing Sync): follow
		// that one, never a second.
		info, ierr := r.docker.ContainerInspect(a.ctx, ContainerName(r.cfg.Cluster, spec.Key))
		if ierr != nil {
			log.Warn("container name taken but not inspectable; retrying on next sync", "err", ierr)
			r.done(a, false)
			return
		}
		id = info.ID
	case cerrdefs.IsInvalidArgument(err):
		log.Warn("docker rejected the container spec", "err", err)
		r.finish(a, Result{Key: spec.Key, ExitCode: -1, Reason: ReasonExited, Message: truncate(err.Error()), EndedAt: time.Now()}, "")
		return
	default:
		if a.ctx.Err() == nil {
			log.Warn("create container failed; retrying on next sync", "err", err)
		}
		r.done(a, false)
		return
	}
	r.follow(a, id)
}

// holdInputs materialises the attempt's inputs (or finds them in the
// cache) and holds them until the attempt is over; cancelling the attempt
// stops the wait.
func (r *Runner) holdInputs(a *attempt) error {
	if len(a.spec.Inputs) == 0 || len(a.mounts) == len(a.spec.Inputs) {
		return nil
	}
	if r.cfg.Inputs == nil {
		return errors.New("this node cannot mount inputs")
	}
	ctx, stop := context.WithCancel(a.ctx)
	defer stop()
	go func() {
		select {
		case <-a.cancelCh:
			stop()
		case <-ctx.Done():
		}
	}()
	for _, in := range a.spec.Inputs {
		if in.Missing != "" {
			a.releaseInputs()
			return errors.New(in.Missing)
		}
		dir, release, err := r.cfg.Inputs.Acquire(ctx, in.Repo, in.Digest)
		if err != nil {
			a.releaseInputs()
			return fmt.Errorf("input %s@%s: %w", in.Repo, in.Digest, err)
		}
		a.mounts, a.releases = append(a.mounts, dir), append(a.releases, release)
	}
	return nil
}

// follow runs an existing container to its end: starts it if it was only
// created, reports the start, copies its logs, enforces the timeout and
// cancellation, then reports the result and removes the container.
func (r *Runner) follow(a *attempt, id string) {
	log := r.attemptLog(a).With("container", shortID(id))
	spec := a.spec

	info, err := r.docker.ContainerInspect(a.ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) && a.ctx.Err() == nil {
			r.finishWithout(a, ReasonNodeLost, "the attempt's container disappeared")
			return
		}
		if a.ctx.Err() == nil {
			log.Warn("inspect container failed; retrying on next sync", "err", err)
		}
		r.done(a, false)
		return
	}
	if k, ok := keyFromLabels(info.Config.Labels); !ok || k != spec.Key ||
		info.Config.Labels[LabelCluster] != r.cfg.Cluster || info.Config.Labels[LabelNode] != r.cfg.Node {
		log.Error("container with this attempt's name belongs to someone else; not touching it",
			"node", info.Config.Labels[LabelNode], "cluster", info.Config.Labels[LabelCluster])
		r.done(a, false)
		return
	}

	if info.State != nil && info.State.Status == container.StateCreated {
		if a.cancelled() {
			r.finish(a, Result{Key: spec.Key, ContainerID: id, ExitCode: -1, Reason: a.stopReason(), EndedAt: time.Now(), ImageDigest: info.Image}, id)
			return
		}
		if err := r.docker.ContainerStart(a.ctx, id, container.StartOptions{}); err != nil {
			if a.ctx.Err() != nil {
				r.done(a, false)
				return
			}
			log.Warn("start container failed", "err", err)
			code := -1
			if after, ierr := r.docker.ContainerInspect(a.ctx, id); ierr == nil && after.State != nil && after.State.ExitCode != 0 {
				code = after.State.ExitCode
			}
			r.finish(a, Result{Key: spec.Key, ContainerID: id, ExitCode: code, Reason: ReasonExited, Message: truncate(err.Error()), EndedAt: time.Now(), ImageDigest: info.Image}, id)
			return
		}
		if info, err = r.docker.ContainerInspect(a.ctx, id); err != nil {
			if a.ctx.Err() == nil {
				log.Warn("inspect started container failed; retrying on next sync", "err", err)
			}
			r.done(a, false)
			return
		}
		log.Info("container started")
	}
	startedAt := parseDockerTime(info.State.StartedAt)
	if !spec.Started {
		r.reportStarted(a, id, startedAt)
	}

	logCtx, stopLogs := context.WithCancel(a.ctx)
	defer stopLogs()
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		if err := r.copyLogs(logCtx, spec.Key, id); err != nil && logCtx.Err() == nil {
			log.Warn("copy container logs", "err", err)
		}
	}()
	defer func() { <-logsDone }()

	killReason, ok := "", true
	if info.State.Running || info.State.Paused || info.State.Restarting {
		if o := spec.Output; o != nil {
			watchCtx, stopWatch := context.WithCancel(a.ctx)
			go watchOutput(watchCtx, r.OutputDir(spec.Key), o.Limit, a.over)
			killReason, ok = r.waitExit(a, id, startedAt, log)
			stopWatch()
		} else {
			killReason, ok = r.waitExit(a, id, startedAt, log)
		}
	}
	if !ok {
		if a.abandoned() {
			r.discard(id, log)
			r.removeOutput(spec.Key)
		}
		r.done(a, false)
		return
	}

	select {
	case <-logsDone:
	case <-time.After(logDrainTimeout):
		log.Warn("container output still streaming after exit; reporting anyway")
		stopLogs()
	}

	end, err := r.docker.ContainerInspect(a.ctx, id)
	if err != nil {
		if a.ctx.Err() == nil {
			log.Warn("inspect exited container failed; retrying on next sync", "err", err)
		}
		r.done(a, false)
		return
	}
	res := Result{
		Key:         spec.Key,
		ContainerID: id,
		ExitCode:    end.State.ExitCode,
		Reason:      ReasonExited,
		StartedAt:   parseDockerTime(end.State.StartedAt),
		EndedAt:     parseDockerTime(end.State.FinishedAt),
		ImageDigest: end.Image,
	}
	if res.EndedAt.Before(res.StartedAt) {
		// Docker records FinishedAt before StartedAt for a process that
		// exits within a moment of starting.
		res.EndedAt = res.StartedAt
	}
	killedBySignal := end.State.ExitCode == 128+9
	switch {
	case end.State.OOMKilled:
		res.Reason = ReasonOOMKilled
		res.Message = "killed for exceeding its memory limit"
	case killReason != "":
		res.Reason = killReason
	case spec.Timeout > 0 && killedBySignal && res.EndedAt.Sub(res.StartedAt) >= spec.Timeout:
		// Killed for its timeout by a runner that stopped before reporting.
		res.Reason = ReasonTimedOut
	case a.cancelled() && killedBySignal:
		res.Reason = a.stopReason()
	}
	if res.Reason == ReasonTimedOut && res.Message == "" {
		res.Message = fmt.Sprintf("exceeded its timeout of %s", spec.Timeout)
	}
	if end.State.Error != "" && res.Message == "" {
		res.Message = truncate(end.State.Error)
	}
	if !r.collectOutput(a, &res) {
		r.done(a, false)
		return
	}
	r.finish(a, res, id)
}

// waitExit waits for the container to stop, killing it on timeout or
// cancellation. It returns the reason the runner killed it ("" if it ended
// by itself) and false if the attempt's context ended first.
func (r *Runner) waitExit(a *attempt, id string, startedAt time.Time, log *slog.Logger) (string, bool) {
	var timeoutC <-chan time.Time
	if a.spec.Timeout > 0 {
		start := startedAt
		if start.IsZero() {
			start = time.Now()
		}
		t := time.NewTimer(time.Until(start.Add(a.spec.Timeout)))
		defer t.Stop()
		timeoutC = t.C
	}
	cancelC, overC := a.cancelCh, a.over
	killReason := ""
	killNow := func(reason string) {
		killed, err := r.kill(a.ctx, id)
		if err != nil && a.ctx.Err() == nil {
			log.Warn("kill container", "err", err)
		}
		// Only a kill that hit a running container decides the reason: one
		// that already exited by itself reports how it exited.
		if killed && killReason == "" {
			log.Info("killed container", "reason", reason)
			killReason = reason
		}
	}
	backoff := 100 * time.Millisecond
	for {
		waitC, errC := r.docker.ContainerWait(a.ctx, id, container.WaitConditionNotRunning)
	inner:
		for {
			select {
			case <-waitC:
				return killReason, true
			case err := <-errC:
				if a.ctx.Err() != nil {
					return "", false
				}
				if cerrdefs.IsNotFound(err) {
					// Removed behind our back; inspect will tell.
					return killReason, true
				}
				log.Warn("wait for container", "err", err)
				break inner
			case <-timeoutC:
				timeoutC = nil
				killNow(ReasonTimedOut)
			case <-overC:
				overC = nil
				killNow(ReasonOutputLimit)
			case <-cancelC:
				cancelC = nil
				if a.preempt {
					// SIGTERM now, SIGKILL after the grace period (Docker's
					// stop); the wait above sees the container end.
					killReason = ReasonPreempted
					log.Info("preempting container", "grace", a.grace)
					go r.stopGracefully(a.ctx, id, a.grace, log)
				} else {
					killNow(ReasonCancelled)
				}
			case <-a.ctx.Done():
				return "", false
			}
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		case <-a.ctx.Done():
			return "", false
		}
	}
}

// copyLogs writes the container's whole output, stdout and stderr
// demultiplexed into one file, following it until the container stops. The
// file is rewritten from the start, so re-attaching after a restart yields
// the complete log.
func (r *Runner) copyLogs(ctx context.Context, k Key, id string) error {
	path := r.LogPath(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer f.Close()
	rc, err := r.docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return fmt.Errorf("container logs: %w", err)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(f, f, rc); err != nil {
		return fmt.Errorf("copy container logs: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close log file: %w", err)
	}
	return nil
}

// reportStarted tells the Reporter the attempt runs. It retries a few times;
// a start that never gets recorded is implied by the later Finished.
func (r *Runner) reportStarted(a *attempt, id string, at time.Time) {
	backoff := 100 * time.Millisecond
	for i := 0; ; i++ {
		err := r.cfg.Reporter.Started(a.ctx, a.spec.Key, id, at)
		if err == nil {
			return
		}
		if i == 4 || a.ctx.Err() != nil {
			r.attemptLog(a).Warn("report start failed", "err", err)
			return
		}
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-a.ctx.Done():
			return
		}
	}
}

// finishWithout reports an attempt that has no container.
func (r *Runner) finishWithout(a *attempt, reason, msg string) {
	r.attemptLog(a).Info("attempt ended without a container", "reason", reason)
	r.finish(a, Result{Key: a.spec.Key, ExitCode: -1, Reason: reason, Message: msg, EndedAt: time.Now()}, "")
}

// pinnedDigest is what an attempt of image records as its image digest:
// for an image pinned by digest (host/repo@sha256:...) that manifest
// digest, which names exactly what ran in any registry; otherwise Docker's
// image id.
func pinnedDigest(image, dockerID string) string {
	if i := strings.LastIndex(image, "@"); i >= 0 && dockerID != "" {
		return image[i+1:]
	}
	return dockerID
}

// finish reports res until the Reporter accepts it, then removes the
// container (if id is set): the container stays until its result is
// recorded, so a restart can always recover the result.
func (r *Runner) finish(a *attempt, res Result, id string) {
	log := r.attemptLog(a)
	res.ImageDigest = pinnedDigest(a.spec.Image, res.ImageDigest)
	backoff := 100 * time.Millisecond
	for {
		err := r.cfg.Reporter.Finished(a.ctx, res)
		if err == nil {
			break
		}
		if a.ctx.Err() != nil {
			if a.abandoned() && id != "" {
				r.discard(id, log)
			}
			if a.abandoned() && a.spec.Output != nil {
				r.removeOutput(a.spec.Key)
			}
			r.done(a, false)
			return
		}
		log.Warn("report result failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, 10*time.Second)
		case <-a.ctx.Done():
		}
	}
	log.Info("attempt finished", "reason", res.Reason, "exit_code", res.ExitCode)
	if id != "" {
		r.discard(id, log)
	}
	if a.spec.Output != nil {
		r.removeOutput(a.spec.Key) // after the container: nothing writes there any more
	}
	r.done(a, true)
}

// discard kills and removes a container even when the attempt's context is
// gone (abandoned or closing).
func (r *Runner) discard(id string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := r.removeContainer(ctx, id); err != nil {
		log.Warn("remove container", "err", err)
	}
}
