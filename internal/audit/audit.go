// Package audit is the audit log of changes made through the portals and
// the partner API (issue 16): who (a portal account, a partner API
// credential or an operator at the shell), when, what, on which target, and
// the before/after state with secrets redacted. Services and transports
// call RecordTx inside the write's own transaction, so a change and its
// audit entry commit or roll back together.
package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Realms scope entries the way accounts are scoped.
const (
	RealmPartner  = "partner"
	RealmMerchant = "merchant"
	RealmPlatform = "platform"
)

// Actor kinds.
const (
	ActorAccount    = "account"    // a portal user
	ActorCredential = "credential" // a partner API credential
	ActorOperator   = "operator"   // the CLI at the shell
)

// Actor is who made a change.
type Actor struct {
	Kind string
	// ID is the account or credential id ("" for an operator).
	ID string
	// Label is what people read: the account's email, the credential's
	// kind and description, "cli".
	Label string
}

// Entry is one audited change.
type Entry struct {
	bun.BaseModel `bun:"table:audit_log"`

	ID         int64           `bun:"id,pk,autoincrement"`
	Realm      string          `bun:"realm"`
	RealmID    *uuid.UUID      `bun:"realm_id,type:uuid"`
	At         time.Time       `bun:"at"`
	ActorKind  string          `bun:"actor_kind"`
	ActorID    string          `bun:"actor_id"`
	ActorLabel string          `bun:"actor_label"`
	Action     string          `bun:"action"`
	Target     string          `bun:"target"`
	Before     json.RawMessage `bun:"before,type:jsonb,nullzero"`
	After      json.RawMessage `bun:"after,type:jsonb,nullzero"`
}

// Change describes what RecordTx writes. Before and After are any values
// that marshal to JSON (nil for none); Redact runs over them first.
type Change struct {
	Realm   string
	RealmID uuid.UUID // uuid.Nil for the platform realm
	Actor   Actor
	Action  string
	Target  string
	Before  any
	After   any
}

// Redacted replaces the value of every secret-looking field.
const Redacted = "[redacted]"

// secretWords mark a field as secret when its lower-cased name contains
// one of them (privateKey, password, apiKey, secret, token, otp, ...).
var secretWords = []string{"secret", "password", "private", "token", "apikey", "api_key", "otp", "totp", "signature", "authorization", "cookie"}

// IsSecretField reports whether a field name looks like it holds a secret.
func IsSecretField(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact returns v as JSON with the value of every secret-looking field,
// at any depth, replaced by Redacted. Nil stays nil. Values that do not
// marshal are an error: an entry must never silently lose its state.
func Redact(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("audit: marshal state: %w", err)
		}
		raw = b
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("audit: state is not JSON: %w", err)
	}
	b, err := json.Marshal(redactTree(tree))
	if err != nil {
		return nil, fmt.Errorf("audit: marshal state: %w", err)
	}
	return b, nil
}

func redactTree(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if IsSecretField(k) {
				if val != nil && val != "" {
					x[k] = Redacted
				}
				continue
			}
			x[k] = redactTree(val)
		}
		return x
	case []any:
		for i := range x {
			x[i] = redactTree(x[i])
		}
		return x
	}
	return v
}

// Log writes and reads the audit log.
type Log struct {
	Now func() time.Time
}

func (l *Log) now() time.Time {
	if l == nil || l.Now == nil {
		return time.Now().UTC()
	}
	return l.Now().UTC()
}

// RecordTx writes one entry in the caller's transaction (db is the tx).
func (l *Log) RecordTx(ctx context.Context, db bun.IDB, c Change) (*Entry, error) {
	before, err := Redact(c.Before)
	if err != nil {
		return nil, err
	}
	after, err := Redact(c.After)
	if err != nil {
		return nil, err
	}
	e := &Entry{
		Realm: c.Realm, At: l.now(), ActorKind: c.Actor.Kind, ActorID: c.Actor.ID, ActorLabel: c.Actor.Label,
		Action: c.Action, Target: c.Target, Before: before, After: after,
	}
	if c.RealmID != uuid.Nil {
		id := c.RealmID
		e.RealmID = &id
	}
	if _, err := db.NewInsert().Model(e).ExcludeColumn("id").Returning("id").Exec(ctx); err != nil {
		return nil, fmt.Errorf("insert audit entry: %w", err)
	}
	return e, nil
}

// ListParams filter List.
type ListParams struct {
	Realm   string
	RealmID uuid.UUID
	// BeforeID pages backwards: entries with a smaller id (0: newest).
	BeforeID int64
	// Limit caps the page (default 100, at most 10000).
	Limit int
}

// List returns a realm's entries, newest first. A partner's entries are
// only ever read with its own id: the realm id is always part of the query.
func (l *Log) List(ctx context.Context, db bun.IDB, p ListParams) ([]Entry, error) {
	if p.Limit <= 0 {
		p.Limit = 100
	}
	p.Limit = min(p.Limit, 10000)
	var out []Entry
	q := db.NewSelect().Model(&out).Where("realm = ?", p.Realm)
	if p.RealmID == uuid.Nil {
		q = q.Where("realm_id IS NULL")
	} else {
		q = q.Where("realm_id = ?", p.RealmID)
	}
	if p.BeforeID > 0 {
		q = q.Where("id < ?", p.BeforeID)
	}
	if err := q.OrderExpr("id DESC").Limit(int64(p.Limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return out, nil
}

// CSVHeader is the first line of WriteCSV.
var CSVHeader = []string{"id", "at", "actor_kind", "actor_id", "actor", "action", "target", "before", "after"}

// WriteCSV writes entries as CSV (RFC 4180). Cells starting with a
// spreadsheet formula character are prefixed with a quote so opening the
// export never runs a formula someone typed into a description.
func WriteCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, e := range entries {
		rec := []string{
			strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339), e.ActorKind, e.ActorID, e.ActorLabel,
			e.Action, e.Target, string(e.Before), string(e.After),
		}
		for i, c := range rec {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				rec[i] = "'" + c
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
