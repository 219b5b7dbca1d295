package rostiv1

import (
	"net/http"
	"strconv"
	"time"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/server/httpapi"
	"github.com/rosti-paas/rosti/store"
)

func (h *Handler) appAction(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := h.knownApp(r, u)
	if err != nil {
		return err
	}
	f, err := httpapi.DecodeFields(w, r)
	if err != nil {
		return err
	}
	action := f.String("action")
	if err := f.Err(); err != nil {
		return err
	}
	if action == nil {
		return platform.FieldError("action", "this field is required")
	}
	a, err := h.p.AppAction(r.Context(), u, ref, *action)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, h.appJSON(a))
	return nil
}

type techJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type containerJSON struct {
	Name        string     `json:"name"`
	Process     string     `json:"process"`
	State       string     `json:"state"`
	IP          string     `json:"ip"`
	Restarts    int        `json:"restarts"`
	ExitCode    uint32     `json:"exit_code"`
	Reason      string     `json:"reason"`
	NextRestart *time.Time `json:"next_restart"`
	MemoryMB    float64    `json:"memory"`
	CPUSeconds  float64    `json:"cpu_seconds"`
	StartedAt   time.Time  `json:"started_at"`
}

type statusJSON struct {
	Running     bool            `json:"running"`
	HTTPStatus  bool            `json:"http_status"`
	DNSStatus   bool            `json:"dns_status"`
	Errors      []string        `json:"errors"`
	Info        []string        `json:"info"`
	Memory      map[string]any  `json:"memory"`
	Storage     map[string]any  `json:"storage"`
	PrimaryTech techJSON        `json:"primary_tech"`
	Techs       []techJSON      `json:"techs"`
	Containers  []containerJSON `json:"containers"`
}

func (h *Handler) appStatus(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := appRef(r)
	if err != nil {
		return err
	}
	st, err := h.p.Status(r.Context(), u, ref)
	if err != nil {
		return err
	}
	out := statusJSON{
		Running: st.Running, HTTPStatus: st.HTTPStatus, DNSStatus: st.DNSStatus, Errors: st.Errors, Info: st.Info,
		Memory:      map[string]any{"usage": st.MemoryUsageMB, "limit": st.MemoryLimitMB},
		Storage:     storageStatus(st),
		PrimaryTech: techJSON{Name: st.Runtime.Name, Version: imageTag(st.Runtime.Image)},
		Containers:  []containerJSON{},
	}
	out.Techs = []techJSON{out.PrimaryTech}
	for _, lang := range st.Runtime.Languages {
		if lang != st.Runtime.Name {
			out.Techs = append(out.Techs, techJSON{Name: lang})
		}
	}
	for _, c := range st.Containers {
		out.Containers = append(out.Containers, containerJSON{
			Name: c.Name, Process: c.Process, State: c.State, IP: c.IP, Restarts: c.Restarts, ExitCode: c.ExitCode,
			Reason: c.Reason, NextRestart: c.NextRestart, MemoryMB: c.MemoryMB, CPUSeconds: c.CPUSeconds, StartedAt: c.StartedAt,
		})
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// storageStatus is Rosti's storage figures, in GB as rostictl prints them,
// over_limit being how many GB the usage is past the limit; usage_mb,
// limit_mb and exceeded are rosti's own.
func storageStatus(st platform.AppStatus) map[string]any {
	return map[string]any{
		"usage":      st.StorageUsage / 1000,
		"limit":      st.StorageLimit / 1000,
		"over_limit": max(0, st.StorageUsage-st.StorageLimit) / 1000,
		"usage_mb":   st.StorageUsage,
		"limit_mb":   st.StorageLimit,
		"exceeded":   st.OverLimit,
	}
}

func imageTag(ref string) string {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' {
			return ref[i+1:]
		}
	}
	return "latest"
}

// logWriter notes whether anything was written, so that an error before
// the first line can still be answered with a status, and flushes each
// write when the answer is followed.
type logWriter struct {
	w     http.ResponseWriter
	flush bool
	wrote bool
}

func (l *logWriter) Write(b []byte) (int, error) {
	l.wrote = true
	n, err := l.w.Write(b)
	if f, ok := l.w.(http.Flusher); ok && l.flush {
		f.Flush()
	}
	return n, err
}

// appLogs serves ?lines=N (default 100) of the app's output, and keeps the
// answer open with new lines when follow=1.
func (h *Handler) appLogs(w http.ResponseWriter, r *http.Request, u store.User) error {
	ref, err := h.knownApp(r, u)
	if err != nil {
		return err
	}
	lines := 100
	if s := r.URL.Query().Get("lines"); s != "" {
		if lines, err = strconv.Atoi(s); err != nil {
			return platform.FieldError("lines", "must be a whole number")
		}
	}
	follow := r.URL.Query().Get("follow")
	out := &logWriter{w: w, flush: follow == "1" || follow == "true"}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	err = h.p.Logs(r.Context(), u, ref, lines, out.flush, out)
	if err != nil && out.wrote {
		h.log.Warn("log stream ended", "err", err)
		return nil
	}
	return err
}
