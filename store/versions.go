package store

import (
	"encoding/json"
	"fmt"
	"maps"
)

// Rolling upgrades. A node applies a command only at a version its binary
// knows (applyCommand refuses a newer one), so while the nodes of a
// cluster run two releases, a write must be at a version every node
// applies, or the older nodes would skip it and their state part from the
// others'. The node proposing a write asks Gate for the cluster's limits
// (node/cluster learns each member's from its heartbeats) and writes it at
// the lowest version that carries its payload when the newest is too new;
// a payload that needs what an older member cannot apply is refused until
// every member runs the new release.

// previousReleaseVersions are the command versions of Gantry 0.9.0, the
// release before nodes said their own: a member that does not say its
// versions applies these.
var previousReleaseVersions = map[string]int{
	"bootstrap": 1, "user.create": 2, "user.update": 4, "token.create": 2, "token.delete": 2, "job.submit": 4, "job.cancel": 2,
	"task.place": 1, "attempt.started": 1, "attempt.ended": 1, "job.purge": 1, "job.rerun": 1, "task.preempt": 1,
	"attempt.report": 1, "queue.create": 1, "queue.update": 1, "queue.delete": 1, "schedule.create": 1, "schedule.update": 1,
	"schedule.delete": 1, "schedule.fire": 1, "node.upsert": 1, "node.state": 2, "node.evict": 1, "node.lost": 1,
	"node.remove": 2, "catalog.publish": 3, "catalog.unpublish": 1, "catalog.accept": 1, "catalog.request": 1,
	"catalog.decide": 1, "catalog.notice.remove": 1, "catalog.pulls": 1, "catalog.trial": 1, "audit.append": 1,
	"inbox.read": 1, "inbox.send": 1, "review.rules": 1, "review.decide": 1, "report.file": 1, "report.dismiss": 1,
	"image.takedown": 1, "image.restore": 1, "user.suspend": 1, "user.restore": 1, "notice.file": 1, "notice.decide": 1,
	"notice.counter": 1, "notice.court": 1, "notice.settings": 1, "registry.blob.link": 1, "registry.blob.unlink": 2,
	"registry.blob.located": 1, "registry.manifest.put": 1, "registry.manifest.delete": 2, "registry.tag.delete": 2,
}

// CommandVersions are the versions this binary applies, by command type.
func CommandVersions() map[string]int {
	out := make(map[string]int, len(commands))
	for t, e := range commands {
		out[t] = e.info().Version
	}
	return out
}

// PreviousReleaseVersions are the versions a member that does not say its
// own applies (Gantry 0.9.0's).
func PreviousReleaseVersions() map[string]int { return maps.Clone(previousReleaseVersions) }

// Limit is the newest version of a command every member of the cluster
// applies, and a member that applies no newer ("" when every member runs
// this binary's).
type Limit func(typ string) (version int, member string)

// Gate returns cmd written at a version limit allows: as it is when its
// version is allowed, else at the allowed version when that carries its
// payload (the versions in between only added what it does not use), else
// an EUnavailable error saying which member holds the write back.
func Gate(cmd []byte, limit Limit) ([]byte, error) {
	if limit == nil {
		return cmd, nil
	}
	var env envelope
	if err := json.Unmarshal(cmd, &env); err != nil {
		return cmd, nil // Apply refuses it, on every node alike
	}
	e, ok := commands[env.Type]
	if !ok {
		return cmd, nil
	}
	max, who := limit(env.Type)
	if env.V <= max {
		return cmd, nil
	}
	need, err := e.lowest(env.Data)
	if err != nil {
		return cmd, nil
	}
	if env.Audit != nil && e.auditsFrom() > need {
		need = e.auditsFrom()
	}
	if max == 0 || need > max {
		return nil, Errorf(EUnavailable, "the cluster is being upgraded: node %s applies %s only up to v%d and this write needs v%d; try again once every node runs this release", who, env.Type, max, need)
	}
	env.V = max
	out, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("gate %s: %w", env.Type, err)
	}
	return out, nil
}

// The lowest version each payload of a command changed since 0.9.0 needs
// (commands.go declares them with lowestFor).

func needsSubmitJob(c *SubmitJob) int {
	for _, in := range c.Spec.Inputs {
		if in.Job != "" {
			return 6
		}
	}
	if c.Spec.Output != nil {
		return 5
	}
	return 4
}

func needsAttemptEnded(c *AttemptEnded) int {
	if c.Output != nil {
		return 2
	}
	return 1
}

func needsReportAttempts(c *ReportAttempts) int {
	for _, r := range c.Reports {
		if r.Ended != nil && r.Ended.Output != nil {
			return 2
		}
	}
	return 1
}

// A registry.blob.link v1 carries the same payload; v2 refuses a link over
// the owner's storage quota, which no user has before user.update v5 can
// be written, that is before every member runs this release.

func needsUpdateUser(c *UpdateUser) int {
	if c.StorageQuota != nil {
		return 5
	}
	return 4
}
