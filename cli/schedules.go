package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gantry/wire"
)

func scheduleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "schedule",
		Short: "List, pause, resume and remove schedules (create one with gantry run --schedule)",
	}
	ls := &cobra.Command{
		Use: "ls", Short: "List schedules", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			list, err := cl.Schedules(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No schedules. Create one with: gantry run --schedule \"0 3 * * *\" IMAGE -- CMD")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tOWNER\tCRON (UTC)\tIMAGE\tNEXT\tRUNS\tSKIPPED\tLAST JOB")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.ID, dash(s.Name), s.Owner, s.Cron, s.Spec.Image, nextText(s), s.Runs, s.Skipped, dash(s.LastJob))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show a schedule", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			s, err := cl.Schedule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), s)
			}
			printSchedule(cmd.OutOrStdout(), s)
			return nil
		},
	}
	pause := func(use, short string, paused bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := newClient()
				if err != nil {
					return err
				}
				s, err := cl.SetSchedulePaused(cmd.Context(), args[0], paused)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schedule %s: next run %s\n", s.ID, nextText(*s))
				return nil
			},
		}
	}
	rm := &cobra.Command{
		Use: "rm ID", Short: "Remove a schedule (the jobs it submitted stay)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			if err := cl.DeleteSchedule(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed schedule %s\n", args[0])
			return nil
		},
	}
	c.AddCommand(ls, show, pause("pause", "Stop submitting jobs until resumed", true), pause("resume", "Submit jobs again from the next due time", false), rm)
	return c
}

func nextText(s wire.Schedule) string {
	if s.Paused {
		return "paused"
	}
	if s.NextRun.IsZero() {
		return "-"
	}
	return s.NextRun.Local().Format("2006-01-02 15:04:05")
}

func printSchedule(w io.Writer, s *wire.Schedule) {
	fmt.Fprintf(w, "Schedule %s", s.ID)
	if s.Name != "" {
		fmt.Fprintf(w, "  %s", s.Name)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  owner %s  cron %q (UTC)  created %s\n", s.Owner, s.Cron, s.Created.Local().Format(time.DateTime))
	fmt.Fprintf(w, "  image %s  command %s\n", s.Spec.Image, strings.Join(s.Spec.Command, " "))
	overlap := "skipped while the previous job runs"
	if s.AllowOverlap {
		overlap = "submitted even while the previous job runs"
	}
	fmt.Fprintf(w, "  next %s  runs %d  skipped %d (%s)\n", nextText(*s), s.Runs, s.Skipped, overlap)
	if s.LastJob != "" {
		fmt.Fprintf(w, "  last job %s at %s\n", s.LastJob, s.LastRun.Local().Format(time.DateTime))
	}
}
