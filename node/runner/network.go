package runner

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
)

// Networks. Each user's tasks on a node share one bridge network of
// their own, so tasks of one job (and of one user) reach each other while
// Docker's isolation between bridge networks keeps every other user's
// tasks out; Docker's default bridge, which all containers would
// otherwise share, is never used. A job that needs no network asks for
// none (Spec.Network = NetworkNone). Networks carry the runner's labels
// and are removed once no container uses them.

// NetworkNone is the Spec.Network of a task with no network at all.
const NetworkNone = "none"

// pruneEvery is how often Sync removes this node's unused networks.
const pruneEvery = time.Minute

// NetworkName is the name of a user's network on a node of a cluster:
// gantry-<first 8 characters of the cluster id>-<node>-u-<user>. The node
// is in the name because nodes may share a Docker daemon (tests do): each
// runner then creates, uses and prunes only its own networks.
func NetworkName(cluster, node, owner string) string {
	c := safeName(cluster)
	if len(c) > 8 {
		c = c[:8]
	}
	return fmt.Sprintf("gantry-%s-%s-u-%s", c, safeName(node), safeName(owner))
}

// networkMode is the Docker network mode of an attempt's container.
func (r *Runner) networkMode(spec Spec) string {
	if spec.Network == NetworkNone {
		return NetworkNone
	}
	return NetworkName(r.cfg.Cluster, r.cfg.Node, spec.Owner)
}

// ensureNetwork makes sure the network of spec's container exists. The
// caller holds netMu for reading until the container is created, so a
// prune cannot remove the network in between.
func (r *Runner) ensureNetwork(ctx context.Context, spec Spec) error {
	name := r.networkMode(spec)
	if name == NetworkNone {
		return nil
	}
	// One check-and-create at a time: the Docker Engine may accept two
	// networks of one name (it did, 28.x), after which neither can be
	// used by name ("is ambiguous"). Launches that start together, such
	// as an array's tasks released at once by their shared input, would
	// otherwise each create one.
	r.netCreateMu.Lock()
	defer r.netCreateMu.Unlock()
	if _, err := r.docker.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	labels := map[string]string{
		LabelManaged: "true", LabelCluster: r.cfg.Cluster, LabelNode: r.cfg.Node, LabelOwner: spec.Owner,
	}
	_, err := r.docker.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		Labels: labels,
		// Containers of the network reach each other; other bridge
		// networks (other users) and the default bridge stay apart.
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "true"},
	})
	switch {
	case err == nil:
		r.log.Info("network created", "network", name, "owner", spec.Owner)
		return nil
	case cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already exists"):
		return nil // created meanwhile by another attempt's launch
	case strings.Contains(err.Error(), "address pool"):
		return fmt.Errorf("create network %s: Docker has no address pool left for another network (one per user with tasks on this node; widen default-address-pools in daemon.json): %w", name, err)
	default:
		return fmt.Errorf("create network %s: %w", name, err)
	}
}

// pruneNetworks removes this node's networks of users with no attempt
// placed here and no container left (inUse: their names), at most once
// per pruneEvery (force: now). Docker's own prune would not do: it
// removes a network that a created, not yet started, container is to
// use. Launches happen only for wanted attempts, whose owners are in use,
// and hold netMu from ensuring the network until the container exists.
func (r *Runner) pruneNetworks(ctx context.Context, inUse map[string]bool, force bool) {
	r.netMu.Lock()
	defer r.netMu.Unlock()
	if !force && time.Since(r.pruned) < pruneEvery {
		return
	}
	r.pruned = time.Now()
	list, err := r.docker.NetworkList(ctx, network.ListOptions{Filters: r.ownFilters()})
	if err != nil {
		r.log.Warn("list networks", "err", err)
		return
	}
	for _, nw := range list {
		if inUse[nw.Labels[LabelOwner]] {
			continue
		}
		if err := r.docker.NetworkRemove(ctx, nw.ID); err != nil {
			r.log.Debug("remove network", "network", nw.Name, "err", err)
			continue
		}
		r.log.Info("network removed", "network", nw.Name)
	}
}
