package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rosti-paas/rosti/runtime/ociimage"
)

var sshStarted = regexp.MustCompile(`msg=started component=sshd addr=(\S+)`)

// sshPort waits for the gateway's "started" line and returns its port.
func (in *instance) sshPort(t *testing.T) string {
	t.Helper()
	var port string
	waitFor(t, "ssh gateway started", 30*time.Second, func() (bool, string) {
		m := sshStarted.FindStringSubmatch(in.logs())
		if m == nil {
			return false, "no started line"
		}
		_, port, _ = net.SplitHostPort(m[1])
		return true, ""
	})
	return port
}

// sshClient runs the stock OpenSSH, scp, sftp, rsync and git clients with
// one identity against one gateway.
type sshClient struct {
	port   string
	config string // ssh_config: the identity, no known_hosts, no prompts
	pub    string // authorized_keys line
}

func newSSHClient(t *testing.T, port string) *sshClient {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(config, []byte("Host *\n  IdentityFile "+key+"\n  IdentitiesOnly yes\n  PasswordAuthentication no\n"+
		"  KbdInteractiveAuthentication no\n  BatchMode yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"+
		"  LogLevel ERROR\n  ConnectTimeout 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &sshClient{port: port, config: config, pub: strings.TrimSpace(string(pub))}
}

// run runs a client program in dir and returns its exit code and output.
func (c *sshClient) run(t *testing.T, dir string, name string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_SSH_COMMAND=ssh -F "+c.config, "GIT_TERMINAL_PROMPT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within a minute; stderr: %s", name, args, stderr.String())
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// ssh runs a command in app's container and returns its exit code and output.
func (c *sshClient) ssh(t *testing.T, app, command string) (int, string, string) {
	t.Helper()
	return c.run(t, "", "ssh", "-F", c.config, "-p", c.port, app+"@127.0.0.1", command)
}

// must fails the test unless the client exited 0, and returns its output.
func must(t *testing.T) func(code int, stdout, stderr string) string {
	return func(code int, stdout, stderr string) string {
		t.Helper()
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		return stdout
	}
}

// importBusybox imports an image with Debian's static busybox and all its
// applets (a shell, httpd) into rosti's containerd, and makes it the
// runtime "busybox", whose default command serves /srv/app on $PORT.
func (in *instance) importBusybox(t *testing.T) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs busybox-static: %v", err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	files := []ociimage.File{
		ociimage.Dir("/srv", 0o755),
		ociimage.Dir("/tmp", fs.ModeSticky|0o777),
		ociimage.Regular("/etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")),
		ociimage.Regular("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
		ociimage.Regular("/bin/busybox", 0o755, bb),
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			files = append(files, ociimage.Symlink("/bin/"+applet, "busybox"))
		}
	}
	const name = "rosti.test/busybox:e2e"
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociimage.WriteArchive(f, ociimage.Image{Name: name, Files: files, Config: ocispec.ImageConfig{Env: []string{"PATH=/bin"}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(in.dataDir, "containerd", "containerd.sock")
	waitFor(t, "containerd up", 30*time.Second, func() (bool, string) {
		out, err := exec.Command("ctr", "--address", socket, "version").CombinedOutput()
		return err == nil, string(out)
	})
	if out, err := exec.Command("ctr", "--address", socket, "--namespace", "rosti", "images", "import", archive).CombinedOutput(); err != nil {
		t.Fatalf("ctr import: %v\n%s", err, out)
	}
	if out, err := in.admin("set-runtime", "busybox", "--image", name,
		"--command", "/bin/sh", "--command", "-c", "--command", "exec httpd -f -p $PORT -h /srv/app"); err != nil {
		t.Fatalf("set-runtime: %v\n%s", err, out)
	}
}

// running waits until the app's single web container runs, and returns it.
func (in *instance) running(t *testing.T, u user, app int64) (name, ip string) {
	t.Helper()
	waitFor(t, "app running", 60*time.Second, func() (bool, string) {
		st := in.status(t, u, app)
		if len(st.Containers) != 1 || st.Containers[0].State != "running" {
			return false, fmt.Sprintf("%+v", st)
		}
		name, ip = st.Containers[0].Name, st.Containers[0].IP
		return true, ""
	})
	return name, ip
}

// writeTree creates files (path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSSHGateway runs the real OpenSSH, scp, sftp, rsync and git clients
// against the gateway of a real rosti with apps in containers: exec with
// exit codes, uploads and downloads, git push deploys with a release step,
// and who may log in where.
func TestSSHGateway(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen", "scp", "sftp", "rsync", "git", "ctr")
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	port := in.sshPort(t)
	admin := in.adminUser(t)
	in.importBusybox(t)

	deployer := newSSHClient(t, port) // in site's ssh_keys
	member := newSSHClient(t, port)   // admin's own key, added through the API
	outsider := newSSHClient(t, port) // in other's ssh_keys, of bob's company

	site := in.createApp(t, admin, map[string]any{"name": "site", "image": "busybox", "plan": 1, "ssh_keys": []string{deployer.pub}})
	bob := in.register(t, "bob")
	other := in.createApp(t, bob, map[string]any{"name": "other", "image": "static", "plan": 1, "ssh_keys": []string{outsider.pub}})
	t.Cleanup(func() {
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, site), nil)
		in.expect(t, 200, bob.token, "DELETE", pathf("/api/v1/%d/apps/%d/", bob.company, other), nil)
		if c := in.ctr(t, "containers", "ls"); len(c) != 0 {
			t.Errorf("containers left after delete: %v", c)
		}
		if _, err := os.Stat(filepath.Join(data, "repos", fmt.Sprint(site)+".git")); !os.IsNotExist(err) {
			t.Errorf("git repository left after delete: %v", err)
		}
	})
	container, _ := in.running(t, admin, site)
	volume := filepath.Join(data, "volumes", fmt.Sprint(site))
	fi, err := os.Stat(volume)
	if err != nil {
		t.Fatal(err)
	}
	uid := fi.Sys().(*syscall.Stat_t).Uid

	t.Run("exec", func(t *testing.T) {
		if code, out, errOut := deployer.ssh(t, "site", "exit 3"); code != 3 {
			t.Fatalf("exit code %d, want 3: %s %s", code, out, errOut)
		}
		out := must(t)(deployer.ssh(t, "site", "id -u; pwd; echo $PORT"))
		if want := fmt.Sprintf("%d\n/srv\n8080\n", uid); out != want || uid == 0 {
			t.Fatalf("uid, cwd and port: %q, want %q", out, want)
		}
	})

	tree := map[string]string{"index.html": "v1", "sub/deep/file.txt": strings.Repeat("rosti ", 5000), "sub/a.txt": "a"}
	t.Run("rsync, scp and sftp", func(t *testing.T) {
		local := t.TempDir()
		writeTree(t, local, tree)
		rsh := fmt.Sprintf("ssh -F %s -p %s", deployer.config, port)
		must(t)(deployer.run(t, local, "rsync", "-az", "--delete", "-e", rsh, "./", "site@127.0.0.1:app/"))
		in.servingAt(t, admin, site, 8080, "v1")
		for p, content := range tree {
			fi, err := os.Stat(filepath.Join(volume, "app", p))
			if err != nil || fi.Sys().(*syscall.Stat_t).Uid != uid {
				t.Fatalf("%s in the volume: %v, not owned by the app", p, err)
			}
			if got := must(t)(deployer.ssh(t, "site", "cat /srv/app/"+p)); got != content {
				t.Fatalf("%s read in the container: %d bytes, want %d", p, len(got), len(content))
			}
		}
		back := t.TempDir()
		must(t)(deployer.run(t, back, "scp", "-F", deployer.config, "-P", port, "site@127.0.0.1:app/sub/deep/file.txt", "scp.txt"))
		must(t)(deployer.run(t, back, "rsync", "-az", "-e", rsh, "site@127.0.0.1:app/sub/", "rsync/"))
		batch := filepath.Join(back, "batch")
		if err := os.WriteFile(batch, []byte("get app/sub/a.txt sftp.txt\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		must(t)(deployer.run(t, back, "sftp", "-F", deployer.config, "-P", port, "-b", batch, "site@127.0.0.1"))
		for local, want := range map[string]string{"scp.txt": tree["sub/deep/file.txt"], "rsync/deep/file.txt": tree["sub/deep/file.txt"], "sftp.txt": "a"} {
			if got, err := os.ReadFile(filepath.Join(back, local)); err != nil || string(got) != want {
				t.Fatalf("%s fetched back: %d bytes %v, want %d", local, len(got), err, len(want))
			}
		}
	})

	t.Run("git push deploys", func(t *testing.T) {
		repo := t.TempDir()
		git := func(args ...string) string { return must(t)(deployer.run(t, repo, "git", args...)) }
		git("init", "-q", "-b", "main")
		git("config", "user.email", "e2e@rosti.test")
		git("config", "user.name", "e2e")
		remote := fmt.Sprintf("ssh://site@127.0.0.1:%s/site", port)

		// The release step builds in its cwd, the tree about to go live.
		writeTree(t, repo, map[string]string{"index.html": "v2", "Procfile": "release: echo releasing; id -u > /srv/released; printf built > built.html\n"})
		git("add", ".")
		git("commit", "-q", "-m", "v2")
		code, out, progress := deployer.run(t, repo, "git", "push", remote, "main")
		if code != 0 || !strings.Contains(progress, "remote: releasing") || !strings.Contains(progress, "restarting web") || !strings.Contains(progress, "deployed") {
			t.Fatalf("push: exit %d\n%s%s", code, out, progress)
		}
		if b, err := os.ReadFile(filepath.Join(volume, "released")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(int(uid)) {
			t.Fatalf("the release step did not run as the app: %q %v", b, err)
		}
		addr := in.servingAt(t, admin, site, 8080, "v2")
		in.waitServed(t, "site.apps.test", "v2") // and through the proxy
		if body, err := get("http://" + addr + "/built.html"); err != nil || body != "built" {
			t.Fatalf("what the release step built is not served: %q %v", body, err)
		}
		deployed, deployedIP := in.running(t, admin, site)
		if deployed == container {
			t.Fatalf("the deploy did not replace container %s", container)
		}

		// A failing release step fails the push and keeps the running
		// container, still serving the previous deploy's files; the branch
		// stays where it was, so the same push fails the same way again
		// instead of being "up to date".
		writeTree(t, repo, map[string]string{"index.html": "v3", "Procfile": "release: echo broken >&2; exit 7\n"})
		git("commit", "-q", "-am", "v3")
		for range 2 {
			code, out, progress = deployer.run(t, repo, "git", "push", remote, "main")
			if code == 0 || !strings.Contains(progress, "broken") || !strings.Contains(progress, "exited with status 7") ||
				!strings.Contains(progress, "push again to retry") {
				t.Fatalf("push with a failing release: exit %d\n%s%s", code, out, progress)
			}
			if name, ip := in.running(t, admin, site); name != deployed || ip != deployedIP {
				t.Fatalf("a failed deploy replaced the container: %s %s, was %s %s", name, ip, deployed, deployedIP)
			}
			if body, err := get("http://" + net.JoinHostPort(deployedIP, "8080") + "/"); err != nil || body != "v2" {
				t.Fatalf("after a failed deploy the app serves %q %v, want the previous version's v2", body, err)
			}
			if code, body, err := in.viaProxy("site.apps.test", "/"); err != nil || code != 200 || body != "v2" {
				t.Fatalf("after a failed deploy the proxy serves %d %q %v, want v2", code, body, err)
			}
			if b, err := os.ReadFile(filepath.Join(volume, "app", "index.html")); err != nil || string(b) != "v2" {
				t.Fatalf("a failed deploy changed /srv/app: %q %v", b, err)
			}
		}

		// Fixed, the next push deploys.
		writeTree(t, repo, map[string]string{"index.html": "v4", "Procfile": "release: echo fixed\n"})
		git("commit", "-q", "-am", "v4")
		code, out, progress = deployer.run(t, repo, "git", "push", remote, "main")
		if code != 0 || !strings.Contains(progress, "remote: fixed") || !strings.Contains(progress, "deployed") {
			t.Fatalf("push after fixing the release: exit %d\n%s%s", code, out, progress)
		}
		in.servingAt(t, admin, site, 8080, "v4")
		in.waitServed(t, "site.apps.test", "v4")
	})

	t.Run("who may log in", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			client *sshClient
			app    string
			ok     bool
		}{
			{"app key on its app", deployer, "site", true},
			{"app key on another app", deployer, "other", false},
			{"another app's key", outsider, "site", false},
			{"user key before it is added", member, "site", false},
			{"unknown app", deployer, "nope", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errOut := tc.client.ssh(t, tc.app, "true")
				if tc.ok != (code == 0) || (!tc.ok && !strings.Contains(errOut, "Permission denied")) {
					t.Fatalf("exit %d, want success %v: %s %s", code, tc.ok, out, errOut)
				}
			})
		}
		var key struct{ ID int64 }
		in.expect(t, 200, admin.token, "POST", "/api/v1/keys/", map[string]string{"name": "laptop", "key": member.pub}).decode(t, &key)
		must(t)(member.ssh(t, "site", "true"))
		if code, _, _ := member.ssh(t, "other", "true"); code == 0 {
			t.Fatal("admin's key opens an app of bob's company")
		}
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/keys/%d/", key.ID), nil)
		if code, _, _ := member.ssh(t, "site", "true"); code == 0 {
			t.Fatal("a deleted key still opens the app")
		}
	})

	t.Run("image without a shell", func(t *testing.T) {
		in.running(t, bob, other)
		code, _, errOut := outsider.ssh(t, "other", "ls")
		const says = "the image of app other (rosti.local/static:1) has no /bin/sh"
		if code != 126 || !strings.Contains(errOut, says) {
			t.Fatalf("exec in an image without a shell: exit %d: %s", code, errOut)
		}
		// The app's status says the same.
		if st := in.status(t, bob, other); !strings.Contains(strings.Join(st.Info, "\n"), says) {
			t.Fatalf("the status does not say the image has no shell: %+v", st.Info)
		}
		// The file tools work all the same: they do not need the image.
		local := t.TempDir()
		writeTree(t, local, map[string]string{"index.html": "static"})
		must(t)(outsider.run(t, local, "rsync", "-a", "-e", fmt.Sprintf("ssh -F %s -p %s", outsider.config, port), "./", "other@127.0.0.1:app/"))
		in.servingAt(t, bob, other, 8080, "static")
	})

	t.Run("password", func(t *testing.T) {
		in.expect(t, 200, admin.token, "PATCH", pathf("/api/v1/%d/apps/%d/", admin.company, site), map[string]any{"ssh_password": "app-password-1"})
		for _, tc := range []struct {
			password string
			ok       bool
		}{{"app-password-1", true}, {"app-password-2", false}} {
			client, err := gossh.Dial("tcp", "127.0.0.1:"+port, &gossh.ClientConfig{
				User: "site", Auth: []gossh.AuthMethod{gossh.Password(tc.password)},
				HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
			})
			if !tc.ok {
				if err == nil {
					client.Close()
					t.Fatal("a wrong password logs in")
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			out, err := sess.Output("echo in $ROSTI_APP")
			client.Close()
			if err != nil || string(out) != "in site\n" {
				t.Fatalf("command over a password login: %q %v", out, err)
			}
		}
	})
}

// TestSSHHostKeyPersists restarts rosti and finds the same host key, so
// users' known_hosts keep matching.
func TestSSHHostKeyPersists(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	hostKey := func(in *instance) string {
		t.Helper()
		var seen string
		_, err := gossh.Dial("tcp", "127.0.0.1:"+in.sshPort(t), &gossh.ClientConfig{
			User: "nobody",
			HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
				seen = gossh.FingerprintSHA256(key)
				return nil
			},
			Timeout: 10 * time.Second,
		})
		if err == nil || seen == "" {
			t.Fatalf("handshake without credentials: %v, host key %q", err, seen)
		}
		return seen
	}
	in := startRosti(t, bin, data)
	first := hostKey(in)
	in.stop()
	if second := hostKey(startRosti(t, bin, data)); second != first {
		t.Fatalf("host key changed across a restart: %s, then %s", first, second)
	}
}
