// Command runtime-bench measures what DESIGN.md budgets for apps: the time
// from the create call to the app's first successful answer through the
// proxy (p50 and p95 over 20 apps, image already local), and the resident
// memory of `rosti serve` idle and with 100 running apps.
//
// It runs the real binary with its own data dir and managed containerd:
// run it as root through bench/runtime/run.sh.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
)

func main() {
	bin := flag.String("rosti", "bin/rosti", "rosti binary")
	timed := flag.Int("apps", 20, "apps whose create-to-first-answer is timed")
	total := flag.Int("total", 100, "running apps for the memory figure")
	flag.Parse()
	if err := run(*bin, *timed, *total); err != nil {
		fmt.Fprintln(os.Stderr, "runtime-bench:", err)
		os.Exit(1)
	}
}

type server struct {
	cmd        *exec.Cmd
	api, proxy string
	token      string
	company    int64
	stdout     bytes.Buffer
}

// The bench's own network, apart from a rosti serve running on the host.
const (
	bridge = "rbench"
	subnet = "10.199.0.0/16"
)

var (
	apiStarted   = regexp.MustCompile(`msg=started component=api addr=(\S+)`)
	proxyStarted = regexp.MustCompile(`msg=started component=proxy http=(\S+)`)
	password     = regexp.MustCompile(`password: (\S+)`)
)

func start(bin, data string) (*server, error) {
	s := &server{cmd: exec.Command(bin, "serve", "--data", data, "--api", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--https", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--bridge", bridge, "--subnet", subnet)}
	s.cmd.Stdout = &s.stdout
	errs, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(errs)
	for sc.Scan() && (s.api == "" || s.proxy == "") {
		if m := apiStarted.FindStringSubmatch(sc.Text()); m != nil {
			s.api = "http://" + m[1]
		}
		if m := proxyStarted.FindStringSubmatch(sc.Text()); m != nil {
			s.proxy = "http://" + m[1]
		}
	}
	go io.Copy(io.Discard, errs)
	if s.api == "" || s.proxy == "" {
		return nil, fmt.Errorf("rosti did not start")
	}
	m := password.FindStringSubmatch(s.stdout.String())
	if m == nil {
		return nil, fmt.Errorf("no admin password printed")
	}
	var tok struct{ Token string }
	if err := s.call("POST", "/v1/auth/login/", map[string]string{"username": "admin", "password": m[1]}, &tok); err != nil {
		return nil, err
	}
	s.token = tok.Token
	var cs []struct{ ID int64 }
	if err := s.call("GET", "/api/v1/companies/", nil, &cs); err != nil {
		return nil, err
	}
	s.company = cs[0].ID
	return s, nil
}

func (s *server) call(method, path string, body, out any) error {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(method, s.api+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Token "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// createAndWait creates an app and returns how long it took until the
// proxy first answered 200 for it.
func (s *server) createAndWait(name string) (time.Duration, int64, error) {
	client := http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	var app struct{ ID int64 }
	if err := s.call("POST", fmt.Sprintf("/api/v1/%d/apps/", s.company), map[string]any{"name": name, "image": "static", "plan": 1}, &app); err != nil {
		return 0, 0, err
	}
	deadline := start.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", s.proxy+"/", nil)
		req.Host = name + ".localhost"
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(start), app.ID, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, 0, fmt.Errorf("%s never answered", name)
}

func rssMB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

func percentile(ds []time.Duration, p float64) time.Duration {
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[int(float64(len(sorted)-1)*p+0.5)]
}

func run(bin string, timed, total int) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	data, err := os.MkdirTemp("/tmp", "rbench")
	if err != nil {
		return err
	}
	s, err := start(bin, data)
	if err != nil {
		return err
	}
	defer func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		_ = s.cmd.Wait()
		if d, err := rtm.New(rtm.Config{DataDir: data, InitBinary: bin, Bridge: bridge, Subnet: subnet}); err == nil {
			_ = d.RemoveNetwork()
		}
		_ = os.RemoveAll(data)
	}()
	time.Sleep(2 * time.Second) // settle before the idle figure (a benchmark, not a test)
	idle, err := rssMB(s.cmd.Process.Pid)
	if err != nil {
		return err
	}

	// The first app builds the static image; it is not timed.
	if _, _, err := s.createAndWait("warmup"); err != nil {
		return err
	}
	var ds []time.Duration
	for i := range timed {
		d, _, err := s.createAndWait(fmt.Sprintf("timed%02d", i))
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	for i := timed + 1; i < total; i++ {
		if _, _, err := s.createAndWait(fmt.Sprintf("more%03d", i)); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second)
	loaded, err := rssMB(s.cmd.Process.Pid)
	if err != nil {
		return err
	}

	fmt.Printf("create -> first 200 through the proxy, %d apps: p50 %v  p95 %v  max %v  (budget p95 <= 1s)\n",
		len(ds), percentile(ds, 0.5).Round(time.Millisecond), percentile(ds, 0.95).Round(time.Millisecond), percentile(ds, 1).Round(time.Millisecond))
	fmt.Printf("rosti serve RSS: idle %.1f MB (budget 40), with %d running apps %.1f MB (budget 80)\n", idle, total, loaded)
	if pid, err := exec.Command("pgrep", "-f", "containerd --config "+data).Output(); err == nil {
		if p, err := strconv.Atoi(strings.Fields(string(pid))[0]); err == nil {
			if mb, err := rssMB(p); err == nil {
				fmt.Printf("(the managed containerd beside it: %.1f MB)\n", mb)
			}
		}
	}

	var apps []struct{ ID int64 }
	if err := s.call("GET", fmt.Sprintf("/api/v1/%d/apps/", s.company), nil, &apps); err != nil {
		return err
	}
	for _, a := range apps {
		if err := s.call("DELETE", fmt.Sprintf("/api/v1/%d/apps/%d/", s.company, a.ID), nil, nil); err != nil {
			return err
		}
	}
	return nil
}
