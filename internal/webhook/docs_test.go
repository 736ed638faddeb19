package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/webhook"
)

func readDocs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/webhooks.md")
	require.NoError(t, err)
	return string(b)
}

// snippet returns the code block that follows <!-- snippet:name -->.
func snippet(t *testing.T, doc, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- snippet:"+name+" -->\n")
	require.True(t, ok, "docs/webhooks.md has no %s snippet", name)
	_, rest, _ = strings.Cut(rest, "\n") // the opening fence
	code, _, ok := strings.Cut(rest, "\n```")
	require.True(t, ok)
	return code + "\n"
}

// TestDocsCatalogCoversEveryEventType: each type a partner can subscribe to
// has its section.
func TestDocsCatalogCoversEveryEventType(t *testing.T) {
	t.Parallel()
	doc := readDocs(t)
	for _, typ := range event.Types {
		require.Contains(t, doc, "### `"+typ+"`\n", "docs/webhooks.md documents %s", typ)
	}
}

// TestDocsPublishTheRetrySchedule: the table in the docs is the schedule
// the worker uses.
func TestDocsPublishTheRetrySchedule(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("| Attempt | Delay after the previous attempt | Since the first attempt |\n|---|---|---|\n| 1 | — | 0 |\n")
	var total time.Duration
	for i, d := range webhook.RetrySchedule {
		total += d
		fmt.Fprintf(&b, "| %d | %s | %s |\n", i+2, short(d), days(total))
	}
	require.Contains(t, readDocs(t), b.String())
	require.Len(t, webhook.RetrySchedule, webhook.MaxAttempts-1)
	require.InDelta(t, 3*24, total.Hours(), 6, "about three days")
}

// short renders 2m0s as 2m and 1h0m0s as 1h.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n == 0 {
		return short(d)
	}
	return fmt.Sprintf("%dd %s", n, short(d-time.Duration(n)*24*time.Hour))
}

// TestDocsSnippetsVerifyRealDeliveries runs the verification snippets of
// the docs (Node, Python, Go, openssl) against signatures made by the
// sender, during a rotation (two signatures), and checks that a tampered
// body fails.
func TestDocsSnippetsVerifyRealDeliveries(t *testing.T) {
	t.Parallel()
	doc := readDocs(t)
	oldSecret := webhook.EncodeSecret(bytes.Repeat([]byte{7}, 32))
	newSecret := webhook.EncodeSecret(bytes.Repeat([]byte{9}, 32))
	oldKey, _ := webhook.DecodeSecret(oldSecret)
	newKey, _ := webhook.DecodeSecret(newSecret)
	id := "0b9e7a52-6c1f-4f8e-9a0d-3e2b1c4d5f60"
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	body := `{"id":"0b9e7a52-6c1f-4f8e-9a0d-3e2b1c4d5f60","type":"user.created","data":{"name":"Zoë 100%"}}`
	sig := webhook.Sign([][]byte{newKey, oldKey}, id, now, []byte(body))
	headers, _ := json.Marshal(map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig})
	dir := t.TempDir()

	type run struct {
		name string
		cmd  func(secret, body string) *exec.Cmd
	}
	var runs []run
	if _, err := exec.LookPath("node"); err == nil {
		file := filepath.Join(dir, "verify.mjs")
		require.NoError(t, os.WriteFile(file, []byte(snippet(t, doc, "node")+`
import { readFileSync } from 'node:fs';
verify(process.env.SECRET, JSON.parse(process.env.HEADERS), readFileSync(0));
`), 0o600))
		runs = append(runs, run{"node", func(secret, body string) *exec.Cmd {
			c := exec.Command("node", file)
			c.Env = append(os.Environ(), "SECRET="+secret, "HEADERS="+string(headers))
			c.Stdin = strings.NewReader(body)
			return c
		}})
	} else {
		t.Log("node not installed: Node snippet not run")
	}
	if _, err := exec.LookPath("python3"); err == nil {
		file := filepath.Join(dir, "verify.py")
		require.NoError(t, os.WriteFile(file, []byte(snippet(t, doc, "python")+`
import os, sys
verify(os.environ["SECRET"], json.loads(os.environ["HEADERS"]), sys.stdin.buffer.read())
`), 0o600))
		runs = append(runs, run{"python", func(secret, body string) *exec.Cmd {
			c := exec.Command("python3", file)
			c.Env = append(os.Environ(), "SECRET="+secret, "HEADERS="+string(headers))
			c.Stdin = strings.NewReader(body)
			return c
		}})
	} else {
		t.Log("python3 not installed: Python snippet not run")
	}
	goDir := filepath.Join(dir, "gosnippet")
	require.NoError(t, os.MkdirAll(goDir, 0o700))
	goSrc := strings.Replace(snippet(t, doc, "go"), "package perkshook", "package main", 1)
	goSrc = strings.Replace(goSrc, "import (", "import (\n\t\"encoding/json\"\n\t\"io\"\n\t\"os\"", 1) + `
func main() {
	var hs map[string]string
	_ = json.Unmarshal([]byte(os.Getenv("HEADERS")), &hs)
	h := http.Header{}
	for k, v := range hs {
		h.Set(k, v)
	}
	body, _ := io.ReadAll(os.Stdin)
	if err := Verify(os.Getenv("SECRET"), h, body, 5*time.Minute); err != nil {
		println(err.Error())
		os.Exit(1)
	}
}
`
	require.NoError(t, os.WriteFile(filepath.Join(goDir, "main.go"), []byte(goSrc), 0o600))
	goBin := filepath.Join(dir, "verify-go")
	build := exec.Command("go", "build", "-o", goBin, "main.go")
	build.Dir = goDir
	build.Env = append(os.Environ(), "GO111MODULE=off", "GOFLAGS=")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "the Go snippet compiles: %s", out)
	runs = append(runs, run{"go", func(secret, body string) *exec.Cmd {
		c := exec.Command(goBin)
		c.Env = append(os.Environ(), "SECRET="+secret, "HEADERS="+string(headers))
		c.Stdin = strings.NewReader(body)
		return c
	}})

	for _, r := range runs {
		for _, secret := range []string{oldSecret, newSecret} {
			out, err := r.cmd(secret, body).CombinedOutput()
			require.NoError(t, err, "%s snippet rejects a valid delivery: %s", r.name, out)
		}
		_, err := r.cmd(newSecret, strings.Replace(body, "100%", "101%", 1)).CombinedOutput()
		require.Error(t, err, "%s snippet accepts a tampered body", r.name)
		_, err = r.cmd(webhook.EncodeSecret(make([]byte, 32)), body).CombinedOutput()
		require.Error(t, err, "%s snippet accepts another secret", r.name)
	}

	// openssl prints the signature for one secret.
	for _, c := range []struct {
		secret string
		key    []byte
	}{{oldSecret, oldKey}, {newSecret, newKey}} {
		cmd := exec.Command("bash", "-c", snippet(t, doc, "openssl"))
		cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/local/bin", "SECRET=" + c.secret, "WEBHOOK_ID=" + id, "WEBHOOK_TIMESTAMP=" + ts, "BODY=" + body}
		out, err := cmd.Output()
		require.NoError(t, err, "openssl pipeline (install openssl, xxd)")
		require.Equal(t, strings.TrimPrefix(webhook.Sign([][]byte{c.key}, id, now, []byte(body)), "v1,"), strings.TrimSpace(string(out)))
		require.Contains(t, sig, "v1,"+strings.TrimSpace(string(out)))
	}
}
