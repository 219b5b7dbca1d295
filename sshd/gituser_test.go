package sshd_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestGitUserPushesToTheAppOfThePath: ssh://git@host/<app>.git deploys the
// app the path names when the key opens it, and nothing else.
func TestGitUserPushesToTheAppOfThePath(t *testing.T) {
	e := newEnv(t, "first", "second")
	first, second := e.apps["first"], e.apps["second"]
	local := gitWorkTree(t, "main", map[string]string{"index.html": "via git user\n"})
	push := func(key *testApp, app string) (string, int) {
		return run(t, local, "", "git", "-c", "core.sshCommand="+e.sshCommand(key),
			"push", "ssh://git@127.0.0.1:"+e.port+"/"+app+".git", "main")
	}
	if out, code := push(first, "first"); code != 0 {
		t.Fatalf("git push as git failed (exit %d):\n%s", code, out)
	}
	if got := readFile(t, filepath.Join(first.access.VolumeDir, "app", "index.html")); got != "via git user\n" {
		t.Fatalf("index.html = %q", got)
	}
	// first's key does not open second; the push says so and deploys nothing.
	if out, code := push(first, "second"); code == 0 || !strings.Contains(out, `no app "second" that your key opens`) {
		t.Fatalf("push to another app: exit %d\n%s", code, out)
	}
	if out, code := push(second, "nope"); code == 0 {
		t.Fatalf("push to a missing app: exit 0\n%s", out)
	}
	// The git user runs nothing but pushes.
	out, code := run(t, e.base, "", "ssh", "-p", e.port, "-i", first.keyFile, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "git@127.0.0.1", "cat /etc/passwd")
	if code == 0 || !strings.Contains(out, "only takes pushes") {
		t.Fatalf("a command as git: exit %d\n%s", code, out)
	}
}
