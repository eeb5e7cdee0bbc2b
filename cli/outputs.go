package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"gantry/data"
	"gantry/wire"
)

// outputResult is one task's downloaded output, as --output json prints it.
type outputResult struct {
	Task    int    `json:"task"`
	Ref     string `json:"ref"`
	Dir     string `json:"dir"`
	Files   int    `json:"files"`
	Bytes   int64  `json:"bytes"`
	Fetched int64  `json:"transferred"`
}

func outputCmd(g *globals) *cobra.Command {
	var task, parallel int
	c := &cobra.Command{
		Use:   "output JOB [DIR]",
		Short: "Download the outputs a job's tasks left in their --output directory",
		Long: "Downloads the stored output of each task of JOB into DIR (default JOB-output): " +
			"for an array job one directory per task, DIR/task-0000 and on; for a single task " +
			"(or with --task N) DIR itself. A file already there with the right content is kept, " +
			"so running it again after an interruption finishes it.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := newClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			j, err := cl.Job(ctx, args[0])
			if err != nil {
				return err
			}
			if j.Spec.Output == nil {
				return fmt.Errorf("job %s has no output directory: submit with --output PATH to keep what its tasks write", j.ID)
			}
			if cmd.Flags().Changed("task") && (task < 0 || task >= j.Total) {
				return fmt.Errorf("--task %d: job %s has tasks 0 to %d", task, j.ID, j.Total-1)
			}
			dir := j.ID + "-output"
			if len(args) == 2 {
				dir = args[1]
			}
			one := j.Total == 1 || cmd.Flags().Changed("task")
			var outs []wire.TaskOutput
			if cmd.Flags().Changed("task") {
				l, err := cl.Outputs(ctx, j.ID, strconv.Itoa(task), 1)
				if err != nil {
					return err
				}
				outs = l.Outputs
			} else {
				for cursor := ""; ; {
					l, err := cl.Outputs(ctx, j.ID, cursor, 0)
					if err != nil {
						return err
					}
					outs = append(outs, l.Outputs...)
					if l.Next == "" {
						break
					}
					cursor = l.Next
				}
			}
			if len(outs) == 0 {
				what := "none of its tasks has"
				if cmd.Flags().Changed("task") {
					what = fmt.Sprintf("task %d has", task)
				}
				return fmt.Errorf("job %s (%s): %s a stored output yet (only ended attempts' are kept: succeeded ones, failed ones too with --keep-failed-output)", j.ID, j.State, what)
			}
			var res []outputResult
			start := time.Now()
			for _, o := range outs {
				to := dir
				if !one {
					to = filepath.Join(dir, fmt.Sprintf("task-%04d", o.Task))
				}
				p := &data.Progress{}
				stop := showProgress(cmd.ErrOrStderr(), fmt.Sprintf("task %d", o.Task), p)
				_, st, err := data.Pull(ctx, cl.Repository(o.Repo), o.Digest, to, data.UnpackOptions{Parallel: parallel, Progress: p})
				stop()
				if err != nil {
					return fmt.Errorf("task %d (%s@%s): %w", o.Task, o.Repo, o.Digest, err)
				}
				res = append(res, outputResult{Task: o.Task, Ref: o.Repo + "@" + o.Digest, Dir: to, Files: st.Written + st.Kept, Bytes: o.Bytes, Fetched: st.Fetched})
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			var files int
			var bytes int64
			for _, r := range res {
				files += r.Files
				bytes += r.Bytes
				if !one {
					fmt.Fprintf(w, "task %d: %d files, %s -> %s\n", r.Task, r.Files, human(r.Bytes), r.Dir)
				}
			}
			fmt.Fprintf(w, "downloaded the output of %d of %d tasks of %s into %s: %d files, %s (%s)\n",
				len(res), j.Total, j.ID, dir, files, human(bytes), time.Since(start).Round(time.Millisecond))
			if missing := j.Total - len(res); !one && missing > 0 {
				fmt.Fprintf(w, "%d tasks have no stored output (not ended, failed without --keep-failed-output, or cancelled)\n", missing)
			}
			return nil
		},
	}
	c.Flags().IntVar(&task, "task", 0, "only this task's output, into DIR itself")
	c.Flags().IntVar(&parallel, "parallel", 4, "blobs fetched at once")
	return c
}
