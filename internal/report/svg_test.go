package report_test

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/report"
)

// element is a parsed SVG node.
type element struct {
	Name     string
	Attr     map[string]string
	Text     string
	Children []*element
}

func parseSVG(t *testing.T, s string) *element {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true
	var stack []*element
	var root *element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "the chart is well-formed XML")
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{Name: tok.Name.Local, Attr: map[string]string{}}
			for _, a := range tok.Attr {
				e.Attr[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			}
		}
	}
	require.NotNil(t, root)
	return root
}

func (e *element) all(name string) []*element {
	var out []*element
	for _, c := range e.Children {
		if c.Name == name {
			out = append(out, c)
		}
		out = append(out, c.all(name)...)
	}
	return out
}

func (e *element) texts() []string {
	var out []string
	for _, t := range e.all("text") {
		out = append(out, t.Text)
	}
	return out
}

// TestLineChartSVG: an accessible image (role, title and description that
// state the figures, axis labels), escaped text, no script, no inline style,
// one line per series, gaps for missing values.
func TestLineChartSVG(t *testing.T) {
	t.Parallel()
	svg := string(report.LineChartSVG(report.LineChart{
		Title: `Points <per> "day"`, Desc: "Points issued & spent", XLabel: "Day", YLabel: "Points",
		Labels: []string{"2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"},
		Series: []report.Series{
			{Name: "Issued", Values: []float64{10, 1500, math.NaN(), 20}},
			{Name: "<script>alert(1)</script>", Values: []float64{1, 2, 3, 4}},
		},
	}))
	root := parseSVG(t, svg)
	require.Equal(t, "svg", root.Name)
	require.Equal(t, "img", root.Attr["role"])
	ids := strings.Fields(root.Attr["aria-labelledby"])
	require.Len(t, ids, 2)
	title, desc := root.all("title")[0], root.all("desc")[0]
	require.Equal(t, ids[0], title.Attr["id"])
	require.Equal(t, ids[1], desc.Attr["id"])
	require.Equal(t, `Points <per> "day"`, title.Text)
	require.Contains(t, desc.Text, "Points issued & spent.")
	require.Contains(t, desc.Text, "From 2026-03-01 to 2026-03-04.")
	require.Contains(t, desc.Text, "Issued: highest 1,500 on 2026-03-02, last 20, total 1,530.")
	require.Contains(t, root.texts(), "Day")
	require.Contains(t, root.texts(), "Points")
	require.Contains(t, root.texts(), "2026-03-01")
	require.Contains(t, root.texts(), "2026-03-04")
	require.Contains(t, root.texts(), "2,000", "the y axis ends at a round value above the highest")

	require.Empty(t, root.all("script"))
	require.NotContains(t, svg, "<script>")
	require.NotContains(t, svg, "style=")
	require.NotContains(t, strings.Replace(svg, `xmlns="http://www.w3.org/2000/svg"`, "", 1), "http",
		"no external reference but the SVG namespace")
	require.Len(t, root.all("text"), 1+5+4+2+2, "title, y ticks, x labels once each, axis labels, legend")
	// The NaN breaks the first series in two runs: a line and a point.
	require.Len(t, root.all("polyline"), 2)
	require.Len(t, root.all("circle"), 1)
}

func TestLineChartSVGPercentAndEmpty(t *testing.T) {
	t.Parallel()
	root := parseSVG(t, string(report.LineChartSVG(report.LineChart{Title: "Rate", Labels: []string{"a", "b"}, Percent: true,
		Series: []report.Series{{Name: "Success", Values: []float64{0.5, 1}}}})))
	require.Contains(t, root.texts(), "100.0%")
	require.Contains(t, root.all("desc")[0].Text, "Success: highest 100.0% on b, last 100.0%.")

	empty := parseSVG(t, string(report.LineChartSVG(report.LineChart{Title: "Nothing", Labels: []string{"a"},
		Series: []report.Series{{Name: "Rate", Values: []float64{math.NaN()}}}})))
	require.Contains(t, empty.texts(), "No data")
	require.Contains(t, empty.all("desc")[0].Text, "Rate: no data.")

	// Labels: one day, and a year (at most 6 labels, the last included).
	one := parseSVG(t, string(report.LineChartSVG(report.LineChart{Title: "One", Labels: []string{"d"}, Series: []report.Series{{Name: "x", Values: []float64{1}}}})))
	require.Len(t, one.all("circle"), 1)
	labels := make([]string, 366)
	values := make([]float64, 366)
	for i := range labels {
		labels[i] = "L" + strconv.Itoa(i)
	}
	year := parseSVG(t, string(report.LineChartSVG(report.LineChart{Title: "Year", Labels: labels, Series: []report.Series{{Name: "x", Values: values}}})))
	var xs []string
	for _, s := range year.texts() {
		if strings.HasPrefix(s, "L") {
			xs = append(xs, s)
		}
	}
	require.LessOrEqual(t, len(xs), 6)
	require.Equal(t, "L0", xs[0])
	require.Equal(t, "L365", xs[len(xs)-1])
}

func TestBarChartSVG(t *testing.T) {
	t.Parallel()
	root := parseSVG(t, string(report.BarChartSVG(report.BarChart{ID: "gifts", Title: "Top gifts", Desc: "Claims",
		Bars: []report.Bar{{Label: "Coffee & cake", Value: 1200}, {Label: "Tea", Value: 300}}})))
	require.Equal(t, "gifts-title gifts-desc", root.Attr["aria-labelledby"])
	require.Equal(t, "Claims. 1. Coffee & cake: 1,200. 2. Tea: 300.", root.all("desc")[0].Text)
	require.Len(t, root.all("rect"), 3, "the background and a bar each")
	require.Contains(t, root.texts(), "Coffee & cake")

	empty := parseSVG(t, string(report.BarChartSVG(report.BarChart{Title: "Top gifts"})))
	require.Contains(t, empty.texts(), "No data")
}

// TestOverviewCharts: the Overview renders its five charts with distinct
// ids, so they can share a page.
func TestOverviewCharts(t *testing.T) {
	t.Parallel()
	rate := 0.75
	o := &report.OverviewData{From: "2026-03-01", To: "2026-03-02", Timezone: "UTC",
		Points:      []report.PointsDay{{Day: "2026-03-01", Issued: 5}, {Day: "2026-03-02", Spent: 2}},
		Liability:   []report.LiabilityDay{{Day: "2026-03-01", Outstanding: 5}, {Day: "2026-03-02", Outstanding: 3}},
		ActiveUsers: []report.ActiveDay{{Day: "2026-03-01", Users: 1}, {Day: "2026-03-02", Users: 1}},
		TopGifts:    []report.GiftRow{{SKU: "A", Title: "Coffee", Claims: 1}},
		Webhooks:    []report.WebhookDay{{Day: "2026-03-01"}, {Day: "2026-03-02", SuccessRate: &rate}},
	}
	charts := o.Charts()
	require.Len(t, charts, 5)
	seen := map[string]bool{}
	for i, c := range charts {
		require.Equal(t, report.Names[i], c.Name)
		root := parseSVG(t, string(c.SVG))
		id := root.all("title")[0].Attr["id"]
		require.False(t, seen[id], "chart ids are unique on the page")
		seen[id] = true
	}
	require.Contains(t, string(charts[4].SVG), "Success rate: highest 75.0% on 2026-03-02")
}
