package sshd_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gitWorkTree makes a local repository with one commit of files on branch.
func gitWorkTree(t *testing.T, branch string, files map[string]string) string {
	t.Helper()
	dir := localTree(t, files)
	mustRun(t, dir, "", "git", "init", "--quiet", "--initial-branch="+branch)
	mustRun(t, dir, "", "git", "add", ".")
	gitCommit(t, dir, "first")
	return dir
}

func gitCommit(t *testing.T, dir, message string) {
	t.Helper()
	mustRun(t, dir, "", "git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-am", message)
}

func (e *env) gitPush(app *testApp, dir string, refspec string) (string, int) {
	e.t.Helper()
	return run(e.t, dir, "", "git", "-c", "core.sshCommand="+e.sshCommand(app),
		"push", "ssh://"+app.name+"@127.0.0.1:"+e.port+"/"+app.name, refspec)
}

// remoteRef is the commit of branch in the app's bare repo, "" if none.
func remoteRef(t *testing.T, app *testApp, branch string) string {
	t.Helper()
	out, code := run(t, "", "", "git", "-c", "safe.directory=*", "--git-dir="+app.access.RepoDir,
		"rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	if code != 0 {
		return ""
	}
	return strings.TrimSpace(out)
}

// appFile writes a file into the app's volume as the app itself would.
func appFile(t *testing.T, app *testApp, name, content string) {
	t.Helper()
	file := filepath.Join(app.access.VolumeDir, name)
	for dir := filepath.Dir(file); dir != app.access.VolumeDir; dir = filepath.Dir(dir) {
		defer os.Lchown(dir, int(app.access.UID), int(app.access.GID))
	}
	mustMkdir(t, filepath.Dir(file), 0o755)
	mustWrite(t, file, content, 0o644)
	if err := os.Lchown(file, int(app.access.UID), int(app.access.GID)); err != nil {
		t.Fatal(err)
	}
}

// noStagingLeft fails if a deploy left anything in the staging area.
func noStagingLeft(t *testing.T, app *testApp) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(app.access.VolumeDir, ".rosti", "staging"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the staging area holds %d entries after the push", len(entries))
	}
}

func TestGitPushChecksOutAndDeploys(t *testing.T) {
	e := newEnv(t, "gitapp")
	app := e.apps["gitapp"]
	appDir := filepath.Join(app.access.VolumeDir, "app")
	local := gitWorkTree(t, "feature", map[string]string{"Procfile": "web: ./server\n", "src/main.txt": "v1\n", "old.txt": "old\n"})

	// The release step runs in a staged tree while /srv/app is untouched.
	e.platform.duringRelease = func(staged string) {
		if got := readFile(t, filepath.Join(staged, "src", "main.txt")); got != "v1\n" {
			t.Errorf("staged main.txt = %q", got)
		}
		if _, err := os.Stat(filepath.Join(appDir, "src")); !os.IsNotExist(err) {
			t.Errorf("/srv/app changed before the release step ended: %v", err)
		}
	}
	out, code := e.gitPush(app, local, "feature")
	if code != 0 {
		t.Fatalf("git push failed (exit %d):\n%s", code, out)
	}
	for _, want := range []string{"remote: running release: ./build", "remote: restarting web", "remote: deployed"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	for file, want := range map[string]string{"src/main.txt": "v1\n", "built.txt": "/srv/.rosti/staging/v1\n"} {
		if got := readFile(t, filepath.Join(appDir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if owner := ownerOf(t, filepath.Join(appDir, "src", "main.txt")); owner != ownerOf(t, app.access.VolumeDir) {
		t.Errorf("checked out file owned by %s, want the app's %s", owner, ownerOf(t, app.access.VolumeDir))
	}
	if releases, restarts := e.platform.deploys(); releases != 1 || restarts != 1 {
		t.Errorf("%d releases and %d restarts, want 1 of each", releases, restarts)
	}
	noStagingLeft(t, app)

	// Files the app made itself survive the next deploy, also those it
	// makes while the release step runs; the release step sees them.
	appFile(t, app, "app/.env", "SECRET=1\n")
	appFile(t, app, "app/uploads/photo.jpg", "jpeg")
	appFile(t, app, "app/src/local.txt", "app's own\n")
	e.platform.duringRelease = func(staged string) {
		if got := readFile(t, filepath.Join(staged, ".env")); got != "SECRET=1\n" {
			t.Errorf("the release step sees .env = %q", got)
		}
		if got := readFile(t, filepath.Join(appDir, "src", "main.txt")); got != "v1\n" {
			t.Errorf("/srv/app changed before the release step ended: main.txt = %q", got)
		}
		appFile(t, app, "app/uploads/during.jpg", "made during the release")
	}
	// The second push updates the tree and removes deleted files.
	mustWrite(t, filepath.Join(local, "src", "main.txt"), "v2\n", 0o644)
	mustRun(t, local, "", "git", "rm", "--quiet", "old.txt")
	gitCommit(t, local, "second")
	if out, code := e.gitPush(app, local, "feature"); code != 0 {
		t.Fatalf("second git push failed (exit %d):\n%s", code, out)
	}
	for file, want := range map[string]string{
		"src/main.txt": "v2\n", ".env": "SECRET=1\n", "uploads/photo.jpg": "jpeg",
		"uploads/during.jpg": "made during the release", "src/local.txt": "app's own\n",
	} {
		if got := readFile(t, filepath.Join(appDir, file)); got != want {
			t.Errorf("after the second push %s = %q, want %q", file, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(appDir, "old.txt")); !os.IsNotExist(err) {
		t.Errorf("old.txt survived its deletion: %v", err)
	}
	noStagingLeft(t, app)
	e.checkConfined()
}

// A deploy that fails leaves /srv/app as it was and the branch where it was
// before the push, so that pushing the same commit again deploys it.
func TestGitPushFailedDeployKeepsTheRunningVersion(t *testing.T) {
	tests := []struct {
		name      string
		firstPush bool // the failing push creates the branch
		fail      func(p *fakePlatform)
		reason    string
	}{
		{name: "release fails", fail: func(p *fakePlatform) { p.releaseErr = errors.New("release command exited with status 2") },
			reason: "release command exited with status 2"},
		{name: "restart fails", fail: func(p *fakePlatform) { p.restartErr = errors.New("new version not healthy") },
			reason: "new version not healthy"},
		{name: "first push, release fails", firstPush: true,
			fail:   func(p *fakePlatform) { p.releaseErr = errors.New("release command exited with status 2") },
			reason: "release command exited with status 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "failapp")
			app := e.apps["failapp"]
			appDir := filepath.Join(app.access.VolumeDir, "app")
			local := gitWorkTree(t, "main", map[string]string{"Procfile": "web: ./server\n", "index.html": "v1\n"})
			liveBefore := ""
			if !tt.firstPush {
				if out, code := e.gitPush(app, local, "main"); code != 0 {
					t.Fatalf("first git push failed (exit %d):\n%s", code, out)
				}
				liveBefore = "v1\n"
				appFile(t, app, "app/uploads/photo.jpg", "jpeg")
				mustWrite(t, filepath.Join(local, "index.html"), "v2\n", 0o644)
				gitCommit(t, local, "second")
			}
			refBefore := remoteRef(t, app, "main")

			tt.fail(e.platform)
			out, code := e.gitPush(app, local, "main")
			if code == 0 {
				t.Fatalf("git push succeeded although the deploy failed:\n%s", out)
			}
			if !strings.Contains(out, tt.reason) || !strings.Contains(out, "push again to retry") {
				t.Errorf("push output does not say why the deploy failed and what to do:\n%s", out)
			}
			if got := remoteRef(t, app, "main"); got != refBefore {
				t.Errorf("branch main is at %q after the failed deploy, want %q", got, refBefore)
			}
			got, _ := os.ReadFile(filepath.Join(appDir, "index.html"))
			if string(got) != liveBefore {
				t.Errorf("/srv/app/index.html = %q after the failed deploy, want %q", got, liveBefore)
			}
			if !tt.firstPush {
				if got := readFile(t, filepath.Join(appDir, "uploads", "photo.jpg")); got != "jpeg" {
					t.Errorf("the app's own file after the failed deploy: %q", got)
				}
			}
			noStagingLeft(t, app)

			// The same commit again, nothing changed locally: it deploys.
			out, code = e.gitPush(app, local, "main")
			if code != 0 || !strings.Contains(out, "remote: deployed") {
				t.Fatalf("pushing again did not deploy (exit %d):\n%s", code, out)
			}
			want := "v1\n"
			if !tt.firstPush {
				want = "v2\n"
			}
			if got := readFile(t, filepath.Join(appDir, "index.html")); got != want {
				t.Errorf("after pushing again index.html = %q, want %q", got, want)
			}
			noStagingLeft(t, app)
			e.checkConfined()
		})
	}
}
