package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
)

// Container labels. Every container the runner creates carries all of them;
// it only ever lists, follows or removes containers whose managed, cluster
// and node labels match its own.
const (
	LabelManaged = "gantry.managed"
	LabelCluster = "gantry.cluster"
	LabelNode    = "gantry.node"
	LabelJob     = "gantry.job"
	LabelTask    = "gantry.task"
	LabelAttempt = "gantry.attempt"
	LabelOwner   = "gantry.owner"
)

// pullTimeout bounds one image pull.
const pullTimeout = 15 * time.Minute

// maxMessage bounds Result.Message.
const maxMessage = 500

// containerRef is a container found by label.
type containerRef struct {
	ID    string
	Name  string
	State string
	Owner string
}

// containerSet is this node's containers, by attempt.
type containerSet struct {
	byKey map[Key]*containerRef
	// unparsable holds ids of containers with our labels but no valid key.
	unparsable []string
}

// ContainerName is the name the runner gives an attempt's container:
// gantry-<first 8 characters of the cluster id>-<job>-<task>-<attempt>.
// Docker refuses a second container with the same name, so an attempt can
// never run twice on one daemon.
func ContainerName(cluster string, k Key) string {
	c := safeName(cluster)
	if len(c) > 8 {
		c = c[:8]
	}
	return fmt.Sprintf("gantry-%s-%s-%d-%d", c, safeName(k.JobID), k.Task, k.Attempt)
}

func (r *Runner) ownFilters() filters.Args {
	return filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"),
		filters.Arg("label", LabelCluster+"="+r.cfg.Cluster),
		filters.Arg("label", LabelNode+"="+r.cfg.Node),
	)
}

func (r *Runner) listContainers(ctx context.Context) (containerSet, error) {
	list, err := r.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: r.ownFilters()})
	if err != nil {
		return containerSet{}, fmt.Errorf("list containers: %w", err)
	}
	set := containerSet{byKey: make(map[Key]*containerRef, len(list))}
	for _, c := range list {
		k, ok := keyFromLabels(c.Labels)
		if !ok {
			set.unparsable = append(set.unparsable, c.ID)
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		set.byKey[k] = &containerRef{ID: c.ID, Name: name, State: string(c.State), Owner: c.Labels[LabelOwner]}
	}
	return set, nil
}

func keyFromLabels(l map[string]string) (Key, bool) {
	task, err1 := strconv.Atoi(l[LabelTask])
	att, err2 := strconv.Atoi(l[LabelAttempt])
	if l[LabelJob] == "" || err1 != nil || err2 != nil {
		return Key{}, false
	}
	return Key{JobID: l[LabelJob], Task: task, Attempt: att}, true
}

func (r *Runner) labels(spec Spec) map[string]string {
	return map[string]string{
		LabelManaged: "true",
		LabelCluster: r.cfg.Cluster,
		LabelNode:    r.cfg.Node,
		LabelJob:     spec.JobID,
		LabelTask:    strconv.Itoa(spec.Task),
		LabelAttempt: strconv.Itoa(spec.Attempt),
		LabelOwner:   spec.Owner,
	}
}

// containerEnv is the user's environment plus the GANTRY_* variables, which
// win over user values of the same name; sorted for a stable config.
func containerEnv(spec Spec) []string {
	env := make(map[string]string, len(spec.Env)+4)
	for k, v := range spec.Env {
		env[k] = v
	}
	env["GANTRY_JOB_ID"] = spec.JobID
	env["GANTRY_TASK_INDEX"] = strconv.Itoa(spec.Task)
	env["GANTRY_TASK_COUNT"] = strconv.Itoa(spec.TaskCount)
	env["GANTRY_ATTEMPT"] = strconv.Itoa(spec.Attempt)
	if spec.GenAI {
		env["GANTRY_GENAI"] = "1"
	}
	if len(spec.GPUs) > 0 {
		// NVIDIA's runtime shows the container only its devices, and CUDA
		// takes UUIDs or indices in CUDA_VISIBLE_DEVICES: the ids as
		// declared. A path-mode device has no id CUDA knows; it gets the
		// device's index on this node.
		ids := make([]string, len(spec.GPUs))
		cuda := make([]string, len(spec.GPUs))
		for i, g := range spec.GPUs {
			ids[i] = g.ID
			cuda[i] = g.ID
			if g.Mode == GPUPath {
				cuda[i] = strconv.Itoa(g.Index)
			}
		}
		env["GANTRY_GPUS"] = strings.Join(ids, ",")
		env["CUDA_VISIBLE_DEVICES"] = strings.Join(cuda, ",")
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// createContainer creates the attempt's container, unprivileged and limited.
// Errors: a conflict (cerrdefs.IsConflict) when the attempt already has a
// container, invalid argument for a spec Docker rejects.
func (r *Runner) createContainer(ctx context.Context, spec Spec, inputs []string, output string) (string, error) {
	cfg, host := r.containerSpec(spec)
	// Inputs are bind mounts of the node's cache, read-only: no task can
	// change what the others on the node read.
	for i, dir := range inputs {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: dir, Target: spec.Inputs[i].Path, ReadOnly: true})
	}
	// The output directory is the attempt's own (output.go).
	if output != "" {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: output, Target: spec.Output.Path})
	}
	resp, err := r.docker.ContainerCreate(ctx, cfg, host, nil, nil, ContainerName(r.cfg.Cluster, spec.Key))
	if err != nil {
		return "", fmt.Errorf("create container: %w", err)
	}
	return resp.ID, nil
}

// containerSpec is the create request for the attempt's container: its
// image, command and environment, its labels, its limits, and exactly the
// GPUs the store assigned to it (device mappings for path-mode devices,
// one NVIDIA device request naming the others). A device mapping is not
// privilege: the container stays unprivileged with every capability
// dropped.
func (r *Runner) containerSpec(spec Spec) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:      spec.Image,
		Env:        containerEnv(spec),
		WorkingDir: spec.WorkDir,
		Labels:     r.labels(spec),
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = spec.Command
	}
	pids := r.cfg.PidsLimit
	host := &container.HostConfig{
		// json-file keeps the whole output readable through the API until
		// the container is removed, which re-attaching relies on.
		LogConfig:   container.LogConfig{Type: "json-file"},
		NetworkMode: container.NetworkMode(r.networkMode(spec)), // network.go
		Privileged:  false,
		CapDrop:     []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges"},
		Resources: container.Resources{
			NanoCPUs:  spec.CPUMillis * 1_000_000,
			Memory:    spec.MemoryBytes,
			PidsLimit: &pids,
		},
	}
	if spec.MemoryBytes > 0 {
		host.Resources.MemorySwap = spec.MemoryBytes // no swap beyond the limit
	}
	var nvidia []string
	for _, g := range spec.GPUs {
		switch g.Mode {
		case GPUPath:
			host.Resources.Devices = append(host.Resources.Devices,
				container.DeviceMapping{PathOnHost: g.ID, PathInContainer: g.ID, CgroupPermissions: "rwm"})
		default:
			nvidia = append(nvidia, g.ID)
		}
	}
	if len(nvidia) > 0 {
		host.Resources.DeviceRequests = []container.DeviceRequest{{Driver: "nvidia", DeviceIDs: nvidia, Capabilities: [][]string{{"gpu"}}}}
	}
	return cfg, host
}

// ensureImage returns the local image id of ref, pulling it first if Docker
// does not have it.
func (r *Runner) ensureImage(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", errors.New("no image given")
	}
	img, err := r.docker.ImageInspect(ctx, ref)
	if err == nil {
		return img.ID, nil
	}
	if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	r.log.Info("pulling image", "image", ref)
	pctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	opts := image.PullOptions{}
	if r.cfg.RegistryAuth != nil {
		opts.RegistryAuth = r.cfg.RegistryAuth(ref)
	}
	body, err := r.docker.ImagePull(pctx, ref, opts)
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", ref, err)
	}
	err = readJSONStream(body)
	body.Close()
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", ref, err)
	}
	img, err = r.docker.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("inspect pulled image %s: %w", ref, err)
	}
	return img.ID, nil
}

// readJSONStream drains a Docker progress stream (pull, load) and returns
// the error it reports, if any.
func readJSONStream(rd io.Reader) error {
	dec := json.NewDecoder(rd)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// removeContainer kills and removes a container; a missing one is fine.
func (r *Runner) removeContainer(ctx context.Context, id string) error {
	err := r.docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", shortID(id), err)
	}
	return nil
}

// stopGracefully sends SIGTERM, then SIGKILL once grace has passed.
func (r *Runner) stopGracefully(ctx context.Context, id string, grace time.Duration, log *slog.Logger) {
	secs := int(grace.Round(time.Second) / time.Second)
	if err := r.docker.ContainerStop(ctx, id, container.StopOptions{Signal: "SIGTERM", Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) && ctx.Err() == nil {
		log.Warn("stop container", "err", err)
	}
}

// kill sends SIGKILL and reports whether it hit a running container; a
// container that already stopped is not an error.
func (r *Runner) kill(ctx context.Context, id string) (bool, error) {
	err := r.docker.ContainerKill(ctx, id, "KILL")
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err):
		return false, nil
	}
	return false, fmt.Errorf("kill container %s: %w", shortID(id), err)
}

func parseDockerTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// pullFailure is what the job's owner is told of a failed pull: what kind
// of failure, never Docker's own words, which can quote the body a remote
// server answered with (a request forgery would read it back through the
// attempt). The node's log has the whole error.
func pullFailure(image string, err error) string {
	msg := strings.ToLower(err.Error())
	kind := "failed"
	switch {
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "dial tcp"):
		kind = "failed: registry unreachable"
	case strings.Contains(msg, "not found") || strings.Contains(msg, "manifest unknown"):
		kind = "failed: not found"
	case strings.Contains(msg, "unauthorized") || strings.Contains(msg, "denied") || strings.Contains(msg, "authentication required"):
		kind = "failed: access denied"
	case strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "timeout"):
		kind = "failed: timed out"
	}
	return truncate(fmt.Sprintf("pulling %s %s (the node's log has Docker's answer)", image, kind))
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage] + "…"
}
