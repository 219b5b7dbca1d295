package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP connection with raw system calls, waiting
// for readiness through Go's network poller as net.Conn does (so
// deadlines and Close still interrupt it).
//
// The difference is what Go does around each system call. syscall.Read
// and Write tell the scheduler a goroutine enters a system call, and
// whenever every P was idle (between requests, at anything below full
// load) that wakes the runtime's monitor thread, which then polls with
// 20 µs sleeps until the process is idle again. A perf profile of the
// proxy at half its peak showed that thread's sleeps and wake-ups at
// about 15 % of the proxy's CPU, and twice nginx's context switches. A
// read or write of a non-blocking socket never blocks, so there is
// nothing for the scheduler to hand over while it runs.
//
// The callbacks handed to RawConn are made once per connection, with
// their state in the struct: a closure per call would cost allocations.
// One Read and one Write may run at the same time, as on a net.Conn.
type rawIO struct {
	rc syscall.RawConn

	readFn func(fd uintptr) bool
	rbuf   []byte
	rn     int
	rerr   syscall.Errno

	writeFn func(fd uintptr) bool
	wbuf    []byte
	wdone   int
	werr    syscall.Errno
}

// newRawIO returns raw I/O for c, or c itself when it has no file
// descriptor (a test's net.Pipe).
func newRawIO(c net.Conn) io.ReadWriter {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r := &rawIO{rc: rc}
			r.readFn, r.writeFn = r.readOnce, r.writeAll
			return r
		}
	}
	return c
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rbuf = p
	err := r.rc.Read(r.readFn)
	n, errno := r.rn, r.rerr
	r.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readOnce reads what is there into rbuf; false asks the poller to wait.
func (r *rawIO) readOnce(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rn, r.rerr = int(n), errno
		return true
	}
}

func (r *rawIO) Write(p []byte) (int, error) {
	r.wbuf, r.wdone, r.werr = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n, errno := r.wdone, r.werr
	r.wbuf = nil
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	return n, err
}

// writeAll writes the rest of wbuf; false asks the poller to wait until
// the socket takes more.
func (r *rawIO) writeAll(fd uintptr) bool {
	for r.wdone < len(r.wbuf) {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wbuf[r.wdone])), uintptr(len(r.wbuf)-r.wdone))
		switch errno {
		case 0:
			r.wdone += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = errno
			return true
		}
	}
	return true
}
