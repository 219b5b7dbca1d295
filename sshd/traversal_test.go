package sshd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// appSymlink makes a symlink in the volume as the app itself could have
// made it in its container.
func appSymlink(t *testing.T, app *testApp, target, name string) {
	t.Helper()
	link := filepath.Join(app.access.VolumeDir, name)
	os.RemoveAll(link)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, int(app.access.UID), int(app.access.GID)); err != nil {
		t.Fatal(err)
	}
}

func TestNothingOutsideTheVolumeIsReachable(t *testing.T) {
	e := newEnv(t, "victim")
	app := e.apps["victim"]
	outside := e.outside
	canary := filepath.Join(outside, "canary.txt")
	secret := filepath.Join(e.base, "data", "secret.txt")
	local := localTree(t, map[string]string{"evil.txt": "evil\n", "tree/evil.txt": "evil\n"})

	// What the app could have prepared inside its own volume.
	appSymlink(t, app, outside, "escape")
	appSymlink(t, app, canary, "canary-link")
	appSymlink(t, app, "/etc/shadow", "shadow-link")
	swapped := filepath.Join(app.access.VolumeDir, "swapped")
	mustMkdir(t, swapped, 0o755)
	os.Chown(swapped, int(app.access.UID), int(app.access.GID))

	sftp := func(command string) func() (string, int) {
		return func() (string, int) { return e.sftpBatch(app, local, command+"\n") }
	}
	scpLegacy := func(from, to string) func() (string, int) {
		return func() (string, int) {
			args := append([]string{"-O", "-r", "-P", e.port}, e.sshOptions(app)...)
			return run(t, local, "", "scp", append(args, from, to)...)
		}
	}
	rsync := func(from, to string) func() (string, int) {
		return func() (string, int) {
			return run(t, local, "", "rsync", "-a", "-e", e.sshCommand(app), from, to)
		}
	}
	remote := func(path string) string { return "victim@127.0.0.1:" + path }

	tests := []struct {
		name    string
		prepare func()
		attempt func() (string, int)
	}{
		{name: "sftp get ..", attempt: sftp("get ../../outside/canary.txt got.txt")},
		{name: "sftp put ..", attempt: sftp("put evil.txt ../../outside/evil.txt")},
		{name: "sftp get absolute host path", attempt: sftp("get " + secret + " got.txt")},
		{name: "sftp get /etc/passwd", attempt: sftp("get /etc/passwd got.txt")},
		{name: "sftp put absolute host path", attempt: sftp("put evil.txt " + outside + "/evil.txt")},
		{name: "sftp get through a symlink to a dir outside", attempt: sftp("get escape/canary.txt got.txt")},
		{name: "sftp put through a symlink to a dir outside", attempt: sftp("put evil.txt escape/evil.txt")},
		{name: "sftp put through a symlink to a file outside", attempt: sftp("put evil.txt canary-link")},
		{name: "sftp get through a symlink to /etc/shadow", attempt: sftp("get shadow-link got.txt")},
		{name: "sftp symlink to an absolute path", attempt: sftp("symlink " + outside + " made-link")},
		{name: "sftp symlink up and out", attempt: sftp("symlink ../../outside made-link")},
		{name: "sftp hard link to a file outside", attempt: sftp("ln " + canary + " hard.txt")},
		{name: "sftp hard link with ..", attempt: sftp("ln ../../outside/canary.txt hard.txt")},
		{name: "sftp rename out of the volume", attempt: sftp("rename escape ../../outside/moved")},
		{
			name:    "sftp put into a dir swapped for a symlink",
			prepare: func() { appSymlink(t, app, outside, "swapped") },
			attempt: sftp("put evil.txt swapped/evil.txt"),
		},
		{name: "scp -O put ..", attempt: scpLegacy("evil.txt", remote("../../outside/evil.txt"))},
		{name: "scp -O put absolute host path", attempt: scpLegacy("evil.txt", remote(outside+"/evil.txt"))},
		{name: "scp -O get absolute host path", attempt: scpLegacy(remote(secret), "got.txt")},
		{name: "scp -O get through a symlink outside", attempt: scpLegacy(remote("escape/canary.txt"), "got.txt")},
		{name: "scp -O put through a symlink outside", attempt: scpLegacy("evil.txt", remote("canary-link"))},
		{name: "rsync put ..", attempt: rsync("tree/", remote("../../outside/"))},
		{name: "rsync put absolute host path", attempt: rsync("tree/", remote(outside+"/"))},
		{name: "rsync get absolute host path", attempt: rsync(remote(secret), "got.txt")},
		{name: "rsync put through a symlink outside", attempt: rsync("tree/", remote("escape/"))},
		{name: "tar get absolute host path", attempt: func() (string, int) {
			return run(t, local, "", "sh", "-c", e.sshCommand(app)+" victim@127.0.0.1 tar c "+secret+" >/dev/null")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare()
			}
			if out, code := tt.attempt(); code == 0 {
				t.Errorf("succeeded; want a failure:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(local, "got.txt")); err == nil {
				t.Errorf("something was downloaded: %q", readFile(t, filepath.Join(local, "got.txt")))
				os.Remove(filepath.Join(local, "got.txt"))
			}
		})
	}

	t.Run("sandboxed tools see a generated /etc/passwd, not the host's", func(t *testing.T) {
		mustRun(t, local, "", "scp", append(append([]string{"-O", "-P", e.port}, e.sshOptions(app)...), remote("/etc/passwd"), "passwd")...)
		if got := readFile(t, filepath.Join(local, "passwd")); strings.Contains(got, "daemon:") || !strings.Contains(got, "victim:") {
			t.Errorf("/etc/passwd in the sandbox:\n%s", got)
		}
	})
	t.Run("git push into an app dir swapped for a symlink", func(t *testing.T) {
		appSymlink(t, app, outside, "app")
		repo := gitWorkTree(t, "main", map[string]string{"evil.txt": "evil\n"})
		out, code := e.gitPush(app, repo, "main")
		if code == 0 {
			t.Errorf("push succeeded; want the checkout to fail:\n%s", out)
		}
	})
	t.Run("git push with the staging area a symlink out of the volume", func(t *testing.T) {
		os.Remove(filepath.Join(app.access.VolumeDir, "app"))
		appSymlink(t, app, outside, ".rosti")
		repo := gitWorkTree(t, "main", map[string]string{"index.html": "deployed\n"})
		if out, code := e.gitPush(app, repo, "main"); code != 0 {
			t.Fatalf("push failed (exit %d):\n%s", code, out)
		}
		if got := readFile(t, filepath.Join(app.access.VolumeDir, "app", "index.html")); got != "deployed\n" {
			t.Errorf("deployed index.html = %q", got)
		}
	})
	t.Run("git push to another path", func(t *testing.T) {
		repo := gitWorkTree(t, "main", map[string]string{"evil.txt": "evil\n"})
		out, code := run(t, repo, "", "git", "-c", "core.sshCommand="+e.sshCommand(app),
			"push", "ssh://victim@127.0.0.1:"+e.port+"/../../data/repos/other.git", "main")
		if code == 0 {
			t.Errorf("push to another repo succeeded:\n%s", out)
		}
	})
	e.checkConfined()
	if entries, _ := os.ReadDir(filepath.Join(e.base, "data", "repos")); len(entries) != 1 {
		t.Errorf("data/repos holds %d entries, want only the app's repo", len(entries))
	}
}
