package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/anmitsu/go-shlex"
	"github.com/gliderlabs/ssh"
	"golang.org/x/sys/unix"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/sshd/sandbox"
)

// Exit statuses of a session whose command could not run, each with one
// line on stderr that says why; like a shell's 126 and 127 and container
// tools' 125, so that scripts can tell them from their command's own.
const (
	// exitInternal: the gateway itself failed, as OpenSSH's client uses for
	// its own errors.
	exitInternal = 255
	// exitNotRunning: the app has no running container (stopped, waiting
	// for its image, failing to start).
	exitNotRunning = 125
	// exitNoProgram: the app's image lacks the program, often a shell.
	exitNoProgram = 126
	// exitOutOfMemory: the kernel killed the command for exceeding the
	// plan's memory, as a shell reports a SIGKILLed command (128+9).
	exitOutOfMemory = 137
)

// uploadPipeSize is the pipe buffer (and copy buffer) between the SSH
// channel and a sandboxed tool's stdin.
const uploadPipeSize = 1 << 20

func (s *Server) handleSession(sess ssh.Session) {
	if key, ok := gitKeyOf(sess.Context()); ok {
		sess.Exit(s.gitUserSession(sess, key))
		return
	}
	access, ok := accessOf(sess.Context())
	if !ok {
		// Cannot happen with the auth handlers installed; never run
		// anything for an unauthenticated session regardless.
		sess.Exit(exitInternal)
		return
	}
	log := s.log.With("app", access.AppName, "source", sourceHost(sess.RemoteAddr()))
	args, err := shlex.Split(sess.RawCommand(), true)
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "rosti: cannot parse the command: %v\n", err)
		sess.Exit(2)
		return
	}
	var code int
	switch kind := classify(args, access.AppName); kind {
	case commandGitReceive:
		log.Info("git push")
		code = s.gitReceive(sess, access)
	case commandGitOther:
		fmt.Fprintf(sess.Stderr(), "rosti: the only repository here is %[1]s: push to ssh://%[1]s@HOST:PORT/%[1]s\n", access.AppName)
		code = 1
	case commandSandboxed:
		if err := checkSandboxedArgs(args); err != nil {
			log.Warn("sandboxed command refused", "tool", args[0], "err", err)
			fmt.Fprintf(sess.Stderr(), "rosti: %v\n", err)
			code = 1
			break
		}
		log.Info("sandboxed command", "tool", args[0])
		code = s.runSandboxedSession(sess, access, args)
	default:
		log.Info("exec", "shell", len(args) == 0)
		code = s.execInContainer(sess, access, args)
	}
	sess.Exit(code)
}

type commandKind int

const (
	commandContainer commandKind = iota
	commandSandboxed
	commandGitReceive
	commandGitOther // a git transport command for any other repository
)

// classify picks where a command runs. Only the file-transfer tools that
// must work without the runtime image's help run in the sandbox, and only in
// their server modes; everything else runs in the app's container.
func classify(args []string, app string) commandKind {
	if len(args) == 0 {
		return commandContainer
	}
	switch args[0] {
	case "rsync":
		if len(args) > 1 && args[1] == "--server" {
			return commandSandboxed
		}
	case "scp":
		if slices.Contains(args[1:], "-t") || slices.Contains(args[1:], "-f") {
			return commandSandboxed
		}
	case "tar":
		return commandSandboxed
	case "git-receive-pack":
		if len(args) == 2 && isAppRepo(args[1], app) {
			return commandGitReceive
		}
		return commandGitOther
	case "git-upload-pack", "git-upload-archive":
		return commandGitOther
	case "git":
		if len(args) == 3 && args[1] == "receive-pack" && isAppRepo(args[2], app) {
			return commandGitReceive
		}
	}
	return commandContainer
}

// isAppRepo accepts the spellings git clients use for the app's repo:
// app, /app, ~/app, with or without .git and a trailing slash.
func isAppRepo(path, app string) bool {
	path = strings.TrimPrefix(path, "~")
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	return path == app
}

func (s *Server) execInContainer(sess ssh.Session, access platform.AppAccess, args []string) int {
	req := platform.ExecRequest{
		Args:   []string{"/bin/sh", "-l"},
		Stdin:  sess,
		Stdout: sess,
		Stderr: sess.Stderr(),
	}
	if len(args) > 0 {
		// Like OpenSSH, the command line goes to the user's shell.
		req.Args = []string{"/bin/sh", "-c", sess.RawCommand()}
	}
	ctx := sess.Context()
	if pty, winch, ok := sess.Pty(); ok {
		req.TTY = true
		req.Env = append(req.Env, "TERM="+pty.Term)
		req.Resize = windowSizes(ctx, winch)
	}
	code, err := s.platform.Exec(ctx, access, req)
	switch {
	case errors.Is(err, platform.ErrAppNotRunning):
		fmt.Fprintf(sess.Stderr(), "rosti: %v; a shell and commands need it running (rsync, scp, sftp and git push work meanwhile)\r\n", err)
		return exitNotRunning
	case errors.Is(err, platform.ErrProgramNotFound):
		fmt.Fprintf(sess.Stderr(), "rosti: %s\r\n", err)
		return exitNoProgram
	case errors.Is(err, platform.ErrOutOfMemory):
		fmt.Fprintf(sess.Stderr(), "rosti: the command was killed for using more than the plan's %d MB of memory\r\n", access.Limits.MemoryMB)
		return code
	case err != nil:
		s.log.Error("exec failed", "app", access.AppName, "err", err)
		fmt.Fprintf(sess.Stderr(), "rosti: cannot run the command in app %s: %v\r\n", access.AppName, err)
		return exitInternal
	}
	return code
}

func windowSizes(ctx context.Context, winch <-chan ssh.Window) <-chan platform.WindowSize {
	sizes := make(chan platform.WindowSize, 1)
	go func() {
		defer close(sizes)
		for {
			select {
			case <-ctx.Done():
				return
			case w, ok := <-winch:
				if !ok {
					return
				}
				select {
				case sizes <- platform.WindowSize{Width: uint32(max(w.Width, 0)), Height: uint32(max(w.Height, 0))}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return sizes
}

func (s *Server) runSandboxedSession(sess ssh.Session, access platform.AppAccess, args []string) int {
	code, err := s.runSandboxed(sess.Context(), access, sandboxRun{
		args:   args,
		stdin:  sess,
		stdout: sess,
		stderr: sess.Stderr(),
	})
	if err != nil {
		s.log.Error("sandbox failed", "app", access.AppName, "tool", args[0], "err", err)
		fmt.Fprintf(sess.Stderr(), "rosti: %v\n", err)
	}
	return code
}

type sandboxRun struct {
	args     []string
	env      []string // KEY=VALUE for the tool
	withRepo bool
	stdin    io.Reader // nil: none
	stdout   io.Writer
	stderr   io.Writer
}

// runSandboxed runs one tool in the app's sandbox, in the app's sandbox
// cgroup, and returns its exit code; err is set only when the sandbox could
// not run it at all.
func (s *Server) runSandboxed(ctx context.Context, access platform.AppAccess, run sandboxRun) (int, error) {
	group, err := s.cgroups.Join(access.AppID, sandbox.Limits(access.Limits))
	if err != nil {
		return exitInternal, err
	}
	defer func() {
		if err := group.Release(); err != nil {
			s.log.Warn("sandbox cgroup left behind", "app", access.AppName, "err", err)
		}
	}()
	oomKills := group.OOMKills()
	spec := sandbox.Spec{
		AppName:     access.AppName,
		UID:         access.UID,
		GID:         access.GID,
		VolumeDir:   access.VolumeDir,
		Env:         run.env,
		Args:        run.args,
		CgroupProcs: group.ProcsFiles(),
	}
	if run.withRepo {
		spec.RepoDir = access.RepoDir
	}
	cmd := sandbox.Command(s.cfg.SandboxBinary, spec)
	cmd.Stdout = run.stdout
	cmd.Stderr = run.stderr
	// Feed stdin ourselves: exec.Cmd would otherwise wait for the client to
	// close its side even after the tool has exited. A large pipe and copy
	// buffer keep uploads (rsync, tar) from stalling on small writes.
	var stdin *os.File
	if run.stdin != nil {
		reader, writer, err := os.Pipe()
		if err != nil {
			return exitInternal, fmt.Errorf("sandbox: %w", err)
		}
		defer reader.Close()
		// Best effort: a smaller pipe is only slower.
		unix.FcntlInt(writer.Fd(), unix.F_SETPIPE_SZ, uploadPipeSize)
		cmd.Stdin, stdin = reader, writer
	}
	if err := cmd.Start(); err != nil {
		if stdin != nil {
			stdin.Close()
		}
		return exitInternal, fmt.Errorf("sandbox: %w", err)
	}
	if stdin != nil {
		go func() {
			io.CopyBuffer(struct{ io.Writer }{stdin}, run.stdin, make([]byte, uploadPipeSize))
			stdin.Close()
		}()
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stop()
	err = cmd.Wait()
	// The cgroup is the app's, shared with its other sessions: an OOM kill
	// there is this tool's only when the tool failed.
	if n := group.OOMKills(); err != nil && n > oomKills && oomKills >= 0 {
		fmt.Fprintf(run.stderr, "rosti: %s was killed for using more than the plan's %d MB of memory\n", run.args[0], access.Limits.MemoryMB)
		return exitOutOfMemory, nil
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return exitErr.ExitCode(), nil
	case ctx.Err() != nil:
		return exitInternal, nil
	default:
		return exitInternal, fmt.Errorf("sandbox: %w", err)
	}
}
