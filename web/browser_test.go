package web_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The browser tests drive Debian's Chromium headless through the DevTools
// protocol (chromedp). One browser serves the whole test binary; every
// test gets its own browser context (separate storage, like a private
// window) with one or more tabs, a 360x740 viewport and a bounded
// deadline. Each step is screenshotted; on failure the screenshots' paths,
// the page's console and the application log are printed.

// browserTimeout bounds one browser test.
const browserTimeout = 60 * time.Second

// errNoChromium is what a machine without Chromium is told.
//
//lint:ignore ST1005 the message starts with the program's name, as users search for it
var errNoChromium = errors.New("Chromium not found: install it with `apt-get install -y chromium` " +
	"(scripts/install-deps.sh does it), or point CHROME_PATH at a Chromium or Chrome binary")

// findChromium returns the browser to drive: $CHROME_PATH, else the first
// of chromium, chromium-browser, google-chrome on the PATH.
func findChromium(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if p := getenv("CHROME_PATH"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHROME_PATH=%s: %w; %w", p, err, errNoChromium)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := lookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errNoChromium
}

// chromiumFlags are exactly the flags; the user data directory is
// added per browser.
var chromiumFlags = []string{"headless", "no-sandbox", "disable-gpu", "disable-background-networking", "disable-component-update", "disable-sync"}

var shared struct {
	once    sync.Once
	ctx     context.Context
	cancel  func()
	dataDir string
	err     error
}

// TestMain closes the shared browser and removes its profile.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
	}
	// Chromium's helper processes may still write a file or two while
	// the browser exits: retry for a moment.
	for i := 0; shared.dataDir != "" && i < 30; i++ {
		if err := os.RemoveAll(shared.dataDir); err == nil {
			if _, err := os.Stat(shared.dataDir); os.IsNotExist(err) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Exit(code)
}

// browserContext starts the shared browser once (with a fresh profile
// directory) and returns its context.
func browserContext(t *testing.T) context.Context {
	t.Helper()
	shared.once.Do(func() {
		path, err := findChromium(os.Getenv, exec.LookPath)
		if err != nil {
			shared.err = err
			return
		}
		dir, err := os.MkdirTemp("", "perks-chromium-profile-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dataDir = dir
		opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(dir)}
		for _, f := range chromiumFlags {
			opts = append(opts, chromedp.Flag(f, true))
		}
		allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		shared.ctx = ctx
		shared.cancel = func() { cancel(); allocCancel() }
		// The first Run starts the browser; no deadline on it, or the
		// deadline would end the browser with it.
		if err := chromedp.Run(ctx); err != nil {
			shared.err = fmt.Errorf("start %s: %w", path, err)
		}
	})
	if shared.err != nil {
		t.Fatalf("browser tests need Chromium: %v", shared.err)
	}
	return shared.ctx
}

// steps records one test's screenshots and console output.
type steps struct {
	t   *testing.T
	dir string

	mu      sync.Mutex
	n       int
	shots   []string
	console []string
	bad     []string // exceptions and CSP violations
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func newSteps(t *testing.T) *steps {
	s := &steps{t: t}
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		s.dir = t.ArtifactDir() // kept by go test -artifacts
	} else {
		dir, err := os.MkdirTemp("", "perks-browser-"+unsafeName.ReplaceAllString(t.Name(), "_")+"-")
		require.NoError(t, err)
		s.dir = dir
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !t.Failed() {
			if !strings.Contains(s.dir, "perks-browser-") {
				return
			}
			_ = os.RemoveAll(s.dir)
			return
		}
		t.Logf("screenshots of each step (kept):\n  %s", strings.Join(s.shots, "\n  "))
		if len(s.console) > 0 {
			t.Logf("browser console:\n  %s", strings.Join(s.console, "\n  "))
		}
	})
	return s
}

// page is one browser tab.
type page struct {
	t         *testing.T
	ctx       context.Context
	name      string
	steps     *steps
	browserID cdp.BrowserContextID
}

// newPage opens a tab in a new browser context (its own storage, like a
// private window) for the test.
func newPage(t *testing.T, s *steps) *page {
	t.Helper()
	bctx := browserContext(t)
	bx := cdp.WithExecutor(bctx, chromedp.FromContext(bctx).Browser)
	id, err := target.CreateBrowserContext().Do(bx)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(bx, 5*time.Second)
		defer cancel()
		_ = target.DisposeBrowserContext(id).Do(ctx)
	})
	return openTab(t, s, id, "consumer")
}

// newTab opens another tab in the same browser context as p.
func (p *page) newTab(name string) *page {
	p.t.Helper()
	return openTab(p.t, p.steps, p.browserID, name)
}

func openTab(t *testing.T, s *steps, browserID cdp.BrowserContextID, name string) *page {
	t.Helper()
	// New headless Chromium opens the first tab of a browser context only
	// in a new window, so the tab is created here rather than by chromedp.
	bctx := browserContext(t)
	bx := cdp.WithExecutor(bctx, chromedp.FromContext(bctx).Browser)
	id, err := target.CreateTarget("about:blank").WithBrowserContextID(browserID).WithNewWindow(true).Do(bx)
	require.NoError(t, err)
	tabCtx, cancel := chromedp.NewContext(bctx, chromedp.WithTargetID(id))
	t.Cleanup(cancel)
	chromedp.ListenTarget(tabCtx, func(ev any) {
		var line string
		bad := false
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			line = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				line += " " + ev.ExceptionDetails.Exception.Description
			}
			bad = true
		case *cdplog.EventEntryAdded:
			line = fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			bad = strings.Contains(ev.Entry.Text, "Content Security Policy") || strings.Contains(ev.Entry.Text, "Trusted Type")
		default:
			return
		}
		s.mu.Lock()
		s.console = append(s.console, "["+name+"] "+line)
		if bad {
			s.bad = append(s.bad, "["+name+"] "+line)
		}
		s.mu.Unlock()
	})
	// Create the tab (no deadline on the first Run), then bound the test.
	require.NoError(t, chromedp.Run(tabCtx,
		cdplog.Enable(),
		network.Enable(),
		// Gift and ad pictures are partner URLs on the internet: never fetch them.
		network.SetBlockedURLs([]string{"*://*.example.test/*", "*://*.example.com/*"}),
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
	))
	ctx, cancel := context.WithTimeout(tabCtx, browserTimeout)
	t.Cleanup(cancel)
	return &page{t: t, ctx: ctx, name: name, steps: s, browserID: browserID}
}

// run runs actions and fails the test (with a screenshot) on error.
func (p *page) run(what string, actions ...chromedp.Action) {
	p.t.Helper()
	if err := chromedp.Run(p.ctx, actions...); err != nil {
		p.shot("failed-" + what)
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// shot saves a full-page screenshot of the current step.
func (p *page) shot(name string) {
	p.t.Helper()
	var buf []byte
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 10*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&buf, 100)); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	s := p.steps
	s.mu.Lock()
	s.n++
	file := filepath.Join(s.dir, fmt.Sprintf("%02d-%s-%s.png", s.n, p.name, unsafeName.ReplaceAllString(name, "_")))
	s.shots = append(s.shots, file)
	s.mu.Unlock()
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
	}
}

// text returns the text of the first node matching sel (waiting for it).
func (p *page) text(sel string) string {
	p.t.Helper()
	var s string
	p.run("read "+sel, chromedp.Text(sel, &s, chromedp.NodeVisible))
	return strings.TrimSpace(s)
}

// waitText waits until the text of sel contains want.
func (p *page) waitText(sel, want string) {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const n = document.querySelector(%q); return !!n && n.getClientRects().length > 0 && n.textContent.includes(%q); })()`, sel, want)
	p.run(fmt.Sprintf("wait for %q in %s", want, sel), chromedp.Poll(js, nil, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0)))
}

// eval evaluates a JavaScript expression into out.
func (p *page) eval(js string, out any) {
	p.t.Helper()
	p.run("evaluate "+js, chromedp.Evaluate(js, out))
}

// clean fails the test if the page threw or violated its CSP.
func (s *steps) clean() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Empty(s.t, s.bad, "the pages threw exceptions or violated their Content-Security-Policy")
}

func TestFindChromium(t *testing.T) {
	t.Parallel()
	none := func(string) (string, error) { return "", exec.ErrNotFound }
	noEnv := func(string) string { return "" }

	_, err := findChromium(noEnv, none)
	require.ErrorIs(t, err, errNoChromium)
	require.Contains(t, err.Error(), "apt-get install -y chromium")

	p, err := findChromium(noEnv, func(name string) (string, error) {
		if name == "chromium-browser" {
			return "/usr/bin/chromium-browser", nil
		}
		return "", exec.ErrNotFound
	})
	require.NoError(t, err)
	require.Equal(t, "/usr/bin/chromium-browser", p)

	_, err = findChromium(func(string) string { return "/nonexistent/chrome" }, none)
	require.ErrorIs(t, err, errNoChromium)
	self, _ := os.Executable()
	p, err = findChromium(func(string) string { return self }, none)
	require.NoError(t, err)
	require.Equal(t, self, p)
}
