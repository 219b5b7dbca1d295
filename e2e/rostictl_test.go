package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The types of Rosti's client, rostictl (src/rostiapi/types.go), field by
// field with the Go types it decodes into: a shape rosti answers that they
// cannot hold makes rostictl fail with "cannot parse response".
type (
	rostictlPlan struct {
		ID       uint   `json:"id"`
		Name     string `json:"name"`
		RAM      uint   `json:"ram"`
		Disk     uint   `json:"disk"`
		Price    uint   `json:"price"`
		CPUQuote uint   `json:"cpu_quota"`
	}
	rostictlRuntime struct {
		ID      uint   `json:"id"`
		Image   string `json:"image"`
		Default bool   `json:"default"`
		Show    bool   `json:"show"`
	}
	rostictlSSHAccess struct {
		Hostname string `json:"hostname"`
		Port     uint   `json:"port"`
		Username string `json:"username"`
	}
	rostictlApp struct {
		ID           uint                `json:"id,omitempty"`
		Date         string              `json:"date,omitempty"`
		Name         string              `json:"name"`
		Enabled      bool                `json:"enabled,omitempty"`
		Image        string              `json:"image,omitempty"`
		Domains      []string            `json:"domains,omitempty"`
		Mode         string              `json:"mode,omitempty"`
		Plan         uint                `json:"plan,omitempty"`
		SSHAccess    []rostictlSSHAccess `json:"ssh_access,omitempty"`
		SSHKeys      []string            `json:"ssh_keys,omitempty"`
		SMTPUsername string              `json:"smtp_username,omitempty"`
		SMTPToken    string              `json:"smtp_token,omitempty"`
		AppPort      int                 `json:"app_port,omitempty"`
	}
	rostictlTech struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	rostictlStatus struct {
		Errors     []string `json:"errors"`
		Info       []string `json:"info"`
		DNSStatus  bool     `json:"dns_status"`
		HTTPStatus bool     `json:"http_status"`
		Running    bool     `json:"running"`
		Storage    struct {
			Usage     float64 `json:"usage"`
			Limit     float64 `json:"limit"`
			OverLimit float64 `json:"over_limit"`
		} `json:"storage"`
		Memory struct {
			Usage float64 `json:"usage"`
			Limit float64 `json:"limit"`
		} `json:"memory"`
		PrimaryTech rostictlTech   `json:"primary_tech"`
		Techs       []rostictlTech `json:"techs"`
	}
)

// decodeAs decodes a reply the way rostictl does, failing the test where
// rostictl would fail.
func decodeAs[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("rostictl cannot parse %s: %v", r.body, err)
	}
	return v
}

// TestDefaultRuntimeInRostictlShapes: on a fresh server, Rosti's default
// plan and the default runtime are there; an app of the default runtime
// has a shell and supervisorctl; its status decodes with rostictl's types
// and says what rostictl means: memory and storage limits of the plan (also
// with no container), http_status only for a 2xx/3xx answer.
func TestDefaultRuntimeInRostictlShapes(t *testing.T) {
	needTools(t, "ssh", "ssh-keygen")
	in := startRosti(t, rostiBin(t), filepath.Join(t.TempDir(), "data"))
	port := in.sshPort(t)
	admin := in.adminUser(t)
	client := newSSHClient(t, port)
	base := pathf("/api/v1/%d/", admin.company)

	plans := decodeAs[[]rostictlPlan](t, in.expect(t, 200, admin.token, "GET", base+"plans/", nil))
	var planID uint
	var names []string
	for _, p := range plans {
		names = append(names, p.Name)
		if p.Name == "start+" { // rostictl's default
			planID = p.ID
		}
	}
	if got := strings.Join(names, " "); got != "static start start+ normal normal+ pro pro+ business business+" {
		t.Fatalf("plans: %s", got)
	}
	var image string
	for _, rt := range decodeAs[[]rostictlRuntime](t, in.expect(t, 200, admin.token, "GET", base+"runtimes/", nil)) {
		if rt.Default {
			image = rt.Image
		}
	}

	// As rostictl creates it: its App struct, marshalled.
	app := decodeAs[rostictlApp](t, in.expect(t, 200, admin.token, "POST", base+"apps/",
		rostictlApp{Name: "hello", Image: image, Mode: "http", Plan: planID, SSHKeys: []string{client.pub}}))
	if len(app.SSHAccess) != 1 || app.SSHAccess[0].Username != "hello" {
		t.Fatalf("created app: %+v", app)
	}
	status := func() rostictlStatus {
		return decodeAs[rostictlStatus](t, in.expect(t, 200, admin.token, "GET", pathf("%sapps-status/%d/", base, app.ID), nil))
	}
	waitFor(t, "app running", 90*time.Second, func() (bool, string) {
		st := status()
		return st.Running, fmt.Sprintf("%+v", st)
	})
	st := status()
	if st.PrimaryTech.Name != "binary" || st.Memory.Limit != 512 || st.Storage.Limit != 10 || st.Storage.OverLimit != 0 || st.Storage.Usage < 0 || st.HTTPStatus {
		t.Fatalf("status of a new app with nothing listening: %+v", st)
	}

	// The container has a shell, the tools, and rosti's commands.
	must(t)(client.ssh(t, "hello", "echo 1"))
	if out := must(t)(client.ssh(t, "hello", "/usr/local/bin/rosti binary")); !strings.Contains(out, "binary") {
		t.Fatalf("rosti binary: %q", out)
	}
	if code, _, errOut := client.ssh(t, "hello", "/usr/local/bin/rosti php"); code != 1 || !strings.Contains(errOut, `"image"`) {
		t.Fatalf("rosti php: %d %q", code, errOut)
	}

	// A supervisor program that serves HTTP, with nothing to serve yet: 404.
	// (init made /srv/conf/supervisor.d, as Rosti's runtime had it.)
	must(t)(client.ssh(t, "hello", `mkdir -p /srv/app && printf '[program:app]\ncommand=httpd -f -p 8080 -h /srv/app\nautorestart=true\nstdout_logfile=/srv/log/app.log\nredirect_stderr=true\n' > /srv/conf/supervisor.d/app.conf`))
	must(t)(client.ssh(t, "hello", "supervisorctl reread"))
	if out := must(t)(client.ssh(t, "hello", "supervisorctl update")); out != "app: added process group\n" {
		t.Fatalf("supervisorctl update: %q", out)
	}
	waitFor(t, "a 404 reported", 30*time.Second, func() (bool, string) {
		st := status()
		return !st.HTTPStatus && strings.Contains(strings.Join(st.Errors, "\n"), "HTTP 404"), fmt.Sprintf("%+v", st)
	})
	must(t)(client.ssh(t, "hello", "echo hello > /srv/app/index.html"))
	waitFor(t, "http_status", 30*time.Second, func() (bool, string) {
		st := status()
		return st.HTTPStatus && !strings.Contains(strings.Join(st.Errors, "\n"), "HTTP"), fmt.Sprintf("%+v", st)
	})

	in.action(t, admin, int64(app.ID), "stop")
	waitFor(t, "stopped", 60*time.Second, func() (bool, string) {
		st := status()
		return !st.Running && st.Memory.Limit == 512, fmt.Sprintf("%+v", st)
	})
	in.expect(t, 200, admin.token, "DELETE", pathf("%sapps/%d/", base, app.ID), nil)
}
