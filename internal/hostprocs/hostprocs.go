// Package hostprocs reads the host's process table from /proc, for the
// tests and benchmarks that check which processes rosti runs and what
// they cost. It only reads; it never signals a process.
package hostprocs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Process is one entry of the process table.
type Process struct {
	PPid    int
	Comm    string // the command name the kernel keeps (15 bytes at most)
	Cmdline string // the arguments, joined by spaces
}

// List is the host's processes by pid; those that exit while it reads are
// left out.
func List() map[int]Process {
	entries, _ := os.ReadDir("/proc")
	out := map[int]Process{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, the last ')' ends it.
		open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := bytes.Fields(stat[closing+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(string(fields[1]))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[pid] = Process{
			PPid:    ppid,
			Comm:    string(stat[open+1 : closing]),
			Cmdline: string(bytes.TrimRight(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), " ")),
		}
	}
	return out
}

// Children are the pids of parent's children in procs, in order.
func Children(procs map[int]Process, parent int) []int {
	var out []int
	for pid, p := range procs {
		if p.PPid == parent {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}
