package cli

import (
	"bytes"
	"context"
	"slices"
	"testing"
)

// TestServerGPUFlags: --gpu takes comma lists and repeats, in order; a bad
// --gpu-mode or an empty item is a usage error.
func TestServerGPUFlags(t *testing.T) {
	var got ServerConfig
	server := func(_ context.Context, c ServerConfig) error { got = c; return nil }
	var out, errb bytes.Buffer
	args := []string{"server", "--gpu", "/dev/zero,/dev/full", "--gpu", "/dev/random", "--gpu-mode", "path", "--gpu-shareable", "/dev/full"}
	if code := run(context.Background(), args, server, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !slices.Equal(got.GPUs, []string{"/dev/zero", "/dev/full", "/dev/random"}) || got.GPUMode != "path" || !slices.Equal(got.GPUShareable, []string{"/dev/full"}) {
		t.Fatalf("parsed %q mode %q shareable %q", got.GPUs, got.GPUMode, got.GPUShareable)
	}
	t.Setenv("GANTRY_GPU_DEVICES", "GPU-a,GPU-b")
	if code := run(context.Background(), []string{"server"}, server, &out, &errb); code != 0 || !slices.Equal(got.GPUs, []string{"GPU-a", "GPU-b"}) {
		t.Fatalf("from $GANTRY_GPU_DEVICES: exit %d, %q", code, got.GPUs)
	}
	for _, bad := range [][]string{{"server", "--gpu-mode", "magic"}, {"server", "--gpu", "0,,1"}} {
		if code, stderr := runLine(t, bad...); code != 2 {
			t.Fatalf("gantry %q: exit %d (%s), want 2", bad, code, stderr)
		}
	}
}
