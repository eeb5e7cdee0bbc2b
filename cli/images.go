package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gantry/wire"
)

func imageCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage images in Gantry's registry"}
	ls := &cobra.Command{
		Use: "ls", Short: "List the repositories you can pull, with tags, sizes and last push", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			list, err := cl.Images(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tSIZE\tPUSHED\tLICENCE")
			for _, r := range list.Repositories {
				name, lic := repoLabel(&r), repoLicence(&r)
				if len(r.Tags) == 0 {
					fmt.Fprintf(tw, "%s\t<none>\t\t%s\t%s\t%s\n", name, human(r.Size), ago(r.LastPush), lic)
				}
				for _, t := range r.Tags {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, t.Tag, shortDigest(t.Digest), human(t.Size), ago(t.Pushed), lic)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, r := range list.Repositories {
				for _, n := range r.Notices {
					fmt.Fprintf(cmd.OutOrStdout(), "%s is built on %s: it carries %s's licence notice (%s), which only %s can remove\n",
						r.Name, n.Base, n.Base, n.Licence.Expression, n.BaseOwner)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nyour storage: %s\n", human(list.Usage))
			return nil
		},
	}
	show := &cobra.Command{
		Use: "show REPO", Short: "One of your repositories: tags, publication, the licence notices it inherits", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			list, err := cl.Images(cmd.Context())
			if err != nil {
				return err
			}
			for i := range list.Repositories {
				if r := &list.Repositories[i]; r.Name == args[0] {
					if g.output == "json" {
						return printJSON(cmd.OutOrStdout(), r)
					}
					printRepo(cmd.OutOrStdout(), r)
					return nil
				}
			}
			return fmt.Errorf("no repository %s among those you can pull: see gantry image ls (community images: gantry catalog show %s)", args[0], args[0])
		},
	}
	imp := &cobra.Command{
		Use: "import FILE.tar", Short: "Import the images of a `docker save` archive under your namespace", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			cl, err := newClient()
			if err != nil {
				return err
			}
			refs, err := cl.ImportImages(cmd.Context(), f)
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"images": refs})
			}
			for _, r := range refs {
				fmt.Fprintf(cmd.OutOrStdout(), "imported %s\n", r)
			}
			return nil
		},
	}
	rm := &cobra.Command{
		Use:   "rm REPO:TAG | REPO@DIGEST",
		Short: "Delete a tag, or a manifest with its tags (gc then reclaims blobs no manifest uses)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			if repo, d, ok := strings.Cut(args[0], "@"); ok {
				err = cl.DeleteImageManifest(cmd.Context(), repo, d)
			} else if i := strings.LastIndex(args[0], ":"); i > strings.LastIndex(args[0], "/") {
				err = cl.DeleteImageTag(cmd.Context(), args[0][:i], args[0][i+1:])
			} else {
				return fmt.Errorf("want REPO:TAG or REPO@DIGEST, e.g. alice/tool:1.0")
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
	var dryRun bool
	gc := &cobra.Command{
		Use: "gc", Short: "Remove blobs no manifest references, and expired uploads (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			rep, err := cl.RegistryGC(cmd.Context(), dryRun)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d blob links, %d blob files and %d expired uploads, freeing %s; %d blobs kept\n",
				verb, len(rep.UnlinkedBlobs), len(rep.DeletedBlobs), len(rep.ExpiredUploads), human(rep.FreedBytes), rep.KeptBlobs)
			return nil
		},
	}
	gc.Flags().BoolVar(&dryRun, "dry-run", false, "only report what would be removed")
	c.AddCommand(ls, show, imp, rm, gc)
	c.AddCommand(catalogImageCmds(g)...)
	return c
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return t.Format("2006-01-02")
}

// repoLabel is a repository's name with its generative-AI label.
func repoLabel(r *wire.ImageRepo) string {
	if r.GenAI {
		return r.Name + " [generative AI]"
	}
	return r.Name
}

// repoLicence is the licence a repository is published under and those it
// inherits, or "-" for a private one with none.
func repoLicence(r *wire.ImageRepo) string {
	var parts []string
	if r.Published != nil {
		parts = append(parts, r.Published.Licence.Expression)
	}
	for _, n := range r.Notices {
		parts = append(parts, n.Licence.Expression+" ("+n.Base+")")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " + ")
}

func printRepo(w io.Writer, r *wire.ImageRepo) {
	fmt.Fprintf(w, "%s by %s\n", repoLabel(r), r.Owner)
	if p := r.Published; p != nil {
		fmt.Fprintf(w, "published: %s (version %s), %s access, %d pulls\n", p.Licence.Expression, shortDigest(p.Licence.Version), p.Access, p.Pulls)
	} else {
		fmt.Fprintln(w, "published: no (private)")
	}
	if t := r.TakenDown; t != nil {
		fmt.Fprintf(w, "TAKEN DOWN: decision %s by %s on %s: %s (others are refused; you still pull and run it; see gantry inbox)\n",
			t.ID, t.By, t.At.Local().Format(time.DateTime), t.Reason)
	}
	printNotices(w, r.Notices)
	fmt.Fprintf(w, "size:      %s in %d manifests, last push %s\n", human(r.Size), r.Manifests, ago(r.LastPush))
	for _, t := range r.Tags {
		fmt.Fprintf(w, "tag:       %s %s %s %s\n", t.Tag, shortDigest(t.Digest), human(t.Size), ago(t.Pushed))
	}
}
