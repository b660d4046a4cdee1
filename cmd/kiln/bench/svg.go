package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Chart geometry, in SVG user units (pixels).
const (
	svgWidth   = 900
	plotLeft   = 230 // start of the time axis; lane labels sit left of it
	plotRight  = 760 // its end; the median labels sit right of it
	plotTop    = 92  // below the title, subtitle and legend
	laneH      = 34  // height of one lane
	axisH      = 46  // tick labels and axis title below the lanes
	densRowH   = 24  // height of one density bar
	densBarMax = 300 // width of the longest density bar
	footerH    = 14
	tickGap    = 44 // least distance between the centres of two tick labels
	maxReason  = 90 // longest note shown in a lane, in characters
	maxName    = 26 // longest method name shown, in characters
)

// Colours: one hue per kind of method, kiln the strongest of the VMs.
const (
	kilnColour  = "#e03131"
	otherColour = "#868e96"
	inkColour   = "#212529"
	greyColour  = "#868e96"
)

var kindPalettes = map[string][]string{
	"vm":        {"#f08c00", "#a0522d", "#ffc078"},
	"container": {"#1971c2", "#4dabf7", "#0c8599", "#74c0fc"},
	"process":   {"#2f9e44", "#69db7c", "#5c940d"},
}

// WriteSVG draws the results as a standalone SVG chart.
//
// Every method gets a lane per measure it has samples for (VMs: launch to
// user space and launch to exit; the rest: launch to exit) on a shared
// logarithmic time axis: one dot per counted sample, a box from the
// minimum to the 90th percentile, a line to the maximum and a thick tick
// at the median. Unavailable methods get a lane with the reason. Density
// runs, if any, follow as bars on a linear scale.
func WriteSVG(w io.Writer, r *Results) error {
	bw := bufio.NewWriter(w)
	c := newChart(r)
	p := &painter{w: bw}
	c.draw(p)
	if p.err != nil {
		return p.err
	}
	return bw.Flush()
}

// lane is one row of the chart: a method's samples of one measure, or a
// note (such as why the method did not run) instead of samples.
type lane struct {
	name    string
	measure string
	colour  string
	method  int // index of the method, for alternating shading
	d       []time.Duration
	note    string
}

// chart is the laid-out drawing.
type chart struct {
	r       *Results
	lanes   []lane
	scale   logScale
	hasData bool    // some lane has samples, so there is an axis
	axisY   float64 // bottom of the lanes
	densY   float64 // top of the density panel
	height  float64
}

func newChart(r *Results) *chart {
	c := &chart{r: r, lanes: buildLanes(r)}
	var all []time.Duration
	for _, l := range c.lanes {
		all = append(all, l.d...)
	}
	c.hasData = len(all) > 0
	c.scale = newLogScale(all, plotLeft, plotRight)
	rows := max(len(c.lanes), 1) // an empty chart still says so
	c.axisY = plotTop + float64(rows)*laneH
	c.densY = c.axisY + 16
	if c.hasData {
		c.densY = c.axisY + axisH
	}
	c.height = c.densY
	if len(r.Density) > 0 {
		c.height += 34 + float64(len(r.Density))*densRowH
	}
	c.height += footerH
	return c
}

// buildLanes lays out the methods' lanes in the order of the methods.
func buildLanes(r *Results) []lane {
	colours := methodColours(r.Methods)
	http := r.Settings.Workload == "http"
	var out []lane
	for i, m := range r.Methods {
		base := lane{name: m.Name, colour: colours[i], method: i}
		if m.Unavailable != "" {
			base.note = "unavailable: " + oneLine(m.Unavailable)
			out = append(out, base)
			continue
		}
		n := len(out)
		measures := laneMeasures(m.Kind)
		if http {
			measures = []Measure{ToReady, ToFirstHTTP}
		}
		for _, ms := range measures {
			if d := m.Durations(ms); len(d) > 0 {
				l := base
				l.measure, l.d = ms.Name, d
				out = append(out, l)
			}
		}
		if len(out) == n {
			base.note = noSamplesNote(m)
			out = append(out, base)
		}
	}
	return out
}

// laneMeasures are the measures drawn for a kind of method: only VMs have
// a user-space moment distinct from their exit.
func laneMeasures(kind string) []Measure {
	if kind == "vm" {
		return []Measure{ToUserspace, ToExit}
	}
	return []Measure{ToExit}
}

// noSamplesNote explains a method that ran but has nothing to draw.
func noSamplesNote(m Method) string {
	f := m.Failures()
	if len(f) == 0 {
		return "no counted samples"
	}
	return fmt.Sprintf("no counted samples, %d failed: %s", len(f), oneLine(f[0]))
}

// methodColours gives each method its colour: the hue of its kind, a
// different shade for each method of that kind, and kiln's own red.
func methodColours(ms []Method) []string {
	used := map[string]int{}
	out := make([]string, len(ms))
	for i, m := range ms {
		switch p := kindPalettes[m.Kind]; {
		case isKiln(m):
			out[i] = kilnColour
		case len(p) == 0:
			out[i] = otherColour
		default:
			out[i] = p[used[m.Kind]%len(p)]
			used[m.Kind]++
		}
	}
	return out
}

func isKiln(m Method) bool { return m.Kind == "vm" && strings.HasPrefix(m.Name, "kiln") }

// logScale maps durations to x positions on a logarithmic axis running
// over whole decades, from 10^lo to 10^hi nanoseconds.
type logScale struct {
	lo, hi int
	x0, x1 float64
}

// newLogScale fits a scale to d: its minimum rounded down and its maximum
// rounded up to a decade, at least one decade wide. Without data it spans
// 1 ms to 1 s.
func newLogScale(d []time.Duration, x0, x1 float64) logScale {
	s := logScale{lo: 6, hi: 9, x0: x0, x1: x1}
	d = slices.DeleteFunc(slices.Clone(d), func(v time.Duration) bool { return v <= 0 })
	if len(d) == 0 {
		return s
	}
	const eps = 1e-9 // log10 of an exact decade may miss the integer by a hair
	s.lo = int(math.Floor(math.Log10(float64(slices.Min(d))) + eps))
	s.hi = int(math.Ceil(math.Log10(float64(slices.Max(d))) - eps))
	if s.hi <= s.lo {
		s.hi = s.lo + 1
	}
	return s
}

// x is the position of duration d.
func (s logScale) x(d time.Duration) float64 { return s.xNS(float64(d)) }

// xNS is the position of ns nanoseconds.
func (s logScale) xNS(ns float64) float64 {
	v := math.Log10(max(ns, 1))
	return s.x0 + (v-float64(s.lo))/float64(s.hi-s.lo)*(s.x1-s.x0)
}

// tick is a labelled position on the time axis, in nanoseconds.
type tick struct {
	ns    float64
	label string
}

// ticks returns the labelled ticks, left to right: every decade, then the
// whole minutes, then 2× and 5× steps, each only where it keeps gap
// pixels from the ticks already placed.
func (s logScale) ticks(gap float64) []tick {
	var cand []float64
	for e := s.lo; e <= s.hi; e++ {
		cand = append(cand, math.Pow10(e))
	}
	for _, m := range []float64{60e9, 600e9} {
		if m >= math.Pow10(s.lo) && m <= math.Pow10(s.hi) {
			cand = append(cand, m)
		}
	}
	for e := s.lo; e < s.hi; e++ {
		cand = append(cand, 2*math.Pow10(e), 5*math.Pow10(e))
	}
	var out []tick
	for _, ns := range cand {
		if s.fits(out, ns, gap) {
			out = append(out, tick{ns, tickLabel(ns)})
		}
	}
	slices.SortFunc(out, func(a, b tick) int { return cmpFloat(a.ns, b.ns) })
	return out
}

// fits reports whether a tick at ns keeps gap pixels from all of placed.
func (s logScale) fits(placed []tick, ns, gap float64) bool {
	for _, t := range placed {
		if math.Abs(s.xNS(t.ns)-s.xNS(ns)) < gap {
			return false
		}
	}
	return true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// minorTicks are the unlabelled 2× to 9× steps inside each decade.
func (s logScale) minorTicks() []float64 {
	var out []float64
	for e := s.lo; e < s.hi; e++ {
		for k := 2.0; k <= 9; k++ {
			out = append(out, k*math.Pow10(e))
		}
	}
	return out
}

// tickLabel formats a round duration: "10 ms", "1 s", "1 min".
func tickLabel(ns float64) string {
	if ns >= 60e9 && math.Mod(ns, 60e9) == 0 {
		return strconv.FormatFloat(ns/60e9, 'f', -1, 64) + " min"
	}
	unit, div := timeUnit(ns)
	return strconv.FormatFloat(ns/div, 'f', -1, 64) + " " + unit
}

// fmtDur formats a measured duration with three significant digits or
// so: "1.23 ms", "456 ms", "22.6 s", "2.50 min".
func fmtDur(d time.Duration) string {
	ns := float64(d)
	if d >= 100*time.Second {
		return threeDigits(ns/60e9) + " min"
	}
	unit, div := timeUnit(ns)
	return threeDigits(ns/div) + " " + unit
}

// timeUnit picks the unit for ns nanoseconds and its size.
func timeUnit(ns float64) (string, float64) {
	switch {
	case ns < 1e3:
		return "ns", 1
	case ns < 1e6:
		return "µs", 1e3
	case ns < 1e9:
		return "ms", 1e6
	}
	return "s", 1e9
}

func threeDigits(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// jitter is a deterministic vertical offset in [-0.5, 0.5) for the i-th
// dot of a lane: the golden-ratio sequence spreads neighbours apart.
func jitter(i int) float64 {
	_, f := math.Modf(float64(i) * 0.6180339887498949)
	return f - 0.5
}

// painter writes SVG elements and keeps the first write error.
type painter struct {
	w   io.Writer
	err error
}

func (p *painter) printf(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

// text writes s, escaped, at (x, y) with extra attributes attrs.
func (p *painter) text(x, y float64, attrs, s string) {
	p.printf("<text x=\"%.1f\" y=\"%.1f\"%s>%s</text>\n", x, y, attrs, esc(s))
}

func (p *painter) line(x1, y1, x2, y2 float64, attrs string) {
	p.printf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"%s/>\n", x1, y1, x2, y2, attrs)
}

func (p *painter) rect(x, y, w, h float64, attrs string) {
	p.printf("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"%s/>\n", x, y, w, h, attrs)
}

// esc escapes s for XML character data and attribute values.
func esc(s string) string { return xmlEscaper.Replace(s) }

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&#34;", "'", "&#39;", "\t", "&#x9;", "\n", "&#xA;", "\r", "&#xD;")

// oneLine folds runs of white space, newlines included, into one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate shortens s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

func (c *chart) draw(p *painter) {
	p.printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	p.printf("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\">\n",
		svgWidth, c.height, svgWidth, c.height)
	p.rect(0, 0, svgWidth, c.height, ` fill="#ffffff"`)
	c.drawHeader(p)
	c.drawBands(p)
	if c.hasData {
		c.drawGrid(p)
	}
	if len(c.lanes) == 0 {
		p.text(plotLeft, plotTop+laneH/2+4, ` font-size="13" font-style="italic" fill="`+greyColour+`"`, "no methods were measured")
	}
	for i, l := range c.lanes {
		c.drawLane(p, l, plotTop+(float64(i)+0.5)*laneH)
	}
	if c.hasData {
		c.drawAxis(p)
	}
	if len(c.r.Density) > 0 {
		c.drawDensity(p)
	}
	p.printf("</svg>\n")
}

// drawHeader writes the title, the subtitle and the legend.
func (c *chart) drawHeader(p *painter) {
	title := "kiln bench: launch times (log scale)"
	if c.r.Settings.Workload == "http" {
		title = "kiln bench --workload http: launch to ready and to the first HTTP 200 (log scale)"
	}
	p.text(16, 30, ` font-size="19" font-weight="bold" fill="`+inkColour+`"`, title)
	p.text(16, 52, ` font-size="12" fill="#495057"`, c.subtitle())
	x := 16.0
	for _, e := range c.legend() {
		p.rect(x, 64, 10, 10, ` rx="2" fill="`+e.colour+`"`)
		p.text(x+14, 73, ` font-size="11" fill="#495057"`, e.label)
		x += 14 + 6.5*float64(len([]rune(e.label))) + 18
	}
}

// subtitle says where and how the numbers were taken.
func (c *chart) subtitle() string {
	r := c.r
	kvm := r.Host.KVM
	if kvm == "" {
		kvm = "unknown"
	}
	parts := []string{"host KVM: " + kvm}
	switch r.Settings.Rounds {
	case 0:
	case 1:
		parts = append(parts, "1 round")
	default:
		parts = append(parts, fmt.Sprintf("%d rounds", r.Settings.Rounds))
	}
	if !r.Started.IsZero() {
		parts = append(parts, r.Started.Format("2006-01-02 15:04 MST"))
	}
	if len(r.Settings.Command) > 0 {
		parts = append(parts, "command: "+truncate(oneLine(strings.Join(r.Settings.Command, " ")), 60))
	}
	return strings.Join(parts, " · ")
}

type legendEntry struct{ label, colour string }

// legend lists the colour families present in the chart.
func (c *chart) legend() []legendEntry {
	var kiln, vm, ct, proc bool
	for _, m := range c.r.Methods {
		kiln = kiln || isKiln(m)
		vm = vm || (m.Kind == "vm" && !isKiln(m))
		ct = ct || m.Kind == "container"
		proc = proc || m.Kind == "process"
	}
	var out []legendEntry
	add := func(ok bool, label, colour string) {
		if ok {
			out = append(out, legendEntry{label, colour})
		}
	}
	add(kiln, "kiln microVM", kilnColour)
	add(vm, "other VMs", kindPalettes["vm"][0])
	add(ct, "containers", kindPalettes["container"][0])
	add(proc, "processes", kindPalettes["process"][0])
	return out
}

// drawBands shades every other method's lanes so a VM's two lanes read
// as one group.
func (c *chart) drawBands(p *painter) {
	for i, l := range c.lanes {
		if l.method%2 == 1 {
			p.rect(0, plotTop+float64(i)*laneH, svgWidth, laneH, ` fill="#f8f9fa"`)
		}
	}
}

// drawGrid draws the vertical gridlines behind the lanes.
func (c *chart) drawGrid(p *painter) {
	for _, ns := range c.scale.minorTicks() {
		x := c.scale.xNS(ns)
		p.line(x, plotTop, x, c.axisY, ` stroke="#f1f3f5" stroke-width="1"`)
	}
	for _, t := range c.scale.ticks(tickGap) {
		x := c.scale.xNS(t.ns)
		p.line(x, plotTop, x, c.axisY, ` stroke="#dee2e6" stroke-width="1"`)
	}
}

// drawAxis writes the axis line, the tick labels and the axis title.
func (c *chart) drawAxis(p *painter) {
	y := c.axisY
	p.line(plotLeft, y, plotRight, y, ` stroke="#adb5bd" stroke-width="1"`)
	for _, t := range c.scale.ticks(tickGap) {
		x := c.scale.xNS(t.ns)
		p.line(x, y, x, y+4, ` stroke="#adb5bd" stroke-width="1"`)
		p.text(x, y+17, ` font-size="11" text-anchor="middle" fill="#495057"`, t.label)
	}
	p.text((plotLeft+plotRight)/2, y+35, ` font-size="11" text-anchor="middle" fill="`+greyColour+`"`,
		"time since launch (log scale)")
}

// drawLane draws one lane centred on y.
func (c *chart) drawLane(p *painter, l lane, y float64) {
	p.rect(16, y-13, 10, 10, ` rx="2" fill="`+l.colour+`"`)
	p.text(32, y-4, ` font-size="13" font-weight="bold" fill="`+inkColour+`"`, truncate(l.name, maxName))
	if l.measure != "" {
		p.text(32, y+11, ` font-size="11" fill="`+greyColour+`"`, l.measure)
	}
	if l.d == nil {
		p.text(plotLeft, y+4, ` font-size="12" font-style="italic" fill="`+greyColour+`"`, truncate(l.note, maxReason))
		return
	}
	c.drawSamples(p, l, y)
}

// drawSamples draws a lane's distribution, its dots and its median label.
func (c *chart) drawSamples(p *painter, l lane, y float64) {
	s := Summarize(l.d)
	x := c.scale.x
	col := l.colour
	p.printf("<g>\n<title>%s</title>\n", esc(fmt.Sprintf("%s, %s: n %d, min %s, median %s, p90 %s, max %s",
		l.name, l.measure, s.N, fmtDur(s.Min), fmtDur(s.Median), fmtDur(s.P90), fmtDur(s.Max))))
	p.line(x(s.Min), y, x(s.Max), y, ` stroke="`+col+`" stroke-width="1.2" stroke-opacity="0.7"`)
	p.rect(x(s.Min), y-7, max(x(s.P90)-x(s.Min), 1), 14,
		` fill="`+col+`" fill-opacity="0.14" stroke="`+col+`" stroke-opacity="0.5" stroke-width="1"`)
	for i, v := range l.d {
		p.printf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"%s\" fill-opacity=\"0.45\"/>\n",
			x(v), y+jitter(i)*laneH*0.55, col)
	}
	p.line(x(s.Median), y-11, x(s.Median), y+11, ` stroke="`+inkColour+`" stroke-width="2.5" stroke-linecap="round"`)
	p.printf("</g>\n")
	p.text(plotRight+14, y+1, ` font-size="12" font-weight="bold" fill="`+inkColour+`"`, "median "+fmtDur(s.Median))
	p.text(plotRight+14, y+13, ` font-size="10" fill="`+greyColour+`"`, fmt.Sprintf("p90 %s · n %d", fmtDur(s.P90), s.N))
}

// drawDensity draws the density runs as bars on a linear scale.
func (c *chart) drawDensity(p *painter) {
	top := c.densY
	p.printf("<text x=\"16\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\" fill=\"%s\">%s<tspan dx=\"8\" font-size=\"11\" font-weight=\"normal\" fill=\"%s\">%s</tspan></text>\n",
		top+16, inkColour, esc(c.densityTitle()), greyColour, esc(c.densitySubtitle()))
	var longest time.Duration
	for _, d := range c.r.Density {
		if d.Err == "" {
			longest = max(longest, densityTime(d))
		}
	}
	for i, d := range c.r.Density {
		c.drawDensityRow(p, d, longest, top+34+(float64(i)+0.5)*densRowH)
	}
}

// drawDensityRow draws one density run centred on y, scaled so that
// longest fills densBarMax.
func (c *chart) drawDensityRow(p *painter, d Density, longest time.Duration, y float64) {
	if d.Err != "" {
		p.text(plotLeft, y+4, ` font-size="12" font-style="italic" fill="`+greyColour+`"`,
			truncate(densityName(d)+": error: "+oneLine(d.Err), maxReason))
		return
	}
	w := 1.0
	if longest > 0 {
		w = max(float64(densityTime(d))/float64(longest)*densBarMax, 1)
	}
	colour := kilnColour
	label := vms(d.VMs) + ": " + fmtDur(d.AllUserspace)
	if d.Method != "" {
		if !strings.HasPrefix(d.Method, "kiln") {
			colour = kindPalettes["container"][0]
		}
		label = fmt.Sprintf("%d × %s: %s", d.VMs, d.Method, fmtDur(d.AllServing))
		if d.TotalPSS > 0 {
			label += fmt.Sprintf(", total PSS %.0f MiB", float64(d.TotalPSS)/1024)
		}
	}
	p.rect(plotLeft, y-7, w, 14, ` rx="2" fill="`+colour+`" fill-opacity="0.75"`)
	if d.TotalRSS > 0 && d.Method == "" {
		label += fmt.Sprintf(", total RSS %.0f MiB", float64(d.TotalRSS)/1024)
	}
	p.text(plotLeft+w+8, y+4, ` font-size="12" fill="`+inkColour+`"`, label)
}

// densityTime is how long a density run took: to all in user space for
// the boot workload, to all answering for the HTTP workload.
func densityTime(d Density) time.Duration {
	if d.Method != "" {
		return d.AllServing
	}
	return d.AllUserspace
}

func (c *chart) densityTitle() string {
	if c.r.Settings.Workload == "http" {
		return "density: K instances serving at once"
	}
	return "density: K VMs started at once"
}

func (c *chart) densitySubtitle() string {
	if c.r.Settings.Workload == "http" {
		return "— first launch until the last answered HTTP 200 (linear scale)"
	}
	return "— first launch until the last is in user space (linear scale)"
}

// densityName names a density run: "K VMs", or "K × METHOD".
func densityName(d Density) string {
	if d.Method != "" {
		return fmt.Sprintf("%d × %s", d.VMs, d.Method)
	}
	return vms(d.VMs)
}

// vms is "1 VM" or "K VMs".
func vms(k int) string {
	if k == 1 {
		return "1 VM"
	}
	return fmt.Sprintf("%d VMs", k)
}
