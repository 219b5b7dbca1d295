// Package e2e runs the built rosti binary the way an operator does and
// talks to it the way users and their clients do.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/internal/hostprocs"
	rtm "github.com/rosti-paas/rosti/runtime"
)

// needTools skips the test unless every one of tools is on the PATH
// (scripts/deps.sh test installs them).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// rostiBin is the binary under test: $ROSTI_BIN (make test builds it), or
// one built here.
func rostiBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end: make test runs it, make check (-short) does not")
	}
	if bin := os.Getenv("ROSTI_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "rosti")
	build := exec.Command("go", "build", "-o", bin, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build rosti: %v\n%s", err, out)
	}
	return bin
}

// instance is one running `rosti serve`.
type instance struct {
	t         *testing.T
	bin       string
	dataDir   string
	cmd       *exec.Cmd
	apiURL    string
	httpURL   string // the proxy
	httpsAddr string
	mu        sync.Mutex
	stdout    bytes.Buffer
	log       bytes.Buffer
}

var (
	startedAddr  = regexp.MustCompile(`msg=started component=api addr=(\S+)`)
	startedProxy = regexp.MustCompile(`msg=started component=proxy http=(\S+) https=(\S*)`)
)

// startRosti runs `rosti serve` on dataDir with every listener on a free
// loopback port, and waits until its API is bound.
func startRosti(t *testing.T, bin, dataDir string, extra ...string) *instance {
	t.Helper()
	return startRostiUnder(t, nil, bin, dataDir, extra...)
}

// startRostiUnder is startRosti with the binary run by a wrapper command
// such as prlimit.
func startRostiUnder(t *testing.T, wrapper []string, bin, dataDir string, extra ...string) *instance {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end: make test runs it, make check (-short) does not")
	}
	bridge, subnet := networkFor(t, dataDir)
	args := append([]string{"serve", "--data", dataDir, "--api", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--https", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--apps-domain", "apps.test", "--ssh-host", "host.test",
		"--bridge", bridge, "--subnet", subnet,
		// The tests make hundreds of apps, each with a disk of its plan's
		// size (1-5 GB): allocated in full, they would need tens of GB of
		// the test machine's disk at once. TestDiskQuota runs the default.
		"--sparse-disks"}, extra...)
	argv := append(append(wrapper[:len(wrapper):len(wrapper)], bin), args...)
	in := &instance{t: t, bin: bin, dataDir: dataDir, cmd: exec.Command(argv[0], argv[1:]...)}
	in.cmd.Stdout = &lockedWriter{mu: &in.mu, w: &in.stdout}
	stderr, err := in.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Last of all: a containerd stopped in the middle of a temporary mount
	// (an image unpack) leaves it mounted; the next containerd on this data
	// dir would clean it up, but the test's temporary dir goes now.
	t.Cleanup(func() {
		left, _ := filepath.Glob(filepath.Join(dataDir, "containerd", "root", "tmpmounts", "*"))
		for _, m := range left {
			_ = exec.Command("umount", "-R", m).Run()
		}
	})
	// Apps' disks stay mounted when rosti stops, as their containers run
	// on; the test's temporary dir goes, so they go too (and their loop
	// devices with them).
	t.Cleanup(func() {
		volumes, _ := filepath.Glob(filepath.Join(dataDir, "volumes", "*"))
		for _, v := range volumes {
			_ = exec.Command("umount", "-l", v).Run()
		}
	})
	t.Cleanup(func() { removeNetwork(t, bin, dataDir, bridge, subnet) })
	t.Cleanup(func() { killLostShims(t, dataDir) })
	t.Cleanup(func() { removeLeftContainers(t, bin, dataDir, bridge, subnet) })
	t.Cleanup(in.stop)
	addr := make(chan string, 1)
	proxyAddr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			in.mu.Lock()
			in.log.WriteString(line + "\n")
			in.mu.Unlock()
			if m := startedAddr.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			if m := startedProxy.FindStringSubmatch(line); m != nil {
				proxyAddr <- m[1] + " " + m[2]
			}
		}
		close(addr)
		close(proxyAddr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("rosti serve exited before it started:\n%s", in.logs())
		}
		in.apiURL = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("rosti serve did not start within a minute:\n%s", in.logs())
	}
	select {
	case a, ok := <-proxyAddr:
		if !ok {
			t.Fatalf("rosti serve exited before its proxy started:\n%s", in.logs())
		}
		addrs := strings.Fields(a)
		in.httpURL = "http://" + addrs[0]
		if len(addrs) > 1 {
			in.httpsAddr = addrs[1]
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the proxy did not start within a minute:\n%s", in.logs())
	}
	return in
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (in *instance) logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.log.String()
}

func (in *instance) output() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stdout.String()
}

// stop ends rosti with SIGTERM, as systemd does, and waits for it.
func (in *instance) stop() {
	if in.cmd.ProcessState != nil {
		return
	}
	_ = in.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- in.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			in.t.Errorf("rosti serve exited with %v:\n%s", err, in.logs())
		}
	case <-time.After(60 * time.Second):
		_ = in.cmd.Process.Kill()
		<-done
		in.t.Errorf("rosti serve ignored SIGTERM for a minute:\n%s", in.logs())
	}
}

// admin runs `rosti admin ARGS` against this instance.
func (in *instance) admin(args ...string) (string, error) {
	cmd := exec.Command(in.bin, append([]string{"admin", "--data", in.dataDir}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, r.body)
	}
}

// call sends a request with an optional token and JSON body.
func (in *instance) call(t *testing.T, token, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, in.apiURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func (in *instance) expect(t *testing.T, want int, token, method, path string, body any) reply {
	t.Helper()
	r := in.call(t, token, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

func pathf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// networkFor gives a data dir a bridge prefix and a /16 of its own, the same
// on every start, and unused by anything else on the machine, so that test
// instances never share addresses with each other or with other tests.
func networkFor(t *testing.T, dataDir string) (string, string) {
	t.Helper()
	sum := sha256.Sum256([]byte(dataDir))
	bridge := "e2e" + hex.EncodeToString(sum[:3])
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var taken []*net.IPNet
	for _, ifc := range ifaces {
		if strings.HasPrefix(ifc.Name, bridge) {
			continue // this instance's own bridges, from an earlier start
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				taken = append(taken, ipn)
			}
		}
	}
	for i := 0; i < 100; i++ {
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/16", 100+(int(sum[3])+i)%100))
		used := false
		for _, ipn := range taken {
			used = used || subnet.Contains(ipn.IP)
		}
		if !used {
			return bridge, subnet.String()
		}
	}
	t.Fatal("no free /16 in 10.100-199")
	return "", ""
}

// removeLeftContainers removes the containers whose tasks still run on
// a data dir after its server stopped, as apps do when rosti stops: those
// of a server that was killed, or of apps a test did not delete. Left,
// they would run on after the test, and the removal of its temporary dir
// would race their shims. A killed server's containerd, which outlives it,
// is stopped too.
func removeLeftContainers(t *testing.T, bin, dataDir, bridge, subnet string) {
	tasks, _ := os.ReadDir(filepath.Join(dataDir, "containerd", "state", "io.containerd.runtime.v2.task", "rosti"))
	pid, _ := os.ReadFile(filepath.Join(dataDir, "containerd", "containerd.pid"))
	cmdline, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/cmdline")
	if len(tasks) == 0 && (len(pid) == 0 || !bytes.Contains(cmdline, []byte(dataDir))) {
		return
	}
	d, err := rtm.New(rtm.Config{DataDir: dataDir, InitBinary: bin, Bridge: bridge, Subnet: subnet, Managed: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Errorf("remove the containers left running: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() {
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("remove the containers left running: %v", err)
		}
		<-served
	}()
	select {
	case <-d.Ready():
	case err := <-served:
		t.Errorf("remove the containers left running: containerd: %v", err)
		served <- err
		return
	case <-ctx.Done():
		t.Errorf("remove the containers left running: containerd not ready: %v", ctx.Err())
		return
	}
	list, err := d.List(ctx, nil)
	if err != nil {
		t.Errorf("remove the containers left running: %v", err)
		return
	}
	for _, c := range list {
		if err := d.Remove(ctx, c.Name); err != nil {
			t.Errorf("remove the containers left running: %v", err)
		}
	}
}

// killLostShims kills the shims of the data dir's containerd that are
// still running once it is stopped, with their containers: a rosti killed
// while containerd made a task can leave its shim running with no
// containerd knowing of it (see the runtime's dropStaleBundle).
func killLostShims(t *testing.T, dataDir string) {
	address := " -address " + filepath.Join(dataDir, "containerd", "containerd.sock") + " "
	procs := hostprocs.List()
	for pid, p := range procs {
		if !strings.Contains(p.Cmdline, "containerd-shim") || !strings.Contains(p.Cmdline+" ", address) {
			continue
		}
		t.Logf("killing shim %d, left running by its data dir's containerd, and its containers", pid)
		for _, child := range hostprocs.Children(procs, pid) {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// removeNetwork deletes the bridges and firewall rules rosti made for a
// data dir; a server leaves them on exit because its apps keep running.
func removeNetwork(t *testing.T, bin, dataDir, bridge, subnet string) {
	d, err := rtm.New(rtm.Config{DataDir: dataDir, InitBinary: bin, Bridge: bridge, Subnet: subnet})
	if err == nil {
		err = d.RemoveNetwork()
	}
	if err != nil {
		t.Errorf("remove the test network: %v", err)
	}
}
