package sshd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// localTree writes files (path -> content) under a new local directory.
func localTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		mustMkdir(t, filepath.Dir(filepath.Join(dir, name)), 0o755)
		mustWrite(t, filepath.Join(dir, name), content, 0o644)
	}
	return dir
}

func (e *env) sftpBatch(app *testApp, dir, batch string) (string, int) {
	e.t.Helper()
	args := append([]string{"-P", e.port, "-b", "-"}, e.sshOptions(app)...)
	return run(e.t, dir, batch, "sftp", append(args, "127.0.0.1")...)
}

func TestSFTPBatch(t *testing.T) {
	e := newEnv(t, "sftpapp")
	app := e.apps["sftpapp"]
	local := localTree(t, map[string]string{"index.html": "<h1>hi</h1>\n"})
	mustWrite(t, filepath.Join(local, "run.sh"), "#!/bin/sh\n", 0o750)
	out, code := e.sftpBatch(app, local, strings.Join([]string{
		"mkdir app",
		"put -p run.sh app/run.sh",
		"put index.html app/index.html",
		"rename app/index.html app/home.html",
		"put index.html /srv/app/gone.html",
		"rm app/gone.html",
		"symlink home.html app/link.html",
		"get app/link.html fetched.html",
		"ls -l app",
	}, "\n")+"\n")
	if code != 0 {
		t.Fatalf("sftp batch failed (exit %d):\n%s", code, out)
	}
	volume := app.access.VolumeDir
	if got := readFile(t, filepath.Join(volume, "app", "home.html")); got != "<h1>hi</h1>\n" {
		t.Errorf("uploaded file holds %q", got)
	}
	if got := readFile(t, filepath.Join(local, "fetched.html")); got != "<h1>hi</h1>\n" {
		t.Errorf("downloaded through the symlink: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(volume, "app", "run.sh")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("put -p run.sh: %v, mode %v; want 0750 as asked", err, fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(volume, "app", "gone.html")); !os.IsNotExist(err) {
		t.Errorf("removed file still there: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(volume, "app", "link.html")); err != nil || target != "home.html" {
		t.Errorf("symlink = %q, %v", target, err)
	}
	e.checkConfined()
}

func TestSCPBothWays(t *testing.T) {
	e := newEnv(t, "scpapp")
	app := e.apps["scpapp"]
	// OpenSSH >= 9 speaks SFTP by default (-D names the server program,
	// left at its default); -O asks for the legacy scp protocol.
	for _, mode := range []struct {
		name  string
		flags []string
	}{{"sftp protocol", nil}, {"legacy scp protocol", []string{"-O"}}} {
		t.Run(mode.name, func(t *testing.T) {
			local := localTree(t, map[string]string{"site/a.txt": "a\n", "site/sub/b.txt": "b\n"})
			dest := "up-" + strings.ReplaceAll(mode.name, " ", "-")
			scp := func(args ...string) {
				t.Helper()
				all := append(append(mode.flags, "-P", e.port), e.sshOptions(app)...)
				mustRun(t, local, "", "scp", append(all, args...)...)
			}
			scp("-r", "site", "127.0.0.1:"+dest)
			if got := readFile(t, filepath.Join(app.access.VolumeDir, dest, "sub", "b.txt")); got != "b\n" {
				t.Fatalf("uploaded b.txt = %q", got)
			}
			scp("-r", "127.0.0.1:"+dest, "back")
			if got := readFile(t, filepath.Join(local, "back", "a.txt")); got != "a\n" {
				t.Errorf("downloaded a.txt = %q", got)
			}
			e.checkConfined()
		})
	}
}

func TestRsyncTreeThenIncremental(t *testing.T) {
	e := newEnv(t, "rsyncapp")
	app := e.apps["rsyncapp"]
	files := map[string]string{"old.txt": "old\n"}
	for i := range 50 {
		files[fmt.Sprintf("dir%d/file%d.txt", i%5, i)] = strings.Repeat("x", i*100)
	}
	local := localTree(t, files)
	rsync := func() string {
		t.Helper()
		return mustRun(t, local, "", "rsync", "-az", "--delete", "--stats", "-e", e.sshCommand(app), "./", "rsyncapp@127.0.0.1:app/")
	}
	rsync()
	volumeApp := filepath.Join(app.access.VolumeDir, "app")
	if got := readFile(t, filepath.Join(volumeApp, "dir4", "file49.txt")); len(got) != 4900 {
		t.Fatalf("file49.txt has %d bytes", len(got))
	}
	os.Remove(filepath.Join(local, "old.txt"))
	mustWrite(t, filepath.Join(local, "new.txt"), "new\n", 0o644)
	stats := rsync()
	if !strings.Contains(stats, "Number of regular files transferred: 1") {
		t.Errorf("second run should send only new.txt:\n%s", stats)
	}
	if _, err := os.Stat(filepath.Join(volumeApp, "old.txt")); !os.IsNotExist(err) {
		t.Errorf("--delete left old.txt: %v", err)
	}
	if got := readFile(t, filepath.Join(volumeApp, "new.txt")); got != "new\n" {
		t.Errorf("new.txt = %q", got)
	}
	e.checkConfined()
}

func TestTarOverAPipe(t *testing.T) {
	e := newEnv(t, "tarapp")
	app := e.apps["tarapp"]
	local := localTree(t, map[string]string{"a.txt": "a\n", "deep/b.txt": "b\n"})
	ssh := e.sshCommand(app) + " tarapp@127.0.0.1"
	mustRun(t, local, "", "sh", "-c", "tar c . | "+ssh+" tar x")
	if got := readFile(t, filepath.Join(app.access.VolumeDir, "deep", "b.txt")); got != "b\n" {
		t.Errorf("uploaded b.txt = %q", got)
	}
	mustMkdir(t, filepath.Join(local, "back"), 0o755)
	mustRun(t, local, "", "sh", "-c", ssh+" tar c deep | tar x -C back")
	if got := readFile(t, filepath.Join(local, "back", "deep", "b.txt")); got != "b\n" {
		t.Errorf("downloaded b.txt = %q", got)
	}
	e.checkConfined()
}
