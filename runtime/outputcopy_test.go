package runtime

import (
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

// chunks returns its reads one by one, then io.EOF.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}

type writes []string

func (w *writes) Write(p []byte) (int, error) {
	*w = append(*w, string(p))
	return len(p), nil
}

func TestCopyOutput(t *testing.T) {
	tests := []struct {
		name  string
		reads chunks
		buf   int
		want  writes
	}{
		{name: "lines of one read in one write", reads: chunks{"a\nb\nc\n"}, buf: 16, want: writes{"a\nb\nc\n"}},
		{name: "a line split across reads is written whole", reads: chunks{"a\nb", "c\n"}, buf: 16, want: writes{"a\n", "bc\n"}},
		{name: "a line longer than the buffer in pieces", reads: chunks{"0123456789\n"}, buf: 4, want: writes{"0123", "4567", "89\n"}},
		{name: "an unfinished last line at the end", reads: chunks{"a\nb"}, buf: 16, want: writes{"a\n", "b"}},
		{name: "nothing", reads: chunks{}, buf: 16, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got writes
			copyOutput(&got, &tt.reads, make([]byte, tt.buf), nil)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("writes %q, want %q", got, tt.want)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A log that cannot be written does not stop the task: its output is
// read and dropped.
func TestCopyOutputDrainsWhenTheLogFails(t *testing.T) {
	reads := chunks{"a\n", "b\n", "c\n"}
	copyOutput(failingWriter{}, &reads, make([]byte, 16), nil)
	if len(reads) != 0 {
		t.Errorf("%d reads left unread", len(reads))
	}
}

func TestOutputBudget(t *testing.T) {
	b := newOutputBudget(1000, 1000)
	if wait := spend(b, 1000); wait != 0 {
		t.Errorf("within the burst: wait %v, want 0", wait)
	}
	// 500 bytes over budget at 1000 B/s: about half a second, less the
	// moment that passed since.
	if wait := spend(b, 500); wait <= 400*time.Millisecond || wait > 500*time.Millisecond {
		t.Errorf("over the burst: wait %v, want just under 500ms", wait)
	}
}
