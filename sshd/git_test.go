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
	mustRun(t, dir, "", "git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-m", "first")
	return dir
}

func (e *env) gitPush(app *testApp, dir string, refspec string) (string, int) {
	e.t.Helper()
	return run(e.t, dir, "", "git", "-c", "core.sshCommand="+e.sshCommand(app),
		"push", "ssh://"+app.name+"@127.0.0.1:"+e.port+"/"+app.name, refspec)
}

func TestGitPushChecksOutAndDeploys(t *testing.T) {
	e := newEnv(t, "gitapp")
	app := e.apps["gitapp"]
	local := gitWorkTree(t, "feature", map[string]string{"Procfile": "web: ./server\n", "src/main.txt": "v1\n", "old.txt": "old\n"})
	out, code := e.gitPush(app, local, "feature")
	if code != 0 {
		t.Fatalf("git push failed (exit %d):\n%s", code, out)
	}
	if !strings.Contains(out, "remote: running release: ./build") || !strings.Contains(out, "remote: deployed") {
		t.Errorf("push output lacks the deploy progress:\n%s", out)
	}
	appDir := filepath.Join(app.access.VolumeDir, "app")
	if got := readFile(t, filepath.Join(appDir, "src", "main.txt")); got != "v1\n" {
		t.Errorf("checked out main.txt = %q", got)
	}
	if owner := ownerOf(t, filepath.Join(appDir, "src", "main.txt")); owner != ownerOf(t, app.access.VolumeDir) {
		t.Errorf("checked out file owned by %s, want the app's %s", owner, ownerOf(t, app.access.VolumeDir))
	}
	if n := e.platform.deployCount(); n != 1 {
		t.Errorf("Deploy called %d times, want 1", n)
	}

	// A second push updates the tree and removes deleted files.
	mustWrite(t, filepath.Join(local, "src", "main.txt"), "v2\n", 0o644)
	mustRun(t, local, "", "git", "rm", "--quiet", "old.txt")
	mustRun(t, local, "", "git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-am", "second")
	if out, code := e.gitPush(app, local, "feature"); code != 0 {
		t.Fatalf("second git push failed (exit %d):\n%s", code, out)
	}
	if got := readFile(t, filepath.Join(appDir, "src", "main.txt")); got != "v2\n" {
		t.Errorf("after the second push main.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(appDir, "old.txt")); !os.IsNotExist(err) {
		t.Errorf("old.txt survived its deletion: %v", err)
	}
	e.checkConfined()
}

func TestGitPushReportsAFailedDeploy(t *testing.T) {
	e := newEnv(t, "failapp")
	app := e.apps["failapp"]
	e.platform.deployErr = errors.New("release command exited with status 2")
	local := gitWorkTree(t, "main", map[string]string{"Procfile": "web: ./server\n"})
	out, code := e.gitPush(app, local, "main")
	if code == 0 {
		t.Fatalf("git push succeeded although the deploy failed:\n%s", out)
	}
	if !strings.Contains(out, "release command exited with status 2") {
		t.Errorf("push output does not say why the deploy failed:\n%s", out)
	}
}
