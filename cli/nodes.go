package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"gantry/wire"
)

func nodeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "node", Short: "List and manage nodes"}
	ls := &cobra.Command{
		Use: "ls", Short: "List nodes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			list, err := cl.NodeList(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tROLE\tLEADER\tADDRESS\tCPU (alloc/used/cap)\tMEMORY (alloc/used/cap)\tGPUS (in use/cap)\tTASKS\tLABELS")
			for _, n := range list.Nodes {
				leader := ""
				if n.Leader {
					leader = "*"
				}
				state := n.State
				if state == "draining" && n.Running == 0 {
					state = "drained" // nothing left running: safe to stop
				}
				usedCPU, usedMem := "-", "-"
				if n.Used != nil {
					usedCPU, usedMem = fmt.Sprintf("%.1f", float64(n.Used.CPU)/1000), human(n.Used.Memory)
				}
				labels := "-"
				if len(n.Labels) > 0 {
					var kv []string
					for k, v := range n.Labels {
						kv = append(kv, k+"="+v)
					}
					sort.Strings(kv)
					labels = strings.Join(kv, ",")
				}
				gpus := "-"
				if len(n.Devices) > 0 {
					gpus = fmt.Sprintf("%d/%d", n.DevicesInUse(), len(n.Devices))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f/%s/%.1f\t%s/%s/%s\t%s\t%d\t%s\n", n.Name, state, dash(n.Role), leader, n.APIAddr,
					float64(n.Allocated.CPU)/1000, usedCPU, float64(n.Capacity.CPU)/1000, human(n.Allocated.Memory), usedMem, human(n.Capacity.Memory), gpus, n.Running, labels)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d voter(s), %d healthy: the cluster stays writable with %d of them down\n",
				list.Voters, list.HealthyVoters, list.FailureTolerance)
			return nil
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a node: its load and each GPU with the tasks holding it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			n, err := cl.Node(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), n)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Node %s  %s  %s\n  cpu %.1f/%.1f allocated  memory %s/%s allocated  tasks %d\n", n.Name, strings.ToUpper(n.State), n.APIAddr,
				float64(n.Allocated.CPU)/1000, float64(n.Capacity.CPU)/1000, human(n.Allocated.Memory), human(n.Capacity.Memory), n.Running)
			if len(n.Devices) == 0 {
				fmt.Fprintln(w, "  no GPUs")
				return nil
			}
			fmt.Fprintf(w, "  GPUs %d/%d in use\n", n.DevicesInUse(), len(n.Devices))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  INDEX\tGPU\tMODE\tSHARED\tHELD BY")
			for i, d := range n.Devices {
				shared := "no"
				if d.Shareable {
					shared = "yes"
				}
				var by []string
				for _, h := range d.Holders {
					by = append(by, fmt.Sprintf("%s task %d (attempt %d)", h.JobID, h.Task, h.N))
				}
				if hidden := d.InUse - len(d.Holders); hidden > 0 {
					by = append(by, fmt.Sprintf("%d task(s) of other users", hidden))
				}
				held := "-"
				if len(by) > 0 {
					held = strings.Join(by, "; ")
				}
				fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", i, d.ID, d.Mode, shared, held)
			}
			return tw.Flush()
		},
	}
	action := func(use, short, verb string) *cobra.Command {
		var deadline time.Duration
		c := &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := newClient()
				if err != nil {
					return err
				}
				n, err := cl.DrainNode(cmd.Context(), args[0], verb, deadline)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", n.Name, n.State)
				return nil
			},
		}
		if verb == "drain" {
			c.Flags().DurationVar(&deadline, "deadline", 0, "move tasks still running there to other nodes after this long (default: let them finish)")
		}
		return c
	}
	c.AddCommand(ls, show, action("drain", "Stop placing new tasks on a node", "drain"), action("ready", "Let a drained node take tasks again", "ready"),
		action("remove", "Remove a node from the cluster (its tasks are rescheduled)", "remove"))
	return c
}

// human is b in binary units ("1.5 GiB").
func human(b int64) string { return humanize.IBytes(uint64(max(b, 0))) }

func userCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Manage accounts (admin)"}
	var admin bool
	var password string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create an account", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			if password == "" {
				return fmt.Errorf("--password is required")
			}
			if err := cl.CreateUser(cmd.Context(), args[0], password, admin); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created user %s\n", args[0])
			return nil
		},
	}
	create.Flags().BoolVar(&admin, "admin", false, "make the account an administrator")
	create.Flags().StringVarP(&password, "password", "p", "", "initial password (8+ characters)")

	ls := &cobra.Command{
		Use: "ls", Short: "List accounts with their quotas, what their tasks hold now and their storage", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			users, err := cl.Users(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), users)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tTASKS\tCPU (used/quota)\tMEMORY (used/quota)\tSTORAGE (used/quota)")
			for _, u := range users {
				role := "user"
				if u.Admin {
					role = "admin"
				}
				if u.Disabled {
					role += " (disabled)"
				}
				var use wire.Usage
				if u.Usage != nil {
					use = *u.Usage
				}
				var q wire.Resources
				if u.Quota != nil {
					q = *u.Quota
				}
				limit := func(v int64, f func(int64) string) string {
					if v == 0 {
						return "-"
					}
					return f(v)
				}
				cpu := func(m int64) string { return fmt.Sprintf("%.1f", float64(m)/1000) }
				var stored int64
				if u.Storage != nil {
					stored = u.Storage.Bytes
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s/%s\t%s/%s\t%s/%s\n", u.Name, role, use.Tasks,
					cpu(use.Allocated.CPU), limit(q.CPU, cpu), human(use.Allocated.Memory), limit(q.Memory, human),
					human(stored), limit(u.StorageQuota, human))
			}
			return tw.Flush()
		},
	}

	var qcpu, qmem, qstorage string
	var qgpus int
	quota := &cobra.Command{
		Use:   "quota NAME",
		Short: "Bound what a user's running tasks may hold at once and what their repositories may store (0 or no flag: no limit)",
		Long: "Sets a user's quota: the CPU, memory and GPUs their placed tasks may hold at once, and the storage\n" +
			"their images, data and task outputs may take. Tasks beyond it wait queued; a push or an output over\n" +
			"the storage quota is refused. Each call replaces the whole quota; 0 (or leaving a flag out) is no limit.",
		Example: "  gantry user quota alice --cpu 8 --memory 16G --storage 50G\n  gantry user quota alice   # remove alice's quota",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q wire.Resources
			var err error
			if qcpu != "" && qcpu != "0" {
				if q.CPU, err = parseCPU(qcpu); err != nil {
					return fmt.Errorf("--cpu: %w", err)
				}
			}
			if qmem != "" && qmem != "0" {
				if q.Memory, err = parseBytes(qmem); err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
			}
			q.GPUs = qgpus
			var storage int64
			if qstorage != "" && qstorage != "0" {
				if storage, err = parseBytes(qstorage); err != nil {
					return fmt.Errorf("--storage: %w", err)
				}
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			u, err := cl.SetQuotas(cmd.Context(), args[0], q, storage)
			if err != nil {
				return err
			}
			if u.Quota == nil && u.StorageQuota == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s has no quota\n", u.Name)
				return nil
			}
			if u.Quota != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s may hold at once: %s\n", u.Name, quotaText(*u.Quota))
			}
			if u.StorageQuota > 0 {
				var stored int64
				if u.Storage != nil {
					stored = u.Storage.Bytes
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s may store: %s (%s used)\n", u.Name, human(u.StorageQuota), human(stored))
			}
			return nil
		},
	}
	quota.Flags().StringVar(&qcpu, "cpu", "", "CPUs (\"8\", \"500m\")")
	quota.Flags().StringVar(&qmem, "memory", "", "memory (\"16G\", \"512M\")")
	quota.Flags().IntVar(&qgpus, "gpus", 0, "GPUs")
	quota.Flags().StringVar(&qstorage, "storage", "", "storage of images, data and outputs (\"50G\", \"500M\")")
	weight := &cobra.Command{
		Use:     "weight NAME WEIGHT",
		Short:   "Set a user's fair-share weight against the other users of a queue (default 1)",
		Example: "  gantry user weight alice 2   # alice's tasks get twice bob's share when both wait",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := strconv.ParseFloat(args[1], 64)
			if err != nil || !(w > 0) {
				return fmt.Errorf("weight: %q is not a number above 0, e.g. 2 or 0.5", args[1])
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			u, err := cl.SetWeight(cmd.Context(), args[0], w)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s has fair-share weight %s\n", u.Name, strconv.FormatFloat(u.Weight, 'g', -1, 64))
			return nil
		},
	}
	c.AddCommand(create, ls, quota, weight)
	c.AddCommand(suspendCmds(g)...)
	return c
}

func quotaText(q wire.Resources) string {
	var parts []string
	if q.CPU > 0 {
		parts = append(parts, fmt.Sprintf("%.1f CPU", float64(q.CPU)/1000))
	}
	if q.Memory > 0 {
		parts = append(parts, human(q.Memory)+" memory")
	}
	if q.GPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d GPUs", q.GPUs))
	}
	return strings.Join(parts, ", ")
}
