package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	rtm "github.com/rosti-paas/rosti/runtime"
)

// newImageCmd manages containerd images directly, without `rosti serve`:
// it connects to the same containerd (managed or system) with the same data
// dir.
func newImageCmd() *cobra.Command {
	var cfg rtm.Config
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Import, pull and list app images",
	}
	cmd.PersistentFlags().StringVar(&cfg.DataDir, "data", "/var/lib/rosti", "data dir")
	cmd.PersistentFlags().StringVar(&cfg.Socket, "containerd", "", "containerd socket (default: system containerd, else a managed one)")
	cmd.PersistentFlags().StringVar(&cfg.Namespace, "namespace", "rosti", "containerd namespace")

	withDriver := func(fn func(ctx context.Context, d *rtm.Driver) error) error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.InitBinary, _ = filepath.Abs(exe)
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		d, err := rtm.New(cfg)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		serveCtx, cancel := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- d.Serve(serveCtx) }()
		defer func() {
			cancel()
			<-served
			shutdownCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
			defer done()
			_ = d.Shutdown(shutdownCtx)
		}()
		select {
		case <-d.Ready():
		case err := <-served:
			served <- err
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		return fn(ctx, d)
	}
	progress := func(s string) { fmt.Fprintln(os.Stderr, s) }

	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE",
		Short: "Import images from an OCI or docker archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			return withDriver(func(ctx context.Context, d *rtm.Driver) error {
				names, err := d.Import(ctx, f, progress)
				for _, n := range names {
					fmt.Println(n)
				}
				return err
			})
		},
	}, &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withDriver(func(ctx context.Context, d *rtm.Driver) error { return d.Pull(ctx, args[0], progress) })
		},
	}, &cobra.Command{
		Use:   "ls",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return withDriver(func(ctx context.Context, d *rtm.Driver) error {
				names, err := d.Images(ctx)
				for _, n := range names {
					fmt.Println(n)
				}
				return err
			})
		},
	})
	return cmd
}
