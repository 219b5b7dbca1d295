package web

import (
	"strings"
	"testing"
	"time"

	"github.com/rosti-paas/rosti/platform"
)

func TestChart(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	mem := func(p platform.UsagePoint) float64 { return p.MemoryMB }
	for _, tc := range []struct {
		name   string
		points []platform.UsagePoint
		want   []string
		not    []string
	}{
		{"empty", nil, []string{"no samples yet", `role="img"`, "<line"}, []string{"<polyline"}},
		{"one point", []platform.UsagePoint{{At: now, MemoryMB: 64}}, []string{"latest 64.0 MB", "<circle", `points="600.0,90.0 "`}, nil},
		{"over the limit", []platform.UsagePoint{{At: now.Add(-30 * time.Minute), MemoryMB: 512}, {At: now, MemoryMB: 128}},
			[]string{"peak 512.0 MB", `points="300.0,0.0 600.0,90.0 "`}, []string{"<circle"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(chart("Memory <&>", "MB", tc.points, mem, 256, time.Hour, now))
			if strings.Contains(got, "<&>") {
				t.Error("the title is not escaped")
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in %s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in %s", n, got)
				}
			}
		})
	}
}
