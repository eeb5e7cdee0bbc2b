package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"gantry/node/runner"
	"gantry/store"
)

// GPU device modes a node may be given (Config.GPUMode).
const (
	GPUModeAuto   = ""       // path when every id is an absolute path, else nvidia
	GPUModeNVIDIA = "nvidia" // ids are NVIDIA indices or UUIDs
	GPUModePath   = "path"   // ids are host device files
)

// nvidiaSMITimeout bounds GPU discovery at start.
const nvidiaSMITimeout = 10 * time.Second

// GPUShareAll in Config.GPUShareable makes every declared device shareable.
const GPUShareAll = "all"

// declareGPUs is the node's GPUs: the ones given with --gpu, in the mode
// given or implied, or else those nvidia-smi lists (NVIDIA mode), or none.
// A path-mode device must exist on this host as a device file. Shareable
// names the devices several tasks may hold at once ("all": every one).
func declareGPUs(ctx context.Context, ids []string, mode string, shareable []string, log *slog.Logger) ([]store.Device, error) {
	if len(ids) == 0 {
		if mode != GPUModeAuto {
			return nil, fmt.Errorf("--gpu-mode %s needs --gpu", mode)
		}
		found, err := discoverNVIDIA(ctx)
		if err != nil {
			log.Warn("GPU discovery: nvidia-smi failed; this node declares no GPUs", "err", err)
			return nil, nil
		}
		if len(found) > 0 {
			log.Info("GPU discovery: nvidia-smi lists GPUs", "gpus", strings.Join(found, ","))
		}
		ids, mode = found, GPUModeNVIDIA
	}
	if len(ids) == 0 {
		if len(shareable) > 0 {
			return nil, errors.New("--gpu-shareable: this node declares no GPUs")
		}
		return nil, nil
	}
	if mode == GPUModeAuto {
		mode = GPUModeNVIDIA
		if !slices.ContainsFunc(ids, func(id string) bool { return !strings.HasPrefix(id, "/") }) {
			mode = GPUModePath
		}
	}
	if mode != GPUModeNVIDIA && mode != GPUModePath {
		return nil, fmt.Errorf("--gpu-mode %q: want %s or %s", mode, GPUModeNVIDIA, GPUModePath)
	}
	share := map[string]bool{}
	for _, id := range shareable {
		if id != GPUShareAll && !slices.Contains(ids, id) {
			return nil, fmt.Errorf("--gpu-shareable %s: not a GPU this node declares (%s)", id, strings.Join(ids, ","))
		}
		share[id] = true
	}
	devs := make([]store.Device, len(ids))
	for i, id := range ids {
		devs[i] = store.Device{ID: id, Mode: mode, Shareable: share[GPUShareAll] || share[id]}
	}
	if err := store.ValidDevices(devs); err != nil {
		return nil, fmt.Errorf("--gpu: %w", err)
	}
	for _, id := range ids {
		if mode == GPUModePath {
			st, err := os.Stat(id)
			if err != nil {
				return nil, fmt.Errorf("--gpu %s: %w", id, err)
			}
			if st.Mode()&fs.ModeDevice == 0 {
				return nil, fmt.Errorf("--gpu %s: not a device file (path mode passes host devices such as /dev/nvidia0)", id)
			}
		}
	}
	return devs, nil
}

// discoverNVIDIA lists the UUIDs of this machine's NVIDIA GPUs with
// nvidia-smi, in its index order; none when nvidia-smi is not installed.
func discoverNVIDIA(ctx context.Context) ([]string, error) {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, nvidiaSMITimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-gpu=uuid", "--format=csv,noheader").Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return parseNVIDIASMI(string(out)), nil
}

// parseNVIDIASMI reads one UUID a line, skipping blank lines.
func parseNVIDIASMI(out string) []string {
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		if id := strings.TrimSpace(line); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// runnerGPUs turns an attempt's assigned device ids into what the runner
// passes to Docker, with each device's mode and index on this node. An id
// this node does not declare (a declaration changed under a running task)
// is passed in the node's mode, without an index.
func runnerGPUs(declared []store.Device, ids []string) []runner.GPU {
	if len(ids) == 0 {
		return nil
	}
	out := make([]runner.GPU, len(ids))
	for i, id := range ids {
		g := runner.GPU{ID: id, Mode: runner.GPUNVIDIA, Index: -1}
		if strings.HasPrefix(id, "/") {
			g.Mode = runner.GPUPath
		}
		for j, d := range declared {
			if d.ID == id {
				g.Mode, g.Index = d.Mode, j
				break
			}
		}
		out[i] = g
	}
	return out
}
