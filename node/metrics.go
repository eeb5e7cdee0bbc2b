package node

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/store"
)

// registerMetrics adds what /metrics reads at each scrape from the store
// (jobs, queue, nodes), from Raft (leader, voters) and from the data
// directory's file system. Every replica holds the whole state, so the
// store's figures are the cluster's, the same on every node: aggregate
// them across nodes with max, not sum. deploy/prometheus uses them.
func (n *Node) registerMetrics() {
	st := n.store
	n.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gantry_queue_depth", Help: "Queued tasks ready for placement."}, func() float64 {
			d, _ := st.QueueDepth()
			return float64(d)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gantry_jobs_running", Help: "Jobs in state running."}, func() float64 {
			c, _ := st.CountJobs()
			return float64(c[store.StateRunning])
		}),
		stateCollector{st},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gantry_raft_has_leader",
			Help: "1 when this node knows the cluster's leader, 0 while there is none (an election, lost quorum)."}, func() float64 {
			if _, id := n.raft.Leader(); id != "" {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gantry_raft_is_leader", Help: "1 on the node that leads the cluster."}, func() float64 {
			if n.raft.IsLeader() {
				return 1
			}
			return 0
		}),
		votesCollector{n},
		diskCollector{dir: n.cfg.DataDir},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gantry_raft_applied_index",
			Help: "The last Raft log index this node's state machine applied (entries in the log, batches counting once)."}, func() float64 {
			return float64(st.AppliedIndex())
		}),
	)
	// Commands per batch is the ratio of the two counters of a path.
	pc := n.cluster.Proposals()
	const (
		helpProposals = "Commands proposed on this node and committed: while it led (path=leader) or forwarded to the leader (path=forwarded)."
		helpBatches   = "What this node's committed proposals took: Raft entries while it led (path=leader), forward calls to the leader (path=forwarded)."
	)
	for _, c := range []struct {
		name, help, path string
		v                *atomic.Uint64
	}{
		{"gantry_proposals_total", helpProposals, "leader", &pc.LeaderCommands},
		{"gantry_proposals_total", helpProposals, "forwarded", &pc.ForwardedCommands},
		{"gantry_proposal_batches_total", helpBatches, "leader", &pc.LeaderEntries},
		{"gantry_proposal_batches_total", helpBatches, "forwarded", &pc.Forwards},
	} {
		v := c.v
		n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help,
			ConstLabels: prometheus.Labels{"path": c.path}}, func() float64 { return float64(v.Load()) }))
	}
	n.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gantry_attempt_reports_total",
			Help: "Attempt starts and ends this node's runner reported and the cluster recorded."}, func() float64 {
			r, _ := n.reports.Counts()
			return float64(r)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gantry_attempt_report_commands_total",
			Help: "The attempt.report commands those reports took (one per short interval)."}, func() float64 {
			_, c := n.reports.Counts()
			return float64(c)
		}),
	)
}

var (
	descJobs = prometheus.NewDesc("gantry_jobs", "Jobs in the cluster by state (every replica reports the cluster's).",
		[]string{"state"}, nil)
	descJobsEnded = prometheus.NewDesc("gantry_jobs_ended_total",
		"Jobs that reached a final state (succeeded, failed, cancelled) in entries this node applied since it started; the cluster's jobs, on every replica.",
		[]string{"state"}, nil)
	descNodes     = prometheus.NewDesc("gantry_nodes", "Registered nodes by state (ready, draining, down).", []string{"state"}, nil)
	descNodeUp    = prometheus.NewDesc("gantry_node_up", "1 while a node heartbeats (ready or draining), 0 once the leader marked it down.", []string{"node"}, nil)
	descNodeTasks = prometheus.NewDesc("gantry_node_running_tasks", "Tasks placed on a node and not ended.", []string{"node"}, nil)
	descNodeCPU   = prometheus.NewDesc("gantry_node_cpu_millicores", "A node's CPU: what it offers (capacity) and what placed tasks hold (allocated).",
		[]string{"node", "kind"}, nil)
	descNodeMemory = prometheus.NewDesc("gantry_node_memory_bytes", "A node's memory: what it offers (capacity) and what placed tasks hold (allocated).",
		[]string{"node", "kind"}, nil)
)

// stateCollector reports jobs and nodes as the replicated state has them.
type stateCollector struct{ st *store.Store }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descJobsEnded, descNodes, descNodeUp, descNodeTasks, descNodeCPU, descNodeMemory} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	if counts, err := c.st.CountJobs(); err == nil {
		for _, s := range store.States {
			ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(counts[s]), s)
		}
	}
	for s, v := range c.st.JobsEnded() {
		ch <- prometheus.MustNewConstMetric(descJobsEnded, prometheus.CounterValue, float64(v), s)
	}
	nodes, err := c.st.Nodes()
	if err != nil {
		return
	}
	by := map[string]int{store.NodeReady: 0, store.NodeDraining: 0, store.NodeDown: 0}
	for _, nd := range nodes {
		by[nd.State]++
		up := 1.0
		if nd.State == store.NodeDown {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descNodeUp, prometheus.GaugeValue, up, nd.Name)
		ch <- prometheus.MustNewConstMetric(descNodeTasks, prometheus.GaugeValue, float64(nd.Running), nd.Name)
		ch <- prometheus.MustNewConstMetric(descNodeCPU, prometheus.GaugeValue, float64(nd.Capacity.CPU), nd.Name, "capacity")
		ch <- prometheus.MustNewConstMetric(descNodeCPU, prometheus.GaugeValue, float64(nd.Allocated.CPU), nd.Name, "allocated")
		ch <- prometheus.MustNewConstMetric(descNodeMemory, prometheus.GaugeValue, float64(nd.Capacity.Memory), nd.Name, "capacity")
		ch <- prometheus.MustNewConstMetric(descNodeMemory, prometheus.GaugeValue, float64(nd.Allocated.Memory), nd.Name, "allocated")
	}
	for s, k := range by {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(k), s)
	}
}

var (
	descVoters        = prometheus.NewDesc("gantry_raft_voters", "Voting members of the Raft configuration (reported by the leader).", nil, nil)
	descHealthyVoters = prometheus.NewDesc("gantry_raft_healthy_voters", "Voters the leader heard from in the last two seconds (reported by the leader).", nil, nil)
	descTolerance     = prometheus.NewDesc("gantry_raft_failure_tolerance",
		"How many more voters may fail with the cluster still writable (reported by the leader).", nil, nil)
)

// votesCollector reports the voting membership from the leader, which
// alone knows who heartbeats; followers report nothing, so the series
// exist once per cluster.
type votesCollector struct{ n *Node }

func (c votesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descVoters
	ch <- descHealthyVoters
	ch <- descTolerance
}

func (c votesCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.n.raft.IsLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := c.n.cluster.Roles(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descVoters, prometheus.GaugeValue, float64(r.Voters))
	ch <- prometheus.MustNewConstMetric(descHealthyVoters, prometheus.GaugeValue, float64(r.HealthyVoters))
	ch <- prometheus.MustNewConstMetric(descTolerance, prometheus.GaugeValue, float64(r.FailureTolerance))
}

var (
	descDiskFree = prometheus.NewDesc("gantry_data_disk_free_bytes",
		"Bytes free for Gantry on the file system of its data directory (blobs, logs, state).", nil, nil)
	descDiskSize = prometheus.NewDesc("gantry_data_disk_size_bytes", "Size of the file system of the data directory.", nil, nil)
)

// diskCollector reports the data directory's file system (disk_linux.go
// reads it; elsewhere it reports nothing).
type diskCollector struct{ dir string }

func (c diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDiskFree
	ch <- descDiskSize
}

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	free, size, ok := diskSpace(c.dir)
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(free))
	ch <- prometheus.MustNewConstMetric(descDiskSize, prometheus.GaugeValue, float64(size))
}
