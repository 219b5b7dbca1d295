package runtime

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// scratchMounts puts the directories every process may write to in an
// image (/tmp, /var/tmp) on a tmpfs of half the plan's memory. Left to the
// container's writable layer, they would be on the host's data file
// system, outside the app's disk: a tenant could fill rosti's own disk
// through /tmp. A tmpfs is charged to the app's memory cgroup, and its
// size makes a write past it fail with ENOSPC before the app is OOM-killed.
func scratchMounts(memoryMB int64) []specs.Mount {
	size := max(memoryMB/2, 16)
	var mounts []specs.Mount
	for _, dir := range []string{"/tmp", "/var/tmp"} {
		mounts = append(mounts, specs.Mount{Destination: dir, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "mode=1777", fmt.Sprintf("size=%dm", size)}})
	}
	return mounts
}
