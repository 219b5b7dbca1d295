package drycc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/rosti-paas/rosti/platform"
	"github.com/rosti-paas/rosti/store"
)

// Rosti sizes an app by its plan, for all its process types at once; the
// memory and cpu limits of Drycc's config (limits:set web=512M) pick the
// smallest plan that gives at least what the largest limit asks, and
// unsetting every limit goes back to the smallest plan.

// limitsOf shows an app's plan as Drycc's memory and cpu limits of each of
// its process types.
func limitsOf(plan store.Plan, types map[string]int) (memory, cpu map[string]string) {
	memory, cpu = map[string]string{}, map[string]string{}
	for t := range types {
		memory[t] = strconv.FormatInt(plan.MemoryMB, 10) + "M"
		cpu[t] = strconv.FormatInt(plan.CPUMillis, 10) + "m"
	}
	return memory, cpu
}

// parseMemoryMB reads a Drycc memory limit: 512M, 1G, 256Mi, 1024 (MB).
func parseMemoryMB(s string) (int64, bool) {
	s = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "G") || strings.HasSuffix(s, "g"):
		mult, s = 1024, s[:len(s)-1]
	case strings.HasSuffix(s, "M") || strings.HasSuffix(s, "m"):
		s = s[:len(s)-1]
	case strings.HasSuffix(s, "K") || strings.HasSuffix(s, "k"):
		mult, s = 1.0/1024, s[:len(s)-1]
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return int64(n*mult + 0.999), true
}

// parseCPUMillis reads a Drycc cpu limit: 500m, 1, 0.5, 2000m.
func parseCPUMillis(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		return n, err == nil && n > 0
	}
	n, err := strconv.ParseFloat(s, 64)
	return int64(n * 1000), err == nil && n > 0
}

// readLimits reads {"web": "512M", "worker": null} and returns the largest
// limit set, and whether every given one is an unset.
func readLimits(raw json.RawMessage, parse func(string) (int64, bool), field string) (largest int64, unsetOnly bool, err error) {
	var given map[string]*string
	if err := json.Unmarshal(raw, &given); err != nil {
		return 0, false, fieldError(field, "Expected a dictionary of process types and limits.")
	}
	unsetOnly = true
	for t, v := range given {
		if v == nil {
			continue
		}
		unsetOnly = false
		n, ok := parse(*v)
		if !ok {
			return 0, false, fieldError(field, fmt.Sprintf("%s: %q is not a limit, like 512M or 500m.", t, *v))
		}
		largest = max(largest, n)
	}
	return largest, unsetOnly, nil
}

// planForLimits picks the plan memory and cpu limits in the request body
// ask for; ok is false when the body sets no limit.
func (h *Handler) planForLimits(r *http.Request, u store.User, raw map[string]json.RawMessage) (int64, bool, error) {
	memRaw, hasMem := raw["memory"]
	cpuRaw, hasCPU := raw["cpu"]
	hasMem = hasMem && string(memRaw) != "null" && string(memRaw) != "{}"
	hasCPU = hasCPU && string(cpuRaw) != "null" && string(cpuRaw) != "{}"
	if !hasMem && !hasCPU {
		return 0, false, nil
	}
	var memMB, cpuMillis int64
	unsetMem, unsetCPU := true, true
	var err error
	if hasMem {
		if memMB, unsetMem, err = readLimits(memRaw, parseMemoryMB, "memory"); err != nil {
			return 0, false, err
		}
	}
	if hasCPU {
		if cpuMillis, unsetCPU, err = readLimits(cpuRaw, parseCPUMillis, "cpu"); err != nil {
			return 0, false, err
		}
	}
	plans, err := h.p.Plans(r.Context(), u)
	if err != nil {
		return 0, false, err
	}
	if len(plans) == 0 {
		return 0, false, &unprocessableError{"this server has no plans"}
	}
	sort.Slice(plans, func(i, j int) bool {
		if plans[i].MemoryMB != plans[j].MemoryMB {
			return plans[i].MemoryMB < plans[j].MemoryMB
		}
		return plans[i].CPUMillis < plans[j].CPUMillis
	})
	if unsetMem && unsetCPU {
		return plans[0].ID, true, nil
	}
	for _, pl := range plans {
		if pl.MemoryMB >= memMB && pl.CPUMillis >= cpuMillis {
			return pl.ID, true, nil
		}
	}
	top := plans[len(plans)-1]
	return 0, false, &unprocessableError{fmt.Sprintf("no plan gives %d MB and %d millicores; the largest, %s, has %d MB and %d millicores", memMB, cpuMillis, top.Name, top.MemoryMB, top.CPUMillis)}
}

// setPlan applies a plan picked by limits.
func (h *Handler) setPlan(r *http.Request, u store.User, ref platform.AppRef, plan int64) error {
	_, err := h.p.UpdateApp(r.Context(), u, ref, platform.AppInput{Plan: &plan})
	return err
}
