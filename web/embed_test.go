package web

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEmbeddedFilesStayWithinTheCSP reads every embedded page, script and
// stylesheet: no inline code or style the CSP would refuse, no HTML string
// sinks, no storage that could keep a token or a key, nothing loaded from
// another origin (no CDN).
func TestEmbeddedFilesStayWithinTheCSP(t *testing.T) {
	t.Parallel()
	var seen []string
	forbidden := map[string]*regexp.Regexp{
		".html": regexp.MustCompile(`(?i)\sstyle\s*=|\son[a-z]+\s*=|<style|javascript:|https?://`),
		".js":   regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|localStorage|sessionStorage|document\.cookie|indexedDB|\.style\.|setAttribute\(\s*'style'|https?://[a-z]`),
		".css":  regexp.MustCompile(`@import|url\(|https?://`),
	}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		re := forbidden[path.Ext(p)]
		if re == nil {
			return nil
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(b)
		if path.Ext(p) == ".js" {
			text = stripComments(text)
		}
		seen = append(seen, p)
		require.Empty(t, re.FindAllString(text, -1), "%s", p)
		for _, tag := range scriptTag.FindAllString(text, -1) {
			require.Contains(t, tag, ` src="/assets/`, "%s: inline script %s", p, tag)
		}
		require.NotRegexp(t, `<script[^>]*>[^<]`, text, "%s: inline script", p)
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, seen, "consumer/index.html")
	for _, page := range []string{"consumer/index.html"} {
		require.Contains(t, assets, page)
	}
}

var scriptTag = regexp.MustCompile(`(?i)<script[^>]*>`)

var lineComment = regexp.MustCompile(`(?m)^\s*//.*$|\s//\s.*$`)

// stripComments drops // comment lines (the files' prose may mention the
// things the check forbids in code).
func stripComments(s string) string {
	return lineComment.ReplaceAllString(s, "")
}

func TestCSP(t *testing.T) {
	t.Parallel()
	require.True(t, strings.HasSuffix(strings.Split(CSP(nil), "; require-trusted-types")[0], "frame-ancestors 'none'"))
	require.Contains(t, CSP([]string{"'self'", "https://a.example"}), "frame-ancestors 'self' https://a.example;")
}
