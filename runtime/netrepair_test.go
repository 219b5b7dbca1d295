package runtime_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

// netHeld lists the container names holding an address, a NAT rule and a
// network namespace in env's networks.
func netHeld(t *testing.T, env *rttest.Env, d *rtm.Driver) (addresses, nat, netns []string) {
	t.Helper()
	_ = filepath.WalkDir(d.IPAMDir(), func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.Count(e.Name(), ".") == 3 {
			raw, _ := os.ReadFile(path)
			id, _, _ := strings.Cut(string(raw), "\n")
			addresses = append(addresses, strings.TrimSpace(id))
		}
		return nil
	})
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, `name: \"`+env.Config.Bridge+`-`) {
			_, after, _ := strings.Cut(line, `id: \"`)
			id, _, _ := strings.Cut(after, `\"`)
			nat = append(nat, id)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(env.Config.DataDir, "netns"))
	for _, e := range entries {
		netns = append(netns, e.Name())
	}
	slices.Sort(addresses)
	slices.Sort(nat)
	return addresses, nat, netns
}

// dropContainer deletes a container in containerd alone, leaving its
// network as a rosti killed after the CNI ADD and before creating the
// container (or in the middle of a Remove) does.
func dropContainer(t *testing.T, env *rttest.Env, name string) {
	t.Helper()
	ctx := context.Background()
	client := env.Client(t)
	c, err := client.LoadContainer(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
}

// TestLeftoverSnapshotDoesNotBlockRun: a rosti killed inside containerd's
// NewContainer, after the snapshot was made and before the container was,
// leaves the snapshot held by the call's lease (for a day); the next Run of
// that name must not fail with "already exists".
func TestLeftoverSnapshotDoesNotBlockRun(t *testing.T) {
	env := rttest.Start(t)
	d := env.Driver
	ctx := context.Background()
	image := rttest.HTTPServerImage(t, d)

	client := env.Client(t)
	img, err := client.GetImage(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	leased, _, err := client.WithLease(ctx) // never done: the process "died"
	if err != nil {
		t.Fatal(err)
	}
	if err := containerd.WithNewSnapshot("sn-web-1", img)(leased, client, &containers.Container{ID: "sn-web-1"}); err != nil {
		t.Fatal(err)
	}

	inst, err := d.Run(ctx, httpSpec(t, "sn-web-1", image, "g1", 10011))
	if err != nil {
		t.Fatalf("Run of a name whose snapshot was left behind: %v", err)
	}
	get(t, inst.IP, "/")
	if err := d.Remove(ctx, "sn-web-1"); err != nil {
		t.Fatal(err)
	}
}

// TestNetworkLeftoversAreReleased: an address, NAT rule and namespace whose
// container is gone neither block a new container of the same name nor
// outlive the next start of the driver.
func TestNetworkLeftoversAreReleased(t *testing.T) {
	env := rttest.Start(t)
	d := env.Driver
	ctx := context.Background()
	image := rttest.HTTPServerImage(t, d)
	for _, name := range []string{"lo-web-1", "lo-web-2", "lo-web-3"} {
		if _, err := d.Run(ctx, httpSpec(t, name, image, "g1", 10011)); err != nil {
			t.Fatal(err)
		}
	}
	dropContainer(t, env, "lo-web-1")
	dropContainer(t, env, "lo-web-2")

	// Run of the same name again, in the same process.
	inst, err := d.Run(ctx, httpSpec(t, "lo-web-1", image, "g1", 10011))
	if err != nil {
		t.Fatalf("Run of a name whose network was left behind: %v", err)
	}
	get(t, inst.IP, "/")

	// The next driver releases what no container holds.
	d2 := rttest.StartAgain(t, env)
	if _, err := d2.List(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"lo-web-1", "lo-web-3"}
	addresses, nat, netns := netHeld(t, env, d2)
	if !slices.Equal(addresses, want) || !slices.Equal(nat, want) || !slices.Equal(netns, want) {
		t.Fatalf("held after restart: addresses %v, NAT %v, netns %v; want %v for each", addresses, nat, netns, want)
	}
	for _, name := range want {
		if err := d2.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if addresses, nat, netns := netHeld(t, env, d2); len(addresses)+len(nat)+len(netns) != 0 {
		t.Fatalf("held after Remove: addresses %v, NAT %v, netns %v", addresses, nat, netns)
	}
}

// TestLeftoverTaskBundleDoesNotBlockStart: containerd 1.6 can leave the
// bundle directory of a task whose creation failed half way (a rosti
// killed in the middle of it), and then refuses every new task of the
// container with "mkdir <bundle>: file exists". Start must clear it, and
// undo its rootfs mount rather than delete what is under it.
func TestLeftoverTaskBundleDoesNotBlockStart(t *testing.T) {
	env := rttest.Start(t)
	d := env.Driver
	ctx := context.Background()
	image := rttest.HTTPServerImage(t, d)
	if _, err := d.Run(ctx, httpSpec(t, "bu-web-1", image, "g1", 10011)); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, "bu-web-1", time.Second); err != nil {
		t.Fatal(err)
	}
	client := env.Client(t)
	c, err := client.LoadContainer(ctx, "bu-web-1")
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(env.Config.DataDir, "containerd", "state", "io.containerd.runtime.v2.task", env.Config.Namespace, "bu-web-1")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	// Something mounted where the container's root file system goes, with a
	// file that removing the bundle without unmounting first would delete.
	precious := filepath.Join(t.TempDir(), "precious")
	if err := os.MkdirAll(precious, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(precious, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", precious, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", rootfs).Run() })
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}

	inst, err := d.Start(ctx, "bu-web-1")
	if err != nil {
		t.Fatalf("Start of a container whose task bundle was left behind: %v", err)
	}
	get(t, inst.IP, "/")
	if _, err := os.Stat(filepath.Join(precious, "keep")); err != nil {
		t.Errorf("what was mounted on the leftover rootfs lost its files: %v", err)
	}
	if err := d.Remove(ctx, "bu-web-1"); err != nil {
		t.Fatal(err)
	}
}
