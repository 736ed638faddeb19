package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/auth"
)

// exportState is what `perks export` keeps between runs: the cursor to
// resume from and how long the output file was when it was saved, so a run
// that died mid-page can cut the half-written page before resuming.
type exportState struct {
	Cursor    string    `json:"cursor"`
	OutBytes  int64     `json:"outBytes"`
	Users     int64     `json:"users"`
	UpdatedAt time.Time `json:"updatedAt"`
	// The last signed request, so a run started within the same second does
	// not sign the same path again (see exportClient.timestamp).
	LastPath string `json:"lastPath,omitempty"`
	LastTS   int64  `json:"lastTs,omitempty"`
}

func exportCommand(lookupEnv func(string) (string, bool)) *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "pull the incremental user export into a file, resumable",
		Description: "Pulls the incremental user export into a file and saves the cursor; the next run resumes from it.\n" +
			"The partner's HMAC secret is read from the environment (never a flag, so it stays out of shell history).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://localhost:4000", Sources: envVars(lookupEnv, "PERKS_URL"), Usage: "Perks base `URL`"},
			&cli.StringFlag{Name: "partner", Sources: envVars(lookupEnv, "PERKS_PARTNER"), Usage: "partner `SLUG`"},
			&cli.StringFlag{Name: "secret-env", Value: "PERKS_PARTNER_SECRET", Usage: "environment variable holding the partner's HMAC secret"},
			&cli.StringFlag{Name: "format", Value: "ndjson", Usage: "`ndjson|csv`"},
			&cli.StringFlag{Name: "out", Usage: "output `FILE`; pages are appended (default users.<format>)"},
			&cli.StringFlag{Name: "state", Usage: "state `FILE` holding the cursor (default <out>.state)"},
			&cli.IntFlag{Name: "limit", Value: 10000, Usage: "users per page"},
		},
		Action: runExport,
	}
}

func runExport(ctx context.Context, cmd *cli.Command) error {
	stderr := cmd.Root().ErrWriter
	base, slug, secretEnv, format, out, statePath, limit := cmd.String("url"), cmd.String("partner"), cmd.String("secret-env"), cmd.String("format"), cmd.String("out"), cmd.String("state"), cmd.Int("limit")
	secret := getenv(cmd)(secretEnv)
	switch {
	case slug == "":
		return errors.New("--partner is required")
	case secret == "":
		return fmt.Errorf("set the partner's HMAC secret in $%s", secretEnv)
	case format != "ndjson" && format != "csv":
		return errors.New("--format must be ndjson or csv")
	case limit < 1:
		return errors.New("--limit must be positive")
	}
	if out == "" {
		out = "users." + format
	}
	if statePath == "" {
		statePath = out + ".state"
	}
	c := &exportClient{base: strings.TrimRight(base, "/"), slug: slug, secret: []byte(secret), csv: format == "csv", http: &http.Client{Timeout: 30 * time.Minute}}
	return c.run(ctx, out, statePath, limit, stderr)
}

type exportClient struct {
	base, slug string
	secret     []byte
	csv        bool
	http       *http.Client

	lastPath string
	lastTS   int64
}

// timestamp returns the signing second for path. A v2 signature covers the
// path and the second, and the server accepts each signature once, so the
// same path (the same cursor, when nothing changed) is never signed twice
// in one second: the client waits for the next one.
func (c *exportClient) timestamp(path string) int64 {
	ts := time.Now().Unix()
	for path == c.lastPath && ts <= c.lastTS {
		time.Sleep(time.Until(time.Unix(c.lastTS+1, 0)))
		ts = time.Now().Unix()
	}
	c.lastPath, c.lastTS = path, ts
	return ts
}

func (c *exportClient) run(ctx context.Context, outPath, statePath string, limit int, stderr io.Writer) error {
	var st exportState
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("state file %s: %w", statePath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	c.lastPath, c.lastTS = st.LastPath, st.LastTS
	f, err := os.OpenFile(outPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// Cut anything written after the last saved state (a page interrupted
	// by a crash), then append.
	if err := f.Truncate(st.OutBytes); err != nil {
		return err
	}
	if _, err := f.Seek(st.OutBytes, io.SeekStart); err != nil {
		return err
	}
	start, pages := time.Now(), 0
	var users int64
	for {
		next, hasMore, n, err := c.page(ctx, st.Cursor, limit, f, st.OutBytes == 0)
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		pos, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		st = exportState{Cursor: next, OutBytes: pos, Users: st.Users + int64(n), UpdatedAt: time.Now().UTC(), LastPath: c.lastPath, LastTS: c.lastTS}
		if err := writeState(statePath, st); err != nil {
			return err
		}
		users += int64(n)
		pages++
		rate := float64(users) / time.Since(start).Seconds()
		fmt.Fprintf(stderr, "\rexported %d users in %d pages (%.0f users/s), %d in %s so far", users, pages, rate, st.Users, outPath)
		if !hasMore {
			fmt.Fprintln(stderr, "\ncaught up; the next run resumes from", statePath)
			return nil
		}
	}
}

// page fetches one page into w, without its cursor line (and without the
// CSV header unless first), and returns the next cursor.
func (c *exportClient) page(ctx context.Context, cursor string, limit int, w io.Writer, first bool) (string, bool, int, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/integrations/exports/users?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return "", false, 0, err
	}
	ts := strconv.FormatInt(c.timestamp(path), 10)
	req.Header.Set("X-Partner-Slug", c.slug)
	// v2 binds the signature to the path and query (the cursor), so pages
	// fetched within one second do not share a signature.
	req.Header.Set("X-Signature", "t="+ts+",v2="+auth.SignV2(c.secret, ts, http.MethodGet, path, nil))
	if c.csv {
		req.Header.Set("Accept", "text/csv")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return "", false, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return "", false, 0, fmt.Errorf("export answered %d: %s", res.StatusCode, bytes.TrimSpace(b))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	var last []byte
	headerSeen := false
	for sc.Scan() {
		line := sc.Bytes()
		if c.csv && !headerSeen {
			headerSeen = true
			if !first {
				continue
			}
		}
		// Hold back one line: the last is the cursor line.
		if last != nil {
			if _, err := w.Write(append(last, '\n')); err != nil {
				return "", false, 0, err
			}
			n++
		}
		last = append(last[:0], line...)
	}
	if err := sc.Err(); err != nil {
		return "", false, 0, fmt.Errorf("read export: %w", err)
	}
	if c.csv {
		n-- // the header
		if !first {
			n++
		}
		parts := strings.Split(string(last), ",")
		if len(parts) < 3 || parts[0] != "#cursor" {
			return "", false, 0, errors.New("export ended without its cursor line (interrupted?)")
		}
		return parts[1], parts[2] == "true", n, nil
	}
	var tail struct {
		Cursor  string `json:"cursor"`
		HasMore bool   `json:"hasMore"`
	}
	if err := json.Unmarshal(last, &tail); err != nil || tail.Cursor == "" {
		return "", false, 0, errors.New("export ended without its cursor line (interrupted?)")
	}
	return tail.Cursor, tail.HasMore, n, nil
}

func writeState(path string, st exportState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
