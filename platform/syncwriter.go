package platform

import (
	"bytes"
	"io"
	"sync"
)

// syncWriter lets several followers write whole chunks to one stream.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// linePrefixer writes each whole line to out with a prefix, so that the
// output of several containers stays readable when interleaved.
type linePrefixer struct {
	out     io.Writer
	prefix  []byte
	partial []byte
}

func newLinePrefixer(out io.Writer, name string) *linePrefixer {
	return &linePrefixer{out: out, prefix: []byte(name + " | ")}
}

func (l *linePrefixer) Write(b []byte) (int, error) {
	l.partial = append(l.partial, b...)
	var buf []byte
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		buf = append(buf, l.prefix...)
		buf = append(buf, l.partial[:i+1]...)
		l.partial = l.partial[i+1:]
	}
	if len(buf) > 0 {
		if _, err := l.out.Write(buf); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
