package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gantry/wire"
)

// reportCmd is `gantry report REPO --category C --reason TEXT` (any user),
// `gantry report ls [--open]` (an admin's: every report by image; a
// user's: their own), `gantry report categories`, and (admin) `gantry
// report dismiss ID --reason TEXT` and `gantry report takedown ID --reason
// TEXT [--stop-jobs]`: one command, as INTERFACE.md spells it, whose first
// argument picks the action (a repository always has a slash).
func reportCmd(g *globals) *cobra.Command {
	var category, reason string
	var open, stop bool
	c := &cobra.Command{
		Use:   "report REPO --category C --reason TEXT | ls [--open] | categories | dismiss ID --reason TEXT | takedown ID --reason TEXT [--stop-jobs]",
		Short: "Report a published image (categories: gantry report categories); admins list, dismiss and take down",
		Example: "  gantry report alice/tool --category licence_violation --reason 'ships GPL code as MIT'\n" +
			"  gantry report ls --open\n  gantry report takedown 3 --reason 'GPL code relicensed'",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && (args[0] == "ls" || args[0] == "categories" || strings.Contains(args[0], "/")):
			case len(args) == 2 && (args[0] == "dismiss" || args[0] == "takedown"):
			default:
				return usageErr(cmd, "want REPO, ls, categories, dismiss ID or takedown ID")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 2 && reason == "":
				return usageErr(cmd, "%s: --reason is required", args[0])
			case strings.Contains(args[0], "/") && (category == "" || reason == ""):
				return usageErr(cmd, "--category and --reason are required (categories: gantry report categories)")
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch args[0] {
			case "categories":
				cs, err := cl.ReportCategories(cmd.Context())
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(out, cs)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CODE\tCATEGORY\t类别")
				for _, rc := range cs {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", rc.Code, rc.EN, rc.ZH)
				}
				return tw.Flush()
			case "ls":
				l, err := cl.Reports(cmd.Context(), open)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(out, l)
				}
				for _, img := range l.Images {
					down := ""
					if img.TakenDown != nil {
						down = fmt.Sprintf(", taken down (decision %s)", img.TakenDown.ID)
					}
					fmt.Fprintf(out, "%s by %s: %d open%s\n", img.Repo, img.Owner, img.Open, down)
					tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					for _, r := range img.Reports {
						fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.At.Local().Format(time.DateTime), r.Reporter, r.Category, r.State, oneLine(r.Reason))
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				if len(l.Images) == 0 {
					fmt.Fprintln(out, "no reports")
				}
				return nil
			case "dismiss", "takedown":
				res, err := cl.DecideReport(cmd.Context(), args[1], wire.ReportDecision{Decision: args[0], Reason: reason, StopJobs: stop})
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(out, res)
				}
				if res.Takedown != nil {
					printTakedown(cmd, res.Takedown)
				} else {
					fmt.Fprintf(out, "report %s dismissed; %s was told in their inbox\n", res.Report.ID, res.Report.Reporter)
				}
				return nil
			}
			r, err := cl.Report(cmd.Context(), wire.ReportRequest{Repo: args[0], Category: category, Reason: reason})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(out, r)
			}
			fmt.Fprintf(out, "report %s of %s filed; an admin decides and you are told in your inbox\n", r.ID, r.Repo)
			return nil
		},
	}
	c.Flags().StringVar(&category, "category", "", "what is wrong: a code of gantry report categories")
	c.Flags().StringVar(&reason, "reason", "", "why (a report's: the admins read it; a decision's: the reporter or owner reads it)")
	c.Flags().BoolVar(&open, "open", false, "ls: only reports not yet decided")
	c.Flags().BoolVar(&stop, "stop-jobs", false, "takedown: also cancel others' running jobs of the image")
	return c
}

func printTakedown(cmd *cobra.Command, t *wire.Takedown) {
	fmt.Fprintf(cmd.OutOrStdout(), "%s taken down (decision %s); its owner %s was told in their inbox", t.Repo, t.ID, t.Owner)
	if len(t.Stopped) > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "; %d jobs of others stopped", len(t.Stopped))
	}
	fmt.Fprintln(cmd.OutOrStdout())
}

// takedownCmd is `gantry takedown REPO --reason TEXT [--notice ID]
// [--report ID] [--stop-jobs]` and `gantry takedown ls` (admin).
func takedownCmd(g *globals) *cobra.Command {
	var req wire.TakedownRequest
	c := &cobra.Command{
		Use:   "takedown REPO --reason TEXT [--notice ID] [--report ID] [--stop-jobs] | ls",
		Short: "Take an image down: out of the catalog, refused (451) to everyone but its owner (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			if args[0] == "ls" {
				ts, err := cl.Takedowns(cmd.Context())
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(cmd.OutOrStdout(), ts)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tREPO\tOWNER\tBY\tTIME\tREASON")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Repo, t.Owner, t.By, t.At.Local().Format(time.DateTime), oneLine(t.Reason))
				}
				return tw.Flush()
			}
			if req.Reason == "" {
				return usageErr(cmd, "--reason is required (the owner and everyone refused read it)")
			}
			req.Repo = args[0]
			t, err := cl.TakeDown(cmd.Context(), req)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), t)
			}
			printTakedown(cmd, t)
			return nil
		},
	}
	c.Flags().StringVar(&req.Reason, "reason", "", "why (the owner and everyone refused read it)")
	c.Flags().StringVar(&req.Notice, "notice", "", "the infringement notice it answers")
	c.Flags().StringVar(&req.Report, "report", "", "the report it is decided from")
	c.Flags().BoolVar(&req.StopJobs, "stop-jobs", false, "also cancel others' running jobs of the image (default: they keep running)")
	return c
}

// restoreCmd is `gantry restore REPO` (admin).
func restoreCmd(g *globals) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use: "restore REPO", Short: "Lift an image's takedown (admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			t, err := cl.RestoreImage(cmd.Context(), wire.RestoreRequest{Repo: args[0], Reason: reason})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s restored (decision %s lifted); %s was told in their inbox\n", t.Repo, t.ID, t.Owner)
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (the owner reads it)")
	return c
}

// suspendCmds are `gantry user suspend NAME --reason TEXT [--cancel-jobs]`
// and `gantry user restore NAME` (admin).
func suspendCmds(g *globals) []*cobra.Command {
	var req wire.SuspendRequest
	suspend := &cobra.Command{
		Use: "suspend NAME --reason TEXT [--cancel-jobs]", Short: "Suspend an account: it may only sign in, read why and its inbox", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Reason == "" {
				return usageErr(cmd, "--reason is required (the user reads it)")
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			u, err := cl.SuspendUser(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), u)
			}
			msg := fmt.Sprintf("%s suspended; told in their inbox", u.Name)
			if u.Suspension != nil && len(u.Suspension.Cancelled) > 0 {
				msg += fmt.Sprintf("; %d jobs cancelled", len(u.Suspension.Cancelled))
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	suspend.Flags().StringVar(&req.Reason, "reason", "", "why (the user reads it)")
	suspend.Flags().StringVar(&req.Notice, "notice", "", "the infringement notice it answers")
	suspend.Flags().StringVar(&req.Report, "report", "", "the report it answers")
	suspend.Flags().BoolVar(&req.CancelJobs, "cancel-jobs", false, "also cancel the account's queued and running jobs")
	restore := &cobra.Command{
		Use: "restore NAME", Short: "Lift an account's suspension", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			u, err := cl.RestoreUser(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), u)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s restored; told in their inbox\n", u.Name)
			return nil
		},
	}
	return []*cobra.Command{suspend, restore}
}
