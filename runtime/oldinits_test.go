package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

// TestOldInitsGoOnceUnmounted: an upgraded rosti removes the init binaries
// of earlier versions, but only once no container mounts them any more.
func TestOldInitsGoOnceUnmounted(t *testing.T) {
	dir := t.TempDir()
	built, err := os.ReadFile(rttest.BuildInit(t))
	if err != nil {
		t.Fatal(err)
	}
	install := func(name string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, built, 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	v1, stray := install("rosti-init-v1"), install("rosti-init-stray")
	other := install("keep-me") // not matched by the glob
	env := rttest.StartWith(t, func(c *rtm.Config) {
		c.InitBinary = v1
		c.OldInits = filepath.Join(dir, "rosti-init-*")
	})
	ctx := context.Background()
	inst, err := env.Driver.Run(ctx, httpSpec(t, "oi-web-1", rttest.HTTPServerImage(t, env.Driver), "g1", 10011))
	if err != nil {
		t.Fatal(err)
	}
	get(t, inst.IP, "/")
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return err == nil
	}

	upgraded := *env
	upgraded.Config.InitBinary = install("rosti-init-v2")
	d2 := rttest.StartAgain(t, &upgraded)
	if exists(stray) {
		t.Error("an init binary no container mounts was kept")
	}
	if !exists(v1) || !exists(upgraded.Config.InitBinary) || !exists(other) {
		t.Fatalf("removed too much: v1 %v, v2 %v, other %v", exists(v1), exists(upgraded.Config.InitBinary), exists(other))
	}
	// The container still has its init, and it starts again with it.
	if err := d2.Stop(ctx, "oi-web-1", 0); err != nil {
		t.Fatal(err)
	}
	if inst, err = d2.Start(ctx, "oi-web-1"); err != nil {
		t.Fatal(err)
	}
	get(t, inst.IP, "/")

	if err := d2.Remove(ctx, "oi-web-1"); err != nil {
		t.Fatal(err)
	}
	rttest.StartAgain(t, &upgraded)
	if exists(v1) {
		t.Error("the old init binary was kept after its last container went")
	}
	if !exists(upgraded.Config.InitBinary) {
		t.Error("the current init binary was removed")
	}
}
