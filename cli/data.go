package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"gantry/client"
	"gantry/data"
)

func dataCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "data", Short: "Store directories (datasets, models) in Gantry's registry and fetch them back"}
	var model bool
	var parallel int
	push := &cobra.Command{
		Use:   "push DIR REPO[:TAG]",
		Short: "Store a directory as an OCI artifact (a Gantry dataset, or a CNCF ModelPack model with --model)",
		Long: "Store a directory as an OCI artifact: one layer per large file, small files packed into tars, " +
			"the tree (modes, times, links) in its config. Blobs the registry has already are not sent again, " +
			"so a push that was interrupted resumes. REPO without an owner is under your name; TAG defaults to latest.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			repo, ref, err := dataRef(cmd.Context(), cl, args[1])
			if err != nil {
				return usageErr(cmd, "%v", err)
			}
			if strings.HasPrefix(ref, "sha256:") {
				return usageErr(cmd, "%s: push to a tag, not a digest", args[1])
			}
			ctx := cmd.Context()
			hashing := &data.Progress{}
			stop := showProgress(cmd.ErrOrStderr(), "hashing "+args[0], hashing)
			a, err := data.Build(ctx, args[0], data.BuildOptions{Model: model, Name: path.Base(repo), Parallel: parallel, Progress: hashing})
			stop()
			if err != nil {
				return err
			}
			sending := &data.Progress{}
			stop = showProgress(cmd.ErrOrStderr(), "pushing "+repo+":"+ref, sending)
			start := time.Now()
			d, err := data.Push(ctx, a, cl.Repository(repo), ref, parallel, sending)
			stop()
			if err != nil {
				return err
			}
			res := dataResult{Reference: repo + ":" + ref, Digest: d.String(), Files: a.Files, Bytes: a.Bytes,
				Blobs: int(sending.Blobs.Load()), Skipped: int(sending.Skipped.Load()), Sent: sending.Sent.Load(),
				Seconds: time.Since(start).Seconds()}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			kind := "dataset"
			if model {
				kind = "model"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s %s@%s: %d files, %s; %d of %d blobs sent (%s), %d already there\n",
				kind, repo, d, a.Files, human(a.Bytes), res.Blobs-res.Skipped, res.Blobs, human(res.Sent), res.Skipped)
			return nil
		},
	}
	push.Flags().BoolVar(&model, "model", false, "store it as a model in the CNCF ModelPack format (weights, config, docs, code as their own media types)")
	push.Flags().IntVar(&parallel, "parallel", 4, "blobs hashed and sent at once")
	pull := &cobra.Command{
		Use:   "pull REPO[:TAG|@DIGEST] DIR",
		Short: "Restore an artifact into a directory (byte-identical, with modes and times); run it again to resume",
		Long: "Restore an artifact into DIR: a Gantry dataset with its modes, times and links, a ModelPack model, " +
			"or any artifact oras pushed. Files already in DIR with the right digest are kept, and a blob fetched halfway " +
			"is resumed, so running pull again after an interruption finishes it. Nothing is ever written outside DIR: " +
			"paths with .., absolute paths, links pointing outside and device files are refused.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			repo, ref, err := dataRef(cmd.Context(), cl, args[0])
			if err != nil {
				return usageErr(cmd, "%v", err)
			}
			p := &data.Progress{}
			stop := showProgress(cmd.ErrOrStderr(), "pulling "+repo+refSep(ref)+ref, p)
			start := time.Now()
			t, st, err := data.Pull(cmd.Context(), cl.Repository(repo), ref, args[1], data.UnpackOptions{Parallel: parallel, Progress: p})
			stop()
			if err != nil {
				return err
			}
			res := dataResult{Reference: repo + refSep(ref) + ref, Files: st.Written + st.Kept, Written: st.Written, Kept: st.Kept,
				Bytes: t.Bytes, Sent: st.Fetched, Blobs: len(t.Layers), Seconds: time.Since(start).Seconds()}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pulled %s into %s: %d files (%d written, %d already there), %s fetched\n",
				res.Reference, args[1], res.Files, st.Written, st.Kept, human(st.Fetched))
			return nil
		},
	}
	pull.Flags().IntVar(&parallel, "parallel", 4, "blobs fetched at once")
	c.AddCommand(push, pull)
	return c
}

// dataResult is what push and pull print with --output json.
type dataResult struct {
	Reference string  `json:"reference"`
	Digest    string  `json:"digest,omitempty"`
	Files     int     `json:"files"`
	Written   int     `json:"written,omitempty"`
	Kept      int     `json:"kept,omitempty"`
	Bytes     int64   `json:"bytes"`
	Blobs     int     `json:"blobs"`
	Skipped   int     `json:"skipped,omitempty"`
	Sent      int64   `json:"transferred"`
	Seconds   float64 `json:"seconds"`
}

func refSep(ref string) string {
	if strings.Contains(ref, ":") {
		return "@"
	}
	return ":"
}

// dataRef splits REPO[:TAG|@DIGEST]; a repository without an owner is the
// signed-in user's.
func dataRef(ctx context.Context, cl *client.Client, s string) (repo, ref string, err error) {
	repo, ref = s, "latest"
	if i := strings.Index(s, "@"); i >= 0 {
		repo, ref = s[:i], s[i+1:]
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		repo, ref = s[:i], s[i+1:]
	}
	if repo == "" || ref == "" {
		return "", "", fmt.Errorf("%q: want REPO[:TAG] or REPO@DIGEST", s)
	}
	if !strings.Contains(repo, "/") {
		me, err := cl.Me(ctx)
		if err != nil {
			return "", "", err
		}
		repo = me.Name + "/" + repo
	}
	return repo, ref, nil
}

// showProgress draws a transfer's progress on one line of w while it runs,
// when w is a terminal; the returned func stops it and clears the line.
func showProgress(w io.Writer, what string, p *data.Progress) func() {
	f, ok := w.(*os.File)
	if !ok {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				total, cur := p.Total.Load(), p.Done.Load()
				pct := 100.0
				if total > 0 {
					pct = float64(cur) * 100 / float64(total)
				}
				rate := float64(p.Sent.Load()) / max(time.Since(start).Seconds(), 0.001)
				fmt.Fprintf(w, "\r\033[K%s: %s / %s (%.0f%%), %s/s", what, human(cur), human(total), pct, human(int64(rate)))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
