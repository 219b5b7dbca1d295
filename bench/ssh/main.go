// Command ssh-bench-gateway runs rosti's SSH gateway alone for bench/ssh:
// one app, authorized by one public key, on a given volume. It serves as
// its own sandbox binary (it acts as `rosti sandbox` when started so), so the
// benchmark needs no full rosti build. It prints the bound port and serves
// until killed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/sshd"
	"github.com/rosti-paas/rosti/sshd/sandbox"
	"github.com/rosti-paas/rosti/store"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sandbox" {
		runSandbox(os.Args[2:])
	}
	var (
		addr    = flag.String("addr", "127.0.0.1:0", "listen address")
		hostKey = flag.String("host-key", "", "host key path (created if missing)")
		pubKey  = flag.String("authorized-key", "", "public key file allowed to log in")
		volume  = flag.String("volume", "", "app volume directory")
		uid     = flag.Uint("uid", 210000, "app uid and gid")
	)
	flag.Parse()
	if err := serve(*addr, *hostKey, *pubKey, *volume, uint32(*uid)); err != nil {
		fmt.Fprintln(os.Stderr, "ssh-bench-gateway:", err)
		os.Exit(1)
	}
}

func runSandbox(args []string) {
	var spec sandbox.Spec
	fs := pflag.NewFlagSet("sandbox", pflag.ExitOnError)
	fs.SetInterspersed(false)
	spec.BindFlags(fs)
	fs.Parse(args)
	spec.Args = fs.Args()
	fmt.Fprintln(os.Stderr, sandbox.Enter(spec))
	os.Exit(1)
}

func serve(addr, hostKey, pubKeyFile, volume string, uid uint32) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	keyText, err := os.ReadFile(pubKeyFile)
	if err != nil {
		return err
	}
	key, _, _, _, err := gossh.ParseAuthorizedKey(keyText)
	if err != nil {
		return err
	}
	if err := os.Chown(volume, int(uid), int(uid)); err != nil {
		return err
	}
	if err := sshd.EnsureHostKey(hostKey); err != nil {
		return err
	}
	gateway := &benchPlatform{key: key, access: platform.AppAccess{AppID: 1, AppName: "bench", UID: uid, GID: uid, VolumeDir: volume}}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	server, err := sshd.New(sshd.Config{Addr: addr, HostKeyPath: hostKey, SandboxBinary: self, Logger: logger}, gateway)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx) }()
	for server.Addr() == nil {
		select {
		case err := <-served:
			return err
		default:
		}
		time.Sleep(time.Millisecond)
	}
	_, port, _ := net.SplitHostPort(server.Addr().String())
	fmt.Println(port)
	return <-served
}

type benchPlatform struct {
	key    gossh.PublicKey
	access platform.AppAccess
}

func (p *benchPlatform) AuthorizeKey(_ context.Context, app string, key gossh.PublicKey) (platform.AppAccess, error) {
	if app != p.access.AppName || !bytes.Equal(key.Marshal(), p.key.Marshal()) {
		return platform.AppAccess{}, errors.New("not allowed")
	}
	return p.access, nil
}

func (p *benchPlatform) AuthorizePassword(context.Context, string, string) (platform.AppAccess, error) {
	return platform.AppAccess{}, errors.New("no passwords in the benchmark")
}

func (p *benchPlatform) KnownKey(context.Context, gossh.PublicKey) error {
	return errors.New("no git user in the benchmark")
}

func (p *benchPlatform) Exec(context.Context, platform.AppAccess, platform.ExecRequest) (int, error) {
	return 0, platform.ErrAppStopped
}

func (p *benchPlatform) Deploy(context.Context, platform.AppAccess, platform.TreeSource, string, string, io.Writer) (store.Release, error) {
	return store.Release{}, errors.New("no deploys in the benchmark")
}
