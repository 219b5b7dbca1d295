// Package hashworker checks bcrypt password hashes in helper processes
// (the rosti binary run as `rosti hash-worker`) at the lowest CPU
// priority. A bcrypt check is tens of milliseconds of CPU; done in rosti's
// own process it holds one of the few threads running Go code, and the
// proxy's requests wait behind it (a flood of wrong passwords pushed other
// apps' latency from under a millisecond to seconds). In a niced process
// of its own it runs beside rosti, on what CPU is left.
//
// The package owns its helper processes and nothing else; a helper that
// dies is replaced on the next check, and when none can be started the
// check runs in-process.
package hashworker

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"
)

// Nice is the helpers' CPU priority: low enough that a flood of logins
// leaves the proxy and the apps their CPU, high enough that a login still
// takes a second or less on a busy host.
const Nice = 10

// Pool runs checks in up to Workers helper processes, one check each at
// a time.
type Pool struct {
	bin  string
	args []string
	log  *slog.Logger
	idle chan *helper // helpers waiting for work, or nil slots to start one
}

type helper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// New returns a pool of workers helpers run as `bin args...`.
func New(bin string, args []string, workers int, log *slog.Logger) *Pool {
	p := &Pool{bin: bin, args: args, log: log.With("component", "hashworker"), idle: make(chan *helper, workers)}
	for range workers {
		p.idle <- nil
	}
	return p
}

// Compare reports whether password matches the bcrypt hash, as
// bcrypt.CompareHashAndPassword does.
func (p *Pool) Compare(hash, password string) bool {
	h := <-p.idle
	if h == nil {
		var err error
		if h, err = p.start(); err != nil {
			p.idle <- nil
			p.log.Warn("start a hash worker; checking in-process", "err", err)
			return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
		}
	}
	ok, err := h.compare(hash, password)
	if err != nil {
		p.log.Warn("hash worker failed; checking in-process", "err", err)
		h.stop()
		p.idle <- nil
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	p.idle <- h
	return ok
}

// Close stops the helpers that are idle; one busy now stops when rosti's
// end closes its pipe.
func (p *Pool) Close() {
	for range cap(p.idle) {
		if h := <-p.idle; h != nil {
			h.stop()
		}
	}
}

func (p *Pool) start() (*helper, error) {
	cmd := exec.Command(p.bin, p.args...)
	// The helper ends when its input does, so when rosti does.
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, Nice); err != nil {
		p.log.Warn("lower the hash worker's priority", "err", err)
	}
	return &helper{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

func (h *helper) compare(hash, password string) (bool, error) {
	line := base64.StdEncoding.EncodeToString([]byte(hash)) + " " + base64.StdEncoding.EncodeToString([]byte(password)) + "\n"
	if _, err := io.WriteString(h.in, line); err != nil {
		return false, err
	}
	answer, err := h.out.ReadString('\n')
	switch {
	case err != nil:
		return false, err
	case answer == "y\n":
		return true, nil
	case answer == "n\n":
		return false, nil
	}
	return false, fmt.Errorf("hash worker answered %q", answer)
}

func (h *helper) stop() {
	h.in.Close()
	_ = h.cmd.Wait()
}

// Serve is the helper's side: it answers "y" or "n" to each line of
// base64 hash and password on in until in ends.
func Serve(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 1<<20)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		hashB64, passwordB64, ok := strings.Cut(sc.Text(), " ")
		hash, err1 := base64.StdEncoding.DecodeString(hashB64)
		password, err2 := base64.StdEncoding.DecodeString(passwordB64)
		answer := "n\n"
		if ok && err1 == nil && err2 == nil && bcrypt.CompareHashAndPassword(hash, password) == nil {
			answer = "y\n"
		}
		if _, err := w.WriteString(answer); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
