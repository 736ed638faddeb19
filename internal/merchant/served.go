package merchant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/textcheck"
)

// A merchant portal account (issue 17) belongs to a merchant id, not to a
// partner. merchants' key is (partner_id, id): the same id under several
// partners is one shop serving them all, each partner listing it in its
// gifts by its own code. Everything below is scoped by that id.

// Served is one partner a merchant serves.
type Served struct {
	PartnerID   uuid.UUID `bun:"partner_id,type:uuid"`
	PartnerSlug string    `bun:"partner_slug"`
	PartnerName string    `bun:"partner_name"`
	Timezone    string    `bun:"timezone"`
	Code        string    `bun:"code"`
	Name        string    `bun:"name"`
	Enabled     bool      `bun:"enabled"`
}

// Served lists the partners merchantID serves, by partner name.
func (s *Service) Served(ctx context.Context, db bun.IDB, merchantID uuid.UUID) ([]Served, error) {
	var out []Served
	err := db.NewRaw(`SELECT m.partner_id, p.slug AS partner_slug, COALESCE(NULLIF(p.display_name, ''), p.name) AS partner_name,
			p.timezone, m.code, m.name, m.enabled
		FROM merchants m JOIN partners p ON p.id = m.partner_id
		WHERE m.id = ? ORDER BY 3, 1`, merchantID).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("partners served by merchant: %w", err)
	}
	return out, nil
}

// AttachTx makes merchant merchantID (a merchant of some partner already)
// a merchant of partnerID too, under code there (default: its code
// elsewhere). Its portal users then see partnerID's vouchers wherever
// partnerID's gifts list the code. CONFLICT when partnerID already has a
// merchant with that code; attaching twice is a no-op (attached false).
func (s *Service) AttachTx(ctx context.Context, db bun.IDB, merchantID, partnerID uuid.UUID, code string) (m *Merchant, attached bool, err error) {
	var existing []Merchant
	if err := db.NewSelect().Model(&existing).Where("id = ?", merchantID).OrderExpr("created_at").Scan(ctx); err != nil {
		return nil, false, fmt.Errorf("load merchant: %w", err)
	}
	if len(existing) == 0 {
		return nil, false, apperr.New(apperr.CodeNotFound, "no such merchant")
	}
	for i := range existing {
		if existing[i].PartnerID == partnerID {
			return &existing[i], false, nil
		}
	}
	if code = strings.TrimSpace(code); code == "" {
		code = existing[0].Code
	}
	if err := ValidateCode("code", code); err != nil {
		return nil, false, err
	}
	now := s.Now().UTC()
	m = &Merchant{PartnerID: partnerID, ID: merchantID, Code: code, Name: existing[0].Name, Enabled: true, CreatedAt: now, UpdatedAt: now}
	res, err := db.NewInsert().Model(m).On("CONFLICT DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("attach merchant: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, false, apperr.Field(apperr.CodeConflict, "code", "this partner already has a merchant with code %q", code)
	}
	return m, true, nil
}

// CredentialsOf lists the API credentials of merchantID at every partner it
// serves (each authenticates for its partner only), oldest first.
func (s *Service) CredentialsOf(ctx context.Context, db bun.IDB, merchantID uuid.UUID) ([]Credential, error) {
	var out []Credential
	if err := db.NewSelect().Model(&out).Where("merchant_id = ?", merchantID).OrderExpr("created_at, id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list merchant credentials: %w", err)
	}
	return out, nil
}

// credentialOf loads one credential of merchantID for update; another
// merchant's credential is NOT_FOUND.
func credentialOf(ctx context.Context, db bun.IDB, merchantID, id uuid.UUID) (*Credential, error) {
	c := new(Credential)
	err := db.NewSelect().Model(c).Where("merchant_id = ? AND id = ?", merchantID, id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "merchant credential not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load merchant credential: %w", err)
	}
	return c, nil
}

// AddCredentialFor creates a credential of merchantID for partnerID, which
// it must serve (NOT_FOUND otherwise).
func (s *Service) AddCredentialFor(ctx context.Context, db bun.IDB, merchantID, partnerID uuid.UUID, description string) (*NewCredential, error) {
	n, err := db.NewSelect().Table("merchants").Where("partner_id = ? AND id = ?", partnerID, merchantID).Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("load merchant: %w", err)
	}
	if n == 0 {
		return nil, apperr.Field(apperr.CodeNotFound, "partner", "this merchant does not serve that partner")
	}
	description = strings.TrimSpace(description)
	if len(description) > 200 {
		return nil, apperr.Field(apperr.CodeInvalidField, "description", "description must be at most 200 characters")
	}
	if err := textcheck.Line("description", description); err != nil {
		return nil, err
	}
	return s.AddCredential(ctx, db, partnerID, merchantID, description)
}

// DisableCredentialOf switches one of merchantID's credentials off at once
// (an overlap still running ends too).
func (s *Service) DisableCredentialOf(ctx context.Context, db bun.IDB, merchantID, id uuid.UUID) (*Credential, error) {
	c, err := credentialOf(ctx, db, merchantID, id)
	if err != nil {
		return nil, err
	}
	if _, err := db.NewUpdate().Model(c).Set("enabled = false").WherePK().Exec(ctx); err != nil {
		return nil, fmt.Errorf("disable merchant credential: %w", err)
	}
	c.Enabled = false
	return c, nil
}

// MaxOverlap bounds how long a rotated credential keeps working.
const MaxOverlap = 30 * 24 * time.Hour

// RotateCredentialOf replaces one of merchantID's enabled credentials with
// a new one for the same partner. The old one keeps authenticating for
// overlap (so the merchant's servers can switch over without a failed
// request), then stops; overlap 0 disables it now. A credential already
// expiring keeps its earlier end. Returns the new credential (its secrets
// shown once) and the old one as changed.
func (s *Service) RotateCredentialOf(ctx context.Context, db bun.IDB, merchantID, id uuid.UUID, overlap time.Duration) (*NewCredential, *Credential, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return nil, nil, apperr.Field(apperr.CodeInvalidField, "overlap", "overlap must be between 0 and %d days", int(MaxOverlap.Hours()/24))
	}
	old, err := credentialOf(ctx, db, merchantID, id)
	if err != nil {
		return nil, nil, err
	}
	now := s.Now().UTC()
	if !old.Enabled || (old.ExpiresAt != nil && !old.ExpiresAt.After(now)) {
		return nil, nil, apperr.New(apperr.CodeConflict, "this credential is disabled or expired: create a new one instead")
	}
	if overlap == 0 {
		old.Enabled = false
	} else if end := now.Add(overlap); old.ExpiresAt == nil || end.Before(*old.ExpiresAt) {
		old.ExpiresAt = &end
	}
	if _, err := db.NewUpdate().Model(old).Column("enabled", "expires_at").WherePK().Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("retire rotated merchant credential: %w", err)
	}
	desc := old.Description
	if !strings.HasPrefix(desc, "rotated from ") {
		desc = "rotated from " + old.ID.String()[:8]
	}
	nc, err := s.AddCredential(ctx, db, old.PartnerID, merchantID, desc)
	if err != nil {
		return nil, nil, err
	}
	return nc, old, nil
}
