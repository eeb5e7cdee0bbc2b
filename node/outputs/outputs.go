// Package outputs stores what a task left in its output directory as an
// OCI artifact of the node's registry: the Gantry dataset layout with
// artifactType application/vnd.gantry.output.v1, in the owner's
// repository OWNER/outputs, tagged JOB-NNNN, annotated with its provenance
// (job, task, attempt, exit code, image and its digest, every input's
// digest, the generative-AI label).
//
// It owns the packing and the annotations. The runner owns the directory,
// its limit and when an output is kept (node/runner/output.go); the
// registry owns the blobs, the two copies a cluster keeps and the
// permissions (node/registry/local.go); the store owns the names of the
// repository and tag (store/outputs.go) and the attempt's record of what
// was stored.
package outputs

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/data"
	"gantry/node/registry"
	"gantry/node/runner"
	"gantry/store"
)

// Collector stores outputs into a registry (runner.Outputs).
type Collector struct {
	reg *registry.Registry
	log *slog.Logger
	// Parallel is how many files are hashed and blobs stored at once.
	Parallel int

	collected *prometheus.CounterVec // by result: stored, failed
	seconds   prometheus.Histogram
	bytes     prometheus.Counter
}

// New returns a collector storing into reg; its metrics are registered
// with mr when it is not nil.
func New(reg *registry.Registry, log *slog.Logger, mr prometheus.Registerer) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{reg: reg, log: log, Parallel: 4,
		collected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantry_outputs_collected_total",
			Help: "Task outputs this node packed and stored (result=stored) or could not store (result=failed)."}, []string{"result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_output_collect_seconds",
			Help: "Time to pack and store one task output, from its directory to its manifest.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 9)}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_output_bytes_total",
			Help: "Bytes of the files of the task outputs this node stored."}),
	}
	if mr != nil {
		mr.MustRegister(c.collected, c.seconds, c.bytes)
	}
	return c
}

// Collect packs dir, the output of the attempt spec that ended with res,
// and stores it as OWNER/outputs:JOB-NNNN. Collecting the same directory
// of the same attempt again gives the same artifact, and sends nothing
// the registry already holds.
func (c *Collector) Collect(ctx context.Context, spec runner.Spec, res runner.Result, dir string) (*runner.OutputRef, error) {
	start := time.Now()
	ref, err := c.collect(ctx, spec, res, dir)
	if err != nil {
		c.collected.WithLabelValues("failed").Inc()
		return nil, err
	}
	c.seconds.Observe(time.Since(start).Seconds())
	c.collected.WithLabelValues("stored").Inc()
	c.bytes.Add(float64(ref.Bytes))
	return ref, nil
}

func (c *Collector) collect(ctx context.Context, spec runner.Spec, res runner.Result, dir string) (*runner.OutputRef, error) {
	a, err := data.Build(ctx, dir, data.BuildOptions{
		ArtifactType: data.ArtifactTypeOutput,
		Annotations:  Provenance(spec, res),
		Parallel:     c.Parallel,
	})
	if err != nil {
		// The user knows the directory by its path in the container.
		msg := err.Error()
		if spec.Output != nil {
			msg = strings.ReplaceAll(msg, dir, spec.Output.Path)
		}
		return nil, fmt.Errorf("pack the output: %s", msg)
	}
	repo, tag := store.OutputRepo(spec.Owner), store.OutputTag(spec.JobID, spec.Task)
	d, err := data.Push(ctx, a, c.reg.Local(repo, spec.Owner), tag, c.Parallel, nil)
	if err != nil {
		return nil, fmt.Errorf("store the output as %s:%s: %w", repo, tag, err)
	}
	return &runner.OutputRef{Repo: repo, Tag: tag, Digest: d.String(), Files: a.Files, Bytes: a.Bytes}, nil
}

// Provenance is the annotations of the output of attempt spec that ended
// with res. They depend only on the attempt, so a second collection of
// the same attempt gives the same manifest.
func Provenance(spec runner.Spec, res runner.Result) map[string]string {
	an := map[string]string{
		data.AnnotationJob:      spec.JobID,
		data.AnnotationTask:     strconv.Itoa(spec.Task),
		data.AnnotationAttempt:  strconv.Itoa(spec.Attempt),
		data.AnnotationExitCode: strconv.Itoa(res.ExitCode),
		data.AnnotationImage:    spec.Image,
	}
	if res.ImageDigest != "" {
		an[data.AnnotationImageDigest] = res.ImageDigest
	}
	if len(spec.Inputs) > 0 {
		in := make([]string, len(spec.Inputs))
		for i, x := range spec.Inputs {
			in[i] = x.Repo + "@" + x.Digest
		}
		an[data.AnnotationInputs] = strings.Join(in, ",")
	}
	if spec.GenAI {
		an[data.AnnotationGenAI] = "true"
	}
	if !res.EndedAt.IsZero() {
		an[data.AnnotationCreated] = res.EndedAt.UTC().Format(time.RFC3339)
	}
	return an
}
