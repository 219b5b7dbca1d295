package platform

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// filesTree is a TreeSource that writes fixed files into the staging tree.
type filesTree struct {
	volume    string
	files     map[string]string
	refreshed bool
}

func (f *filesTree) Stage(_ context.Context, dir string) error {
	host := filepath.Join(f.volume, strings.TrimPrefix(dir, rtm.VolumePath+"/"))
	for name, content := range f.files {
		if err := os.WriteFile(filepath.Join(host, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (f *filesTree) Refresh(context.Context, string) error { f.refreshed = true; return nil }

func readApp(t *testing.T, volume string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(volume, "app"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(volume, "app", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestDeployTree(t *testing.T) {
	for _, tc := range []struct {
		name      string
		files     map[string]string
		stopped   bool
		code      int
		wantExec  bool
		wantErr   string
		wantTypes []string
		linkOut   bool // the app made .rosti a symlink to a host directory
	}{
		{name: "no release line", files: map[string]string{"Procfile": "web: ./serve\nworker: ./work\n", "index.html": "new"},
			wantTypes: []string{"web", "worker"}},
		{name: "release line", files: map[string]string{"Procfile": "web: ./serve\nrelease: make\n", "index.html": "new"},
			wantExec: true, wantTypes: []string{"web"}},
		{name: "release fails", files: map[string]string{"Procfile": "release: make\n", "index.html": "new"}, code: 7,
			wantExec: true, wantErr: "exited with status 7"},
		{name: "app not running", files: map[string]string{"Procfile": "release: make\n"}, stopped: true, wantErr: "not running"},
		{name: "bad Procfile", files: map[string]string{"Procfile": "what\n"}, wantErr: "Procfile"},
		{name: "process type that cannot be part of a host name", files: map[string]string{"Procfile": "web: ./serve\nMy_Worker: ./work\n"},
			wantErr: `process type "My_Worker"`},
		{name: "staging area a link out of the volume", files: map[string]string{"index.html": "new"}, linkOut: true,
			wantTypes: []string{"web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			p := newTestPlatform(t)
			a := newApp(t, p)
			containers := &execContainers{running: !tc.stopped, code: tc.code}
			p.containers = containers
			volume, err := p.ensureVolume(a)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(volume, "app", "index.html"), []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := p.SetConfig(context.Background(), Operator(), AppNamed(a.Name), map[string]*string{"SECRET": ptr("s3")}, false, nil); err != nil {
				t.Fatal(err)
			}
			outside := t.TempDir()
			if tc.linkOut {
				if err := os.RemoveAll(filepath.Join(volume, ".rosti")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, filepath.Join(volume, ".rosti")); err != nil {
					t.Fatal(err)
				}
			}
			src := &filesTree{volume: volume, files: tc.files}
			var progress strings.Builder
			grant, err := p.sshAccess(a)
			if err != nil {
				t.Fatal(err)
			}
			rel, err := p.SSH().Deploy(context.Background(), grant, src, "abc", "push", &progress)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
			}
			after, _ := p.store.App(a.ID)
			if tc.wantErr != "" {
				if rel.Status != store.ReleaseFailed || after.Release != 2 || readApp(t, volume)["index.html"] != "old" {
					t.Fatalf("a failed deploy: release %+v, app at v%d, /srv/app %v", rel, after.Release, readApp(t, volume))
				}
			} else {
				if rel.Status != store.ReleaseSucceeded || rel.Version != 3 || after.Release != 3 || readApp(t, volume)["index.html"] != "new" ||
					!slices.Equal(rel.ProcessTypes, tc.wantTypes) || rel.Revision != "abc" || !src.refreshed {
					t.Fatalf("deployed: release %+v, app at v%d, /srv/app %v", rel, after.Release, readApp(t, volume))
				}
				if b, err := os.ReadFile(filepath.Join(volume, rel.Tree, "index.html")); err != nil || string(b) != "new" {
					t.Fatalf("kept tree %s: %q %v", rel.Tree, b, err)
				}
				if after.Config["SECRET"] != "s3" {
					t.Fatalf("config lost: %v", after.Config)
				}
			}
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Fatalf("the deploy wrote outside the volume: %v", left)
			}
			if left, _ := os.ReadDir(filepath.Join(volume, stagingDir)); len(left) != 0 {
				t.Fatalf("staging left behind: %v", left)
			}
			var ran []string
			if len(containers.execs) == 1 {
				ran = containers.execs[0].Args
			}
			want := []string{rtm.InitPath, "init", "--type", "release", "--dir", "/srv/.rosti/staging/v3"}
			if tc.wantExec != (ran != nil) || ran != nil && !slices.Equal(ran, want) {
				t.Fatalf("executed %+v, want %q: %v", containers.execs, want, tc.wantExec)
			}
			if ran != nil && (containers.execs[0].UID != a.UID || !slices.Contains(containers.execs[0].Env, "SECRET=s3") ||
				!strings.Contains(progress.String(), "running release: make")) {
				t.Fatalf("exec as %d (app %d), env %v, progress %q", containers.execs[0].UID, a.UID, containers.execs[0].Env, progress.String())
			}
		})
	}
}

func TestRollbackRestoresFilesImageAndConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	p := newTestPlatform(t)
	a := newApp(t, p)
	p.containers = &execContainers{running: true}
	volume, err := p.ensureVolume(a)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deploy := func(content string) store.Release {
		t.Helper()
		rel, err := p.Deploy(ctx, Operator(), AppNamed(a.Name), DeployRequest{Tree: &filesTree{volume: volume, files: map[string]string{"index.html": content}}})
		if err != nil {
			t.Fatal(err)
		}
		return rel
	}
	v2 := deploy("two")
	if v2.Source != SourceUpload || v2.Author != Operator().Username {
		t.Fatalf("a deploy of files: %+v", v2)
	}
	if _, err := p.Deploy(ctx, Operator(), AppNamed(a.Name), DeployRequest{Image: "nope"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a deploy of an unknown image: %v", err)
	}
	if _, err := p.SetConfig(ctx, Operator(), AppNamed(a.Name), map[string]*string{"COLOR": ptr("blue")}, false, nil); err != nil {
		t.Fatal(err)
	}
	deploy("four")
	if _, err := p.SetConfig(ctx, Operator(), AppNamed(a.Name), map[string]*string{"COLOR": ptr("blue")}, false, nil); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("the same config again: %v", err)
	}
	if _, err := p.SetConfig(ctx, Operator(), AppNamed(a.Name), map[string]*string{"NOPE": nil}, false, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("unsetting a key that is not set: %v", err)
	}
	rel, err := p.Rollback(ctx, Operator(), AppNamed(a.Name), v2.Version, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := p.store.App(a.ID)
	if got := readApp(t, volume)["index.html"]; got != "two" || rel.RolledBackTo != v2.Version || after.Release != rel.Version || len(after.Config) != 0 {
		t.Fatalf("after rollback to v%d: /srv/app %q, release %+v, app config %v", v2.Version, got, rel, after.Config)
	}
	// Uploaded files and a restart make a release too, and only when
	// something changed.
	if err := os.WriteFile(filepath.Join(volume, "app", "index.html"), []byte("uploaded"), 0o644); err != nil {
		t.Fatal(err)
	}
	uploaded, err := p.uploadedSinceRelease(after)
	if err != nil || !uploaded {
		t.Fatalf("an upload is not seen: %v %v", uploaded, err)
	}
	// Rolling back past the kept trees is refused with a reason.
	for range keptTrees + 1 {
		deploy("more")
	}
	if _, err := p.Rollback(ctx, Operator(), AppNamed(a.Name), v2.Version, nil); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "no longer kept") {
		t.Fatalf("rollback to a tree no longer kept: %v", err)
	}
	if trees, _ := os.ReadDir(filepath.Join(volume, treesDir)); len(trees) > keptTrees {
		t.Fatalf("%d trees kept, want at most %d", len(trees), keptTrees)
	}
}
