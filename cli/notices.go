package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gantry/wire"
)

// infringementCmd is `gantry notice`: infringement notices and counter-notices
// (service terms 2.3.2.1 and 2.3.2.2). Forms are JSON files (`gantry
// notice template` prints one to fill); an attachment names a file of
// its own, which is read and sent with the form.
func infringementCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "notice", Short: "Infringement notices and counter-notices: file, follow, answer, decide (admin)"}
	c.AddCommand(noticeTemplateCmd(), noticeFileCmd(g), noticeLsCmd(g), noticeShowCmd(g), noticeCounterCmd(g), noticeDecideCmd(g),
		noticeCourtCmd(g), noticeAttachmentCmd(), noticeSettingsCmd(g))
	return c
}

func noticeTemplateCmd() *cobra.Command {
	var counter bool
	var lang string
	c := &cobra.Command{
		Use: "template [--counter] [--lang zh|en]", Short: "Print a notice (or counter-notice) form to fill, with the statement you sign verbatim", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lang != "zh" && lang != "en" {
				return usageErr(cmd, "--lang: zh or en")
			}
			cl, err := newPublicClient()
			if err != nil {
				return err
			}
			s, err := cl.NoticeStatements(cmd.Context())
			if err != nil {
				return err
			}
			st := s.Notice
			if counter {
				st = s.Counter
			}
			text := st.EN
			if lang == "zh" {
				text = st.ZH
			}
			party := map[string]string{"name": "", "kind": "person or organisation", "id_document": "identity card or passport number; an organisation's registration", "address": "", "phone": "", "email": ""}
			att := []map[string]string{{"file": "path/to/file.pdf"}}
			form := map[string]any{"lang": lang, "statement": text, "signature": "type your full name to sign"}
			if counter {
				form["party"], form["content"], form["reasons"], form["evidence"] = party, []string{"(optional) the images to restore; default: all of the notice's"}, "why the content does not infringe", att
			} else {
				form["rights_holder"], form["works"], form["proof"] = party, []string{"the works (or marks) you hold rights in"}, att
				form["content"], form["reasons"], form["evidence"] = []string{"REPO:TAG of the infringing image"}, "how your rights are infringed", att
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Fill the form, remove what does not apply (an agent filing for the party adds \"agent\": {the same fields, \"scope\": \"...\", \"authorisation\": [{\"file\": ...}]}),\n"+
				"and sign: by signing you accept the statement of the service terms (%s) quoted in it, which must stay verbatim.\n"+
				"Attachments: at most %d, %d KiB together.\n", st.Clause, s.MaxAttachments, s.MaxAttachmentsSize>>10)
			return printJSON(cmd.OutOrStdout(), form)
		},
	}
	c.Flags().BoolVar(&counter, "counter", false, "a counter-notice form")
	c.Flags().StringVar(&lang, "lang", "en", "the statement's language: zh (the terms' original) or en")
	return c
}

// attachmentKeys are the form's lists of attachments.
var attachmentKeys = []string{"proof", "evidence", "authorisation"}

// readForm reads a notice or counter-notice form from path into v: each
// attachment that names a "file" (relative to the form's directory) gets
// its bytes, name and media type from it; anything v does not have is an
// error, so a misspelt field is not silently dropped.
func readForm(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read the form: %w", err)
	}
	var tree map[string]any
	if err := json.Unmarshal(b, &tree); err != nil {
		return fmt.Errorf("the form %s is not JSON: %w", path, err)
	}
	dir := filepath.Dir(path)
	var fill func(m map[string]any) error
	fill = func(m map[string]any) error {
		if agent, ok := m["agent"].(map[string]any); ok {
			if err := fill(agent); err != nil {
				return err
			}
		}
		for _, k := range attachmentKeys {
			items, _ := m[k].([]any)
			for _, it := range items {
				a, ok := it.(map[string]any)
				if !ok {
					return fmt.Errorf("the form's %s: each attachment is {\"file\": PATH} or {\"name\", \"data\"}", k)
				}
				f, ok := a["file"].(string)
				if !ok {
					continue
				}
				if !filepath.IsAbs(f) {
					f = filepath.Join(dir, f)
				}
				data, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("the form's %s: %w", k, err)
				}
				delete(a, "file")
				a["data"] = data // encoded as base64, as the API reads it
				if _, ok := a["name"]; !ok {
					a["name"] = filepath.Base(f)
				}
				if _, ok := a["media_type"]; !ok {
					if mt, _, err := mime.ParseMediaType(mime.TypeByExtension(filepath.Ext(f))); err == nil {
						a["media_type"] = mt
					}
				}
			}
		}
		return nil
	}
	if err := fill(tree); err != nil {
		return err
	}
	b, err = json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("encode the form: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the form %s: %w (see gantry notice template)", path, err)
	}
	return nil
}

func noticeFileCmd(g *globals) *cobra.Command {
	var from string
	var public bool
	c := &cobra.Command{
		Use: "file --from-file F.json [--public]", Short: "File an infringement notice (the form: gantry notice template)", Args: cobra.NoArgs,
		Example: "  gantry notice template > notice.json   # fill it, sign it\n  gantry notice file --from-file notice.json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageErr(cmd, "--from-file is required (the form: gantry notice template)")
			}
			var f wire.NoticeForm
			if err := readForm(from, &f); err != nil {
				return err
			}
			newCl := newClient
			if public {
				newCl = newPublicClient
			}
			cl, err := newCl()
			if err != nil {
				return err
			}
			file := cl.FileNotice
			if public {
				file = cl.FilePublicNotice
			}
			n, err := file(cmd.Context(), f)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "notice %s filed against %s of %s; an admin decides", n.ID, strings.Join(n.Repos, ", "), n.Accused)
			if n.Filer != "" {
				fmt.Fprintf(cmd.OutOrStdout(), " and you are told in your inbox; follow it: gantry notice show %s", n.ID)
			} else {
				fmt.Fprint(cmd.OutOrStdout(), "; you are answered at the contact you gave")
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	c.Flags().StringVar(&from, "from-file", "", "the form (JSON)")
	c.Flags().BoolVar(&public, "public", false, "through the public form, without an account (when an admin opened it)")
	return c
}

func noticeLsCmd(g *globals) *cobra.Command {
	var state string
	c := &cobra.Command{
		Use: "ls [--state S]", Short: "Notices: an admin's, all; yours, those you filed or that accuse your images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			ns, err := cl.Notices(cmd.Context(), state)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), ns)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFILED\tSTATE\tRIGHTS HOLDER\tCONTENT\tPUBLISHER\tNEXT")
			for _, n := range ns {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.At.Local().Format(time.DateTime), n.State, n.RightsHolder.Name,
					strings.Join(n.Repos, ","), n.Accused, noticeNext(&n))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&state, "state", "", "only notices in this state: filed, rejected, taken_down, countered, restored, kept_down")
	return c
}

// noticeNext says what a notice waits for.
func noticeNext(n *wire.InfringementNotice) string {
	switch n.State {
	case wire.NoticeFiled:
		return "an admin's decision"
	case wire.NoticeTakenDown:
		return "a counter-notice, or an admin's restore"
	case wire.NoticeCountered:
		if n.Court != nil {
			return "an admin's decision (court action recorded)"
		}
		return "restore after " + n.RestoreAfter.Local().Format(time.DateTime) + " unless decided"
	}
	return "-"
}

func printParty(w io.Writer, label string, p wire.NoticeParty) {
	fmt.Fprintf(w, "%s:\t%s (%s)\n", label, p.Name, p.Kind)
	for _, f := range []struct{ k, v string }{{"identity document", p.IDDocument}, {"address", p.Address}, {"phone", p.Phone}, {"email", p.Email}} {
		if f.v != "" {
			fmt.Fprintf(w, "  %s:\t%s\n", f.k, f.v)
		}
	}
}

func printAttachments(w io.Writer, label string, as []wire.Attachment) {
	for _, a := range as {
		fmt.Fprintf(w, "%s:\t%s (%s, %d bytes) %s\n", label, a.Name, dash(a.MediaType), a.Size, a.Digest)
	}
}

func noticeShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "show ID", Short: "A notice, its counter-notice and its whole timeline", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			n, err := cl.Notice(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), n)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Notice:\t%s (%s)\nFiled:\t%s by %s\n", n.ID, n.State, n.At.Local().Format(time.DateTime), dashIfEmpty(n.Filer, "the public form"))
			printParty(w, "Rights holder", n.RightsHolder)
			if n.Agent != nil {
				printParty(w, "Agent", n.Agent.NoticeParty)
				fmt.Fprintf(w, "  scope of the authorisation:\t%s\n", oneLine(n.Agent.Scope))
				printAttachments(w, "  authorisation", n.Agent.Authorisation)
			}
			if n.Redacted {
				fmt.Fprintln(w, "  (the notifier's identity document and contact are not shown to the publisher)")
			}
			fmt.Fprintf(w, "Works claimed:\t%s\nContent:\t%s (%s, published by %s)\nReasons:\t%s\n", strings.Join(n.Works, "; "), strings.Join(n.Content, ", "),
				strings.Join(n.Repos, ", "), n.Accused, oneLine(n.Reasons))
			printAttachments(w, "Proof", n.Proof)
			printAttachments(w, "Evidence", n.Evidence)
			fmt.Fprintf(w, "Statement (%s):\t%s\nSigned:\t%s\n", n.Statement.Lang, n.Statement.Text, n.Signature)
			if ct := n.Counter; ct != nil {
				fmt.Fprintf(w, "Counter-notice:\t%s by %s\n", ct.At.Local().Format(time.DateTime), ct.Filer)
				printParty(w, "  publisher", ct.Party)
				if ct.Agent != nil {
					printParty(w, "  agent", ct.Agent.NoticeParty)
					fmt.Fprintf(w, "  scope of the authorisation:\t%s\n", oneLine(ct.Agent.Scope))
					printAttachments(w, "  authorisation", ct.Agent.Authorisation)
				}
				fmt.Fprintf(w, "  content:\t%s\n  reasons:\t%s\n", strings.Join(ct.Content, ", "), oneLine(ct.Reasons))
				printAttachments(w, "  evidence", ct.Evidence)
				fmt.Fprintf(w, "  statement (%s):\t%s\n  signed:\t%s\n", ct.Statement.Lang, ct.Statement.Text, ct.Signature)
			}
			if n.Court != nil {
				fmt.Fprintf(w, "Court action:\t%s, recorded by %s on %s\n", oneLine(n.Court.Detail), n.Court.By, n.Court.At.Local().Format(time.DateTime))
			}
			fmt.Fprintf(w, "Next:\t%s\n", noticeNext(n))
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "\nTimeline:")
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, s := range n.Timeline {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.At.Local().Format(time.DateTime), s.Actor, s.Action, oneLine(s.Detail))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(n.Proof)+len(n.Evidence) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "\nAn attachment: gantry notice attachment %s DIGEST > FILE\n", n.ID)
			}
			return nil
		},
	}
}

func noticeCounterCmd(g *globals) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use: "counter ID --from-file F.json", Short: "Answer a notice against your image with a counter-notice (the form: gantry notice template --counter)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usageErr(cmd, "--from-file is required (the form: gantry notice template --counter)")
			}
			var f wire.CounterForm
			if err := readForm(from, &f); err != nil {
				return err
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			n, err := cl.FileCounter(cmd.Context(), args[0], f)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "counter-notice to notice %s filed and forwarded to the notifier; unless an admin decides otherwise or a court action is recorded, %s is restored after %s\n",
				n.ID, strings.Join(n.Repos, ", "), n.RestoreAfter.Local().Format(time.DateTime))
			return nil
		},
	}
	c.Flags().StringVar(&from, "from-file", "", "the form (JSON)")
	return c
}

func noticeDecideCmd(g *globals) *cobra.Command {
	var req wire.NoticeDecisionRequest
	c := &cobra.Command{
		Use: "decide ID takedown|reject|restore|keep-down --reason TEXT [--stop-jobs]", Short: "Decide a notice (admin): take its content down or reject it; after a counter-notice, restore or keep it down",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Decision = strings.ReplaceAll(args[1], "-", "_")
			switch req.Decision {
			case "takedown", "reject", "restore", "keep_down":
			default:
				return usageErr(cmd, "want takedown, reject, restore or keep-down, not %q", args[1])
			}
			if req.Reason == "" {
				return usageErr(cmd, "--reason is required (the parties read it)")
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			n, err := cl.DecideNotice(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "notice %s: %s", n.ID, n.State)
			if d := n.Resolution; d != nil && len(d.Takedowns) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), " (decisions %s lifted)", strings.Join(d.Takedowns, ", "))
			} else if d := n.Decision; d != nil && len(d.Takedowns) > 0 && n.State == wire.NoticeTakenDown {
				fmt.Fprintf(cmd.OutOrStdout(), " (decisions %s)", strings.Join(d.Takedowns, ", "))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "; the parties were told in their inboxes")
			return nil
		},
	}
	c.Flags().StringVar(&req.Reason, "reason", "", "why (the parties read it)")
	c.Flags().BoolVar(&req.StopJobs, "stop-jobs", false, "takedown: also cancel others' running jobs of the images")
	return c
}

func noticeCourtCmd(g *globals) *cobra.Command {
	var detail string
	c := &cobra.Command{
		Use: "court ID --detail TEXT", Short: "Record that you filed a court action over a countered notice (no automatic restore)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detail == "" {
				return usageErr(cmd, "--detail is required (the court, the case)")
			}
			cl, err := newClient()
			if err != nil {
				return err
			}
			n, err := cl.RecordCourtAction(cmd.Context(), args[0], detail)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "court action recorded on notice %s: the content stays down until an admin decides\n", n.ID)
			return nil
		},
	}
	c.Flags().StringVar(&detail, "detail", "", "the court and the case")
	return c
}

func noticeAttachmentCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use: "attachment ID DIGEST [--out FILE]", Short: "Download an attachment of a notice or its counter-notice (to standard output)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			rc, err := cl.NoticeAttachment(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			defer rc.Close()
			w := cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if _, err := io.Copy(w, rc); err != nil {
				return fmt.Errorf("download the attachment: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "write it to this file")
	return c
}

func noticeSettingsCmd(g *globals) *cobra.Command {
	var days int
	var wait time.Duration
	var public string
	c := &cobra.Command{
		Use: "settings [--wait-days N | --wait DURATION] [--public-form on|off]", Short: "The waiting period after a counter-notice and the public form (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			s, err := cl.NoticeSettings(cmd.Context())
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			if fl.Changed("wait-days") || fl.Changed("wait") || fl.Changed("public-form") {
				if fl.Changed("wait-days") {
					s.WaitBusinessDays, s.Wait = days, 0
				}
				if fl.Changed("wait") {
					s.Wait = wire.Duration(wait)
				}
				switch public {
				case "on":
					s.PublicForm = true
				case "off":
					s.PublicForm = false
				case "":
				default:
					return usageErr(cmd, "--public-form: on or off")
				}
				if s, err = cl.SetNoticeSettings(cmd.Context(), *s); err != nil {
					return err
				}
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), s)
			}
			wait := fmt.Sprintf("%d business days", s.WaitBusinessDays)
			if s.Wait > 0 {
				wait = time.Duration(s.Wait).String()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "waiting period after a counter-notice: %s\npublic form: %s\n", wait, map[bool]string{true: "open", false: "closed"}[s.PublicForm])
			return nil
		},
	}
	c.Flags().IntVar(&days, "wait-days", 0, "the waiting period in business days (0: the default, 10)")
	c.Flags().DurationVar(&wait, "wait", 0, "the waiting period as a duration instead")
	c.Flags().StringVar(&public, "public-form", "", "on: rights holders without an account may file; off: they may not")
	return c
}
