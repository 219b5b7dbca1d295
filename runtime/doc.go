// Package runtime is rosti's containerd driver: it connects to containerd (or
// runs a managed containerd child under the data dir), keeps app containers
// and their images, networks, logs, exec sessions and stats, and reports task
// exits. It owns the containerd namespace (default "rosti"), the CNI networks
// and firewall chain it creates, DataDir/containerd, DataDir/logs,
// DataDir/netns and DataDir/network; of the init binaries an installer put
// elsewhere, it only removes, at start, those of earlier versions
// (Config.OldInits) that no container mounts. It never reads or writes the store and
// never decides what should run: platform tells it, through Run/Stop/Remove,
// and learns what happened through List, Inspect and Exits.
//
// # Containers
//
// One container per process instance, runc via io.containerd.runc.v2. The
// process runs as the given non-root uid/gid with no supplementary groups, no
// capabilities, no new privileges and containerd's default seccomp profile,
// under hard memory (swap included where the kernel accounts it), CPU quota
// and pids limits. The only host paths mounted are the app volume (/srv, read
// write), the init binary (/rosti, read only, run as `rosti init`: rosti
// itself or the smaller cmd/rosti-init it carries) and the
// generated /etc/resolv.conf and /etc/hosts (read only).
//
// # Network and isolation between groups
//
// Every container gets its own network namespace, created by the driver as a
// bind mount under DataDir/netns rather than by runc, so that the namespace
// (and with it the CNI teardown, which needs it to find the IP masquerade
// rules) outlives the task: a container that exited can be started again with
// the same IP, and Remove can always release its address.
//
// Each isolation group (a company) gets its own bridge, <Bridge>-<n>, and its
// own /24 out of Subnet, through CNI's bridge and host-local plugins with
// ipMasq for egress. Traffic between two groups therefore has to be routed
// by the host, where one iptables chain (ROSTI-<Bridge>, jumped to first from
// FORWARD) drops anything entering from one rosti bridge and leaving through
// another, while accepting traffic within a bridge (relevant when
// br_netfilter is loaded), egress and replies. One bridge per group was
// chosen over per-container rules on a shared bridge because traffic within
// a shared bridge never reaches iptables unless br_netfilter is loaded and
// bridge-nf-call-iptables is set, which rosti cannot count on, and because
// the rule count stays constant instead of growing with containers.
//
// What containers reach on the host itself goes through INPUT, where a
// second chain (ROSTI-<Bridge>-IN) closes every host port except
// Config.HostPorts (rosti's own listeners) and ping, lets a container use
// those through its own group's gateway or the host's other addresses but
// never another group's gateway, and passes replies to connections the
// host opened (the proxy, health checks). Link-local addresses, the cloud
// metadata service's among them, are rejected in FORWARD. The group
// to index mapping is persisted in DataDir/network/groups.json; a group keeps
// its subnet for the life of the data dir.
//
// # Logs
//
// A task's stdout and stderr are two FIFOs, DataDir/containerd/stdio/
// <container>/{stdout,stderr}, that the shim writes and the driver reads,
// appending whole lines (split past 8 KiB) to DataDir/logs/<container>/
// output.log and rotating it by size: past LogMaxBytes it becomes
// output.log.1 and LogKeep files are kept, so a container's logs never take
// more than LogMaxBytes×(LogKeep+1). No process runs per container for
// this (an earlier rosti ran a `rosti init --logger` per task, about 3 MB
// each); the copying is two parked goroutines and 16 KiB in rosti. It
// writes all the whole lines of a read at once, and past a burst of 8 MiB
// reads a container's output at 1 MiB/s at most: an app printing faster
// waits in its writes rather than take rosti's CPU.
//
// The shim keeps a read end of each FIFO open too, so output outlives its
// reader: while rosti is stopped or restarting, what the app prints waits
// in the FIFO (the driver asks 1 MiB of kernel buffer for each, allocated
// as it fills), and the next driver attaches to the FIFOs of every running
// task (Serve) and writes it to the log. An app that prints more than that
// while rosti is down blocks in its write until rosti reads again, as
// Docker's apps do with its daemon down; and the unread output of a task
// that exits while rosti is down goes with the shim's FIFO ends, as the
// pipe then has no reader left. Containers started by a rosti with the
// per-task log process keep it until their next start (a restart, deploy
// or config change starts them with FIFOs); nothing is restarted on
// upgrade.
//
// # Restarts of rosti and containerd
//
// Everything the driver needs to find a container again is in containerd:
// labels carry the group, the IP and the netns path, so a new Driver in a new
// process lists and adopts running containers. With a managed containerd,
// Shutdown stops containerd but not the shims, which keep the tasks running;
// the next managed containerd reconnects to them.
package runtime
