// Package initbin carries the init binary (cmd/rosti-init) inside rosti
// when the build put it there (make build: built first, then embedded with
// the rostiinit build tag), and installs it on the host for the runtime to
// mount into containers. A plain `go build` has none, and rosti then
// mounts itself, which works the same with about 2 MB more in every
// container. It owns DataDir/bin and nothing else; the runtime, which
// knows what containers mount, removes the binaries of earlier versions
// (Installed) once none does.
//
// Where this departs from DESIGN.md: the design mounts the rosti binary
// itself into containers as their init. The init is still what rosti
// ships, in the same one file, but as a second, smaller program: init is
// the one part of rosti that runs in every container, and the whole
// binary cost each of them about 2 MB more than this one does (issue 12's
// per-app budget is 5 MB, shim and init included).
package initbin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// namePrefix starts the name of every installed init binary; the rest is
// a hash of its content.
const namePrefix = "rosti-init-"

// Installed is a glob of the init binaries Install puts in dir, this
// version's and those of earlier ones, which the runtime removes once no
// container mounts them.
func Installed(dir string) string { return filepath.Join(dir, namePrefix+"*") }

// Install writes the embedded init binary into dir, named by its content so
// that a new rosti never rewrites the file running containers have mounted,
// and returns its path; "" when this build embeds none.
func Install(dir string) (string, error) {
	if len(embedded) == 0 {
		return "", nil
	}
	defer release()
	sum := sha256.Sum256([]byte(embedded))
	path := filepath.Join(dir, namePrefix+hex.EncodeToString(sum[:6]))
	if fi, err := os.Stat(path); err == nil && fi.Size() == int64(len(embedded)) && fi.Mode().Perm() == 0o755 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("install init: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".rosti-init-*")
	if err != nil {
		return "", fmt.Errorf("install init: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(embedded); err != nil {
		tmp.Close()
		return "", fmt.Errorf("install init: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", fmt.Errorf("install init: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("install init: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("install init: %w", err)
	}
	return path, nil
}

// release drops the pages of the embedded binary from rosti's memory: read
// once by Install, they would otherwise stay resident, 7 MB, for as long as
// rosti runs. They are read-only data mapped from rosti's file, so the
// kernel reads them again should anything touch them. Only whole pages
// within the binary's bytes are dropped.
func release() {
	if !embeddedByBuild || len(embedded) == 0 {
		return
	}
	page := uintptr(os.Getpagesize())
	data := unsafe.Pointer(unsafe.StringData(embedded))
	skip := (page - uintptr(data)%page) % page
	if uintptr(len(embedded)) <= skip {
		return
	}
	n := (uintptr(len(embedded)) - skip) &^ (page - 1)
	if n == 0 {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(data, skip)), n), unix.MADV_DONTNEED)
}
