package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestAxeFindsViolations keeps the accessibility check honest: a page with
// an unlabelled input and an image without text must fail it.
func TestAxeFindsViolations(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><title>t</title><main><img src="data:,"><input type="text"></main></html>`))
	}))
	t.Cleanup(srv.Close)
	steps := newSteps(t)
	p := newPage(t, steps)
	p.run("open", chromedp.Navigate(srv.URL), chromedp.WaitReady("main"))
	bad := p.axeViolations("bad page")
	require.Len(t, bad, 2, "axe-core must find the image without text and the unlabelled input")
	require.Contains(t, bad[0]+bad[1], "image-alt")
	require.Contains(t, bad[0]+bad[1], "label")
	steps.clean()
}
