// Package rttest starts real runtime Drivers and builds real test images for
// tests of rosti packages: a managed containerd under a short temporary data
// dir, a bridge prefix and subnet of its own per call, and images imported
// from OCI archives the helpers write (busybox-static from Debian's package,
// and a small static Go HTTP server, see ./httpserver). It needs root,
// containerd, runc, the CNI plugins and busybox-static (scripts/deps.sh test).
package rttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/ociimage"
)

// Env is a started Driver and what it was started with.
type Env struct {
	Driver *rtm.Driver
	Config rtm.Config
}

// Client is a client of env's containerd, in its namespace, for tests that
// do behind the Driver's back what an interrupted rosti or an older one
// leaves; it is closed when the test ends.
func (e *Env) Client(t testing.TB) *containerd.Client {
	t.Helper()
	client, err := containerd.New(e.Config.Socket, containerd.WithDefaultNamespace(e.Config.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// StartDriver starts a Driver with its own managed containerd and waits
// until it is ready. Everything is torn down at the end of the test: the
// containers, the network and the containerd.
func StartDriver(t testing.TB) *rtm.Driver { return Start(t).Driver }

// Start is StartDriver returning the Config too, for tests that start a
// second Driver on the same data dir.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith is Start with the Config changed by edit first.
func StartWith(t testing.TB, edit func(*rtm.Config)) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs containerd: make test runs it, make check (-short) does not")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"containerd", "runc", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (scripts/deps.sh test)", bin)
		}
	}
	dataDir, err := os.MkdirTemp("/tmp", "rt")
	if err != nil {
		t.Fatal(err)
	}
	id := randomHex(t, 2)
	cfg := rtm.Config{
		DataDir:     dataDir,
		Namespace:   "rt" + id,
		InitBinary:  BuildInit(t),
		Bridge:      "rt" + id,
		Subnet:      freeSubnet(t),
		LogMaxBytes: 64 << 10,
		LogKeep:     2,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	cfg.Socket = filepath.Join(dataDir, "containerd", "containerd.sock")
	if edit != nil {
		edit(&cfg)
	}
	d := startWith(t, cfg, true)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if list, err := d.List(ctx, nil); err == nil {
			for _, inst := range list {
				if err := d.Remove(ctx, inst.Name); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		if err := d.RemoveNetwork(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = exec.Command("umount", "-R", filepath.Join(dataDir, "containerd")).Run()
		if err := os.RemoveAll(dataDir); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return &Env{Driver: d, Config: cfg}
}

// StartAgain starts a second Driver on env's data dir and containerd, as a
// restarted rosti would; it is shut down (without removing anything) at the
// end of the test.
func StartAgain(t testing.TB, env *Env) *rtm.Driver {
	t.Helper()
	return startWith(t, env.Config, false)
}

// StartManagedAgain starts a second Driver on env's data dir that starts its
// own managed containerd, as rosti does after its containerd child went away
// with it; shut down at the end of the test.
func StartManagedAgain(t testing.TB, env *Env) *rtm.Driver {
	t.Helper()
	d := startWith(t, env.Config, true)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d
}

func startWith(t testing.TB, cfg rtm.Config, managed bool) *rtm.Driver {
	t.Helper()
	if managed {
		cfg.Socket, cfg.Managed = "", true
	}
	d, err := rtm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	select {
	case <-d.Ready():
	case err := <-served:
		cancel()
		t.Fatalf("driver: %v", err)
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatal("driver not ready after 90s")
	}
	t.Cleanup(func() {
		cancel()
		<-served
		if !managed {
			shutdownCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
			defer stop()
			_ = d.Shutdown(shutdownCtx)
		}
	})
	return d
}

// BuildInit builds the init binary (cmd/rosti-init, `rosti init` alone, as
// rosti mounts it into containers) into a temporary dir and returns its path.
func BuildInit(t testing.TB) string {
	t.Helper()
	return buildGo(t, "github.com/rosti-paas/rosti/cmd/rosti-init", "rosti")
}

func buildGo(t testing.TB, pkg, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// BusyboxImage imports an image holding Debian's static busybox with all its
// applets linked in /bin, /tmp, /srv and a minimal /etc, and returns its name.
func BusyboxImage(t testing.TB, d *rtm.Driver) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs busybox-static: %v", err)
	}
	files := append(baseFiles(), ociimage.Regular("/bin/busybox", 0o755, bb))
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			files = append(files, ociimage.Symlink("/bin/"+applet, "busybox"))
		}
	}
	return importImage(t, d, ociimage.Image{
		Name:  "rosti.test/busybox:" + randomHex(t, 4),
		Files: files,
		Config: ocispec.ImageConfig{
			Cmd: []string{"/bin/sh", "-c", "while :; do sleep 1; done"},
			Env: []string{"PATH=/bin"},
		},
	})
}

// HTTPServerImage imports an image whose only program is ./httpserver (no
// shell), built statically, serving on $PORT, and returns its name.
func HTTPServerImage(t testing.TB, d *rtm.Driver) string {
	t.Helper()
	return importImage(t, d, HTTPServer(t, "rosti.test/httpserver:"+randomHex(t, 4)))
}

// HTTPServer describes the image of HTTPServerImage, named name, for a
// test to import or push.
func HTTPServer(t testing.TB, name string) ociimage.Image {
	t.Helper()
	bin, err := os.ReadFile(buildGo(t, "github.com/rosti-paas/rosti/runtime/rttest/httpserver", "httpserver"))
	if err != nil {
		t.Fatal(err)
	}
	return ociimage.Image{
		Name:  name,
		Files: append(baseFiles(), ociimage.Regular("/httpserver", 0o755, bin)),
		Config: ocispec.ImageConfig{
			Cmd: []string{"/httpserver"},
			Env: []string{"PATH=/"},
		},
	}
}

// Archive renders img as an OCI archive.
func Archive(t testing.TB, img ociimage.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := ociimage.WriteArchive(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func importImage(t testing.TB, d *rtm.Driver, img ociimage.Image) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names, err := d.Import(ctx, bytes.NewReader(Archive(t, img)), nil)
	if err != nil {
		t.Fatalf("import %s: %v", img.Name, err)
	}
	if len(names) != 1 || names[0] != img.Name {
		t.Fatalf("imported %q, want [%s]", names, img.Name)
	}
	return img.Name
}

func baseFiles() []ociimage.File {
	return []ociimage.File{
		ociimage.Dir("/srv", 0o755),
		ociimage.Dir("/tmp", fs.ModeSticky|0o777),
		ociimage.Regular("/etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")),
		ociimage.Regular("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
	}
}

// Volume makes a temporary app volume owned by uid:gid.
func Volume(t testing.TB, uid, gid int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// freeSubnet picks a random 10.x.y.0/22 (four groups) that no interface
// on this host uses.
func freeSubnet(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		b := make([]byte, 2)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.%d.%d.0/22", 100+int(b[0])%100, int(b[1])&^3))
		clash := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP)) {
				clash = true
			}
		}
		if !clash {
			return subnet.String()
		}
	}
	t.Fatal("no free subnet")
	return ""
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
