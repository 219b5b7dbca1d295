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
type rawIO struct {
	rc syscall.RawConn
}

// newRawIO returns raw I/O for c, or c itself when it has no file
// descriptor (a test's net.Pipe).
func newRawIO(c net.Conn) io.ReadWriter {
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return &rawIO{rc: rc}
		}
	}
	return c
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			var n uintptr
			n, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[written])), uintptr(len(p)-written))
			switch errno {
			case 0:
				written += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				errno = 0
				return false
			default:
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	return written, err
}
