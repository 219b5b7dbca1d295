// Package sandbox runs one host tool (rsync, scp, tar, git) for one app so
// that it can only ever see and write that app's volume, as the app's uid,
// within the app's plan.
//
// The parent side (Command) re-executes the rosti binary as
// `rosti sandbox --uid .. --gid .. --volume DIR [--repo DIR] -- TOOL ARGS`
// in fresh mount, PID, IPC, UTS and network namespaces. The child side (Enter)
// first joins the app's sandbox cgroup (Cgroups), so that the tool and all
// it ever starts are counted against the plan's memory, pids and CPU. Still
// root inside those namespaces, it builds a private root on a tmpfs holding
// only the host files the tools need, read-only: the tools themselves
// (rsync, scp, tar, git, gzip and sh for tar -z, and env, xargs and cp for
// deploys), their ELF interpreters and shared libraries found with
// debug/elf, git's exec path binary and templates; then a generated
// /etc/passwd and /etc/group naming only root and the app, the few device
// nodes tools open (/dev/null, /dev/zero, /dev/urandom...), a private /tmp,
// the app volume read-write at /srv and, for git, the app's bare repository
// read-write at RepoPath. It pivots into that root, detaches the host's
// mounts, drops to the app uid/gid with no supplementary groups and
// NoNewPrivs, re-arms the parent-death signal, changes to /srv and execs
// the tool.
//
// Inside, absolute paths, "..", symlinks and hard links can only resolve to the
// volume, the repository, a throw-away tmpfs or read-only tool files;
// there is no /proc, no /root, no data dir, no other host program and no
// network. Which arguments a tool may get is the gateway's business (package
// sshd refuses options that make a tool run other programs); without a
// program to run, such an option would fail here regardless.
//
// # Cgroups
//
// Each app has one sandbox cgroup, <parent>/app-<id>, holding the plan's
// limits (memory with swap where the kernel accounts it, CPU quota, pids),
// shared by all the app's concurrent sessions so that ten sessions do not
// get ten plans. It is a cgroup of its own rather than the app's running
// container's: it exists when the app is stopped or has no container yet
// (uploads come first), it never lets an upload's memory push the app's
// web process into the OOM killer, and it does not depend on where
// containerd puts container cgroups. It exists only while a tool runs: the
// last one to end kills what is left and removes it, so deleting an app
// needs no cleanup here, and NewCgroups removes what a killed rosti left.
// They are made, limited, emptied and removed through containerd's cgroups
// library: cgroup1 on v1 hosts (memory, pids and cpu hierarchies), cgroup2
// on v2. Only joining is done by hand, by the child writing to the
// cgroup.procs files (Spec.CgroupProcs), see Enter.
//
// The package owns nothing but those processes and cgroups; it never
// touches the store or containers.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// RepoPath is where the app's bare git repository appears inside the sandbox.
const RepoPath = "/run/rosti/repo.git"

// VolumePath is where the app volume appears inside the sandbox, as in the
// app's containers.
const VolumePath = "/srv"

// Spec says which app a sandboxed tool runs for and what it runs.
type Spec struct {
	AppName   string
	UID, GID  uint32
	VolumeDir string   // host path, mounted read-write at VolumePath
	RepoDir   string   // host path of the bare repo, mounted at RepoPath; empty: none
	Env       []string // extra KEY=VALUE for the tool, after the sandbox's own
	// CgroupProcs are the cgroup.procs files (Group.ProcsFiles) of the
	// app's sandbox cgroup, joined before anything else happens, so that
	// the tool and all it starts are counted against the plan.
	CgroupProcs []string
	Args        []string // the tool and its arguments, looked up in the sandbox's PATH
}

// BindFlags declares the flags of `rosti sandbox` on fs and fills spec from
// them. Args are the positional arguments after "--", set by the caller.
func (spec *Spec) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&spec.AppName, "app", "app", "app name (the user name inside)")
	fs.Uint32Var(&spec.UID, "uid", 0, "app uid to run as (not 0)")
	fs.Uint32Var(&spec.GID, "gid", 0, "app gid to run as (not 0)")
	fs.StringVar(&spec.VolumeDir, "volume", "", "host path of the app volume, mounted at /srv")
	fs.StringVar(&spec.RepoDir, "repo", "", "host path of the app's bare git repo, mounted at "+RepoPath)
	fs.StringArrayVar(&spec.Env, "env", nil, "KEY=VALUE for the tool (repeatable)")
	fs.StringArrayVar(&spec.CgroupProcs, "cgroup-procs", nil, "cgroup.procs file of the app's sandbox cgroup to join (repeatable)")
}

// Command returns the parent side: binary (the rosti executable) re-executed
// as `binary sandbox` in new namespaces, killed if the caller dies.
func Command(binary string, spec Spec) *exec.Cmd {
	args := []string{"sandbox",
		"--app", spec.AppName,
		"--uid", fmt.Sprint(spec.UID),
		"--gid", fmt.Sprint(spec.GID),
		"--volume", spec.VolumeDir,
	}
	if spec.RepoDir != "" {
		args = append(args, "--repo", spec.RepoDir)
	}
	for _, kv := range spec.Env {
		args = append(args, "--env", kv)
	}
	for _, procs := range spec.CgroupProcs {
		args = append(args, "--cgroup-procs", procs)
	}
	args = append(args, "--")
	args = append(args, spec.Args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC |
			unix.CLONE_NEWUTS | unix.CLONE_NEWNET,
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

// Enter is the child side: it must run as root, as the first thing of a
// process started by Command. On success it never returns (the tool replaces
// the process); on failure the caller prints the error and exits non-zero.
func Enter(spec Spec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	if os.Getpid() != 1 {
		return errors.New("sandbox: not in a fresh PID namespace; start it through sandbox.Command")
	}
	// Joined by hand rather than through the library, which adds a pid
	// from outside: the child must be in the cgroup before it execs
	// anything, so the parent cannot add it after Start without a race,
	// and "0", the writing process whatever its PID namespace, needs
	// neither a pid nor knowing the host's cgroup version.
	for _, procs := range spec.CgroupProcs {
		if err := os.WriteFile(procs, []byte("0"), 0); err != nil {
			return fmt.Errorf("sandbox: join the app's cgroup: %w", err)
		}
	}
	// Open the sources before anything is mounted over their parents.
	volume, err := openDir(spec.VolumeDir)
	if err != nil {
		return err
	}
	var repo *os.File
	if spec.RepoDir != "" {
		if repo, err = openDir(spec.RepoDir); err != nil {
			return err
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("sandbox: make mounts private: %w", err)
	}
	// Any existing directory can carry the new root's tmpfs: the mounts are
	// private to this namespace and the volume and repo are held open above.
	const newRoot = "/tmp"
	if err := buildRoot(newRoot, spec, volume, repo); err != nil {
		return err
	}
	if err := pivot(newRoot); err != nil {
		return err
	}
	if err := dropPrivileges(spec.UID, spec.GID); err != nil {
		return err
	}
	if err := os.Chdir(VolumePath); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	env := append([]string{
		"PATH=" + sandboxPath,
		"HOME=" + VolumePath,
		"USER=" + spec.AppName,
		"LOGNAME=" + spec.AppName,
		"LANG=C.UTF-8",
		// git reads no config but the repository's: a ~/.gitconfig in the
		// volume could otherwise name programs for git to run (filter
		// drivers, core.fsmonitor, a pager).
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
	}, spec.Env...)
	// LookPath searches the process's own PATH, which hostFiles set.
	tool, err := exec.LookPath(spec.Args[0])
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return fmt.Errorf("sandbox: exec %s: %w", tool, syscall.Exec(tool, spec.Args, env))
}

func (spec Spec) validate() error {
	switch {
	case spec.UID == 0 || spec.GID == 0:
		return errors.New("sandbox: refusing to run a tool as root (uid or gid 0)")
	case !filepath.IsAbs(spec.VolumeDir):
		return fmt.Errorf("sandbox: volume %q is not an absolute path", spec.VolumeDir)
	case spec.RepoDir != "" && !filepath.IsAbs(spec.RepoDir):
		return fmt.Errorf("sandbox: repo %q is not an absolute path", spec.RepoDir)
	case len(spec.Args) == 0:
		return errors.New("sandbox: no command")
	case len(spec.CgroupProcs) == 0:
		return errors.New("sandbox: no cgroup to run the tool in")
	case strings.ContainsRune(spec.AppName, ':') || strings.ContainsRune(spec.AppName, '\n'):
		return fmt.Errorf("sandbox: bad app name %q", spec.AppName)
	}
	return nil
}

func openDir(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// fdPath names an opened directory so that mount(2) binds exactly it, even
// if its host path changed or got shadowed since it was opened.
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

const (
	readOnlyFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	dataFlags     = unix.MS_NOSUID | unix.MS_NODEV
)

func buildRoot(root string, spec Spec, volume, repo *os.File) error {
	if err := unix.Mount("rosti-sandbox", root, "tmpfs", dataFlags, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("sandbox: mount root tmpfs: %w", err)
	}
	files, err := hostFiles()
	if err != nil {
		return err
	}
	for _, path := range files {
		if err := addHostPath(root, path); err != nil {
			return err
		}
	}
	if err := writeEtc(root, spec); err != nil {
		return err
	}
	if err := makeDev(root); err != nil {
		return err
	}
	if err := os.Mkdir(root+"/tmp", 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := unix.Mount("rosti-sandbox-tmp", root+"/tmp", "tmpfs", dataFlags, "mode=1777,size=64m"); err != nil {
		return fmt.Errorf("sandbox: mount /tmp: %w", err)
	}
	if err := bindDir(fdPath(volume), root+VolumePath, dataFlags); err != nil {
		return err
	}
	if repo != nil {
		if err := bindDir(fdPath(repo), root+RepoPath, dataFlags); err != nil {
			return err
		}
	}
	return nil
}

// bindDir bind-mounts src on a new directory dst, then applies flags (a bind
// mount ignores them on the first call).
func bindDir(src, dst string, flags uintptr) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return bind(src, dst, flags)
}

func bind(src, dst string, flags uintptr) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("sandbox: bind %s: %w", dst, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
		return fmt.Errorf("sandbox: remount %s: %w", dst, err)
	}
	return nil
}

// writeEtc gives tools a user database naming only root and the app, so that
// no host account leaks in and tools that look up their own user succeed.
func writeEtc(root string, spec Spec) error {
	files := map[string]string{
		"passwd": fmt.Sprintf("root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n%s:x:%d:%d::%s:/bin/sh\n",
			spec.AppName, spec.UID, spec.GID, VolumePath),
		"group":         fmt.Sprintf("root:x:0:\n%s:x:%d:\n", spec.AppName, spec.GID),
		"nsswitch.conf": "passwd: files\ngroup: files\n",
	}
	if err := os.Mkdir(root+"/etc", 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for name, content := range files {
		if err := os.WriteFile(root+"/etc/"+name, []byte(content), 0o644); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	// The dynamic loader's cache and the time zone are harmless and make
	// tools start faster and print local times.
	for _, name := range []string{"ld.so.cache", "localtime"} {
		if err := bindFile("/etc/"+name, root+"/etc/"+name); err != nil {
			return err
		}
	}
	return nil
}

func makeDev(root string) error {
	if err := os.Mkdir(root+"/dev", 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for _, name := range []string{"null", "zero", "full", "random", "urandom"} {
		if err := bindFile("/dev/"+name, root+"/dev/"+name); err != nil {
			return err
		}
	}
	return nil
}

// bindFile binds one host file read-only; a file the host lacks is skipped.
func bindFile(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.WriteFile(dst, nil, 0o644); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	// Device nodes need dev on their mount; nosuid still applies.
	return bind(src, dst, unix.MS_RDONLY|unix.MS_NOSUID)
}

func pivot(newRoot string) error {
	const oldRoot = "/.old-root"
	if err := os.Mkdir(newRoot+oldRoot, 0o700); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := unix.PivotRoot(newRoot, newRoot+oldRoot); err != nil {
		return fmt.Errorf("sandbox: pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := unix.Unmount(oldRoot, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("sandbox: detach host root: %w", err)
	}
	if err := os.Remove(oldRoot); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|readOnlyFlags, ""); err != nil {
		return fmt.Errorf("sandbox: make root read-only: %w", err)
	}
	return nil
}

func dropPrivileges(uid, gid uint32) error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("sandbox: setgroups: %w", err)
	}
	if err := syscall.Setgid(int(gid)); err != nil {
		return fmt.Errorf("sandbox: setgid: %w", err)
	}
	if err := syscall.Setuid(int(uid)); err != nil {
		return fmt.Errorf("sandbox: setuid: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox: no_new_privs: %w", err)
	}
	// Changing the uid cleared the parent-death signal Command set: arm it
	// again, so that the tool (PID 1 of its namespace, taking everything it
	// started along) dies with rosti.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox: pdeathsig: %w", err)
	}
	return nil
}
