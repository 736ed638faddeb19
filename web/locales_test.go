package web_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	// tCall is a t('key', …) call of the webview's scripts: keys are
	// single-quoted literals (never built), so this finds every one.
	tCall = regexp.MustCompile(`\bt\('((?:[^'\\]|\\.)*)'`)
	// htmlTag is an opening tag with its attributes.
	htmlTag     = regexp.MustCompile(`<(\w+)\b([^>]*)>`)
	i18nText    = regexp.MustCompile(`\sdata-i18n(\s|$)`)
	i18nAttr    = regexp.MustCompile(`data-i18n-attr="([^"]+)"`)
	placeholder = regexp.MustCompile(`\{(\w+)\}`)
	localesList = regexp.MustCompile(`export const LOCALES = \[([^\]]*)\]`)
)

// webviewKeys lists the interface strings of the consumer webview: the
// t() keys of its scripts and the data-i18n texts and attributes of its
// page.
func webviewKeys(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	scripts, err := filepath.Glob("consumer/*.js")
	require.NoError(t, err)
	require.NotEmpty(t, scripts)
	for _, f := range scripts {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range tCall.FindAllStringSubmatch(string(b), -1) {
			set[strings.ReplaceAll(m[1], `\'`, `'`)] = true
		}
	}
	b, err := os.ReadFile("consumer/index.html")
	require.NoError(t, err)
	h := string(b)
	for _, m := range htmlTag.FindAllStringSubmatchIndex(h, -1) {
		attrs := h[m[4]:m[5]]
		if i18nText.MatchString(attrs + " ") {
			end := strings.IndexByte(h[m[1]:], '<')
			require.GreaterOrEqual(t, end, 0)
			key := strings.TrimSpace(h[m[1] : m[1]+end])
			require.NotEmpty(t, key, "a data-i18n element without text: <%s%s>", h[m[2]:m[3]], attrs)
			set[key] = true
		}
		if am := i18nAttr.FindStringSubmatch(attrs); am != nil {
			for _, a := range strings.Fields(am[1]) {
				v := regexp.MustCompile(`\s` + regexp.QuoteMeta(a) + `="([^"]*)"`).FindStringSubmatch(attrs)
				require.NotNil(t, v, "data-i18n-attr names %s, which <%s> lacks", a, h[m[2]:m[3]])
				set[v[1]] = true
			}
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func placeholders(s string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestWebviewLocalesHaveEveryKey: every catalog under
// web/consumer/locales/ translates every interface string of the webview,
// and nothing else, with the same {placeholders}; LOCALES in i18n.js
// lists exactly the catalogs.
func TestWebviewLocalesHaveEveryKey(t *testing.T) {
	t.Parallel()
	keys := webviewKeys(t)
	require.Greater(t, len(keys), 100, "the webview's strings are found")
	files, err := filepath.Glob("consumer/locales/*.json")
	require.NoError(t, err)
	var tags []string
	for _, f := range files {
		tag := strings.TrimSuffix(filepath.Base(f), ".json")
		tags = append(tags, tag)
		t.Run(tag, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			var catalog map[string]string
			require.NoError(t, json.Unmarshal(b, &catalog), "%s is a JSON object of strings", f)
			var missing, extra, empty, badVars []string
			for _, k := range keys {
				v, ok := catalog[k]
				switch {
				case !ok:
					missing = append(missing, k)
				case strings.TrimSpace(v) == "":
					empty = append(empty, k)
				case !slices.Equal(placeholders(k), placeholders(v)):
					badVars = append(badVars, k+" → "+v)
				}
			}
			for k := range catalog {
				if !slices.Contains(keys, k) {
					extra = append(extra, k)
				}
			}
			require.Empty(t, missing, "%s lacks these keys", f)
			require.Empty(t, extra, "%s has keys the webview no longer uses", f)
			require.Empty(t, empty, "%s leaves these empty", f)
			require.Empty(t, badVars, "%s changes the placeholders of", f)
		})
	}
	require.Contains(t, tags, "en")
	require.GreaterOrEqual(t, len(tags), 2, "English and at least one more language")
	b, err := os.ReadFile("consumer/i18n.js")
	require.NoError(t, err)
	m := localesList.FindStringSubmatch(string(b))
	require.NotNil(t, m)
	var listed []string
	for _, s := range strings.Split(m[1], ",") {
		listed = append(listed, strings.Trim(strings.TrimSpace(s), `'"`))
	}
	sort.Strings(listed)
	require.Equal(t, tags, listed, "LOCALES in i18n.js lists exactly the catalogs")
}
