package cmd

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/rosti-paas/rosti/initproc"
)

// newInitCmd is what containerd runs: PID 1 of app containers (the rosti
// binary is mounted into each) and the static file server of the built-in
// `static` runtime. It is hidden because only the runtime driver starts it.
func newInitCmd() *cobra.Command {
	var cfg initproc.Config
	cmd := &cobra.Command{
		Use:    "init [flags] [-- COMMAND [ARGS...]]",
		Short:  "Container init and static server (internal)",
		Hidden: true,
		Run: func(_ *cobra.Command, args []string) {
			cfg.Command = args
			os.Exit(initproc.Run(cfg))
		},
	}
	cmd.Flags().SetInterspersed(false)
	cfg.BindFlags(cmd.Flags())
	return cmd
}
