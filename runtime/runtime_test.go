package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/runtime/rttest"
)

const appPort = "8080"

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return string(b), err
}

// get waits until the app at ip answers path with 200 and returns the body.
func get(t *testing.T, ip, path string) string {
	t.Helper()
	var body string
	eventually(t, 30*time.Second, "GET "+path, func() (err error) {
		body, err = httpGet("http://" + net.JoinHostPort(ip, appPort) + path)
		return err
	})
	return body
}

func httpSpec(t *testing.T, name, image, group string, uid uint32) rtm.ContainerSpec {
	return rtm.ContainerSpec{
		Name:        name,
		Labels:      map[string]string{"app": name, "type": "web"},
		Image:       image,
		ProcessType: "web",
		Env:         []string{"PORT=" + appPort},
		UID:         uid,
		GID:         uid,
		VolumeDir:   rttest.Volume(t, int(uid), int(uid)),
		MemoryMB:    64,
		CPUMillis:   500,
		Pids:        64,
		Group:       group,
	}
}

func TestRunServesAsNonRootAndKeepsVolume(t *testing.T) {
	d := rttest.StartDriver(t)
	ctx := context.Background()
	image := rttest.HTTPServerImage(t, d)
	spec := httpSpec(t, "web-web-1", image, "g1", 10001)

	inst, err := d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != rtm.StatusRunning || inst.IP == "" {
		t.Fatalf("after Run: %+v", inst)
	}
	if got := get(t, inst.IP, "/"); got != "hello from web-web-1" {
		t.Errorf("GET / = %q", got)
	}
	if got := get(t, inst.IP, "/whoami"); got != "uid=10001 gid=10001" {
		t.Errorf("whoami = %q", got)
	}
	if got := get(t, inst.IP, "/write?path=/srv/data.txt&data=kept"); got != "ok" {
		t.Errorf("write = %q", got)
	}
	if got := get(t, inst.IP, "/env?name=PORT"); got != appPort {
		t.Errorf("PORT = %q", got)
	}

	if err := d.Remove(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctx, spec.Name); !errors.Is(err, rtm.ErrNotFound) {
		t.Fatalf("Inspect after Remove: %v, want ErrNotFound", err)
	}
	inst, err = d.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, inst.IP, "/read?path=/srv/data.txt"); got != "kept" {
		t.Errorf("data after Remove and Run = %q", got)
	}
}
