package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rosti-paas/rosti/runtime/ociimage"
)

// StaticImage is the built-in image of the `static` runtime.
const StaticImage = "rosti.local/static:1"

// Pull fetches ref (normalized: "nginx" is docker.io/library/nginx:latest)
// and unpacks it, reporting each fetched blob to progress.
func (d *Driver) Pull(ctx context.Context, ref string, progress func(string)) error {
	client, err := d.conn(ctx)
	if err != nil {
		return err
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return fmt.Errorf("runtime: image reference %q: %w", ref, err)
	}
	report := func(string) {}
	if progress != nil {
		report = progress
	}
	handler := images.HandlerFunc(func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		report(fmt.Sprintf("fetching %s %s (%d bytes)", desc.MediaType, desc.Digest, desc.Size))
		return nil, nil
	})
	if _, err := client.Pull(ctx, named.String(), containerd.WithPullUnpack, containerd.WithImageHandler(handler)); err != nil {
		return fmt.Errorf("runtime: pull %s: %w", named, err)
	}
	report("pulled " + named.String())
	return nil
}

// Import reads an OCI or docker archive, stores and unpacks its images for
// this machine's platform and returns their names.
func (d *Driver) Import(ctx context.Context, r io.Reader, progress func(string)) ([]string, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := client.Import(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("runtime: import: %w", err)
	}
	names := make([]string, 0, len(imgs))
	for _, img := range imgs {
		if err := ensureUnpacked(ctx, containerd.NewImage(client, img)); err != nil {
			return names, err
		}
		if progress != nil {
			progress("imported " + img.Name)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// Images lists the names of all images in the namespace.
func (d *Driver) Images(ctx context.Context) ([]string, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("runtime: images: %w", err)
	}
	names := make([]string, 0, len(imgs))
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	sort.Strings(names)
	return names, nil
}

// RemoveUnusedImages deletes every image that is neither in inUse nor the
// image of an existing container, and lets containerd collect its content.
// It returns the names removed.
func (d *Driver) RemoveUnusedImages(ctx context.Context, inUse []string) ([]string, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, ref := range inUse {
		keep[ref] = true
		if named, err := reference.ParseDockerRef(ref); err == nil {
			keep[named.String()] = true
		}
	}
	containers, err := client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("runtime: images in use: %w", err)
	}
	for _, c := range containers {
		if info, err := c.Info(ctx); err == nil {
			keep[info.Image] = true
		}
	}
	all, err := d.Images(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	for i, name := range all {
		if keep[name] {
			continue
		}
		var opts []images.DeleteOpt
		if i == len(all)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		if err := client.ImageService().Delete(ctx, name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return removed, fmt.Errorf("runtime: remove image %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// EnsureStaticImage makes sure the built-in static image exists, building it
// locally (no registry) the first time, and returns its name. The image is
// nearly empty: the rosti binary mounted at /rosti serves /srv/app.
func (d *Driver) EnsureStaticImage(ctx context.Context) (string, error) {
	client, err := d.conn(ctx)
	if err != nil {
		return "", err
	}
	if img, err := client.GetImage(ctx, StaticImage); err == nil {
		return StaticImage, ensureUnpacked(ctx, img)
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("runtime: static image: %w", err)
	}
	var archive bytes.Buffer
	err = ociimage.WriteArchive(&archive, ociimage.Image{
		Name: StaticImage,
		Files: []ociimage.File{
			ociimage.Dir("/srv", 0o755),
			ociimage.Dir("/tmp", fs.ModeSticky|0o777),
			ociimage.Regular("/etc/passwd", 0o644, []byte("root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n")),
			ociimage.Regular("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
		},
		Config: ocispec.ImageConfig{
			Cmd:        []string{InitPath, "init", "--serve-static", "/srv/app"},
			Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
			WorkingDir: "/srv",
		},
	})
	if err != nil {
		return "", fmt.Errorf("runtime: build static image: %w", err)
	}
	names, err := d.Import(ctx, &archive, nil)
	if err != nil {
		return "", err
	}
	if len(names) != 1 || names[0] != StaticImage {
		return "", errors.New("runtime: static image imported under unexpected names")
	}
	d.log.Info("built static image", "image", StaticImage)
	return StaticImage, nil
}
