package cmd

import (
	"github.com/spf13/cobra"

	"github.com/rosti-paas/rosti/sshd/sandbox"
)

// newSandboxCmd is the child half of the SSH gateway's sandbox: rosti
// re-executes itself with it to run rsync, scp, tar or git for one app. It is
// hidden because only rosti itself starts it, through sandbox.Command.
func newSandboxCmd() *cobra.Command {
	var spec sandbox.Spec
	cmd := &cobra.Command{
		Use:    "sandbox [flags] -- TOOL [ARGS...]",
		Short:  "Run a tool confined to one app's volume (internal)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			spec.Args = args
			return sandbox.Enter(spec)
		},
	}
	cmd.Flags().SetInterspersed(false)
	spec.BindFlags(cmd.Flags())
	return cmd
}
