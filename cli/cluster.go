package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func clusterCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "cluster", Short: "Join commands and cluster membership"}
	var rotate bool
	join := &cobra.Command{
		Use: "join-command", Short: "Print the command that joins a new node to this cluster", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			var out struct {
				Command string `json:"command"`
				Token   string `json:"token"`
			}
			method, path := "GET", "/api/v1/cluster/join-command"
			if rotate {
				method, path = "POST", "/api/v1/cluster/join-token/rotate"
			}
			if err := cl.Do(cmd.Context(), method, path, nil, &out); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Command)
			return nil
		},
	}
	join.Flags().BoolVar(&rotate, "rotate", false, "replace the join token first (the old one stops working)")
	members := &cobra.Command{
		Use: "members", Short: "List the Raft members and which of them vote", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			var out struct {
				Members []struct {
					ID     string `json:"id"`
					Addr   string `json:"addr"`
					Voter  bool   `json:"voter"`
					Leader bool   `json:"leader"`
				} `json:"members"`
			}
			if err := cl.Do(cmd.Context(), "GET", "/api/v1/cluster/members", nil, &out); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), out.Members)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDRESS\tROLE")
			for _, m := range out.Members {
				role := "non-voter"
				switch {
				case m.Leader:
					role = "leader"
				case m.Voter:
					role = "voter"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", m.ID, m.Addr, role)
			}
			return tw.Flush()
		},
	}
	c.AddCommand(join, members)
	return c
}
