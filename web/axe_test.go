package web_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core 4.10.2 (MPL-2.0, web/testdata/axe/LICENSE),
// vendored so the accessibility checks run offline and never change under
// us between runs.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// axeViolation is the part of an axe-core result a failure message needs.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// axe runs axe-core on the page as it is now and fails the test on any
// serious or critical violation, naming the rule, the elements and the
// state.
func (p *page) axe(state string) {
	p.t.Helper()
	if bad := p.axeViolations(state); len(bad) > 0 {
		p.shot("axe-" + state)
		p.t.Fatalf("axe-core on %s (%s): %d serious or critical violation(s):\n  %s", p.name, state, len(bad), strings.Join(bad, "\n  "))
	}
}

// axeViolations runs axe-core (WCAG 2.0/2.1 A and AA rules plus axe's best
// practices) and describes each serious or critical violation. The script
// is evaluated through the DevTools protocol with the page's CSP bypassed,
// so no page needs to allow inline or foreign script for it.
func (p *page) axeViolations(state string) []string {
	p.t.Helper()
	var raw string
	p.run("axe: "+state, chromedp.ActionFunc(func(ctx context.Context) error {
		if err := cdppage.SetBypassCSP(true).Do(ctx); err != nil {
			return err
		}
		if _, exc, err := runtime.Evaluate(axeSource).Do(ctx); err != nil {
			return err
		} else if exc != nil {
			return fmt.Errorf("loading axe-core: %s", exc.Text)
		}
		res, exc, err := runtime.Evaluate(`axe.run(document, {resultTypes: ["violations"],
			runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
			.then(r => JSON.stringify(r.violations))`).WithAwaitPromise(true).Do(ctx)
		if err != nil {
			return err
		}
		if exc != nil {
			return fmt.Errorf("axe.run: %s", exc.Text)
		}
		return json.Unmarshal(res.Value, &raw)
	}))
	var violations []axeViolation
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		p.t.Fatalf("axe %s: %v", state, err)
	}
	var bad []string
	for _, v := range violations {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprint(n.Target...)+" "+n.HTML)
		}
		bad = append(bad, fmt.Sprintf("%s (%s): %s\n    %s", v.ID, v.Impact, v.Help, strings.Join(where, "\n    ")))
	}
	return bad
}
