package cli

import (
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gantry/wire"
)

func auditCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "The audit log: who did what, from where, when, and how it ended (admin)"}
	var since, actor, action, cursor string
	var limit int
	ls := &cobra.Command{
		Use: "ls", Short: "List audit records, oldest first", Args: cobra.NoArgs,
		Example: "  gantry audit ls --since 24h --action image.takedown\n  gantry audit ls --actor alice -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"since": since, "actor": actor, "action": action, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			l, err := cl.Audit(cmd.Context(), q)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), l)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tSOURCE\tACTION\tTARGET\tOUTCOME\tDETAIL")
			for _, r := range l.Records {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.At.Local().Format(time.DateTime), r.Actor, dash(r.Source),
					r.Action, dash(r.Target), r.Outcome, oneLine(r.Detail))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if l.Next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: gantry audit ls --cursor %s\n", l.Next)
			}
			return nil
		},
	}
	ls.Flags().StringVar(&since, "since", "", "only records at or after this time (RFC 3339, or a duration such as 24h)")
	ls.Flags().StringVar(&actor, "actor", "", "only records of this user")
	ls.Flags().StringVar(&action, "action", "", "only records of this action (user.create, image.takedown, ...)")
	ls.Flags().StringVar(&cursor, "cursor", "", "start after this record (the previous page's next)")
	ls.Flags().IntVar(&limit, "limit", 0, "at most this many records (default 1000)")
	verify := &cobra.Command{
		Use: "verify", Short: "Walk the audit log's hash chain: exit 1 at the first changed or missing record", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			v, err := cl.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				if err := printJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else if v.OK {
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %d records, the hash chain is whole\n", v.Records)
			}
			if !v.OK {
				return fmt.Errorf("audit log broken at record %d: %s", v.Broken, v.Reason)
			}
			return nil
		},
	}
	export := &cobra.Command{
		Use: "export", Short: "Write every audit record as JSON lines to standard output", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			rc, err := cl.ExportAudit(cmd.Context())
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(cmd.OutOrStdout(), rc)
			return err
		},
	}
	c.AddCommand(ls, verify, export)
	return c
}

// inboxCmd is `gantry inbox` (list), `gantry inbox read ID` and (admins)
// `gantry inbox send USER --subject TEXT`: one command, as INTERFACE.md
// spells it, whose first argument picks the action.
func inboxCmd(g *globals) *cobra.Command {
	var unread bool
	var subject, text string
	c := &cobra.Command{
		Use:   "inbox [read ID | send USER --subject TEXT [--body TEXT]]",
		Short: "Your messages from reviews, reports, takedowns and admins; read one; send one (admin)",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
			case len(args) == 2 && (args[0] == "read" || args[0] == "send"):
			default:
				return usageErr(cmd, "want no arguments, read ID, or send USER")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 && args[0] == "send" && subject == "" {
				return usageErr(cmd, "send: --subject is required")
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case len(args) == 2 && args[0] == "read":
				m, err := cl.MarkRead(cmd.Context(), args[1])
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(out, m)
				}
				fmt.Fprintf(out, "Date:    %s\nKind:    %s\nAbout:   %s\nSubject: %s\n\n%s\n", m.At.Local().Format(time.DateTime), m.Kind, dash(m.Ref), m.Subject, m.Body)
				return nil
			case len(args) == 2:
				if err := cl.SendMessage(cmd.Context(), wire.MessageSend{User: args[1], Subject: subject, Body: text}); err != nil {
					return err
				}
				fmt.Fprintf(out, "message sent to %s\n", args[1])
				return nil
			}
			in, err := cl.Inbox(cmd.Context(), unread)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(out, in)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tKIND\tABOUT\tSUBJECT\tREAD")
			for _, m := range in.Messages {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.At.Local().Format(time.DateTime), m.Kind, dash(m.Ref), oneLine(m.Subject), yesNo(m.Read))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(out, "%d unread; read one with: gantry inbox read ID\n", in.Unread)
			return nil
		},
	}
	c.Flags().BoolVar(&unread, "unread", false, "only unread messages")
	c.Flags().StringVar(&subject, "subject", "", "send: the message's subject")
	c.Flags().StringVar(&text, "body", "", "send: the message's text")
	return c
}

func reviewCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "review", Short: "Review published images before they are listed (admin)"}
	var state string
	ls := &cobra.Command{
		Use: "ls", Short: "The review queue: images pending review (or --state approved|rejected)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			es, err := cl.ReviewQueue(cmd.Context(), state)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), es)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPO\tOWNER\tLICENSE\tUPDATED\tREVIEW\tWHY")
			for _, e := range es {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Repo, e.Owner, e.Licence.Expression, e.Updated.Local().Format(time.DateTime), e.Review, dash(oneLine(e.ReviewReason)))
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&state, "state", "", "pending (default), approved or rejected")
	decide := func(use, short, decision string) *cobra.Command {
		var reason string
		d := &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if decision == "reject" && reason == "" {
					return usageErr(cmd, "--reason is required (the publisher reads it)")
				}
				cl, err := newClient()
				if err != nil {
					return err
				}
				e, err := cl.Review(cmd.Context(), wire.ReviewDecision{Repo: args[0], Decision: decision, Reason: reason})
				if err != nil {
					return err
				}
				if g.output == "json" {
					return printJSON(cmd.OutOrStdout(), e)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s; its publisher %s was told in their inbox\n", e.Repo, e.Review, e.Owner)
				return nil
			},
		}
		d.Flags().StringVar(&reason, "reason", "", "why (required to reject; the publisher reads it)")
		return d
	}
	var rf wire.ReviewRules
	rules := &cobra.Command{
		Use: "rules [--auto] [--require-fields] [--deny WORD]...", Short: "Show or set the automatic review rules", Args: cobra.NoArgs,
		Example: "  gantry review rules --auto --require-fields --deny casino --deny crack",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			var r *wire.ReviewRules
			if cmd.Flags().NFlag() > 0 && !(cmd.Flags().NFlag() == 1 && cmd.Flags().Changed("output")) {
				r, err = cl.SetReviewRules(cmd.Context(), rf)
			} else {
				r, err = cl.ReviewRules(cmd.Context())
			}
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "automatic approval: %s\nrequired fields (description, README): %s\ndenied words: %d\n", yesNo(r.Auto), yesNo(r.RequireFields), len(r.Deny))
			return nil
		},
	}
	rules.Flags().BoolVar(&rf.Auto, "auto", false, "approve an image that passes the rules at once (one that fails waits for a person)")
	rules.Flags().BoolVar(&rf.RequireFields, "require-fields", false, "require a description and a README")
	rules.Flags().StringArrayVar(&rf.Deny, "deny", nil, "a word no name, description or README may contain (repeatable; replaces the list)")
	c.AddCommand(ls, decide("approve REPO", "Approve a published image: it is listed in the catalog", "approve"),
		decide("reject REPO --reason TEXT", "Reject a published image with a reason its publisher reads", "reject"), rules)
	return c
}
