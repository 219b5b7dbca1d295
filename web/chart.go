package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/rosti-paas/rosti/platform"
)

// Charts are SVG drawn here: no script, no library, readable without
// colour (each has a title and a text summary for screen readers).
const (
	chartWidth  = 600
	chartHeight = 120
)

// chart draws one series of points over span (ending now) against limit.
func chart(title, unit string, points []platform.UsagePoint, value func(platform.UsagePoint) float64, limit float64, span time.Duration, now time.Time) template.HTML {
	top := limit
	latest, peak := 0.0, 0.0
	for _, p := range points {
		v := value(p)
		peak = max(peak, v)
		latest = v
	}
	top = max(top, peak, 1)
	var b strings.Builder
	summary := "no samples yet"
	if len(points) > 0 {
		summary = fmt.Sprintf("latest %.1f %s, peak %.1f %s, limit %.0f %s", latest, unit, peak, unit, limit, unit)
	}
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s <small>%s</small></figcaption>`, template.HTMLEscapeString(title), template.HTMLEscapeString(summary))
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="%s: %s" preserveAspectRatio="none">`, chartWidth, chartHeight,
		template.HTMLEscapeString(title), template.HTMLEscapeString(summary))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#f6f8fa" stroke="#d0d7de"/>`, chartWidth, chartHeight)
	if limit > 0 {
		y := chartHeight - limit/top*chartHeight
		fmt.Fprintf(&b, `<line x1="0" x2="%d" y1="%.1f" y2="%.1f" stroke="#b42318" stroke-dasharray="4 3"/>`, chartWidth, y, y)
	}
	if len(points) > 0 {
		start := now.Add(-span)
		b.WriteString(`<polyline fill="none" stroke="#0b5cad" stroke-width="2" points="`)
		for _, p := range points {
			x := float64(p.At.Sub(start)) / float64(span) * chartWidth
			y := chartHeight - value(p)/top*chartHeight
			fmt.Fprintf(&b, "%.1f,%.1f ", max(0, min(chartWidth, x)), y)
		}
		b.WriteString(`"/>`)
		if len(points) == 1 {
			p := points[0]
			x := float64(p.At.Sub(start)) / float64(span) * chartWidth
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#0b5cad"/>`, max(0, min(chartWidth, x)), chartHeight-value(p)/top*chartHeight)
		}
	}
	b.WriteString(`</svg></figure>`)
	// Every value above is a number or escaped text.
	return template.HTML(b.String())
}

// usageCharts draws an app's memory and CPU over the last hour and day.
type usageCharts struct {
	Hour, Day []template.HTML
}

func drawUsage(u platform.Usage, now time.Time) usageCharts {
	mem := func(p platform.UsagePoint) float64 { return p.MemoryMB }
	cpu := func(p platform.UsagePoint) float64 { return p.CPUPercent }
	return usageCharts{
		Hour: []template.HTML{
			chart("Memory, last hour", "MB", u.Hour, mem, u.MemoryLimitMB, time.Hour, now),
			chart("CPU, last hour", "%", u.Hour, cpu, u.CPULimitPercent, time.Hour, now),
		},
		Day: []template.HTML{
			chart("Memory, last day", "MB", u.Day, mem, u.MemoryLimitMB, 24*time.Hour, now),
			chart("CPU, last day", "%", u.Day, cpu, u.CPULimitPercent, 24*time.Hour, now),
		},
	}
}
