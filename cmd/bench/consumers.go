package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/perkshq/perks/internal/demo"
)

// consumer is a provisioned, funded acme user with a token.
type consumer struct {
	ID    uuid.UUID
	Ext   string
	Token string
}

// provisionConsumers creates n acme users with COPY, funds each with
// points (0: none) through a consistent earn entry and balance row (so the ledger
// invariants hold), and mints their RS256 tokens with acme's demo key.
func provisionConsumers(ctx context.Context, b *Bench, prefix string, n int, points int64) ([]consumer, error) {
	p, err := b.App.Partners.BySlug(ctx, b.DB.Bun, "acme")
	if err != nil {
		return nil, err
	}
	pemBytes, err := os.ReadFile(filepath.Join(b.Secrets, "acme.private.pem"))
	if err != nil {
		return nil, err
	}
	k, err := demo.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	key := k.(*rsa.PrivateKey)
	now := time.Now()
	out := make([]consumer, n)
	users := make([][]any, n)
	balances := make([][]any, n)
	entries := make([][]any, n)
	for i := range out {
		ext := prefix + strconv.Itoa(i)
		id := uuid.New()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": demo.Acme.Issuer, "sub": ext, "iat": now.Unix(), "exp": now.Add(6 * time.Hour).Unix(),
		}).SignedString(key)
		if err != nil {
			return nil, err
		}
		out[i] = consumer{ID: id, Ext: ext, Token: tok}
		name := "Bench " + ext
		users[i] = []any{p.ID, id, b.App.Keys.LookupHash("user:"+p.ID.String(), ext), ext, name, "SG"}
		balances[i] = []any{p.ID, id, points, points}
		entries[i] = []any{p.ID, id, "earn", points, points, "bench funding", now}
	}
	tx, err := b.DB.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"partner_id", "id", "external_id_hash", "external_id", "display_name", "country_code"}, pgx.CopyFromRows(users)); err != nil {
		return nil, fmt.Errorf("provision users: %w", err)
	}
	if points == 0 {
		return out, tx.Commit(ctx)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"balances"}, []string{"partner_id", "user_id", "points", "lifetime_earned"}, pgx.CopyFromRows(balances)); err != nil {
		return nil, fmt.Errorf("fund users: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_entries"}, []string{"partner_id", "user_id", "kind", "points", "balance_after", "reason", "occurred_at"}, pgx.CopyFromRows(entries)); err != nil {
		return nil, fmt.Errorf("fund users: %w", err)
	}
	// Each funding earn is a credit, so it makes a lot, as the ledger's own
	// earns do: without it claims would find no points to spend
	// (ledger.CheckInvariants: balance = sum of the remaining of the lots).
	if _, err := tx.Exec(ctx, `INSERT INTO point_lots (partner_id, user_id, source_entry_id, points, remaining, available_at, created_at)
		SELECT e.partner_id, e.user_id, e.id, e.points, e.points, e.occurred_at, e.occurred_at
		FROM ledger_entries e JOIN unnest($2::uuid[]) AS u(id) ON e.user_id = u.id
		WHERE e.partner_id = $1 AND e.reason = 'bench funding'`, p.ID, funded(out)); err != nil {
		return nil, fmt.Errorf("fund users: lots: %w", err)
	}
	return out, tx.Commit(ctx)
}

// graphQLResponse is the part of a GraphQL answer the scenarios read.
type graphQLResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code      string `json:"code"`
			RequestID string `json:"requestId"`
		} `json:"extensions"`
	} `json:"errors"`
}

// postGraphQL sends one operation and returns the first error code ("" on
// success); a non-200 answer is an error.
func postGraphQL(ctx context.Context, b *Bench, token string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := b.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("graphql answered %d: %s", res.StatusCode, raw)
	}
	var out graphQLResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", err
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		if e.Extensions.Code == "INTERNAL" {
			// Internal errors are logged by the server under this id (BENCH_LOG=1).
			return e.Extensions.Code + " (request " + e.Extensions.RequestID + ")", nil
		}
		return e.Extensions.Code, nil
	}
	return "", nil
}

// funded is the ids of the consumers provisionConsumers funded, as text
// (pgx encodes []string as a text array; $2::uuid[] casts it).
func funded(cs []consumer) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID.String()
	}
	return ids
}
