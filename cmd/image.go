package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// newImageCmd manages app images through the running `rosti serve`, so
// that one process alone drives containerd.
func newImageCmd() *cobra.Command {
	var dataDir string
	c := &cobra.Command{
		Use:   "image",
		Short: "Import, pull, list and clean up app images (through the running rosti serve)",
		Long: `Manage the images apps run on. The commands go through the admin socket of the
running rosti serve (<data>/admin.sock, root only).` + envNote,
		PersistentPreRunE: func(c *cobra.Command, _ []string) error { return bindEnv(c) },
	}
	c.PersistentFlags().StringVar(&dataDir, "data", "/var/lib/rosti", "data directory of the rosti serve to talk to")
	client := func() *adminClient { return newAdminClient(dataDir) }
	c.AddCommand(&cobra.Command{
		Use:   "import FILE",
		Short: "Import images from an OCI or docker archive (- reads standard input) and print their names",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			in := os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			var out struct{ Images []string }
			if err := client().call("POST", "/admin/images", in, &out); err != nil {
				return err
			}
			for _, name := range out.Images {
				fmt.Fprintln(c.OutOrStdout(), name)
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var out map[string]any
			if err := client().call("POST", "/admin/images/pull", map[string]string{"ref": args[0]}, &out); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "ls",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var out struct{ Images []string }
			if err := client().call("GET", "/admin/images", nil, &out); err != nil {
				return err
			}
			for _, name := range out.Images {
				fmt.Fprintln(c.OutOrStdout(), name)
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "gc",
		Short: "Remove images that no app or runtime uses",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var out struct{ Removed []string }
			if err := client().call("POST", "/admin/images/gc", nil, &out); err != nil {
				return err
			}
			for _, name := range out.Removed {
				fmt.Fprintln(c.OutOrStdout(), "removed", name)
			}
			return nil
		},
	})
	return c
}
