package hashworker

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The test binary is its own helper when started with this variable.
func TestMain(m *testing.M) {
	if os.Getenv("HASHWORKER_HELPER") == "1" {
		if err := Serve(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newTestPool(t *testing.T, workers int) *Pool {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HASHWORKER_HELPER", "1")
	p := New(self, nil, workers, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(p.Close)
	return p
}

func TestCompare(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPool(t, 2)
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"right", string(hash), "right password", true},
		{"wrong", string(hash), "wrong password", false},
		{"empty", string(hash), "", false},
		{"spaces and newlines", string(hash), "right password\n", false},
		{"not a hash", "nope", "right password", false},
	}
	var wg sync.WaitGroup
	for range 3 { // concurrently, over more checks than workers
		for _, tt := range tests {
			wg.Go(func() {
				if got := p.Compare(tt.hash, tt.password); got != tt.want {
					t.Errorf("%s: Compare = %v, want %v", tt.name, got, tt.want)
				}
			})
		}
	}
	wg.Wait()
}

// TestHelperRunsNicedAndIsReplaced: the helper runs at the lowest
// priority; one that died is replaced by the next check.
func TestHelperRunsNicedAndIsReplaced(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	p := newTestPool(t, 1)
	if !p.Compare(string(hash), "pw") {
		t.Fatal("right password refused")
	}
	h := <-p.idle
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, h.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The raw system call answers 20 - nice.
	if nice := 20 - prio; nice != Nice {
		t.Errorf("helper nice %d, want %d", nice, Nice)
	}
	h.cmd.Process.Kill()
	_ = h.cmd.Wait()
	p.idle <- h
	if !p.Compare(string(hash), "pw") || p.Compare(string(hash), "other") {
		t.Fatal("checks after the helper died are wrong")
	}
}
