package runner

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"gantry/node/firewall"
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
// gantry-<cluster id>-<node>-u-<user>. The node is in the name because
// nodes may share a Docker daemon (tests do): each runner then creates,
// uses and prunes only its own networks. The whole cluster id, not a
// prefix: a ULID begins with its time, so two clusters made in the same
// minute share a prefix, and two runners creating one name at once make
// two networks no container can name.
func NetworkName(cluster, node, owner string) string {
	return fmt.Sprintf("gantry-%s-%s-u-%s", safeName(cluster), safeName(node), safeName(owner))
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
	// Docker does not keep network names unique: two creates at once make
	// two networks of one name, which no container can then name. One
	// launch at a time checks and creates.
	r.netCreate.Lock()
	defer r.netCreate.Unlock()
	if r.nets[name] {
		return nil
	}
	if nw, err := r.docker.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		if err := r.guard.Protect(firewall.BridgeName(nw.ID, nw.Options)); err != nil {
			return err
		}
		r.nets[name] = true
		return nil
	} else if strings.Contains(err.Error(), "ambiguous") {
		// Duplicates left by an older binary: keep the one in use (or the
		// first), remove the rest.
		list, lerr := r.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		if lerr != nil {
			return fmt.Errorf("list networks %s: %w", name, lerr)
		}
		kept := 0
		for _, nw := range list {
			if nw.Name != name {
				continue
			}
			if kept > 0 && r.docker.NetworkRemove(ctx, nw.ID) == nil {
				r.guard.Release(firewall.BridgeName(nw.ID, nw.Options))
				continue
			}
			if err := r.guard.Protect(firewall.BridgeName(nw.ID, nw.Options)); err != nil {
				return err
			}
			kept++
		}
		if kept == 1 {
			r.nets[name] = true
			return nil
		}
		return fmt.Errorf("network %s: %d networks of that name are in use", name, kept)
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	labels := map[string]string{
		LabelManaged: "true", LabelCluster: r.cfg.Cluster, LabelNode: r.cfg.Node, LabelOwner: spec.Owner,
	}
	created, err := r.docker.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		Labels: labels,
		// Containers of the network reach each other; other bridge
		// networks (other users) and the default bridge stay apart.
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "true"},
	})
	switch {
	case err == nil:
		r.log.Info("network created", "network", name, "owner", spec.Owner)
		// No container is on it before its guard rules are.
		if err := r.guard.Protect(firewall.BridgeName(created.ID, nil)); err != nil {
			return err
		}
		r.nets[name] = true
		return nil
	case cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already exists"):
		// Made by another runner of this node name (a restart): guard it too.
		nw, err := r.docker.NetworkInspect(ctx, name, network.InspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect network %s: %w", name, err)
		}
		if err := r.guard.Protect(firewall.BridgeName(nw.ID, nw.Options)); err != nil {
			return err
		}
		r.nets[name] = true
		return nil
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
			// Rules flushed since (an iptables reload) come back.
			if err := r.guard.Protect(firewall.BridgeName(nw.ID, nw.Options)); err != nil {
				r.log.Warn("firewall guard", "network", nw.Name, "err", err)
			}
			continue
		}
		if err := r.docker.NetworkRemove(ctx, nw.ID); err != nil {
			r.log.Debug("remove network", "network", nw.Name, "err", err)
			continue
		}
		r.guard.Release(firewall.BridgeName(nw.ID, nw.Options))
		delete(r.nets, nw.Name) // no launch is between ensure and create now
		r.log.Info("network removed", "network", nw.Name)
	}
}
