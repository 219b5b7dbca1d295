// Package benchrosti runs a real `rosti serve` for the benchmarks under
// bench/: its own data dir, bridge and subnet (apart from a rosti serve
// on the host), logged in as the admin it creates. It needs root, like
// rosti serve itself.
package benchrosti

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rosti-paas/rosti/dbserver"
	rtm "github.com/rosti-paas/rosti/runtime"
)

// The benchmarks' own network.
const (
	bridge = "rbench"
	subnet = "10.199.0.0/16"
)

var (
	apiStarted   = regexp.MustCompile(`msg=started component=api addr=(\S+)`)
	proxyStarted = regexp.MustCompile(`msg=started component=proxy http=(\S+)`)
	password     = regexp.MustCompile(`password: (\S+)`)
)

// Server is a running rosti serve.
type Server struct {
	API, Proxy string // http://ip:port
	Company    int64  // the admin's company
	Data       string

	bin            string
	bridge, subnet string
	cmd            *exec.Cmd
	token          string
	stdout         bytes.Buffer
}

// Start runs bin serve on loopback ports with a fresh data dir under /tmp.
func Start(bin string) (*Server, error) { return StartOn(bin, bridge, subnet) }

// StartOn is Start on a bridge and subnet of the caller's, so that two
// benchmarks can run side by side.
func StartOn(bin, bridge, subnet string) (*Server, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp("/tmp", "rbench")
	if err != nil {
		return nil, err
	}
	s := &Server{Data: data, bin: bin, bridge: bridge, subnet: subnet, cmd: exec.Command(bin, "serve", "--data", data, "--api", "127.0.0.1:0", "--http", "127.0.0.1:0",
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
	for sc.Scan() && (s.API == "" || s.Proxy == "") {
		if m := apiStarted.FindStringSubmatch(sc.Text()); m != nil {
			s.API = "http://" + m[1]
		}
		if m := proxyStarted.FindStringSubmatch(sc.Text()); m != nil {
			s.Proxy = "http://" + m[1]
		}
	}
	// The access log goes on: it is part of what rosti costs.
	go func() { _, _ = io.Copy(io.Discard, errs) }()
	if s.API == "" || s.Proxy == "" {
		s.Stop()
		return nil, fmt.Errorf("rosti did not start")
	}
	m := password.FindStringSubmatch(s.stdout.String())
	if m == nil {
		s.Stop()
		return nil, fmt.Errorf("no admin password printed")
	}
	var tok struct{ Token string }
	if err := s.Call("POST", "/v1/auth/login/", map[string]string{"username": "admin", "password": m[1]}, &tok); err != nil {
		s.Stop()
		return nil, err
	}
	s.token = tok.Token
	var cs []struct{ ID int64 }
	if err := s.Call("GET", "/api/v1/companies/", nil, &cs); err != nil || len(cs) == 0 {
		s.Stop()
		return nil, fmt.Errorf("the admin's company: %v", err)
	}
	s.Company = cs[0].ID
	return s, nil
}

// Pid is rosti serve's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop interrupts rosti and removes its network and data.
func (s *Server) Stop() {
	// Apps run on when rosti stops, by design; a benchmark's must not.
	var apps []struct{ ID int64 }
	if err := s.Call("GET", s.CompanyPath("apps/"), nil, &apps); err == nil {
		for _, a := range apps {
			_ = s.Call("DELETE", s.CompanyPath("apps/%d/", a.ID), nil, nil)
		}
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
	// The database servers outlive rosti, for its apps; not a benchmark's.
	if m, err := dbserver.New(dbserver.Config{DataDir: s.Data, AppsSubnet: s.subnet}); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = m.StopServers(ctx)
		cancel()
	}
	if d, err := rtm.New(rtm.Config{DataDir: s.Data, InitBinary: s.bin, Bridge: s.bridge, Subnet: s.subnet}); err == nil {
		_ = d.RemoveNetwork()
	}
	_ = os.RemoveAll(s.Data)
}

// Call sends a JSON request to the API as the admin and decodes the answer
// into out when it is not nil.
func (s *Server) Call(method, path string, body, out any) error {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(method, s.API+path, bytes.NewReader(raw))
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

// CompanyPath is path under /api/v1/{company}/.
func (s *Server) CompanyPath(format string, args ...any) string {
	return fmt.Sprintf("/api/v1/%d/", s.Company) + fmt.Sprintf(format, args...)
}

// WaitAnswer polls the proxy for app's default domain until it answers 200
// with a body that ok accepts (nil: any), for up to a minute.
func (s *Server) WaitAnswer(app string, ok func(body []byte) bool) error {
	client := http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		req, _ := http.NewRequest("GET", s.Proxy+"/", nil)
		req.Host = app + ".localhost"
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && (ok == nil || ok(body)) {
			return nil
		}
	}
	return fmt.Errorf("%s never answered as expected", app)
}

// RSSMB is the resident memory of process pid in MB.
func RSSMB(pid int) (float64, error) {
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

// ContainerdPid is the pid of the containerd rosti started for this data
// dir, if any.
func (s *Server) ContainerdPid() (int, bool) {
	out, err := exec.Command("pgrep", "-f", "containerd --config "+s.Data).Output()
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, false
	}
	p, err := strconv.Atoi(f[0])
	return p, err == nil
}
