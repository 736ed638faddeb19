// Package web serves the pages embedded in the binary: the consumer
// webview at /consumer (seed 000 step 4), its assets under /assets/, and
// the demo partners' logos under /uploads/partners/. The pages are plain
// HTML, CSS and JavaScript modules; they talk only to the public API
// (GraphQL). The merchant till is the merchant portal
// (internal/merchantportal).
//
// Every answer carries a strict Content-Security-Policy (no inline script
// or style, same-origin connections only), Referrer-Policy: no-referrer
// and X-Content-Type-Options: nosniff. Who may frame the webview is the
// partner's frame_ancestors list, chosen with /consumer?partner=<slug>;
// without it, nobody may.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

//go:embed consumer shared uploads
var files embed.FS

// ConsumerPath is the webview's path. The merchant page that once lived
// at /merchant (staff pasted the merchant's API key into it) is now the
// signed-in merchant portal, internal/merchantportal.
const ConsumerPath = "/consumer"

// Options configure the pages.
type Options struct {
	// FrameAncestors returns the CSP frame-ancestors sources of the partner
	// with this slug, already validated (partner.ValidateFrameAncestors);
	// nil or empty when it has none. An unknown slug is not an error: it
	// gets none. Nil Options.FrameAncestors means nobody may frame the
	// webview.
	FrameAncestors func(ctx context.Context, slug string) ([]string, error)
	Log            *slog.Logger
}

// asset is one embedded file with what its answers need.
type asset struct {
	name        string
	body        []byte
	contentType string
	etag        string
}

// assets are the embedded files by URL path, read once.
var assets = loadAssets()

func loadAssets() map[string]*asset {
	out := map[string]*asset{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		case ".png":
			ct = "image/png"
		}
		sum := sha256.Sum256(b)
		out[p] = &asset{name: p, body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("web: reading embedded files: " + err.Error())
	}
	return out
}

// CSP returns the Content-Security-Policy of the pages with the given
// frame-ancestors sources (none when empty). Images may come from https
// anywhere (gift and ad pictures are partner URLs) and data: URLs;
// everything else only from this origin; no inline code; DOM sinks such as
// innerHTML are disabled by Trusted Types.
func CSP(frameAncestors []string) string {
	fa := "'none'"
	if len(frameAncestors) > 0 {
		fa = strings.Join(frameAncestors, " ")
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; " +
		"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; " +
		"frame-ancestors " + fa + "; require-trusted-types-for 'script'; trusted-types 'none'"
}

// securityHeaders sets the headers every web answer carries.
func securityHeaders(h http.Header, frameAncestors []string) {
	h.Set("Content-Security-Policy", CSP(frameAncestors))
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	if len(frameAncestors) == 0 {
		h.Set("X-Frame-Options", "DENY") // for browsers without CSP frame-ancestors
	}
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Register mounts the pages and their assets on mux.
func Register(mux *http.ServeMux, o Options) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	consumer := o.page("consumer/index.html", true)
	mux.Handle("GET "+ConsumerPath, consumer)
	mux.Handle("GET "+ConsumerPath+"/{$}", consumer)
	mux.HandleFunc("GET /assets/{path...}", func(w http.ResponseWriter, r *http.Request) {
		p := r.PathValue("path")
		// Pages are served only at their routes, with their headers.
		if path.Ext(p) == ".html" {
			notFound(w)
			return
		}
		serveAsset(w, r, assets[p], "no-cache")
	})
	mux.HandleFunc("GET /uploads/partners/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, assets["uploads/partners/"+r.PathValue("file")], "public, max-age=3600")
	})
}

// page serves one HTML page. The consumer page takes the partner's
// frame-ancestors from ?partner=<slug>; the page itself never varies
// otherwise and is not cached (its headers depend on the partner's
// current settings).
func (o Options) page(name string, framed bool) http.Handler {
	a := assets[name]
	if a == nil {
		panic("web: missing page " + name)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ancestors []string
		if slug := r.URL.Query().Get("partner"); framed && slug != "" && o.FrameAncestors != nil && slugRE.MatchString(slug) {
			list, err := o.FrameAncestors(r.Context(), slug)
			if err != nil {
				// Fail closed: nobody may frame the page.
				o.Log.WarnContext(r.Context(), "webview frame-ancestors lookup failed", "partner", slug, "error", err.Error())
				list = nil
			}
			ancestors = list
		}
		h := w.Header()
		securityHeaders(h, ancestors)
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", a.contentType)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

// serveAsset answers an embedded file with its ETag (so a revalidation
// costs a 304) and the strict headers.
func serveAsset(w http.ResponseWriter, r *http.Request, a *asset, cache string) {
	if a == nil {
		notFound(w)
		return
	}
	h := w.Header()
	securityHeaders(h, nil)
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cache)
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func notFound(w http.ResponseWriter) {
	h := w.Header()
	securityHeaders(h, nil)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("not found\n"))
}
