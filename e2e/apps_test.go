package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// user is a logged-in account on an instance.
type user struct {
	token   string
	company int64
}

// adminUser logs in as the account the first start created.
func (in *instance) adminUser(t *testing.T) user {
	t.Helper()
	m := adminPassword.FindStringSubmatch(in.output())
	if m == nil {
		t.Fatalf("no admin password printed:\n%s", in.output())
	}
	return in.login(t, "admin", m[1])
}

func (in *instance) login(t *testing.T, name, password string) user {
	t.Helper()
	var tok struct{ Token string }
	in.expect(t, 200, "", "POST", "/v1/auth/login/", map[string]string{"username": name, "password": password}).decode(t, &tok)
	var cs []struct{ ID int64 }
	in.expect(t, 200, tok.Token, "GET", "/api/v1/companies/", nil).decode(t, &cs)
	return user{tok.Token, cs[0].ID}
}

// register makes a new account with its own company.
func (in *instance) register(t *testing.T, name string) user {
	t.Helper()
	in.expect(t, 201, "", "POST", "/v1/auth/register/", map[string]string{"username": name, "password": "pw-of-" + name})
	return in.login(t, name, "pw-of-"+name)
}

type appStatus struct {
	Running    bool     `json:"running"`
	HTTPStatus bool     `json:"http_status"`
	Errors     []string `json:"errors"`
	Info       []string `json:"info"`
	Memory     struct {
		Limit float64 `json:"limit"`
	} `json:"memory"`
	Containers []struct {
		Name        string  `json:"name"`
		State       string  `json:"state"`
		IP          string  `json:"ip"`
		Restarts    int     `json:"restarts"`
		Reason      string  `json:"reason"`
		NextRestart *string `json:"next_restart"`
	} `json:"containers"`
}

func (in *instance) status(t *testing.T, u user, app int64) appStatus {
	t.Helper()
	var st appStatus
	in.expect(t, 200, u.token, "GET", pathf("/api/v1/%d/apps-status/%d/", u.company, app), nil).decode(t, &st)
	return st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last seen: %s", what, timeout, last)
}

// servingAt waits until the app's single web container answers with body,
// and returns its address.
func (in *instance) servingAt(t *testing.T, u user, app int64, port int, want string) string {
	t.Helper()
	var addr string
	waitFor(t, "app answers "+want, 60*time.Second, func() (bool, string) {
		st := in.status(t, u, app)
		if len(st.Containers) != 1 || st.Containers[0].State != "running" {
			return false, fmt.Sprintf("%+v", st)
		}
		addr = fmt.Sprintf("%s:%d", st.Containers[0].IP, port)
		body, err := get("http://" + addr + "/")
		return err == nil && body == want, fmt.Sprintf("%q %v", body, err)
	})
	return addr
}

func get(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// ctr lists what containerd holds for rosti, through the managed daemon.
func (in *instance) ctr(t *testing.T, args ...string) []string {
	t.Helper()
	full := append([]string{"--address", filepath.Join(in.dataDir, "containerd", "containerd.sock"), "--namespace", "rosti"}, args...)
	out, err := exec.Command("ctr", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %v: %v\n%s", args, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[1:] // without the header
}

func (in *instance) createApp(t *testing.T, u user, body map[string]any) int64 {
	t.Helper()
	var app struct{ ID int64 }
	in.expect(t, 200, u.token, "POST", pathf("/api/v1/%d/apps/", u.company), body).decode(t, &app)
	return app.ID
}

func (in *instance) action(t *testing.T, u user, app int64, action string) {
	t.Helper()
	in.expect(t, 200, u.token, "PUT", pathf("/api/v1/%d/apps-action/%d/", u.company, app), map[string]string{"action": action})
}

// TestAppLifecycleInContainers runs an app of the built-in static runtime
// through every action and checks what it serves, what is kept and what
// is left behind.
func TestAppLifecycleInContainers(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)

	app := in.createApp(t, admin, map[string]any{"name": "site", "image": "static", "plan": 1})
	volume := filepath.Join(data, "volumes", fmt.Sprint(app))
	waitFor(t, "volume created", 30*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(volume, "app"))
		return err == nil, fmt.Sprint(err)
	})
	fi, err := os.Stat(volume)
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
		t.Fatal("the volume is owned by root")
	}
	if err := os.WriteFile(filepath.Join(volume, "app", "index.html"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := in.servingAt(t, admin, app, 8080, "v1")

	in.action(t, admin, app, "stop")
	if st := in.status(t, admin, app); st.Running || len(st.Containers) != 0 {
		t.Fatalf("stopped app still has containers: %+v", st)
	}
	if _, err := get("http://" + first + "/"); err == nil {
		t.Fatal("a stopped app still answers")
	}
	if b, err := os.ReadFile(filepath.Join(volume, "app", "index.html")); err != nil || string(b) != "v1" {
		t.Fatalf("stop lost the data: %q %v", b, err)
	}

	in.action(t, admin, app, "start")
	in.servingAt(t, admin, app, 8080, "v1")
	for _, action := range []string{"restart", "rebuild"} {
		in.action(t, admin, app, action)
		in.servingAt(t, admin, app, 8080, "v1")
	}
	var logs string
	waitFor(t, "logs show the server", 10*time.Second, func() (bool, string) {
		r := in.expect(t, 200, admin.token, "GET", pathf("/api/v1/%d/apps-logs/%d/?lines=50", admin.company, app), nil)
		logs = string(r.body)
		return strings.Contains(logs, "site-web-") && strings.Contains(logs, "8080"), logs
	})

	// Followed logs stream new lines as the app writes them.
	followCtx, stopFollowing := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopFollowing()
	req, _ := http.NewRequestWithContext(followCtx, "GET", in.apiURL+pathf("/api/v1/%d/apps-logs/%d/?lines=1&follow=1", admin.company, app), nil)
	req.Header.Set("Authorization", "Token "+admin.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("follow logs: %v %v", resp, err)
	}
	before := in.status(t, admin, app).Containers[0].Name
	in.action(t, admin, app, "restart")
	after := in.status(t, admin, app).Containers[0].Name
	if after == before {
		t.Fatalf("restart kept container %s", before)
	}
	followed := bufio.NewScanner(resp.Body)
	found := false
	for !found && followed.Scan() {
		found = strings.HasPrefix(followed.Text(), after+" | serving")
	}
	if !found {
		t.Fatalf("the followed logs never showed the new container %s start: %v", after, followed.Err())
	}
	resp.Body.Close()

	// A changed port applies itself.
	in.expect(t, 200, admin.token, "PATCH", pathf("/api/v1/%d/apps/%d/", admin.company, app), map[string]any{"app_port": 9090})
	in.servingAt(t, admin, app, 9090, "v1")

	in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
	if c := in.ctr(t, "containers", "ls"); len(c) != 0 {
		t.Fatalf("containers left after delete: %v", c)
	}
	for _, s := range in.ctr(t, "snapshots", "ls") {
		if strings.Contains(s, "Active") { // committed ones are the image's layers
			t.Fatalf("container snapshot left after delete: %v", s)
		}
	}
	for _, dir := range []string{volume, filepath.Join(data, "logs", "site-web-1"), filepath.Join(data, "logs", "site-web-2")} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s left after delete: %v", dir, err)
		}
	}
	ipam, _ := filepath.Glob(filepath.Join(data, "network", "ipam", "*", "10.*"))
	if len(ipam) != 0 {
		t.Fatalf("addresses still allocated after delete: %v", ipam)
	}
}

// TestAppsSurviveRostiKill kills rosti with SIGKILL while an app runs, and
// starts it again: the app answered the whole time and is adopted with no
// second container.
func TestAppsSurviveRostiKill(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	app := in.createApp(t, admin, map[string]any{"name": "steady", "image": "static", "plan": 1})
	waitFor(t, "volume created", 30*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(data, "volumes", fmt.Sprint(app), "app"))
		return err == nil, fmt.Sprint(err)
	})
	if err := os.WriteFile(filepath.Join(data, "volumes", fmt.Sprint(app), "app", "index.html"), []byte("up"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := in.servingAt(t, admin, app, 8080, "up")

	// Probe the app all along, from before the kill to after the adoption.
	ctx, stopProbe := context.WithCancel(context.Background())
	failures := make(chan string, 1000)
	probed := make(chan int)
	go func() {
		n := 0
		defer func() { probed <- n }()
		for ctx.Err() == nil {
			if body, err := get("http://" + addr + "/"); err != nil || body != "up" {
				failures <- fmt.Sprintf("%q %v", body, err)
			}
			n++
		}
	}()

	if err := in.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = in.cmd.Wait()
	again := startRosti(t, bin, data)
	waitFor(t, "adopted", 60*time.Second, func() (bool, string) {
		st := again.status(t, admin, app)
		return len(st.Containers) == 1 && st.Containers[0].State == "running" && st.HTTPStatus, fmt.Sprintf("%+v", st)
	})
	stopProbe()
	if n := <-probed; n < 10 {
		t.Fatalf("only %d probes ran", n)
	}
	close(failures)
	for f := range failures {
		t.Errorf("the app did not answer while rosti was down or starting: %s", f)
	}
	if c := again.ctr(t, "containers", "ls"); len(c) != 1 {
		t.Fatalf("containers after adoption: %v", c)
	}
	again.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, app), nil)
}
