// Command appcontainer runs bench/proxy/run.sh against an app container,
// as the proxy issue asks: it starts a real `rosti serve` (own data dir
// and network), creates an app of the static runtime with a 64-byte
// index.html on a plan allowed two cores (the default plans cap an app
// at 25-100 % of a core, and then the app, not the proxies, would be
// measured), waits until it answers through rosti, and runs the script
// with UPSTREAM set to the container's address. Run it as root through
// bench/proxy/container.sh.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rosti-paas/rosti/bench/internal/benchrosti"
)

func main() {
	bin := flag.String("rosti", "bin/rosti", "rosti binary")
	script := flag.String("run", "bench/proxy/run.sh", "the proxy benchmark script; empty: keep the app running until interrupted, for measuring by hand")
	flag.Parse()
	if err := run(*bin, *script); err != nil {
		fmt.Fprintln(os.Stderr, "appcontainer:", err)
		os.Exit(1)
	}
}

// page is what the app serves: the 64 bytes the local upstream answers.
var page = bytes.Repeat([]byte("rosti bench page"), 4)

func run(bin, script string) error {
	s, err := benchrosti.Start(bin)
	if err != nil {
		return err
	}
	defer s.Stop()
	var plan struct{ ID int64 }
	if err := s.Call("POST", s.CompanyPath("plans/"), map[string]any{"name": "bench", "ram": 512, "disk": 1024, "cpu_quota": 200, "pids": 512}, &plan); err != nil {
		return err
	}
	var app struct{ ID int64 }
	if err := s.Call("POST", s.CompanyPath("apps/"), map[string]any{"name": "bench", "image": "static", "plan": plan.ID}, &app); err != nil {
		return err
	}
	// The volume is made when the app first starts.
	volume := filepath.Join(s.Data, "volumes", strconv.FormatInt(app.ID, 10))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(volume); err == nil {
			break
		} else if time.Now().After(deadline) {
			return err
		}
	}
	if err := writeAsOwner(volume, "app/index.html", page); err != nil {
		return err
	}
	if err := s.WaitAnswer("bench", func(b []byte) bool { return bytes.Equal(b, page) }); err != nil {
		return err
	}
	var status struct {
		Containers []struct{ IP string }
	}
	if err := s.Call("GET", s.CompanyPath("apps-status/%d/", app.ID), nil, &status); err != nil {
		return err
	}
	if len(status.Containers) != 1 || status.Containers[0].IP == "" {
		return fmt.Errorf("want one container with an address, got %+v", status.Containers)
	}
	upstream := status.Containers[0].IP + ":8080"
	fmt.Printf("app container at %s (static runtime, cpu_quota 200)\n", upstream)
	if script == "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		return nil
	}
	cmd := exec.Command(script)
	cmd.Env = append(os.Environ(), "UPSTREAM="+upstream)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// writeAsOwner writes rel under volume, owned like the volume so that the
// app can read and replace it.
func writeAsOwner(volume, rel string, data []byte) error {
	fi, err := os.Stat(volume)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	path := filepath.Join(volume, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.Chown(filepath.Dir(path), int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	return os.Chown(path, int(st.Uid), int(st.Gid))
}
