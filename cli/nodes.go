package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
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
			nodes, err := cl.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), nodes)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tLEADER\tADDRESS\tCPU (alloc/used/cap)\tMEMORY (alloc/used/cap)\tTASKS")
			for _, n := range nodes {
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f/%s/%.1f\t%s/%s/%s\t%d\n", n.Name, state, leader, n.APIAddr,
					float64(n.Allocated.CPU)/1000, usedCPU, float64(n.Capacity.CPU)/1000, human(n.Allocated.Memory), usedMem, human(n.Capacity.Memory), n.Running)
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
	c.AddCommand(ls, action("drain", "Stop placing new tasks on a node", "drain"), action("ready", "Let a drained node take tasks again", "ready"),
		action("remove", "Remove a node from the cluster (its tasks are rescheduled)", "remove"))
	return c
}

func human(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ci", float64(b)/float64(div), "KMGTPE"[exp])
}

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
	c.AddCommand(create)
	return c
}
