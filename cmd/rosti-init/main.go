// Command rosti-init is `rosti init` alone, with supervisorctl, crontab and
// `rosti [TECH]` (as the binary is named inside containers): what the
// runtime mounts into every app container. Built on its own it keeps
// about half the memory the whole rosti binary would as init, in every
// container, because none of rosti's other packages (containerd's client,
// gRPC, the store, the proxy) initialise their tables in it. make build
// puts it inside rosti (internal/initbin), which installs it at start.
package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/rosti-paas/rosti/initproc"
)

func main() {
	if tool, ok := initproc.Tool(filepath.Base(os.Args[0])); ok {
		os.Exit(tool(os.Args[1:]))
	}
	var cfg initproc.Config
	fs := pflag.NewFlagSet("rosti", pflag.ExitOnError)
	fs.SetInterspersed(false)
	cfg.BindFlags(fs)
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "init" {
		args = args[1:]
	} else if len(args) <= 1 {
		os.Exit(initproc.Tech(args, os.Stdout, os.Stderr)) // `rosti [TECH]`, as in a container
	}
	_ = fs.Parse(args)
	cfg.Command = fs.Args()
	os.Exit(initproc.Run(cfg))
}
