package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rosti-paas/rosti/runtime/ociimage"
)

// ShellImage is the built-in image of the default `binary` runtime: a shell
// and the ordinary tools a deploy script uses, for apps that bring their
// own (static) binaries or scripts.
const ShellImage = "rosti.local/binary:1"

// Host files the shell image is made of: Debian's busybox-static and
// bash-static packages.
const (
	hostBusybox = "/bin/busybox"
	hostBash    = "/bin/bash-static"
)

// shellPath is the PATH of the shell image; /usr/local/bin holds rosti,
// supervisorctl and crontab (see ToolsDir).
const shellPath = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

// notApplets are busybox applets the image leaves out: the shell is bash,
// because busybox's sh runs its own applets before anything on the PATH
// (Debian builds it "standalone"), so `crontab FILE` would reach busybox's
// crontab (which needs setuid root) instead of rosti's.
var notApplets = map[string]bool{"sh": true, "ash": true, "hush": true, "bash": true, "crontab": true}

// EnsureShellImage makes sure the built-in shell image exists, building it
// locally (no registry) from the host's busybox-static and bash-static the
// first time, and returns its name. Its default command is empty: init then
// runs the Procfile's web line if there is one, and the app's supervisor
// programs and cron jobs in any case.
func (d *Driver) EnsureShellImage(ctx context.Context) (string, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return "", err
	}
	if img, err := client.GetImage(ctx, ShellImage); err == nil {
		return ShellImage, ensureUnpacked(ctx, img)
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("runtime: shell image: %w", err)
	}
	img, err := shellImage()
	if err != nil {
		return "", err
	}
	var archive bytes.Buffer
	if err := ociimage.WriteArchive(&archive, img); err != nil {
		return "", fmt.Errorf("runtime: build shell image: %w", err)
	}
	names, err := d.Import(ctx, &archive, nil)
	if err != nil {
		return "", err
	}
	if len(names) != 1 || names[0] != ShellImage {
		return "", errors.New("runtime: shell image imported under unexpected names")
	}
	d.log.Info("built shell image", "image", ShellImage)
	return ShellImage, nil
}

func shellImage() (ociimage.Image, error) {
	busybox, err := os.ReadFile(hostBusybox)
	if err != nil {
		return ociimage.Image{}, fmt.Errorf("runtime: the default runtime's image is built from busybox-static and bash-static (apt-get install busybox-static bash-static): %w", err)
	}
	bash, err := os.ReadFile(hostBash)
	if err != nil {
		return ociimage.Image{}, fmt.Errorf("runtime: the default runtime's image is built from busybox-static and bash-static (apt-get install busybox-static bash-static): %w", err)
	}
	list, err := exec.Command(hostBusybox, "--list-full").Output()
	if err != nil {
		return ociimage.Image{}, fmt.Errorf("runtime: busybox --list-full: %w", err)
	}
	files := []ociimage.File{
		ociimage.Dir("/srv", 0o755),
		ociimage.Dir("/tmp", fs.ModeSticky|0o777),
		ociimage.Dir("/var/tmp", fs.ModeSticky|0o777),
		ociimage.Dir(ToolsDir, 0o755),
		ociimage.Regular("/bin/busybox", 0o755, busybox),
		ociimage.Regular("/bin/bash", 0o755, bash),
		ociimage.Symlink("/bin/sh", "bash"),
		ociimage.Regular("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
		ociimage.Regular("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
		ociimage.Regular("/etc/profile", 0o644, []byte("export PATH="+shellPath+"\nexport HOME=/srv\nPS1='\\h:\\w\\$ '\n")),
	}
	for _, p := range strings.Fields(string(list)) {
		p = "/" + strings.TrimPrefix(p, "/")
		if name := path.Base(p); !notApplets[name] && name != "busybox" {
			files = append(files, ociimage.Symlink(p, relTo(path.Dir(p), "/bin/busybox")))
		}
	}
	return ociimage.Image{
		Name:  ShellImage,
		Files: files,
		Config: ocispec.ImageConfig{
			Env:        []string{"PATH=" + shellPath, "SHELL=/bin/sh"},
			WorkingDir: "/srv",
		},
	}, nil
}

// relTo is target relative to dir, so links keep working when the tree is
// looked at from outside the container.
func relTo(dir, target string) string {
	up := strings.Count(strings.Trim(dir, "/"), "/") + 1
	if dir == "/" {
		up = 0
	}
	return strings.Repeat("../", up) + strings.TrimPrefix(target, "/")
}
