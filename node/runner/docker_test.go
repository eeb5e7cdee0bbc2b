package runner

import (
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

// TestCreateRequestPassesExactlyTheAssignedGPUs: path-mode devices become
// device mappings at the same path, NVIDIA ones one device request naming
// them, and the environment lists them; the container stays unprivileged.
// The paths are stand-ins (no GPU is needed): the request is only built.
func TestCreateRequestPassesExactlyTheAssignedGPUs(t *testing.T) {
	r := &Runner{cfg: Config{Node: "n1", Cluster: "c1", PidsLimit: 4096}}
	base := Spec{Key: Key{JobID: "j", Task: 0, Attempt: 1}, Owner: "alice", Image: "img", TaskCount: 1}
	env := func(cfg *container.Config, name string) (string, bool) {
		for _, kv := range cfg.Env {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v, true
			}
		}
		return "", false
	}
	t.Run("a task without GPUs gets no device and no GPU variables", func(t *testing.T) {
		cfg, host := r.containerSpec(base)
		if len(host.Resources.Devices) != 0 || len(host.Resources.DeviceRequests) != 0 {
			t.Fatalf("devices %+v, requests %+v", host.Resources.Devices, host.Resources.DeviceRequests)
		}
		for _, name := range []string{"GANTRY_GPUS", "CUDA_VISIBLE_DEVICES"} {
			if v, ok := env(cfg, name); ok {
				t.Fatalf("%s=%s set for a task without GPUs", name, v)
			}
		}
	})
	t.Run("path-mode devices are mapped at the same path", func(t *testing.T) {
		s := base
		s.GPUs = []GPU{{ID: "/dev/random", Mode: GPUPath, Index: 2}, {ID: "/dev/urandom", Mode: GPUPath, Index: 3}}
		cfg, host := r.containerSpec(s)
		want := []container.DeviceMapping{
			{PathOnHost: "/dev/random", PathInContainer: "/dev/random", CgroupPermissions: "rwm"},
			{PathOnHost: "/dev/urandom", PathInContainer: "/dev/urandom", CgroupPermissions: "rwm"},
		}
		if !slices.Equal(host.Resources.Devices, want) || len(host.Resources.DeviceRequests) != 0 {
			t.Fatalf("devices %+v, requests %+v", host.Resources.Devices, host.Resources.DeviceRequests)
		}
		if v, _ := env(cfg, "GANTRY_GPUS"); v != "/dev/random,/dev/urandom" {
			t.Fatalf("GANTRY_GPUS=%q", v)
		}
		if v, _ := env(cfg, "CUDA_VISIBLE_DEVICES"); v != "2,3" {
			t.Fatalf("CUDA_VISIBLE_DEVICES=%q, want the devices' indices on the node", v)
		}
		if host.Privileged || !slices.Equal(host.CapDrop, []string{"ALL"}) {
			t.Fatalf("a device mapping made the container privileged: %+v", host)
		}
	})
	t.Run("NVIDIA devices are one device request with their ids", func(t *testing.T) {
		s := base
		s.GPUs = []GPU{{ID: "GPU-1111", Mode: GPUNVIDIA, Index: 1}, {ID: "GPU-3333", Mode: GPUNVIDIA, Index: 3}}
		cfg, host := r.containerSpec(s)
		reqs := host.Resources.DeviceRequests
		if len(reqs) != 1 || reqs[0].Driver != "nvidia" || !slices.Equal(reqs[0].DeviceIDs, []string{"GPU-1111", "GPU-3333"}) ||
			reqs[0].Count != 0 || len(reqs[0].Capabilities) != 1 || !slices.Equal(reqs[0].Capabilities[0], []string{"gpu"}) {
			t.Fatalf("device requests %+v", reqs)
		}
		if len(host.Resources.Devices) != 0 {
			t.Fatalf("device mappings %+v for NVIDIA devices", host.Resources.Devices)
		}
		for _, name := range []string{"GANTRY_GPUS", "CUDA_VISIBLE_DEVICES"} {
			if v, _ := env(cfg, name); v != "GPU-1111,GPU-3333" {
				t.Fatalf("%s=%q", name, v)
			}
		}
	})
	t.Run("a user's own CUDA_VISIBLE_DEVICES does not win over the assignment", func(t *testing.T) {
		s := base
		s.Env = map[string]string{"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
		s.GPUs = []GPU{{ID: "1", Mode: GPUNVIDIA, Index: 1}}
		cfg, _ := r.containerSpec(s)
		if v, _ := env(cfg, "CUDA_VISIBLE_DEVICES"); v != "1" {
			t.Fatalf("CUDA_VISIBLE_DEVICES=%q", v)
		}
	})
}
