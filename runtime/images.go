package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rosti-paas/rosti/runtime/ociimage"
)

// StaticImage is the built-in image of the `static` runtime.
const StaticImage = "rosti.local/static:1"

// PullProgress is how far a pull has got. Total grows while the pull
// reads manifests and learns of more blobs.
type PullProgress struct {
	Blobs, BlobsDone int
	Total, Done      int64 // bytes
}

// Percent is Done of Total, 0-100.
func (p PullProgress) Percent() int {
	if p.Total <= 0 {
		return 0
	}
	return int(min(100, p.Done*100/p.Total))
}

func (p PullProgress) String() string {
	return fmt.Sprintf("%d of %d blobs, %s of %s", p.BlobsDone, p.Blobs, megabytes(p.Done), megabytes(p.Total))
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// pullReportEvery is how often a pull's progress is reported.
const pullReportEvery = 500 * time.Millisecond

// Pull fetches ref (normalized: "nginx" is docker.io/library/nginx:latest)
// and unpacks it, reporting its progress now and then and once at the end.
// Registries on the loopback address are spoken to over plain HTTP, as
// docker does: that is where a registry of one's own runs.
func (d *Driver) Pull(ctx context.Context, ref string, progress func(PullProgress)) error {
	client, err := d.conn(ctx)
	if err != nil {
		return err
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return fmt.Errorf("runtime: image reference %q: %w", ref, err)
	}
	if progress == nil {
		progress = func(PullProgress) {}
	}
	tracker := &pullTracker{store: client.ContentStore(), sizes: map[digest.Digest]int64{}}
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost)),
	})
	stopReports := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		tick := time.NewTicker(pullReportEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopReports:
				return
			case <-tick.C:
				progress(tracker.progress(ctx))
			}
		}
	}()
	_, err = client.Pull(ctx, named.String(), containerd.WithPullUnpack, containerd.WithResolver(resolver),
		containerd.WithImageHandler(images.HandlerFunc(tracker.saw)))
	close(stopReports)
	<-reported
	if err != nil {
		return fmt.Errorf("runtime: pull %s: %w", named, err)
	}
	progress(tracker.progress(ctx))
	return nil
}

// pullTracker adds up a pull's blobs: those it was told of, how much of
// each is in the content store, and how much of those still coming.
type pullTracker struct {
	store content.Store
	mu    sync.Mutex
	sizes map[digest.Digest]int64
}

func (t *pullTracker) saw(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	t.mu.Lock()
	t.sizes[desc.Digest] = desc.Size
	t.mu.Unlock()
	return nil, nil
}

func (t *pullTracker) progress(ctx context.Context) PullProgress {
	t.mu.Lock()
	sizes := maps.Clone(t.sizes)
	t.mu.Unlock()
	// Ingests are named "<kind>-<digest>" by containerd's fetcher.
	ingesting := map[digest.Digest]int64{}
	if statuses, err := t.store.ListStatuses(ctx); err == nil {
		for _, st := range statuses {
			if _, d, ok := strings.Cut(st.Ref, "-"); ok {
				ingesting[digest.Digest(d)] = st.Offset
			}
		}
	}
	var p PullProgress
	for d, size := range sizes {
		p.Blobs++
		p.Total += size
		if offset, ok := ingesting[d]; ok {
			p.Done += offset
		} else if _, err := t.store.Info(ctx, d); err == nil {
			p.Done += size
			p.BlobsDone++
		}
	}
	return p
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
