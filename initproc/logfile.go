package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// LogFileName is the live log file in a container's log directory; rotated
// files carry the suffixes .1 (newest) to .KEEP (oldest).
const LogFileName = "output.log"

// maxLine bounds how much of one line is buffered before it is written out
// as is, so a program printing without newlines cannot grow its reader.
const maxLine = 64 * 1024

// CopyLines writes r to w one whole line per Write (lines longer than
// maxLine are split), so lines of concurrent streams never interleave.
func CopyLines(w io.Writer, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				_, _ = io.Copy(io.Discard, br)
				return
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// RotatingFile appends to a file (DIR/output.log for a container's log)
// and rotates it by size. Each Write is atomic with respect to other Writes.
type RotatingFile struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	keep     int
	f        *os.File
	size     int64
}

// OpenRotatingFile opens (creating as needed) the live log file in dir.
func OpenRotatingFile(dir string, maxBytes int64, keep int) (*RotatingFile, error) {
	return openRotating(filepath.Join(dir, LogFileName), maxBytes, keep)
}

// openRotating opens (creating it and its directory as needed) the live
// log file at path.
func openRotating(path string, maxBytes int64, keep int) (*RotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	rf := &RotatingFile{path: path, maxBytes: maxBytes, keep: keep}
	if err := rf.open(); err != nil {
		return nil, err
	}
	return rf, nil
}

func (rf *RotatingFile) open() error {
	f, err := os.OpenFile(rf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	rf.f, rf.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past maxBytes
// (never when maxBytes is 0).
func (rf *RotatingFile) Write(p []byte) (int, error) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.maxBytes > 0 && rf.size > 0 && rf.size+int64(len(p)) > rf.maxBytes {
		if err := rf.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := rf.f.Write(p)
	rf.size += int64(n)
	return n, err
}

func (rf *RotatingFile) rotate() error {
	rf.f.Close()
	live := rf.path
	if rf.keep == 0 {
		if err := os.Remove(live); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
		return rf.open()
	}
	for i := rf.keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", live, i), fmt.Sprintf("%s.%d", live, i+1))
	}
	if err := os.Rename(live, live+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return rf.open()
}

// Close closes the live file.
func (rf *RotatingFile) Close() error {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	return rf.f.Close()
}
