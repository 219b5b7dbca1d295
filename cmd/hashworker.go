package cmd

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/rosti-paas/rosti/internal/hashworker"
)

// newHashWorkerCmd is the helper process rosti serve checks account
// passwords in, at the lowest CPU priority. Hidden: only rosti starts it.
func newHashWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "hash-worker",
		Short:  "Password hash checks for rosti serve (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return hashworker.Serve(os.Stdin, os.Stdout)
		},
	}
}
