package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// eventsCmd is `gantry events`: the change feed the console uses, as JSON
// lines on stdout, for scripts (jq, a log shipper).
func eventsCmd() *cobra.Command {
	var follow string
	c := &cobra.Command{
		Use:   "events [--job ID]",
		Short: "Print the live change feed you may see (jobs, nodes, schedules; --job: its tasks too) as JSON lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			s, err := cl.Events(cmd.Context(), follow)
			if err != nil {
				return err
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			for {
				b, err := s.NextRaw()
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return fmt.Errorf("the event feed ended: %w", err)
				}
				if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
					return nil // the reader went away (| head)
				}
			}
		},
	}
	c.Flags().StringVar(&follow, "job", "", "also print the task events of this job")
	return c
}

// manCmd writes a man page for every command.
func manCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write the man pages of every command into DIR (install.sh puts them in PREFIX/share/man/man1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if st, err := os.Stat(args[0]); err != nil || !st.IsDir() {
				return errors.New("man: " + args[0] + " is not a directory: create it first")
			}
			hdr := &doc.GenManHeader{Title: "GANTRY", Section: "1", Source: "Gantry", Manual: "Gantry Manual"}
			root.DisableAutoGenTag = true
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "man pages written to %s\n", args[0])
			return nil
		},
	}
}
