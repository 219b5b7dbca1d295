// Package cmd is the command line of rosti: it turns flags and environment
// variables into typed configs and hands them to the packages that do the
// work. It owns process-level concerns (signals, exit codes) and nothing else.
package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Execute runs the rosti command line and exits non-zero on failure.
func Execute() {
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
