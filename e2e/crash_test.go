package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// leftovers lists what rosti holds for containers and apps on the host,
// to compare with what should exist: address allocations and NAT rules (by
// container name), network namespaces, containers, volumes (by app id).
type leftovers struct {
	addresses, nat, netns, containers, volumes []string
}

var natOwner = regexp.MustCompile(`name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\"`)

func (in *instance) leftovers(t *testing.T) leftovers {
	t.Helper()
	var l leftovers
	bridge, _ := networkFor(t, in.dataDir)
	nets, _ := os.ReadDir(filepath.Join(in.dataDir, "network", "ipam"))
	for _, n := range nets {
		files, _ := os.ReadDir(filepath.Join(in.dataDir, "network", "ipam", n.Name()))
		for _, f := range files {
			if raw, err := os.ReadFile(filepath.Join(in.dataDir, "network", "ipam", n.Name(), f.Name())); err == nil && strings.Count(f.Name(), ".") == 3 {
				id, _, _ := strings.Cut(string(raw), "\n")
				l.addresses = append(l.addresses, strings.TrimSpace(id))
			}
		}
	}
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range natOwner.FindAllStringSubmatch(string(out), -1) {
		if strings.HasPrefix(m[1], bridge+"-") {
			l.nat = append(l.nat, m[2])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(in.dataDir, "netns"))
	for _, e := range entries {
		l.netns = append(l.netns, e.Name())
	}
	for _, line := range in.ctr(t, "containers", "ls") {
		if fields := strings.Fields(line); len(fields) > 0 {
			l.containers = append(l.containers, fields[0])
		}
	}
	entries, _ = os.ReadDir(filepath.Join(in.dataDir, "volumes"))
	for _, e := range entries {
		l.volumes = append(l.volumes, e.Name())
	}
	for _, s := range [][]string{l.addresses, l.nat, l.netns, l.containers, l.volumes} {
		slices.Sort(s)
	}
	return l
}

// TestKillMidChurn kills rosti with
// SIGKILL at a random moment of a burst of app creations and deletions
// (names deleted in one round are created again in the next), starts it
// again, and checks that every app the API still lists runs, and that
// addresses, NAT rules, network namespaces, containers and volumes are
// exactly those of the apps that exist. The seed is logged; ROSTI_SEED
// replays a run.
func TestKillMidChurn(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skipf("needs iptables: %v", err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ROSTI_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	bin := rostiBin(t)
	data := filepath.Join(t.TempDir(), "data")
	in := startRosti(t, bin, data)
	admin := in.adminUser(t)
	// Whatever happens, the instance left running deletes every app before
	// it stops, so that no container outlives the test.
	cleanUp := func(in *instance) {
		t.Cleanup(func() {
			if in.cmd.ProcessState != nil {
				return
			}
			var apps []struct{ ID int64 }
			in.call(t, admin.token, "GET", pathf("/api/v1/%d/apps/", admin.company), nil).decode(t, &apps)
			for _, a := range apps {
				in.call(t, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, a.ID), nil)
			}
			waitFor(t, "containers removed", time.Minute, func() (bool, string) {
				c := in.ctr(t, "containers", "ls")
				return len(c) == 0, fmt.Sprint(c)
			})
		})
	}
	cleanUp(in)
	names := []string{"ka", "kb", "kc", "kd", "ke", "kf", "kg", "kh"}

	type app struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	list := func(in *instance) []app {
		var apps []app
		in.expect(t, 200, admin.token, "GET", pathf("/api/v1/%d/apps/", admin.company), nil).decode(t, &apps)
		return apps
	}
	// settled waits until every listed app runs its one web container and
	// nothing else is held.
	settled := func(in *instance, when string) []app {
		t.Helper()
		var apps []app
		waitFor(t, "every app running and nothing left behind "+when, 3*time.Minute, func() (bool, string) {
			apps = list(in)
			var containers, volumes []string
			for _, a := range apps {
				st := in.status(t, admin, a.ID)
				if len(st.Containers) != 1 || st.Containers[0].State != "running" {
					return false, fmt.Sprintf("app %s: %+v", a.Name, st)
				}
				containers = append(containers, a.Name+"-web-1")
				volumes = append(volumes, strconv.FormatInt(a.ID, 10))
			}
			slices.Sort(containers)
			slices.Sort(volumes)
			want := leftovers{addresses: containers, nat: containers, netns: containers, containers: containers, volumes: volumes}
			got := in.leftovers(t)
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("held %+v, want %+v", got, want)
		})
		return apps
	}

	const rounds = 5
	for round := range rounds {
		existing := map[string]int64{}
		for _, a := range list(in) {
			existing[a.Name] = a.ID
		}
		var wg sync.WaitGroup
		client := http.Client{Timeout: 30 * time.Second}
		for _, name := range names {
			id, exists := existing[name]
			switch {
			case !exists:
				wg.Go(func() {
					body := fmt.Sprintf(`{"name":%q,"image":"static","plan":1}`, name)
					req, _ := http.NewRequest("POST", in.apiURL+pathf("/api/v1/%d/apps/", admin.company), strings.NewReader(body))
					req.Header.Set("Authorization", "Token "+admin.token)
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
					}
				})
			case rng.IntN(2) == 0:
				wg.Go(func() {
					req, _ := http.NewRequest("DELETE", in.apiURL+pathf("/api/v1/%d/apps/%d/", admin.company, id), nil)
					req.Header.Set("Authorization", "Token "+admin.token)
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
					}
				})
			}
		}
		// The kill lands anywhere in the burst: the containers of the
		// new apps start one after another over a few seconds.
		killAt := time.Duration(rng.IntN(3000)) * time.Millisecond
		time.Sleep(killAt)
		if err := in.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = in.cmd.Wait()
		wg.Wait()
		t.Logf("round %d: killed %s into the burst", round+1, killAt)
		in = startRosti(t, bin, data)
		cleanUp(in)
		apps := settled(in, fmt.Sprintf("after kill %d", round+1))
		t.Logf("round %d: %d apps run", round+1, len(apps))
	}
	for _, a := range list(in) {
		in.expect(t, 200, admin.token, "DELETE", pathf("/api/v1/%d/apps/%d/", admin.company, a.ID), nil)
	}
	settled(in, "after deleting every app")
}
