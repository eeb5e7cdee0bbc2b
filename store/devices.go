package store

import (
	"fmt"
	"slices"
	"strings"
)

// GPUs by device. A node declares its GPUs as devices (node.upsert); the
// store hands specific devices to each attempt it places and takes them
// back when the attempt ends, in Apply, so every node agrees on who holds
// which device. See DESIGN.md, "GPUs by device".

// Device modes: how the runner passes a device to a container.
const (
	// DeviceNVIDIA is a GPU known to NVIDIA's container runtime by index
	// or UUID, passed as a Docker device request (driver nvidia).
	DeviceNVIDIA = "nvidia"
	// DevicePath is a host device file passed to the container at the same
	// path (rwm).
	DevicePath = "path"
)

// MaxDevices bounds the GPUs one node may declare.
const MaxDevices = 64

// Device is one GPU a node declared, with the attempts holding it.
type Device struct {
	ID   string `json:"id"`
	Mode string `json:"mode"`
	// Shareable devices may be held by several tasks at once; others by
	// one task at a time.
	Shareable bool         `json:"shareable,omitempty"`
	Holders   []AttemptRef `json:"holders,omitempty"`
}

// AttemptRef names one attempt of one task.
type AttemptRef struct {
	JobID string `json:"job"`
	Task  int    `json:"task"`
	N     int    `json:"attempt"`
}

// String formats the reference as "job/task.attempt".
func (r AttemptRef) String() string { return fmt.Sprintf("%s/%d.%d", r.JobID, r.Task, r.N) }

// Ref returns the reference to the attempt.
func (a *Attempt) Ref() AttemptRef { return AttemptRef{JobID: a.JobID, Task: a.Task, N: a.N} }

// ValidDevices checks a node's declared devices: non-empty ids without
// commas or spaces, no id twice, a known mode, an absolute path for path
// mode, at most MaxDevices.
func ValidDevices(ds []Device) error {
	if len(ds) > MaxDevices {
		return Errorf(EInvalid, "devices: at most %d per node, got %d", MaxDevices, len(ds))
	}
	seen := map[string]bool{}
	for _, d := range ds {
		switch {
		case d.ID == "" || len(d.ID) > 256 || strings.ContainsAny(d.ID, ", \t\n\x00"):
			return Errorf(EInvalid, "devices: %q is not a valid device id", d.ID)
		case seen[d.ID]:
			return Errorf(EInvalid, "devices: %s is declared twice", d.ID)
		case d.Mode != DeviceNVIDIA && d.Mode != DevicePath:
			return Errorf(EInvalid, "devices: %s: mode %q, want %s or %s", d.ID, d.Mode, DeviceNVIDIA, DevicePath)
		case d.Mode == DevicePath && !strings.HasPrefix(d.ID, "/"):
			return Errorf(EInvalid, "devices: %s: a path-mode device is an absolute host path such as /dev/nvidia0", d.ID)
		}
		seen[d.ID] = true
	}
	return nil
}

// available reports whether the device can be given to one more task.
func (d *Device) available() bool { return d.Shareable || len(d.Holders) == 0 }

// FreeDevices counts the node's devices that can be given to one more
// task: unheld ones, and shareable ones whatever holds them. A task needing
// k GPUs fits only where k distinct devices are free.
func (n *Node) FreeDevices() int {
	free := 0
	for i := range n.Devices {
		if n.Devices[i].available() {
			free++
		}
	}
	return free
}

// pickDevices chooses k distinct devices for one task, deterministically:
// unheld devices first, in the order the node declared them (its device
// index), then shareable ones already in use, fewest holders first. It
// returns nil when fewer than k are available.
func (n *Node) pickDevices(k int) []int {
	if k <= 0 || n.FreeDevices() < k {
		return nil
	}
	picked := make([]int, 0, k)
	for i := range n.Devices {
		if len(picked) < k && len(n.Devices[i].Holders) == 0 {
			picked = append(picked, i)
		}
	}
	for holders := 1; len(picked) < k; holders++ {
		for i := range n.Devices {
			d := &n.Devices[i]
			if len(picked) < k && d.Shareable && len(d.Holders) == holders {
				picked = append(picked, i)
			}
		}
	}
	return picked
}

// assignDevices gives k devices to the attempt and returns their ids in
// the node's order (nil when k is 0 or too few are free).
func (n *Node) assignDevices(k int, ref AttemptRef) []string {
	picked := n.pickDevices(k)
	if picked == nil {
		return nil
	}
	slices.Sort(picked)
	ids := make([]string, len(picked))
	for j, i := range picked {
		d := &n.Devices[i]
		d.Holders = append(d.Holders, ref)
		ids[j] = d.ID
	}
	return ids
}

// releaseDevices takes back whatever devices the attempt holds on the node.
// A device the node no longer declares has nothing to take back.
func (n *Node) releaseDevices(ref AttemptRef) {
	for i := range n.Devices {
		d := &n.Devices[i]
		for j, h := range d.Holders {
			if h == ref {
				d.Holders = append(d.Holders[:j:j], d.Holders[j+1:]...)
				break
			}
		}
		if len(d.Holders) == 0 {
			d.Holders = nil
		}
	}
}

// redeclare replaces the node's devices with a new declaration, keeping the
// holders of every device declared again (a restarted node still has its
// tasks running on them). A held device the node no longer declares is
// dropped: its attempts keep running and release nothing when they end.
func (n *Node) redeclare(ds []Device) {
	held := map[string][]AttemptRef{}
	for _, d := range n.Devices {
		held[d.ID] = d.Holders
	}
	next := make([]Device, len(ds))
	for i, d := range ds {
		d.Holders = held[d.ID]
		next[i] = d
	}
	if len(next) == 0 {
		next = nil
	}
	n.Devices = next
	n.Capacity.GPUs = len(next)
}
