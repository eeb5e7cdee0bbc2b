package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gantry/wire"
)

// catalogImageCmds are the `gantry image` commands of the community catalog.
func catalogImageCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{publishCmd(g), unpublishCmd(), acceptCmd(g), requestCmd(g), accessCmd(g), acceptedCmd(g), noticeCmd()}
}

func publishCmd(g *globals) *cobra.Command {
	var p wire.Publish
	var licenseFile, readmeFile, command string
	c := &cobra.Command{
		Use:   "publish REPO (--license EXPR | --license-file F --license-name N)",
		Short: "Publish a repository you own to the community catalog under a licence",
		Long: `Publish a repository you own to the community catalog. Others can then pull
and run it once they accept its licence (and, with --access approval, once you
approve them). Publishing again updates it; a changed licence text is a new
version every user accepts again. By publishing you agree to the statements
the console shows (service terms 2.1.2.1, 2.1.4.1 (5), 2.2.2.1 (1)).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Repo = args[0]
			if licenseFile != "" {
				b, err := os.ReadFile(licenseFile)
				if err != nil {
					return usageErr(cmd, "--license-file: %v", err)
				}
				p.LicenseText = string(b)
			}
			if readmeFile != "" {
				b, err := os.ReadFile(readmeFile)
				if err != nil {
					return usageErr(cmd, "--readme: %v", err)
				}
				p.Readme = string(b)
			}
			if command != "" {
				p.Command = strings.Fields(command)
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			e, err := cl.Publish(cmd.Context(), p)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), e)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s under %s (version %s), %s access\n", e.Repo, e.Licence.Expression, shortDigest(e.Licence.Version), e.Access)
			if e.Review != "approved" {
				fmt.Fprintf(cmd.OutOrStdout(), "review: %s; it is listed once an admin approves it (you are told in: gantry inbox)\n", e.Review)
			}
			printNotices(cmd.OutOrStdout(), e.Notices)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&p.License, "license", "", "an SPDX expression, e.g. MIT or \"Apache-2.0 OR MIT\"")
	f.StringVar(&licenseFile, "license-file", "", "the licence's text (with --license-name: a custom licence)")
	f.StringVar(&p.LicenseName, "license-name", "", "a custom licence's name (published as LicenseRef-NAME)")
	f.StringVar(&p.Description, "description", "", "one line shown in the catalog")
	f.StringVar(&readmeFile, "readme", "", "a Markdown file shown on the catalog page")
	f.StringVar(&p.Access, "access", "open", "open (anyone who accepts the licence) or approval (you approve each user)")
	f.StringArrayVar(&p.Questions, "question", nil, "a question users answer when they ask for access (approval mode; repeatable)")
	f.BoolVar(&p.GenAI, "genai", false, "the image performs generative AI or deep synthesis (labelled everywhere)")
	f.BoolVar(&p.GenAIFiled, "genai-filed", false, "with --genai: its safety assessment and filing are complete (else only --access approval)")
	f.StringVar(&p.Use, "use", "research", "intended use: research or commercial")
	f.StringVar(&command, "command", "", "what \"Try it\" runs (default: the image's own command)")
	f.StringVar(&p.Lang, "lang", "en", "the language of the statements you agree to: en or zh")
	return c
}

func unpublishCmd() *cobra.Command {
	return &cobra.Command{
		Use: "unpublish REPO", Short: "Return a published repository to private (you keep it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			if err := cl.Unpublish(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is private again\n", args[0])
			return nil
		},
	}
}

func acceptCmd(g *globals) *cobra.Command {
	var answers []string
	c := &cobra.Command{
		Use: "accept REPO", Short: "Accept the licence of a community image (the version shown), so you can pull and run it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			d, err := cl.CatalogEntry(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output != "json" {
				fmt.Fprintf(out, "%s is licensed under %s (version %s):\n\n%s\n", d.Repo, d.Licence.Expression, shortDigest(d.Licence.Version), indent(d.LicenceText))
				for _, t := range d.Terms {
					fmt.Fprintf(out, "[%s] %s\n", t.Clause, t.EN)
				}
			}
			// The version accepted is the one printed above.
			ac, err := cl.Accept(cmd.Context(), args[0], d.Licence.Version, answers)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(out, ac)
			}
			fmt.Fprintf(out, "\naccepted the licence of %s (%s)\n", ac.Repo, ac.Licence.Expression)
			for _, n := range d.Notices {
				fmt.Fprintf(out, "%s is built on %s: accept its licence too: gantry image accept %s\n", d.Repo, n.Base, n.Base)
			}
			if d.Access == "approval" && d.Status.State != wire.StatusAccepted {
				fmt.Fprintf(out, "%s is shared by invitation: ask for access: gantry image request %s\n", d.Repo, d.Repo)
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&answers, "answer", nil, "an answer to the publisher's questions (repeatable, in order)")
	return c
}

func requestCmd(g *globals) *cobra.Command {
	var answers []string
	c := &cobra.Command{
		Use: "request REPO", Short: "Ask the publisher of an image in approval mode for access", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			r, err := cl.RequestAccess(cmd.Context(), args[0], answers)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "access to %s: %s\n", r.Repo, r.State)
			return nil
		},
	}
	c.Flags().StringArrayVar(&answers, "answer", nil, "an answer to the publisher's questions (repeatable, in order)")
	return c
}

func accessCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "access", Short: "Who accepted the licence of your published image and who asked for access"}
	ls := &cobra.Command{
		Use: "ls REPO", Short: "List acceptances and access requests (-o json: the export)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			r, err := cl.AccessReport(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tREQUEST\tREASON\tANSWERS\tLICENCE ACCEPTED\tWHEN")
			accepted := map[string]wire.Acceptance{}
			for _, a := range r.Acceptances {
				accepted[a.User] = a
			}
			seen := map[string]bool{}
			for _, q := range r.Requests {
				seen[q.User] = true
				a := accepted[q.User]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", q.User, q.State, dash(q.Reason), dash(strings.Join(q.Answers, " | ")), dash(a.Licence.Expression), ago(q.Requested))
			}
			for _, a := range r.Acceptances {
				if !seen[a.User] {
					fmt.Fprintf(tw, "%s\t-\t-\t%s\t%s\t%s\n", a.User, dash(strings.Join(a.Answers, " | ")), a.Licence.Expression, ago(a.At))
				}
			}
			return tw.Flush()
		},
	}
	c.AddCommand(ls)
	for _, d := range []struct{ use, decision, short string }{
		{"approve", "approve", "Approve a user's request"},
		{"reject", "reject", "Reject a user's request (--reason, shown to them)"},
		{"revoke", "revoke", "Revoke a user's access (--reason, shown to them)"},
	} {
		var reason string
		sub := &cobra.Command{
			Use: d.use + " REPO USER", Short: d.short, Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := newClient()
				if err != nil {
					return err
				}
				r, err := cl.DecideAccess(cmd.Context(), args[0], args[1], d.decision, reason)
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(cmd.OutOrStdout(), r)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s's access to %s: %s\n", r.User, r.Repo, r.State)
				return nil
			},
		}
		sub.Flags().StringVar(&reason, "reason", "", "why (shown to the user)")
		c.AddCommand(sub)
	}
	return c
}

func acceptedCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "accepted", Short: "The licences you accepted", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			acs, err := cl.Accepted(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), acs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tLICENCE\tVERSION\tACCEPTED")
			for _, a := range acs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Repo, a.Licence.Expression, shortDigest(a.Licence.Version), ago(a.At))
			}
			return tw.Flush()
		},
	}
}

func noticeCmd() *cobra.Command {
	c := &cobra.Command{Use: "notice", Short: "Licence notices images built on yours inherit"}
	var base string
	rm := &cobra.Command{
		Use: "rm REPO --base YOUR-REPO", Short: "Remove the notice of your image from an image built on it (its rights holder only)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if base == "" {
				return usageErr(cmd, "--base: name your repository whose notice to remove")
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			if err := cl.RemoveNotice(cmd.Context(), args[0], base); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the notice of %s is removed from %s\n", base, args[0])
			return nil
		},
	}
	rm.Flags().StringVar(&base, "base", "", "your repository whose notice the image carries")
	c.AddCommand(rm)
	return c
}

// catalogCmd is `gantry catalog ls | search TEXT | show REPO`.
func catalogCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "catalog", Short: "Browse the community catalog"}
	var sortBy, license, access, kind string
	var genai bool
	list := func(cmd *cobra.Command, q string) error {
		cl, err := newClient()
		if err != nil {
			return err
		}
		v := url.Values{"q": {q}, "sort": {sortBy}, "license": {license}, "access": {access}, "kind": {kind}, "limit": {"500"}}
		if cmd.Flags().Changed("genai") {
			v.Set("genai", fmt.Sprint(genai))
		}
		l, err := cl.Catalog(cmd.Context(), v)
		if err != nil {
			return err
		}
		if g.output == "json" {
			return printJSON(cmd.OutOrStdout(), l)
		}
		if len(l.Entries) == 0 {
			fmt.Fprintln(cmd.OutOrStdout(), "No published images match. Publish one of yours: gantry image publish REPO --license SPDX-EXPRESSION")
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REPOSITORY\tKIND\tLICENCE\tACCESS\tUSE\tPULLS\tDESCRIPTION")
		for _, e := range l.Entries {
			name := e.Repo
			if e.GenAI {
				name += " [generative AI]"
			}
			lic := e.Licence.Expression
			for _, n := range e.Notices {
				lic += " + " + n.Licence.Expression + " (" + n.Base + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, e.Kind, lic, e.Access, e.Use, e.Pulls, dash(e.Description))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "\nCommunity images are for personal learning and research (service terms 2.2.2.2 (1)): read each one's licence before you use it.")
		return nil
	}
	ls := &cobra.Command{Use: "ls", Short: "List published images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return list(cmd, "") }}
	search := &cobra.Command{Use: "search TEXT", Short: "Search published images by name and description", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return list(cmd, args[0]) }}
	for _, sc := range []*cobra.Command{ls, search} {
		sc.Flags().StringVar(&sortBy, "sort", "recent", "recent, pulls or name")
		sc.Flags().StringVar(&license, "license", "", "only licences naming this SPDX id")
		sc.Flags().StringVar(&access, "access", "", "open or approval")
		sc.Flags().StringVar(&kind, "kind", "", "image, dataset or model")
		sc.Flags().BoolVar(&genai, "genai", false, "only generative-AI images (--genai=false: none)")
	}
	show := &cobra.Command{
		Use: "show REPO", Short: "A published image: licence, README, tags, notices and where you stand", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			d, err := cl.CatalogEntry(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), d)
			}
			printEntry(cmd.OutOrStdout(), d)
			return nil
		},
	}
	c.AddCommand(ls, search, show, tryCmd(g), trialCmd(g))
	return c
}

// tryCmd is `gantry catalog try REPO`: the console's "Try it", following
// the trial's output and saying what is left of today's allowance.
func tryCmd(g *globals) *cobra.Command {
	var detach bool
	c := &cobra.Command{
		Use:   "try REPO",
		Short: "Run a community image's command under the trial allowance (not your quota; nothing kept)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			r, err := cl.Try(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			errw := cmd.ErrOrStderr()
			fmt.Fprintf(errw, "trial %s: %s, at most %s (%.0f of %d CPU-seconds left today)\n",
				r.Job.ID, r.Job.Spec.Image, time.Duration(r.Job.Spec.Timeout), r.Trial.Left, r.Trial.Allowance.CPUSecondsPerDay)
			if detach {
				fmt.Fprintln(cmd.OutOrStdout(), r.Job.ID)
				return nil
			}
			err = follow(cmd.Context(), cl, &r.Job, cmd.OutOrStdout(), errw)
			if t, terr := cl.Trial(context.WithoutCancel(cmd.Context())); terr == nil {
				fmt.Fprintf(errw, "trial allowance: %.0f of %d CPU-seconds left today (renews %s 00:00 UTC)\n",
					t.Left, t.Allowance.CPUSecondsPerDay, nextDay(t.Day))
			}
			return err
		},
	}
	c.Flags().BoolVarP(&detach, "detach", "d", false, "print the trial job's ID and return")
	return c
}

// trialCmd is `gantry catalog trial`: the allowance and what is left of it
// today; an admin changes it with flags.
func trialCmd(g *globals) *cobra.Command {
	var cpuSeconds int64
	var maxRun time.Duration
	var cpu, mem string
	c := &cobra.Command{
		Use:   "trial [--cpu-seconds N --max-run-time D --cpu C --memory M]",
		Short: "The trial allowance and what you have left of it today (admins set it with flags)",
		Example: "  gantry catalog trial\n  gantry catalog trial --cpu-seconds 600 --max-run-time 5m   # admin\n" +
			"  gantry catalog trial --cpu-seconds 0                       # admin: trials off",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("cpu-seconds") || f.Changed("max-run-time") || f.Changed("cpu") || f.Changed("memory") {
				a := wire.TrialAllowance{CPUSecondsPerDay: cpuSeconds, MaxRunTime: wire.Duration(maxRun)}
				if cpu != "" {
					if a.CPU, err = parseCPU(cpu); err != nil {
						return err
					}
				}
				if mem != "" {
					if a.Memory, err = parseBytes(mem); err != nil {
						return fmt.Errorf("--memory: %w", err)
					}
				}
				if _, err := cl.SetTrial(cmd.Context(), a); err != nil {
					return err
				}
			}
			t, err := cl.Trial(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), t)
			}
			w := cmd.OutOrStdout()
			a := t.Allowance
			if a.CPUSecondsPerDay <= 0 {
				fmt.Fprintln(w, "trials are off (an admin sets the allowance: gantry catalog trial --cpu-seconds N)")
				return nil
			}
			fmt.Fprintf(w, "trial allowance: %d CPU-seconds a day per user", a.CPUSecondsPerDay)
			if a.MaxRunTime > 0 {
				fmt.Fprintf(w, ", runs of at most %s", time.Duration(a.MaxRunTime))
			}
			fmt.Fprintf(w, ", each at %.1f CPU and %s memory", float64(a.CPU)/1000, human(a.Memory))
			fmt.Fprintf(w, "\nyou have %.0f CPU-seconds left today (used %.1f; renews %s 00:00 UTC)\n", t.Left, t.Used, nextDay(t.Day))
			return nil
		},
	}
	c.Flags().Int64Var(&cpuSeconds, "cpu-seconds", 0, "CPU-seconds each user may spend on trials a day (0: trials off)")
	c.Flags().DurationVar(&maxRun, "max-run-time", 0, "longest a trial runs (0: bounded by the day's allowance only)")
	c.Flags().StringVar(&cpu, "cpu", "", "CPUs a trial runs with (default 0.5)")
	c.Flags().StringVar(&mem, "memory", "", "memory a trial runs with (default 256M)")
	return c
}

// nextDay is the day after day (YYYY-MM-DD), or day itself unparsed.
func nextDay(day string) string {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return d.AddDate(0, 0, 1).Format(time.DateOnly)
}

func printEntry(w io.Writer, d *wire.CatalogDetail) {
	label := ""
	if d.GenAI {
		label = " [generative AI]"
	}
	fmt.Fprintf(w, "%s%s by %s\n", d.Repo, label, d.Owner)
	if d.Kind != "" && d.Kind != "image" {
		fmt.Fprintf(w, "kind:     %s\n", d.Kind)
	}
	if d.Description != "" {
		fmt.Fprintf(w, "  %s\n", d.Description)
	}
	fmt.Fprintf(w, "licence:  %s (version %s)\n", d.Licence.Expression, shortDigest(d.Licence.Version))
	printNotices(w, d.Notices)
	fmt.Fprintf(w, "access:   %s\nuse:      %s\npulls:    %d\n", d.Access, d.Use, d.Pulls)
	for _, t := range d.Tags {
		fmt.Fprintf(w, "tag:      %s %s %s\n", t.Tag, shortDigest(t.Digest), human(t.Size))
	}
	fmt.Fprintf(w, "you:      %s", d.Status.State)
	if d.Status.Message != "" {
		fmt.Fprintf(w, ": %s", d.Status.Message)
	}
	fmt.Fprintln(w)
	for _, t := range d.Terms {
		fmt.Fprintf(w, "[%s] %s\n", t.Clause, t.EN)
	}
}

func printNotices(w io.Writer, ns []wire.Notice) {
	for _, n := range ns {
		fmt.Fprintf(w, "notice:   built on %s: %s (from %s; only %s can remove it)\n", n.Base, n.Licence.Expression, n.Base, n.BaseOwner)
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "    " + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
