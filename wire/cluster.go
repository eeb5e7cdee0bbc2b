package wire

import "time"

// Node is a member of the cluster that can run tasks.
type Node struct {
	Name      string            `json:"name"`
	Addr      string            `json:"addr"`     // cluster address (Raft, node-to-node)
	APIAddr   string            `json:"api_addr"` // HTTP address
	State     string            `json:"state"`
	Capacity  Resources         `json:"capacity"`
	Allocated Resources         `json:"allocated"`
	Running   int               `json:"running"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Devices are the node's GPUs, in its order (the device index), with
	// the attempts holding each.
	Devices []Device `json:"devices,omitempty"`
	// DrainDeadline is when a draining node's remaining tasks are moved to
	// other nodes; zero lets them finish.
	DrainDeadline time.Time `json:"drain_deadline,omitzero"`
	Joined        time.Time `json:"joined"`
	Updated       time.Time `json:"updated"`
	// Leader is set on the node that leads the cluster (GET /nodes only).
	Leader bool `json:"leader"`
	// Role is the node's part in Raft: leader, voter, promoting (a vote
	// on its way: caught up and waiting to be promoted, or promoted and
	// not yet in force), nonvoter (the log, no vote) or worker. A node's
	// state says whether it takes tasks; its role, whether it votes.
	Role string `json:"role,omitempty"`
	// Used is what the machine actually uses now, when it answered quickly.
	Used *Resources `json:"used,omitempty"`
}

// GPU device modes (Device.Mode).
const (
	DeviceNVIDIA = "nvidia" // an NVIDIA index or UUID, for NVIDIA's container runtime
	DevicePath   = "path"   // a host device file, passed at the same path
)

// Device is one GPU of a node.
type Device struct {
	ID   string `json:"id"`
	Mode string `json:"mode"`
	// Shareable devices may be held by several tasks at once.
	Shareable bool `json:"shareable,omitempty"`
	// InUse is how many attempts hold the device now; Holders are those
	// of them the caller may see (all of them for an admin, a user's own).
	InUse   int          `json:"in_use"`
	Holders []AttemptRef `json:"holders,omitempty"`
}

// AttemptRef names one attempt of one task of a job.
type AttemptRef struct {
	JobID string `json:"job"`
	Task  int    `json:"task"`
	N     int    `json:"attempt"`
}

// DevicesInUse counts the node's devices held by at least one attempt.
func (n *Node) DevicesInUse() int {
	used := 0
	for _, d := range n.Devices {
		if d.InUse > 0 {
			used++
		}
	}
	return used
}

// NodeList is GET /api/v1/nodes.
type NodeList struct {
	Nodes []Node `json:"nodes"`
	Votes
}

// Votes is the cluster's voting membership: how many vote, how many of
// those the leader hears from, and how many may fail with the cluster still
// writable (Consul autopilot's failure tolerance: healthy voters minus a
// quorum of all voters).
type Votes struct {
	Voters           int `json:"voters"`
	HealthyVoters    int `json:"healthy_voters"`
	FailureTolerance int `json:"failure_tolerance"`
}

// Cluster is GET /api/v1/cluster.
type Cluster struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Leader  string    `json:"leader"`
	Nodes   int       `json:"nodes"`
}

// Member is one server of the Raft configuration.
type Member struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Voter  bool   `json:"voter"`
	Leader bool   `json:"leader"`
}

// MemberList is GET /api/v1/cluster/members (admin).
type MemberList struct {
	Members []Member `json:"members"`
}

// JoinCommand is GET /api/v1/cluster/join-command (admin).
type JoinCommand struct {
	Command string `json:"command"`
	Token   string `json:"token"`
}

// BackupRequest is the body of POST /api/v1/backup: the blobs the backup
// directory already holds (digests), which the archive leaves out.
type BackupRequest struct {
	Have []string `json:"have,omitempty"`
}
