package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultControlSocket is where init listens for supervisorctl: a socket in
// the abstract namespace, which belongs to the container's network
// namespace. It needs no writable directory (any image works, even one
// without /tmp), goes away with the container, and is reachable by every
// process of the container (SSH commands included) and by nothing outside.
const DefaultControlSocket = "@rosti-init"

// EnvControlSocket overrides DefaultControlSocket for supervisorctl, so
// tests can run several inits side by side.
const EnvControlSocket = "ROSTI_INIT_SOCKET"

type ctlRequest struct {
	Args []string `json:"args"`
}

type ctlResponse struct {
	Output string `json:"output"`
	Code   int    `json:"code"`
}

// serveControl answers supervisorctl requests on ln until it is closed.
// Only processes of init's own uid are answered.
func serveControl(ln net.Listener, progs *Programs, diag io.Writer) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintln(diag, "rosti init: control:", err)
			}
			return
		}
		go func() {
			defer conn.Close()
			if !samePeerUID(conn) {
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			var req ctlRequest
			if err := json.NewDecoder(io.LimitReader(conn, 64<<10)).Decode(&req); err != nil {
				return
			}
			out, code := progs.Command(req.Args)
			_ = json.NewEncoder(conn).Encode(ctlResponse{Output: out, Code: code})
		}()
	}
}

func samePeerUID(conn net.Conn) bool {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	return err == nil && cred != nil && int(cred.Uid) == os.Getuid()
}

// controlSocket is the address supervisorctl uses.
func controlSocket() string {
	if s := os.Getenv(EnvControlSocket); s != "" {
		return s
	}
	return DefaultControlSocket
}

// Supervisorctl is the supervisorctl command: it sends args to init and
// prints what init answers. It returns the exit status.
func Supervisorctl(args []string, stdout, stderr io.Writer) int {
	// supervisorctl's options say how to reach supervisord; there is one
	// way to reach init, so scripts that pass them work unchanged.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch opt, _, hasValue := strings.Cut(args[0], "="); opt {
		case "-h", "--help":
			fmt.Fprint(stdout, ctlHelp)
			return 0
		case "-c", "--configuration", "-s", "--serverurl", "-u", "--username", "-p", "--password", "-r", "--history-file":
			if !hasValue && len(args) > 1 {
				args = args[1:]
			}
		default:
			fmt.Fprintf(stderr, "supervisorctl: option %s is not supported\n", opt)
			return 2
		}
		args = args[1:]
	}
	conn, err := net.DialTimeout("unix", controlSocket(), 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "supervisorctl: cannot reach rosti init (%v); supervisor programs run in the app's web containers\n", err)
		return 2
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(ctlRequest{Args: args}); err != nil {
		fmt.Fprintln(stderr, "supervisorctl:", err)
		return 2
	}
	var resp ctlResponse
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		fmt.Fprintln(stderr, "supervisorctl: no answer from rosti init:", err)
		return 2
	}
	fmt.Fprint(stdout, resp.Output)
	return resp.Code
}
