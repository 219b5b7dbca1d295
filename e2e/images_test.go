package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/runtime/rttest"
)

type job struct {
	ID       int64   `json:"id"`
	Kind     string  `json:"kind"`
	Target   string  `json:"target"`
	Status   string  `json:"status"`
	Progress int     `json:"progress"`
	Message  string  `json:"message"`
	Finished *string `json:"finished"`
}

func (in *instance) jobs(t *testing.T, u user) []job {
	t.Helper()
	var jobs []job
	in.expect(t, 200, u.token, "GET", pathf("/api/v1/%d/jobs/", u.company), nil).decode(t, &jobs)
	return jobs
}

// TestImagePullJob: an app whose runtime image is in a registry runs once
// a job has pulled it; a pull that fails says why, in the job and in the
// app's status.
func TestImagePullJob(t *testing.T) {
	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	registry := rttest.Registry(t)
	ref := registry + "/apps/httpserver:1"
	rttest.Push(t, ref, rttest.HTTPServer(t, ref))
	missing := registry + "/apps/missing:1"
	for name, image := range map[string]string{"pulled": ref, "broken": missing} {
		if out, err := in.admin("set-runtime", name, "--image", image, "--command", "/httpserver"); err != nil {
			t.Fatalf("set-runtime %s: %v %s", name, err, out)
		}
	}

	app := in.createApp(t, admin, map[string]any{"name": "fetched", "image": "pulled", "plan": 1})
	in.waitServed(t, "fetched.apps.test", "hello from fetched-web-1")
	jobs := in.jobs(t, admin)
	if len(jobs) != 1 {
		t.Fatalf("jobs %+v, want the one pull", jobs)
	}
	if j := jobs[0]; j.Kind != "pull" || j.Target != ref || j.Status != "done" || j.Progress != 100 || j.Finished == nil {
		t.Fatalf("pull job %+v, want pull of %s done at 100%%", j, ref)
	}

	broken := in.createApp(t, admin, map[string]any{"name": "broken", "image": "broken", "plan": 1})
	var failed job
	waitFor(t, "the failed pull's job", 60*time.Second, func() (bool, string) {
		for _, j := range in.jobs(t, admin) {
			if j.Target == missing {
				failed = j
			}
		}
		return failed.Status == "failed", fmt.Sprintf("%+v", failed)
	})
	if !strings.Contains(failed.Message, "not found") {
		t.Errorf("failed job's message %q does not say the image was not found", failed.Message)
	}
	waitFor(t, "the status to tell", 30*time.Second, func() (bool, string) {
		st := in.status(t, admin, broken)
		return !st.Running && strings.Contains(strings.Join(st.Errors, " "), "pulling image "+missing+" failed"), fmt.Sprintf("%+v", st)
	})
	r := in.expect(t, 400, admin.token, "PUT", pathf("/api/v1/%d/apps-action/%d/", admin.company, broken), map[string]string{"action": "restart"})
	if !strings.Contains(string(r.body), "not found") {
		t.Errorf("restart of the app without its image: %s", r.body)
	}
	// The operator pulls ahead of time.
	second := registry + "/apps/httpserver:2"
	rttest.Push(t, second, rttest.HTTPServer(t, second))
	if out, err := exec.Command(in.bin, "image", "pull", "--data", in.dataDir, second).CombinedOutput(); err != nil {
		t.Fatalf("image pull: %v %s", err, out)
	}
	if out, err := exec.Command(in.bin, "image", "ls", "--data", in.dataDir).CombinedOutput(); err != nil || !strings.Contains(string(out), second) {
		t.Fatalf("image ls after the pull: %v %s", err, out)
	}
	out, err := exec.Command(in.bin, "image", "pull", "--data", in.dataDir, registry+"/apps/nothing:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not found") {
		t.Fatalf("image pull of a missing image: %v %s", err, out)
	}
	for _, id := range []int64{app, broken} {
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, id), nil)
	}
}
