// Package cmd is the command line of rosti: it turns flags and environment
// variables into typed configs and hands them to the packages that do the
// work. It owns process-level concerns (signals, exit codes) and nothing else.
package cmd

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rosti-paas/rosti/initproc"
)

// Execute runs the rosti command line and exits non-zero on failure. Started
// as supervisorctl or crontab (the names the binary has inside app
// containers), it is that command instead.
func Execute() {
	if tool, ok := initproc.Tool(filepath.Base(os.Args[0])); ok {
		os.Exit(tool(os.Args[1:]))
	}
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rosti:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "rosti",
		Short:         "A self-hosted PaaS in one binary",
		Long:          "rosti turns a Linux host into a small PaaS: apps in containerd, an HTTPS proxy, SSH deploys, databases, snapshots and a REST API.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Inside an app container, `rosti [TECH]` answers Rosti's client
		// about the app's runtime.
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if os.Getenv(initproc.EnvApp) != "" && len(args) <= 1 {
				os.Exit(initproc.Tech(args, os.Stdout, os.Stderr))
			}
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())
			}
			return c.Help()
		},
	}
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(),
		newAdminCmd(),
		newSandboxCmd(),
		newInitCmd(),
		newImageCmd(),
		newHashWorkerCmd(),
	)
	return root
}
