package sshd_test

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestZZDebug(t *testing.T) {
	if os.Getenv("ZZDEBUG") == "" {
		t.Skip()
	}
	e := newEnv(t, "dbg")
	os.WriteFile("/tmp/zzdebug", []byte(fmt.Sprintf("%s %s %s\n", e.port, e.apps["dbg"].keyFile, e.apps["dbg"].access.VolumeDir)), 0o644)
	time.Sleep(90 * time.Second)
}
