package platform

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// AppStatus is what is known of a running app, in the terms of Rosti's
// apps-status plus its containers.
type AppStatus struct {
	Running       bool
	HTTPStatus    bool // the app answers HTTP on its port with 2xx or 3xx
	DNSStatus     bool // every domain resolves to this server
	Errors, Info  []string
	MemoryUsageMB float64
	MemoryLimitMB float64 // the plan's, for every process the app runs, also while none runs
	StorageUsage  float64 // MB (10^6 bytes, as the plan's disk)
	StorageLimit  float64 // MB
	OverLimit     bool
	Runtime       store.Runtime
	Containers    []ContainerStatus
}

// ContainerStatus is one process instance.
type ContainerStatus struct {
	Name        string
	Process     string
	State       string // running, stopped, created, unknown
	IP          string
	Restarts    int
	ExitCode    uint32
	Reason      string // why it last stopped: "oom-killed", "exited", ""
	NextRestart *time.Time
	MemoryMB    float64
	CPUSeconds  float64
	StartedAt   time.Time
}

// statusTimeout bounds the probes a status answer makes.
const statusTimeout = 2 * time.Second

// Status reports on one app.
func (p *Platform) Status(ctx context.Context, actor store.User, ref AppRef) (AppStatus, error) {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return AppStatus{}, err
	}
	appID := a.ID
	cs, err := p.containersOf(ctx, appID)
	if err != nil {
		return AppStatus{}, err
	}
	plan, err := p.store.Plan(a.PlanID)
	if err != nil {
		return AppStatus{}, err
	}
	rt, _, err := p.runtimeByImage(a.Image)
	if err != nil {
		return AppStatus{}, err
	}
	st := AppStatus{Runtime: rt, StorageLimit: float64(plan.DiskMB), Errors: []string{}, Info: []string{}}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	var webAddrs []string
	for _, c := range cs {
		cst := ContainerStatus{Name: c.Name, Process: c.Labels[rtm.LabelProcess], State: c.Status, IP: c.IP, ExitCode: c.ExitCode, StartedAt: c.StartedAt}
		if info, ok := p.reconciler.crashInfo(c.Name); ok {
			cst.Restarts = info.restarts
			if c.Status != rtm.StatusRunning {
				next := info.nextStart
				cst.NextRestart = &next
			}
		}
		switch {
		case c.OOMKilled:
			cst.Reason = "oom-killed"
			st.Errors = append(st.Errors, fmt.Sprintf("%s was killed for using more than the plan's %d MB of memory", c.Name, plan.MemoryMB))
		case c.Status != rtm.StatusRunning && !c.ExitedAt.IsZero():
			cst.Reason = "exited"
			st.Errors = append(st.Errors, fmt.Sprintf("%s exited with code %d", c.Name, c.ExitCode))
		}
		if cst.NextRestart != nil {
			if wait := time.Until(*cst.NextRestart).Round(time.Second); wait > 0 {
				st.Info = append(st.Info, fmt.Sprintf("%s restarts in %s (restart %d)", c.Name, wait, cst.Restarts+1))
			} else {
				st.Info = append(st.Info, fmt.Sprintf("%s is restarting (restart %d)", c.Name, cst.Restarts+1))
			}
		}
		if c.Status == rtm.StatusRunning {
			st.Running = true
			if s, err := p.containers.Stats(ctx, c.Name); err == nil {
				cst.MemoryMB = float64(s.MemoryUsage) / (1 << 20)
				cst.CPUSeconds = float64(s.CPUUsageNs) / 1e9
				st.MemoryUsageMB += cst.MemoryMB
			}
			if cst.Process == "web" {
				webAddrs = append(webAddrs, net.JoinHostPort(c.IP, strconv.Itoa(a.AppPort)))
			}
		}
		st.Containers = append(st.Containers, cst)
	}
	st.MemoryLimitMB = float64(plan.MemoryMB * desiredProcesses(a))
	if msg := p.reconciler.lastError(appID); msg != "" {
		st.Errors = append(st.Errors, msg)
	}
	if msg := p.pulls.describe(a.Image); msg != "" {
		st.Info = append(st.Info, msg)
	}
	if !a.Enabled() {
		st.Info = append(st.Info, "the app is stopped; start it to run it again")
	}
	if image, ok := p.shellless.Load(a.ID); ok && image == a.Image {
		// What an SSH command was told, said again where users look.
		st.Info = append(st.Info, (&ProgramNotFoundError{App: a.Name, Image: a.Image, Program: "/bin/sh"}).Error())
	}
	if len(webAddrs) > 0 {
		path := a.Healthcheck
		if path == "" {
			path = "/"
		}
		code, err := httpAnswer(ctx, webAddrs[0], path)
		st.HTTPStatus = err == nil && code >= 200 && code < 400
		switch {
		case err != nil:
			st.Errors = append(st.Errors, fmt.Sprintf("the app does not answer HTTP on port %d", a.AppPort))
		case !st.HTTPStatus:
			st.Errors = append(st.Errors, fmt.Sprintf("the app answers GET %s on port %d with HTTP %d; a 2xx or 3xx answer is expected", path, a.AppPort, code))
		}
	} else if st.Running {
		st.Errors = append(st.Errors, fmt.Sprintf("the app does not answer HTTP on port %d", a.AppPort))
	}
	st.DNSStatus = p.probes.domainsResolveHere(ctx, a.Domains, &st)
	used, full, note, err := p.volumeUsage(a, st.StorageLimit)
	switch {
	case err != nil:
		st.Errors = append(st.Errors, "storage usage unknown: "+err.Error())
	case full:
		st.Errors = append(st.Errors, fmt.Sprintf("the app's disk is full (%.0f MB used of the plan's %.0f MB): writes fail until files are deleted or the app moves to a plan with more disk", used, st.StorageLimit))
	}
	if note != "" {
		st.Info = append(st.Info, note)
	}
	st.StorageUsage, st.OverLimit = used, full
	return st, nil
}

// httpAnswer is the status code of a GET of path at addr (redirects are
// not followed: a 3xx answer is an answer).
func httpAnswer(ctx context.Context, addr, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// desiredProcesses is how many processes the app runs when it runs.
func desiredProcesses(a store.App) int64 {
	var n int64
	for _, count := range a.Processes {
		n += int64(count)
	}
	return max(n, 1)
}

func dirSizeMB(dir string) (float64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && d.Type().IsRegular() {
			total += info.Size()
		}
		return nil
	})
	return float64(total) / 1e6, err
}

// logRescan is how often a followed log looks for new containers, such as
// those a deploy starts.
const logRescan = time.Second

// Logs writes the last lines of the output of an app's containers to w,
// each line prefixed with its container's name, and with follow keeps
// writing until ctx ends, picking up containers started meanwhile.
func (p *Platform) Logs(ctx context.Context, actor store.User, ref AppRef, lines int, follow bool, w io.Writer) error {
	a, err := p.authorizeApp(actor, ref)
	if err != nil {
		return err
	}
	appID := a.ID
	if lines < 0 || lines > 10000 {
		return FieldError("lines", "must be between 0 and 10000")
	}
	cs, err := p.containersOf(ctx, appID)
	if err != nil {
		return err
	}
	if len(cs) == 0 && !follow {
		return fmt.Errorf("the app has no containers; start it first: %w", store.ErrInvalid)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := &syncWriter{w: w}
	if !follow {
		for _, c := range cs {
			if err := p.containers.Logs(ctx, c.Name, lines, false, newLinePrefixer(out, c.Name)); err != nil {
				return err
			}
		}
		return nil
	}
	followed := map[string]bool{}
	follow1 := func(name string, lines int) {
		followed[name] = true
		go func() {
			err := p.containers.Logs(ctx, name, lines, true, newLinePrefixer(out, name))
			if err != nil && ctx.Err() == nil {
				p.log.Debug("log follow ended", "container", name, "err", err)
			}
		}()
	}
	for _, c := range cs {
		follow1(c.Name, lines)
	}
	rescan := time.NewTicker(logRescan)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rescan.C:
		}
		now, err := p.containersOf(ctx, appID)
		if err != nil {
			continue
		}
		for _, c := range now {
			if !followed[c.Name] {
				follow1(c.Name, 0) // a new container: all it wrote so far
			}
		}
	}
}
