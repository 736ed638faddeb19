package partner

// Sandbox environments (issue 16). A sandbox is a partner row of its own
// whose sandbox_of names the live partner it tests for. Everything a
// partner owns is keyed by partner_id and every query filters by it, so a
// sandbox gets its own users, ledger, catalog, credentials, webhooks,
// exports and reports from tenant isolation alone, with no "environment"
// column threaded through the domain: a sandbox credential authenticates
// the sandbox partner, which never sees a live row, and the other way
// round. What is shared is only who may act on it: the live partner's
// portal accounts switch to its sandbox in their session (docs/sandbox.md).

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// Environments, as API answers name them (Perks-Environment header,
// GraphQL extensions.environment, webhook payloads' environment).
const (
	EnvironmentLive    = "live"
	EnvironmentSandbox = "sandbox"
)

// SandboxSuffix ends every sandbox slug (acme's sandbox is acme-sandbox);
// live partners may not use it, so a slug alone says which environment a
// request names.
const SandboxSuffix = "-sandbox"

// IsSandbox reports whether p is a sandbox.
func (p *Partner) IsSandbox() bool { return p != nil && p.SandboxOf != nil }

// CheckInvitable refuses portal invitations to a sandbox: a sandbox shares
// its live partner's portal accounts (docs/sandbox.md), whose users switch
// to it in their session; an account of the sandbox itself would see only
// the sandbox and no team.
func (p *Partner) CheckInvitable() error {
	if p.IsSandbox() {
		return apperr.Field(apperr.CodeConflict, "partner", "%s is a sandbox: invite people to its live partner, whose portal users switch to the sandbox", p.Slug)
	}
	return nil
}

// Environment is "sandbox" for a sandbox, "live" otherwise.
func (p *Partner) Environment() string {
	if p.IsSandbox() {
		return EnvironmentSandbox
	}
	return EnvironmentLive
}

// LiveID is the id of the live partner p belongs to: its own id for a live
// partner, the partner it is the sandbox of otherwise.
func (p *Partner) LiveID() uuid.UUID {
	if p.SandboxOf != nil {
		return *p.SandboxOf
	}
	return p.ID
}

func checkNotSandboxSlug(slug string) error {
	if strings.HasSuffix(slug, SandboxSuffix) {
		return apperr.Field(apperr.CodeInvalidField, "slug", "slugs ending in %q are reserved for sandboxes; create a sandbox with `perks partner sandbox` or POST /integrations/sandbox", SandboxSuffix)
	}
	return nil
}

// SandboxSlug is the slug of live's sandbox.
func SandboxSlug(live string) string { return live + SandboxSuffix }

// Sandbox returns the sandbox of the partner id names: the partner itself
// when it is a sandbox, its sandbox when it is live, NOT_FOUND when it has
// none yet.
func (s *Service) Sandbox(ctx context.Context, db bun.IDB, id uuid.UUID) (*Partner, error) {
	p := new(Partner)
	err := db.NewSelect().Model(p).
		Where("(id = ? AND sandbox_of IS NOT NULL) OR sandbox_of = ?", id, id).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "this partner has no sandbox yet; create it with POST /integrations/sandbox, the portal's Sandbox page or `perks partner sandbox`")
	}
	if err != nil {
		return nil, fmt.Errorf("load sandbox: %w", err)
	}
	return p, nil
}

// EnsureSandbox returns the sandbox of the partner id names, creating it
// when the partner (live) has none; created says which. Called with a
// sandbox's id it returns that sandbox: a sandbox has no sandbox, and
// automation holding either environment's credential reaches the same one.
//
// A new sandbox copies the live partner's descriptive fields (name, display
// name, logo, program and currency names, time zone) so the webview looks
// the same, and nothing else: no credential, consumer key, issuer, webhook
// endpoint, allowed origin or data. Its issuer is unset (issuers are
// unique: tokens of the live issuer must keep resolving to live); the
// partner gives the sandbox its own credentials and keys. Concurrent calls
// create one sandbox (unique index on sandbox_of).
func (s *Service) EnsureSandbox(ctx context.Context, db bun.IDB, id uuid.UUID) (sb *Partner, created bool, err error) {
	s.Changed()
	live, err := s.ByID(ctx, db, id)
	if err != nil {
		return nil, false, err
	}
	if live.IsSandbox() {
		return live, false, nil
	}
	if existing, err := s.Sandbox(ctx, db, live.ID); err == nil {
		return existing, false, nil
	} else if !apperr.Is(err, apperr.CodeNotFound) {
		return nil, false, err
	}
	slug := SandboxSlug(live.Slug)
	if !slugRE.MatchString(slug) {
		return nil, false, apperr.New(apperr.CodeConflict, "the slug %q is too long for a sandbox slug (%s%s must fit in 63 characters)", live.Slug, live.Slug, SandboxSuffix)
	}
	row := &Partner{
		ID: uuid.New(), Slug: slug, Name: live.Name, DisplayName: live.DisplayName, LogoPath: live.LogoPath,
		ProgramName: live.ProgramName, CurrencyName: live.CurrencyName, MaxTokenLifetimeSeconds: live.MaxTokenLifetimeSeconds,
		Timezone: live.Timezone, APIEnabled: true, AllowedOrigins: []string{}, AllowedSchemes: []string{},
		CORSOrigins: []string{}, FrameAncestors: []string{}, SandboxOf: &live.ID,
		// A sandbox is for integrating before going live: it is served
		// while its partner awaits approval (the platform operator can
		// still suspend it on its own).
		Status: StatusActive,
	}
	res, err := db.NewInsert().Model(row).ExcludeColumn("created_at", "updated_at").
		On("CONFLICT DO NOTHING").Returning("*").Exec(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return nil, false, apperr.New(apperr.CodeConflict, "the slug %q is taken by another partner", slug)
	}
	if err != nil {
		return nil, false, fmt.Errorf("create sandbox of %s: %w", live.Slug, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Lost a race with a concurrent creation, or the slug is taken.
		if existing, err := s.Sandbox(ctx, db, live.ID); err == nil {
			return existing, false, nil
		}
		return nil, false, apperr.New(apperr.CodeConflict, "the slug %q is taken by another partner", slug)
	}
	return row, true, nil
}

// SandboxKeeps lists the partner-owned tables a reset keeps: the
// sandbox's credentials and the integration they configure (API access
// records, back-end tokens, consumer token keys, webhook endpoints,
// merchants and their credentials), so the partner's test harness keeps
// working after a reset. Every other table with a partner_id column is
// wiped, including tables added after this list was written: a new
// tenant table is data unless it is added here.
var SandboxKeeps = []string{
	"partner_credentials", "partner_backend_tokens", "consumer_keys",
	"webhook_endpoints", "merchants", "merchant_credentials",
}

// ResetSandboxTx wipes the data of the sandbox id names (users, ledger,
// vouchers, catalog, rules, ads, program settings, events, webhook
// deliveries, jobs, idempotency records...) and keeps the partner row and
// the tables of SandboxKeeps. It refuses a live partner (NOT_FOUND, as for
// a partner without sandbox): a reset can never touch live data, whatever
// id a caller passes. It returns the number of rows deleted per table.
//
// The tables are found in the catalog (every public table with a
// partner_id column) and emptied children first, following their foreign
// keys, so the wipe needs no list kept in step with the migrations. Run it
// in a transaction: a failure leaves the sandbox as it was.
func (s *Service) ResetSandboxTx(ctx context.Context, tx bun.IDB, id uuid.UUID) (map[string]int64, error) {
	s.Changed()
	sb := new(Partner)
	err := tx.NewSelect().Model(sb).Where("id = ? AND sandbox_of IS NOT NULL", id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "no such sandbox")
	}
	if err != nil {
		return nil, fmt.Errorf("lock sandbox: %w", err)
	}
	order, err := wipeOrder(ctx, tx)
	if err != nil {
		return nil, err
	}
	// The ledger is append-only but for erasure (its trigger lets deletes
	// through when perks.erasing is on, for this transaction only): a reset
	// is the erasure of every user of the sandbox at once.
	if _, err := tx.NewRaw("SELECT set_config('perks.erasing', 'on', true)").Exec(ctx); err != nil {
		return nil, fmt.Errorf("reset sandbox: %w", err)
	}
	// Deleting rows fires triggers that write elsewhere (the ledger's
	// report deltas): go round again until a pass deletes nothing. Only
	// the first pass counts: later ones remove what the wipe itself wrote.
	out := make(map[string]int64, len(order))
	for pass := 0; pass < 4; pass++ {
		var deleted int64
		for _, table := range order {
			res, err := tx.NewRaw("DELETE FROM ? WHERE partner_id = ?", bun.Ident(table), id).Exec(ctx)
			if err != nil {
				return nil, fmt.Errorf("reset sandbox: wipe %s: %w", table, err)
			}
			n, _ := res.RowsAffected()
			deleted += n
			if pass == 0 && n > 0 {
				out[table] = n
			}
		}
		if pass > 0 && deleted == 0 {
			return out, cancelJobsTx(ctx, tx, id, out)
		}
	}
	return nil, errors.New("reset sandbox: rows keep appearing as others are deleted")
}

// wipeOrder returns the tables a reset empties, each after every table
// whose foreign keys reference it.
func wipeOrder(ctx context.Context, db bun.IDB) ([]string, error) {
	var tables []string
	err := db.NewRaw(`SELECT c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'partner_id' AND NOT a.attisdropped
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY c.relname`).Scan(ctx, &tables)
	if err != nil {
		return nil, fmt.Errorf("list tenant tables: %w", err)
	}
	tables = slices.DeleteFunc(tables, func(t string) bool { return slices.Contains(SandboxKeeps, t) })
	var edges []struct {
		Child  string `bun:"child"`
		Parent string `bun:"parent"`
	}
	err = db.NewRaw(`SELECT ch.relname AS child, pa.relname AS parent FROM pg_constraint k
		JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
		WHERE k.contype = 'f' AND ch.oid <> pa.oid
		AND ch.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`).Scan(ctx, &edges)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	// Kahn's algorithm on parent <- child: a table is emptied once every
	// table referencing it is.
	referrers := map[string]int{}
	children := map[string][]string{}
	for _, e := range edges {
		if slices.Contains(tables, e.Child) && slices.Contains(tables, e.Parent) {
			referrers[e.Parent]++
			children[e.Child] = append(children[e.Child], e.Parent)
		}
	}
	var order, ready []string
	for _, t := range tables {
		if referrers[t] == 0 {
			ready = append(ready, t)
		}
	}
	for len(ready) > 0 {
		t := ready[0]
		ready = ready[1:]
		order = append(order, t)
		for _, parent := range children[t] {
			if referrers[parent]--; referrers[parent] == 0 {
				ready = append(ready, parent)
			}
		}
	}
	if len(order) != len(tables) {
		return nil, fmt.Errorf("reset sandbox: foreign keys form a cycle among %v", tables)
	}
	return order, nil
}

// NewSandbox is what CreateSandboxTx returns.
type NewSandbox struct {
	Sandbox *Partner
	// Created is false when the sandbox existed already.
	Created bool
	// HMACSecret is the secret of the HMAC credential made with a new
	// sandbox, to show once (it is stored sealed); "" when not Created.
	HMACSecret string
}

// CreateSandboxTx is EnsureSandbox for the transports (REST, portal, CLI):
// a new sandbox also gets one HMAC credential with a generated secret, so
// automation holding only live credentials can start using the sandbox at
// once (more credentials of any kind are added from the sandbox itself).
func (s *Service) CreateSandboxTx(ctx context.Context, tx bun.IDB, id uuid.UUID) (*NewSandbox, error) {
	s.Changed()
	sb, created, err := s.EnsureSandbox(ctx, tx, id)
	if err != nil || !created {
		return &NewSandbox{Sandbox: sb}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate sandbox secret: %w", err)
	}
	secret := "sbx_" + hex.EncodeToString(raw)
	if _, err := s.AddSharedSecret(ctx, tx, sb.ID, KindHMAC, "created with the sandbox", []byte(secret)); err != nil {
		return nil, err
	}
	return &NewSandbox{Sandbox: sb, Created: true, HMACSecret: secret}, nil
}

// cancelJobsTx deletes the sandbox's River jobs that are not running
// (webhook deliveries, bulk jobs...): their rows are gone, so they would
// only fail and retry for days. Jobs name their partner in a top-level
// argument (partnerId, partner_id...): any top-level value equal to the
// sandbox's id marks a job as the sandbox's. A running job ends on its own,
// finding nothing.
func cancelJobsTx(ctx context.Context, tx bun.IDB, id uuid.UUID, out map[string]int64) error {
	res, err := tx.NewRaw(`DELETE FROM river_job j
		WHERE j.state IN ('available', 'scheduled', 'retryable', 'pending')
		AND jsonb_typeof(j.args) = 'object'
		AND EXISTS (SELECT FROM jsonb_each_text(j.args) a WHERE a.value = ?)`, id.String()).Exec(ctx)
	if err != nil {
		return fmt.Errorf("reset sandbox: cancel jobs: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		out["river_job"] = n
	}
	return nil
}
