package report

import (
	"fmt"
	"hash/fnv"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Charts are plain SVG built on the server: no script, no stylesheet, no
// style attribute (the portal's Content-Security-Policy allows none inline),
// presentation attributes only. Each is an image with a title and a
// description that states the figures in words (role="img",
// aria-labelledby), axis labels as text, and series told apart by dash
// pattern and marker as well as by colour.

// Series is one line of a line chart: a value per label of the chart. A
// NaN value is a gap (no figure that day): the line breaks there.
type Series struct {
	Name   string
	Values []float64
}

// LineChart describes a chart of series over the same labels (days).
type LineChart struct {
	// ID prefixes the ids of the title and description (unique per page);
	// empty, it is derived from Title.
	ID     string
	Title  string
	Desc   string
	XLabel string
	YLabel string
	Labels []string
	Series []Series
	// Percent shows values (0..1) as percentages on the axis and in the
	// description.
	Percent bool
}

// Bar is one bar of a bar chart.
type Bar struct {
	Label string
	Value float64
}

// BarChart describes a horizontal bar chart (top gifts).
type BarChart struct {
	ID     string
	Title  string
	Desc   string
	XLabel string
	YLabel string
	Bars   []Bar
}

const (
	chartW, chartH = 640, 320
	padL, padR     = 72, 16
	padT, padB     = 40, 64
)

// palette: colours that stay apart for the common colour blindnesses
// (Okabe-Ito), each with its own dash pattern.
var (
	palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}
	dashes  = []string{"", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4"}
)

func esc(s string) string { return template.HTMLEscapeString(s) }

func chartID(id, title string) string {
	if id != "" {
		var b strings.Builder
		for _, r := range id {
			if r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
				b.WriteRune(r)
			}
		}
		if b.Len() > 0 {
			return b.String()
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(title))
	return fmt.Sprintf("chart-%08x", h.Sum32())
}

// niceMax rounds v up to 1, 2, 2.5 or 5 times a power of ten, so the axis
// has round ticks.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// formatNumber writes n with thousands separators (1,234,567; 2.5 for
// fractions).
func formatNumber(v float64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	var s string
	if v == math.Trunc(v) && v < 1e15 {
		digits := strconv.FormatInt(int64(v), 10)
		var b strings.Builder
		for i, c := range digits {
			if i > 0 && (len(digits)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		s = b.String()
	} else {
		s = strconv.FormatFloat(v, 'f', -1, 64)
		if len(s) > 8 {
			s = strconv.FormatFloat(v, 'f', 2, 64)
		}
	}
	if neg {
		return "-" + s
	}
	return s
}

func (c LineChart) format(v float64) string {
	if c.Percent {
		return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
	}
	return formatNumber(v)
}

// header opens the svg with its title and description.
func header(b *strings.Builder, id, title, desc string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-labelledby="%s-title %s-desc" font-family="sans-serif" font-size="12">`,
		chartW, chartH, id, id)
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, id, esc(title), id, esc(desc))
	fmt.Fprintf(b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`, chartW, chartH)
	fmt.Fprintf(b, `<text x="%d" y="20" font-size="14" font-weight="bold" fill="#111111" aria-hidden="true">%s</text>`, padL, esc(title))
}

func axisLabels(b *strings.Builder, x, y string) {
	if x != "" {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" fill="#333333">%s</text>`, padL+(chartW-padL-padR)/2, chartH-8, esc(x))
	}
	if y != "" {
		fmt.Fprintf(b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle" fill="#333333">%s</text>`, padT+(chartH-padT-padB)/2, esc(y))
	}
}

// summary describes each series in words: total (not for percentages),
// highest and latest value.
func (c LineChart) summary() string {
	var parts []string
	if c.Desc != "" {
		parts = append(parts, strings.TrimRight(c.Desc, ". ")+".")
	}
	if len(c.Labels) > 0 {
		parts = append(parts, fmt.Sprintf("From %s to %s.", c.Labels[0], c.Labels[len(c.Labels)-1]))
	}
	for _, s := range c.Series {
		if len(s.Values) == 0 {
			continue
		}
		hi, last, total := -1, -1, 0.0
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			total += v
			if hi < 0 || v > s.Values[hi] {
				hi = i
			}
			last = i
		}
		if hi < 0 {
			parts = append(parts, s.Name+": no data.")
			continue
		}
		label := ""
		if hi < len(c.Labels) {
			label = " on " + c.Labels[hi]
		}
		p := fmt.Sprintf("%s: highest %s%s, last %s", s.Name, c.format(s.Values[hi]), label, c.format(s.Values[last]))
		if !c.Percent {
			p += ", total " + formatNumber(total)
		}
		parts = append(parts, p+".")
	}
	return strings.Join(parts, " ")
}

// LineChartSVG renders the chart as an inline SVG image, safe to place in
// an html/template page as is (every text is escaped). Missing values (a
// series shorter than the labels) end the line there; with no values the
// chart says "No data".
func LineChartSVG(c LineChart) template.HTML {
	id := chartID(c.ID, c.Title)
	var b strings.Builder
	header(&b, id, c.Title, c.summary())
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	lo, hi := 0.0, 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if c.Percent {
		hi = 1
	} else {
		hi = niceMax(hi)
		if lo < 0 {
			lo = -niceMax(-lo)
		}
	}
	y := func(v float64) float64 { return float64(padT) + plotH*(hi-v)/(hi-lo) }
	n := len(c.Labels)
	x := func(i int) float64 {
		if n <= 1 {
			return float64(padL) + plotW/2
		}
		return float64(padL) + plotW*float64(i)/float64(n-1)
	}
	// Grid and y axis ticks.
	b.WriteString(`<g aria-hidden="true">`)
	for k := 0; k <= 4; k++ {
		v := lo + (hi-lo)*float64(k)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#dddddd"/>`, padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#333333">%s</text>`, padL-6, y(v)+4, esc(c.format(v)))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333333"/>`, padL, padL, padT, chartH-padB)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333333"/>`, padL, chartW-padR, y(math.Max(lo, 0)), y(math.Max(lo, 0)))
	// At most 6 x labels, first and last included.
	if n > 0 {
		step := (n + 4) / 5
		for i := 0; i < n; i += step {
			if i != 0 && n-1-i <= step/2 {
				break // the last label (drawn below) or too close to it
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#333333">%s</text>`, x(i), chartH-padB+16, esc(c.Labels[i]))
		}
		if n > 1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" fill="#333333">%s</text>`, x(n-1), chartH-padB+16, esc(c.Labels[n-1]))
		}
	}
	axisLabels(&b, c.XLabel, c.YLabel)
	b.WriteString(`</g>`)
	empty := true
	for si, s := range c.Series {
		col, dash := palette[si%len(palette)], dashes[si%len(dashes)]
		// One polyline per run of values between gaps.
		var runs [][]string
		var run []string
		for i, v := range s.Values {
			if i >= n {
				break
			}
			if math.IsNaN(v) {
				if len(run) > 0 {
					runs, run = append(runs, run), nil
				}
				continue
			}
			run = append(run, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		if len(run) > 0 {
			runs = append(runs, run)
		}
		dashAttr := ""
		if dash != "" {
			dashAttr = fmt.Sprintf(` stroke-dasharray="%s"`, dash)
		}
		if len(runs) > 0 {
			empty = false
		}
		fmt.Fprintf(&b, `<g><title>%s</title>`, esc(s.Name))
		for _, pts := range runs {
			if len(pts) == 1 {
				xy := strings.Split(pts[0], ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, xy[0], xy[1], col)
			} else {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.Join(pts, " "), col, dashAttr)
			}
		}
		b.WriteString(`</g>`)
		// Legend entry.
		lx := padL + si*150
		fmt.Fprintf(&b, `<g aria-hidden="true"><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d" fill="#111111">%s</text></g>`,
			lx, lx+24, chartH-30, chartH-30, col, dashAttr, lx+28, chartH-26, esc(s.Name))
	}
	if empty {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555555">No data</text>`, padL+int(plotW)/2, padT+int(plotH)/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above is escaped
}

// BarChartSVG renders horizontal bars, largest first as given, as an inline
// SVG image (every text escaped). With no bars it says "No data".
func BarChartSVG(c BarChart) template.HTML {
	id := chartID(c.ID, c.Title)
	var parts []string
	if c.Desc != "" {
		parts = append(parts, strings.TrimRight(c.Desc, ". ")+".")
	}
	for i, bar := range c.Bars {
		parts = append(parts, fmt.Sprintf("%d. %s: %s.", i+1, bar.Label, formatNumber(bar.Value)))
	}
	var b strings.Builder
	header(&b, id, c.Title, strings.Join(parts, " "))
	const labelW = 180
	plotW := float64(chartW - labelW - padR - 60)
	hi := 0.0
	for _, bar := range c.Bars {
		hi = math.Max(hi, bar.Value)
	}
	hi = niceMax(hi)
	if len(c.Bars) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555555">No data</text>`, chartW/2, chartH/2)
	}
	rowH := float64(chartH-padT-padB) / math.Max(float64(len(c.Bars)), 5)
	for i, bar := range c.Bars {
		yy := float64(padT) + rowH*float64(i)
		w := plotW * math.Max(bar.Value, 0) / hi
		label := bar.Label
		if r := []rune(label); len(r) > 26 {
			label = string(r[:25]) + "…"
		}
		fmt.Fprintf(&b, `<g><title>%s: %s</title>`, esc(bar.Label), esc(formatNumber(bar.Value)))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#111111">%s</text>`, labelW-6, yy+rowH*0.6, esc(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, labelW, yy+rowH*0.15, w, rowH*0.7, palette[0])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#111111">%s</text></g>`, float64(labelW)+w+4, yy+rowH*0.6, esc(formatNumber(bar.Value)))
	}
	b.WriteString(`<g aria-hidden="true">`)
	axisLabels(&b, c.XLabel, c.YLabel)
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above is escaped
}

// Chart is one rendered chart of the Overview, with a heading for the page.
type Chart struct {
	Name  string // the report name (points, liability, ...)
	Title string
	SVG   template.HTML
}

// Charts renders every figure of the Overview: points movements, liability,
// active users, top gifts (claims) and webhook success rate.
func (o *OverviewData) Charts() []Chart {
	days := make([]string, len(o.Points))
	var issued, spent, expired, reversed []float64
	for i, d := range o.Points {
		days[i] = d.Day
		issued = append(issued, float64(d.Issued))
		spent = append(spent, float64(d.Spent))
		expired = append(expired, float64(d.Expired))
		reversed = append(reversed, float64(d.Reversed))
	}
	var outstanding, pending []float64
	for _, d := range o.Liability {
		outstanding = append(outstanding, float64(d.Outstanding))
		pending = append(pending, float64(d.Pending))
	}
	var active []float64
	for _, d := range o.ActiveUsers {
		active = append(active, float64(d.Users))
	}
	rate := make([]float64, len(o.Webhooks))
	for i, d := range o.Webhooks {
		rate[i] = math.NaN() // no finished delivery that day: a gap
		if d.SuccessRate != nil {
			rate[i] = *d.SuccessRate
		}
	}
	bars := make([]Bar, len(o.TopGifts))
	for i, g := range o.TopGifts {
		bars[i] = Bar{Label: g.Title, Value: float64(g.Claims)}
	}
	period := fmt.Sprintf("Days in %s", o.Timezone)
	charts := []Chart{
		{Name: NamePoints, Title: "Points per day", SVG: LineChartSVG(LineChart{ID: "chart-points", Title: "Points per day",
			Desc: "Points issued, spent, expired and reversed each day", XLabel: period, YLabel: "Points", Labels: days,
			Series: []Series{{"Issued", issued}, {"Spent", spent}, {"Expired", expired}, {"Reversed", reversed}}})},
		{Name: NameLiability, Title: "Outstanding points", SVG: LineChartSVG(LineChart{ID: "chart-liability", Title: "Outstanding points",
			Desc: "Spendable points users hold at the end of each day (the program's liability), and pending points", XLabel: period,
			YLabel: "Points", Labels: days, Series: []Series{{"Outstanding", outstanding}, {"Pending", pending}}})},
		{Name: NameActiveUsers, Title: "Active users", SVG: LineChartSVG(LineChart{ID: "chart-active", Title: "Active users",
			Desc: "Users who earned or spent points each day", XLabel: period, YLabel: "Users", Labels: days,
			Series: []Series{{"Active users", active}}})},
		{Name: NameTopGifts, Title: "Top gifts", SVG: BarChartSVG(BarChart{ID: "chart-gifts", Title: "Top gifts",
			Desc: fmt.Sprintf("Gifts claimed most from %s to %s", o.From, o.To), XLabel: "Claims", Bars: bars})},
	}
	desc := "Share of each day's webhook delivery attempts that the endpoint acknowledged (2xx); days without attempts are gaps"
	charts = append(charts, Chart{Name: NameWebhooks, Title: "Webhook success rate", SVG: LineChartSVG(LineChart{ID: "chart-webhooks",
		Title: "Webhook success rate", Desc: desc, XLabel: period, YLabel: "Success rate", Labels: days, Percent: true,
		Series: []Series{{"Success rate", rate}}})})
	return charts
}
