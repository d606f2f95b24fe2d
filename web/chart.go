package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"

	"github.com/phoneverify/phoneverify/store"
)

// Geometry of the hourly chart, in SVG user units; the chart scales to the
// width of its container.
const (
	chartW, chartH = 720.0, 240.0
	padLeft        = 44.0
	padRight       = 8.0
	padTop         = 12.0
	padBottom      = 28.0
)

// niceMax rounds n up to 1, 2 or 5 times a power of ten, so the axis reads
// well; at least 1.
func niceMax(n int64) int64 {
	if n <= 1 {
		return 1
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// hourlyChart draws verifications started and approved per hour as an SVG
// bar chart: a light bar per hour for those started, a dark one inside it
// for those approved. Every bar has a title, and the chart a title and a
// description, for screen readers and tooltips; the page also has the
// numbers as a table.
func hourlyChart(hours []store.HourCounts) template.HTML {
	var peak, started, approved int64
	for _, h := range hours {
		peak = max(peak, h.Started)
		started += h.Started
		approved += h.Approved
	}
	top := niceMax(peak)
	plotW, plotH := chartW-padLeft-padRight, chartH-padTop-padBottom
	y := func(v int64) float64 { return padTop + plotH - float64(v)/float64(top)*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH)
	b.WriteString(`<title id="chart-title">Verifications per hour</title>`)
	fmt.Fprintf(&b, `<desc id="chart-desc">%d hours: %d verifications started, %d approved; at most %d started in one hour. Light bars: started; dark bars: approved.</desc>`,
		len(hours), started, approved, peak)
	// Grid lines and their labels: 0, half and the top.
	for _, v := range []int64{0, top / 2, top} {
		if v == top/2 && top < 2 {
			continue
		}
		fmt.Fprintf(&b, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/>`, padLeft, chartW-padRight, y(v), y(v))
		fmt.Fprintf(&b, `<text class="axis" x="%g" y="%.1f" text-anchor="end">%d</text>`, padLeft-6, y(v)+4, v)
	}
	if n := len(hours); n > 0 {
		slot := plotW / float64(n)
		bar := max(slot*0.8, 1)
		every := max(1, (n+7)/8)
		for i, h := range hours {
			x := padLeft + float64(i)*slot + (slot-bar)/2
			label := h.Hour.UTC().Format("Jan 2 15:04") + "–" + h.Hour.UTC().Add(3600e9).Format("15:04") + " UTC"
			fmt.Fprintf(&b, `<g><title>%s: %d started, %d approved</title>`, html.EscapeString(label), h.Started, h.Approved)
			fmt.Fprintf(&b, `<rect class="bar-started" x="%.2f" y="%.2f" width="%.2f" height="%.2f"/>`, x, y(h.Started), bar, padTop+plotH-y(h.Started))
			if h.Approved > 0 {
				fmt.Fprintf(&b, `<rect class="bar-approved" x="%.2f" y="%.2f" width="%.2f" height="%.2f"/>`, x, y(h.Approved), bar, padTop+plotH-y(h.Approved))
			}
			b.WriteString(`</g>`)
			// Up to two days, every few hours; beyond, midnights (every few
			// days for a month).
			tick := ""
			switch {
			case n <= 48 && i%every == 0:
				tick = h.Hour.UTC().Format("15:04")
			case n > 48 && h.Hour.UTC().Hour() == 0 && h.Hour.UTC().YearDay()%max(1, (n/24+7)/8) == 0:
				tick = h.Hour.UTC().Format("Jan 2")
			}
			if tick != "" {
				fmt.Fprintf(&b, `<text class="axis" x="%.2f" y="%g" text-anchor="middle">%s</text>`, x+bar/2, chartH-8, tick)
			}
		}
	}
	b.WriteString(`</svg>`)
	// Every value above is a number or text escaped here.
	return template.HTML(b.String())
}
