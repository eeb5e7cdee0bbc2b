package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"gantry/wire"
)

// queueFlags are the settings create and update take; update sends only
// the flags given.
type queueFlags struct {
	weight                    float64
	limitCPU, limitMemory     string
	limitGPUs                 int
	borrow                    bool
	users                     []string
	priority                  int
	maxRunTime, grace, placer string
	constraints               []string
}

func (f *queueFlags) register(fl *pflag.FlagSet) {
	fl.Float64Var(&f.weight, "weight", 1, "share of the cluster when queues compete (guaranteed: weight / sum of all weights)")
	fl.StringVar(&f.limitCPU, "limit-cpu", "", "most CPU its tasks hold at once (\"16\", \"500m\"; 0: no limit)")
	fl.StringVar(&f.limitMemory, "limit-memory", "", "most memory its tasks hold at once (\"64G\"; 0: no limit)")
	fl.IntVar(&f.limitGPUs, "limit-gpus", 0, "most GPUs its tasks hold at once (0: no limit)")
	fl.BoolVar(&f.borrow, "borrow", false, "may use idle capacity beyond its guarantee (taken back by preemption when needed)")
	fl.StringSliceVar(&f.users, "users", nil, "who may submit to it (comma-separated; empty: everyone)")
	fl.IntVar(&f.priority, "priority", 0, "priority of a job that sets none")
	fl.StringVar(&f.maxRunTime, "max-run-time", "", "longest timeout a job may have, and the default (e.g. 2h; 0: none)")
	fl.StringVar(&f.grace, "grace", "", "a preempted task's time between SIGTERM and SIGKILL (default 30s)")
	fl.StringVar(&f.placer, "placement", "", "spread (default: tasks over nodes) or pack (fill nodes, keep whole ones free)")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "its tasks run only on nodes with label K=V (repeatable)")
}

// request builds the body from the flags that were given (all of them for
// a create).
func (f *queueFlags) request(fl *pflag.FlagSet, all bool) (wire.QueueRequest, error) {
	var r wire.QueueRequest
	set := func(name string) bool { return all || fl.Changed(name) }
	if set("weight") {
		r.Weight = &f.weight
	}
	if set("limit-cpu") || set("limit-memory") || set("limit-gpus") {
		var l wire.Resources
		var err error
		if f.limitCPU != "" && f.limitCPU != "0" {
			if l.CPU, err = parseCPU(f.limitCPU); err != nil {
				return r, fmt.Errorf("--limit-cpu: %w", err)
			}
		}
		if f.limitMemory != "" && f.limitMemory != "0" {
			if l.Memory, err = parseBytes(f.limitMemory); err != nil {
				return r, fmt.Errorf("--limit-memory: %w", err)
			}
		}
		l.GPUs = f.limitGPUs
		r.Limit = &l
	}
	if set("borrow") {
		r.Borrow = &f.borrow
	}
	if set("users") {
		r.Users = &f.users
	}
	if set("priority") {
		r.Priority = &f.priority
	}
	for _, d := range []struct {
		flag, value string
		to          **wire.Duration
	}{{"max-run-time", f.maxRunTime, &r.MaxRunTime}, {"grace", f.grace, &r.Grace}} {
		if !fl.Changed(d.flag) {
			continue
		}
		v, err := time.ParseDuration(d.value)
		if d.value == "0" {
			v, err = 0, nil
		}
		if err != nil {
			return r, fmt.Errorf("--%s: %q is not a duration such as 90s or 2h", d.flag, d.value)
		}
		w := wire.Duration(v)
		*d.to = &w
	}
	if fl.Changed("placement") {
		r.Placement = &f.placer
	}
	if fl.Changed("constraint") {
		c, err := parseKV("--constraint", f.constraints)
		if err != nil {
			return r, err
		}
		r.Constraints = &c
	}
	return r, nil
}

func queueCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "queue",
		Short: "Queues: shares of the cluster with weights, limits and borrowing (admins create and change them)",
	}
	var cf queueFlags
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a queue (admin)",
		Example: "  gantry queue create gpu --weight 3 --borrow --constraint gpu=yes --users alice,bob\n  gantry queue create urgent --weight 1 --priority 100 --max-run-time 1h",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := cf.request(cmd.Flags(), true)
			if err != nil {
				return err
			}
			r.Name = args[0]
			cl, err := newClient()
			if err != nil {
				return err
			}
			q, err := cl.CreateQueue(cmd.Context(), r)
			if err != nil {
				return err
			}
			return printQueueResult(cmd.OutOrStdout(), g, q, "created")
		},
	}
	cf.register(create.Flags())
	var uf queueFlags
	update := &cobra.Command{
		Use:     "update NAME",
		Short:   "Change a queue's settings: only the flags given (admin)",
		Example: "  gantry queue update gpu --weight 1\n  gantry queue update default --borrow=false",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := uf.request(cmd.Flags(), false)
			if err != nil {
				return err
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			q, err := cl.UpdateQueue(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			return printQueueResult(cmd.OutOrStdout(), g, q, "updated")
		},
	}
	uf.register(update.Flags())
	ls := &cobra.Command{
		Use: "ls", Short: "List queues with their guaranteed share, what they hold and what waits", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			qs, err := cl.Queues(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), qs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tWEIGHT\tGUARANTEED\tBORROW\tLIMIT\tRUNNING\tCPU HELD\tQUEUED\tPLACEMENT\tUSERS")
			for _, q := range qs {
				fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", q.Name, strconv.FormatFloat(q.Weight, 'g', -1, 64),
					100*q.Guaranteed, yesNo(q.Borrow), limitText(q.Limit), q.Usage.Tasks, cores(q.Usage.Allocated.CPU), q.Queued,
					q.Placement, usersText(q.Users))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a queue", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			q, err := cl.Queue(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), q)
			}
			printQueue(cmd.OutOrStdout(), q)
			return nil
		},
	}
	rm := &cobra.Command{
		Use: "rm NAME", Short: "Remove a queue that has no queued or running task (admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			if err := cl.DeleteQueue(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queue %s removed\n", args[0])
			return nil
		},
	}
	c.AddCommand(create, ls, show, update, rm)
	return c
}

func printQueueResult(w io.Writer, g *globals, q *wire.Queue, did string) error {
	if g.output == "json" {
		return printJSON(w, q)
	}
	fmt.Fprintf(w, "queue %s %s: weight %s, guaranteed %.0f%% of the cluster\n", q.Name, did, strconv.FormatFloat(q.Weight, 'g', -1, 64), 100*q.Guaranteed)
	return nil
}

func printQueue(w io.Writer, q *wire.Queue) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Name", q.Name)
	row("Weight", strconv.FormatFloat(q.Weight, 'g', -1, 64))
	row("Guaranteed", fmt.Sprintf("%.1f%% of the cluster", 100*q.Guaranteed))
	row("Borrow", yesNo(q.Borrow))
	row("Limit", limitText(q.Limit))
	row("Users", usersText(q.Users))
	row("Priority", strconv.Itoa(q.Priority))
	mrt := "none"
	if q.MaxRunTime > 0 {
		mrt = time.Duration(q.MaxRunTime).String()
	}
	row("Max run time", mrt)
	row("Grace", time.Duration(q.Grace).String())
	row("Placement", q.Placement)
	if len(q.Constraints) > 0 {
		var cs []string
		for k, v := range q.Constraints {
			cs = append(cs, k+"="+v)
		}
		row("Constraints", strings.Join(cs, ", "))
	}
	row("Running", fmt.Sprintf("%d tasks holding %s CPU, %s", q.Usage.Tasks, cores(q.Usage.Allocated.CPU), human(q.Usage.Allocated.Memory)))
	row("Queued", strconv.Itoa(q.Queued))
	tw.Flush()
}

func limitText(l *wire.Resources) string {
	if l == nil || (l.CPU == 0 && l.Memory == 0 && l.GPUs == 0) {
		return "-"
	}
	return quotaText(*l)
}

func usersText(us []string) string {
	if len(us) == 0 {
		return "everyone"
	}
	return strings.Join(us, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cores(m int64) string { return fmt.Sprintf("%.1f", float64(m)/1000) }
