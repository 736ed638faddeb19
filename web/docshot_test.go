package web_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// docShot saves the page as the screenshot docs/<file> shows, only when
// PERKS_UPDATE_DOC_SHOTS=1 (`PERKS_UPDATE_DOC_SHOTS=1 go test ./web`).
// width 0 keeps the test's 360 px window; scrollTo, when set, brings that
// element into view first.
func docShot(p *page, file string, width int64, scrollTo string) {
	p.t.Helper()
	if os.Getenv("PERKS_UPDATE_DOC_SHOTS") != "1" {
		return
	}
	var acts []chromedp.Action
	if width > 0 {
		acts = append(acts, chromedp.EmulateViewport(width, 900))
	}
	if scrollTo != "" {
		acts = append(acts, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: "start"})`, scrollTo), nil))
	}
	var buf []byte
	acts = append(acts, chromedp.CaptureScreenshot(&buf))
	if width > 0 {
		acts = append(acts, chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile))
	}
	p.run("doc screenshot "+file, acts...)
	require.NoError(p.t, os.WriteFile(filepath.Join("..", "docs", file), buf, 0o644))
}
