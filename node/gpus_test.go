package node

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"gantry/store"
)

// The devices of these tests are stand-ins for GPUs: device files every
// Linux machine has. No GPU is needed.

func TestDeclareGPUs(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	t.Run("device paths are path mode, in the order given", func(t *testing.T) {
		ds, err := declareGPUs(ctx, []string{"/dev/zero", "/dev/full"}, GPUModeAuto, []string{"/dev/full"}, log)
		want := []store.Device{{ID: "/dev/zero", Mode: store.DevicePath}, {ID: "/dev/full", Mode: store.DevicePath, Shareable: true}}
		if err != nil || !slices.EqualFunc(ds, want, func(a, b store.Device) bool { return a.ID == b.ID && a.Mode == b.Mode && a.Shareable == b.Shareable }) {
			t.Fatalf("got %+v, %v", ds, err)
		}
	})
	t.Run("other ids are NVIDIA devices; all makes every one shareable", func(t *testing.T) {
		ds, err := declareGPUs(ctx, []string{"0", "GPU-3f1c"}, GPUModeAuto, []string{GPUShareAll}, log)
		if err != nil || len(ds) != 2 || ds[0].Mode != store.DeviceNVIDIA || !ds[0].Shareable || !ds[1].Shareable {
			t.Fatalf("got %+v, %v", ds, err)
		}
	})
	for _, tc := range []struct {
		name, want string
		ids        []string
		mode       string
		shareable  []string
	}{
		{"a path that does not exist", "no such file", []string{"/dev/no-such-gpu"}, GPUModePath, nil},
		{"a path that is not a device", "not a device file", []string{"/etc/hostname"}, GPUModePath, nil},
		{"a shareable device not declared", "--gpu-shareable", []string{"0"}, GPUModeNVIDIA, []string{"1"}},
		{"an id given twice", "twice", []string{"0", "0"}, GPUModeNVIDIA, nil},
		{"a relative path in path mode", "absolute", []string{"dev/zero"}, GPUModePath, nil},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			if _, err := declareGPUs(ctx, tc.ids, tc.mode, tc.shareable, log); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("nvidia-smi output is one UUID a line", func(t *testing.T) {
		if got := parseNVIDIASMI("GPU-aaaa\n GPU-bbbb \n\n"); !slices.Equal(got, []string{"GPU-aaaa", "GPU-bbbb"}) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("an attempt's devices reach the runner with their mode and index", func(t *testing.T) {
		declared := []store.Device{{ID: "/dev/zero", Mode: store.DevicePath}, {ID: "/dev/full", Mode: store.DevicePath}}
		got := runnerGPUs(declared, []string{"/dev/full"})
		if len(got) != 1 || got[0].ID != "/dev/full" || got[0].Mode != "path" || got[0].Index != 1 {
			t.Fatalf("got %+v", got)
		}
	})
}
