// Package user owns a partner's users: provisioning from the partner's back
// end, creation from a consumer token, anonymisation and revival.
//
// Users are found by a keyed hash of the partner's external id (see
// keyring.LookupHash), never by the plain id, so anonymisation can erase the
// external id with the rest of the personal data and a later upsert with the
// same external id still revives the same row and the same userId.
package user

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"golang.org/x/text/language"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/textcheck"
)

// User is one end user of a partner.
type User struct {
	bun.BaseModel `bun:"table:users,alias:u"`

	PartnerID      uuid.UUID `bun:"partner_id,pk,type:uuid"`
	ID             uuid.UUID `bun:"id,pk,type:uuid"`
	ExternalIDHash []byte    `bun:"external_id_hash"`
	ExternalID     *string   `bun:"external_id"`
	Email          *string   `bun:"email"`
	DisplayName    *string   `bun:"display_name"`
	FirstName      *string   `bun:"first_name"`
	LastName       *string   `bun:"last_name"`
	Locale         *string   `bun:"locale"`
	CountryCode    *string   `bun:"country_code"`
	// Attributes are the partner's custom attributes (ValidateAttributes):
	// no personal data by contract; {} once anonymised.
	Attributes       json.RawMessage `bun:"attributes,type:jsonb,nullzero"`
	AnonymisedAt     *time.Time      `bun:"anonymised_at"`
	TokensValidAfter *time.Time      `bun:"tokens_valid_after"`
	CreatedAt        time.Time       `bun:"created_at"`
	UpdatedAt        time.Time       `bun:"updated_at"`
}

// Anonymised reports whether the user's personal data was erased.
func (u *User) Anonymised() bool { return u.AnonymisedAt != nil }

// Profile is the personal data a partner or a token may set. A nil field
// leaves the stored value unchanged.
type Profile struct {
	Email       *string
	DisplayName *string
	FirstName   *string
	LastName    *string
	Locale      *string
	CountryCode *string
	// Attributes, when set, replace the user's custom attributes (a JSON
	// object, see ValidateAttributes); {} clears them.
	Attributes json.RawMessage
}

// MaxExternalIDLen bounds external user ids (in characters).
const MaxExternalIDLen = 128

// Service manages users.
type Service struct {
	Keys   *keyring.Keyring
	Events *event.Recorder
	Now    func() time.Time
	// Erase is what EraseTx does, in order, before it deletes the users:
	// the composition root's list (app.EraseSteps). EraseTx refuses to run
	// without it, so what an erase removes never depends on which packages
	// a binary happens to link.
	Erase []EraseStep
}

// EraseStep is one statement of an erase, run in its transaction with
// perks.erasing on, before the users' rows are deleted: it removes (or
// accounts for) rows about the users that do not go by cascade. SQL takes
// two parameters: the partner id and the list of user ids.
type EraseStep struct {
	// Name says what the step erases (in errors).
	Name string
	// Table is the table keyed by user_id the step deletes from, if any:
	// the schema test checks every such table cascades or has a step.
	Table string
	SQL   string
}

// NewService returns a Service using the wall clock, without erase steps:
// EraseTx refuses to run until Erase is set (app.NewServices sets it).
func NewService(k *keyring.Keyring, ev *event.Recorder) *Service {
	return &Service{Keys: k, Events: ev, Now: time.Now}
}

// ValidateExternalID checks an external user id; field names the input.
func ValidateExternalID(field, id string) error {
	if id == "" {
		return apperr.Field(apperr.CodeMissingField, field, "%s is required", field)
	}
	if !utf8.ValidString(id) || utf8.RuneCountInString(id) > MaxExternalIDLen {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be 1 to %d characters", field, MaxExternalIDLen)
	}
	for _, r := range id {
		if textcheck.Refused(r, false) {
			return apperr.Field(apperr.CodeInvalidField, field, "%s must not contain control characters", field)
		}
	}
	return nil
}

// Normalize validates a profile and returns it in stored form (trimmed,
// canonical locale and upper-case country). fieldPrefix is prepended to field
// names in errors (for nested inputs).
func Normalize(p Profile) (Profile, error) {
	var out Profile
	text := func(field string, in *string, max int) (*string, error) {
		if in == nil {
			return nil, nil
		}
		v := strings.TrimSpace(*in)
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > max {
			return nil, apperr.Field(apperr.CodeInvalidField, field, "%s must be at most %d characters", field, max)
		}
		for _, r := range v {
			if textcheck.Refused(r, false) {
				return nil, apperr.Field(apperr.CodeInvalidField, field, "%s must not contain control characters", field)
			}
		}
		return &v, nil
	}
	var err error
	if out.DisplayName, err = text("displayName", p.DisplayName, 200); err != nil {
		return out, err
	}
	if out.FirstName, err = text("firstName", p.FirstName, 100); err != nil {
		return out, err
	}
	if out.LastName, err = text("lastName", p.LastName, 100); err != nil {
		return out, err
	}
	if p.Email != nil {
		v := strings.TrimSpace(*p.Email)
		addr, perr := mail.ParseAddress(v)
		if perr != nil || addr.Address != v || len(v) > 254 || !strings.Contains(v[strings.LastIndexByte(v, '@'):], ".") {
			return out, apperr.Field(apperr.CodeInvalidField, "email", "email must be a plain address such as name@example.com")
		}
		out.Email = &v
	}
	if p.Locale != nil {
		// Seed 003 tokens carry "en_US"; BCP 47 spells it "en-US".
		v := strings.ReplaceAll(strings.TrimSpace(*p.Locale), "_", "-")
		tag, perr := language.Parse(v)
		if perr != nil || len(v) > 35 {
			return out, apperr.Field(apperr.CodeInvalidField, "locale", "locale must be a BCP 47 language tag such as en-US")
		}
		s := tag.String()
		out.Locale = &s
	}
	if p.CountryCode != nil {
		v := strings.ToUpper(strings.TrimSpace(*p.CountryCode))
		r, perr := language.ParseRegion(v)
		if perr != nil || len(v) != 2 || !r.IsCountry() || r.String() != v {
			return out, apperr.Field(apperr.CodeInvalidField, "countryCode", "countryCode must be an ISO 3166-1 alpha-2 code such as SG")
		}
		out.CountryCode = &v
	}
	if p.Attributes != nil {
		a, err := ValidateAttributes(p.Attributes)
		if err != nil {
			return out, err
		}
		out.Attributes = a
	}
	return out, nil
}

func (s *Service) hash(partnerID uuid.UUID, externalID string) []byte {
	return s.Keys.LookupHash("user:"+partnerID.String(), externalID)
}

// erasedHash is the keyed hash an erasure marker is found by, derived
// from the users' lookup hash (an anonymised user has no external id left
// to hash) under a namespace of its own, so the marker cannot be linked to
// any other row that holds the users' hash (bulk job items, backups).
func (s *Service) erasedHash(partnerID uuid.UUID, userHash []byte) []byte {
	return s.Keys.LookupHash("user-erased:"+partnerID.String(), hex.EncodeToString(userHash))
}

// ExternalIDHash is the keyed hash users are looked up by.
func (s *Service) ExternalIDHash(partnerID uuid.UUID, externalID string) []byte {
	return s.hash(partnerID, externalID)
}

// Get loads a user by external id; anonymised users are returned too.
func (s *Service) Get(ctx context.Context, db bun.IDB, partnerID uuid.UUID, externalID string) (*User, error) {
	u := new(User)
	err := database.QueryRowModel(ctx, db, u, getByExternalID, partnerID, s.hash(partnerID, externalID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeUserNotFound, "user not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

// getByExternalID is Get's statement: every request of a consumer and
// every earn runs it, so it is prepared (database.QueryRowModel). Its
// columns are User's, named, so that a column added by a migration does not
// change a prepared statement's result.
const getByExternalID = `SELECT partner_id, id, external_id_hash, external_id, email, display_name, first_name, last_name,
	locale, country_code, attributes, anonymised_at, tokens_valid_after, created_at, updated_at
	FROM users WHERE partner_id = $1 AND external_id_hash = $2`

// ByID loads a user by internal id within a partner.
func (s *Service) ByID(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*User, error) {
	u := new(User)
	err := db.NewSelect().Model(u).Where("partner_id = ? AND id = ?", partnerID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeUserNotFound, "user not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load user %s: %w", id, err)
	}
	return u, nil
}

// UpsertResult tells what an upsert did.
type UpsertResult struct {
	User    *User
	Created bool
	Revived bool
}

// UpsertTx creates the user or updates the given profile fields; an
// anonymised user is revived (same row, same id). The profile must already be
// normalised. Concurrent upserts of one new external id are safe: the insert
// uses ON CONFLICT and the loser falls through to the update path.
func (s *Service) UpsertTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, externalID string, p Profile) (*UpsertResult, error) {
	if err := ValidateExternalID("externalUserId", externalID); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	u := &User{
		PartnerID: partnerID, ID: uuid.New(), ExternalIDHash: s.hash(partnerID, externalID), ExternalID: &externalID,
		Email: p.Email, DisplayName: p.DisplayName, FirstName: p.FirstName, LastName: p.LastName,
		Locale: p.Locale, CountryCode: p.CountryCode, Attributes: p.Attributes, CreatedAt: now, UpdatedAt: now,
	}
	// A user re-created after an erasure of the same external id starts with
	// the erasure's token watermark: tokens issued before the erasure stay
	// refused (see TokenWatermark).
	res, err := tx.NewInsert().Model(u).
		Value("tokens_valid_after", "(SELECT to_timestamp(floor(extract(epoch FROM max(erased_at))) + 1) FROM user_erasures WHERE partner_id = ? AND external_id_hash = ?)", partnerID, s.erasedHash(partnerID, u.ExternalIDHash)).
		On("CONFLICT (partner_id, external_id_hash) DO NOTHING").
		Returning("tokens_valid_after").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if _, err := s.Events.EmitTx(ctx, tx, partnerID, event.UserCreated, &u.ID, map[string]any{"userId": u.ID}); err != nil {
			return nil, err
		}
		return &UpsertResult{User: u, Created: true}, nil
	}

	existing := new(User)
	err = tx.NewSelect().Model(existing).
		Where("partner_id = ? AND external_id_hash = ?", partnerID, u.ExternalIDHash).
		For("UPDATE").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock user: %w", err)
	}
	revived := existing.Anonymised()
	q := tx.NewUpdate().Model(existing).
		Set("external_id = ?", externalID).
		Set("anonymised_at = NULL").
		Set("updated_at = ?", now).
		WherePK().Returning("*")
	set := func(col string, v *string) {
		if v != nil {
			q = q.Set(col+" = ?", *v)
		}
	}
	set("email", p.Email)
	set("display_name", p.DisplayName)
	set("first_name", p.FirstName)
	set("last_name", p.LastName)
	set("locale", p.Locale)
	set("country_code", p.CountryCode)
	if p.Attributes != nil {
		q = q.Set("attributes = ?::jsonb", string(p.Attributes))
	}
	if _, err := q.Exec(ctx); err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	if _, err := s.Events.EmitTx(ctx, tx, partnerID, event.UserUpdated, &existing.ID, map[string]any{"userId": existing.ID, "revived": revived}); err != nil {
		return nil, err
	}
	return &UpsertResult{User: existing, Revived: revived}, nil
}

// AnonymiseTx clears every personal field of the user and keeps the row and
// its history. Anonymising an anonymised user is a no-op that succeeds.
// Every consumer token issued until then is refused for good, also after the
// partner revives the user (TokenWatermark).
func (s *Service) AnonymiseTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, externalID string) (*User, error) {
	u, err := s.Get(ctx, tx, partnerID, externalID)
	if err != nil {
		return nil, err
	}
	return u, s.anonymiseRowTx(ctx, tx, u)
}

// AnonymiseUserTx anonymises a loaded user (see AnonymiseTx).
func (s *Service) AnonymiseUserTx(ctx context.Context, tx bun.Tx, u *User) error {
	return s.anonymiseRowTx(ctx, tx, u)
}

func (s *Service) anonymiseRowTx(ctx context.Context, tx bun.Tx, u *User) error {
	now := s.Now().UTC()
	res, err := tx.NewUpdate().Model(u).
		Set("external_id = NULL, email = NULL, display_name = NULL, first_name = NULL").
		Set("last_name = NULL, locale = NULL, country_code = NULL, attributes = '{}'").
		Set("anonymised_at = ?, updated_at = ?", now, now).
		Set("tokens_valid_after = greatest(tokens_valid_after, ?)", TokenWatermark(now)).
		Where("partner_id = ? AND id = ? AND anonymised_at IS NULL", u.PartnerID, u.ID).
		Returning("*").Exec(ctx)
	if err != nil {
		return fmt.Errorf("anonymise user %s: %w", u.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	_, err = s.Events.EmitTx(ctx, tx, u.PartnerID, event.UserAnonymised, &u.ID, map[string]any{"userId": u.ID})
	return err
}

// TokenWatermark is the "tokens valid from" instant an anonymisation or an
// erasure at t leaves behind: the next whole second. Token iat claims are
// whole seconds, so a token whose iat is the second of the erasure may have
// been issued just before it and is refused too (unlike logout, which lets
// that second through: an erased user's old session must never come back).
// A token minted for a revived or re-created user in the same second as the
// erasure is therefore refused as well: mint it a second later.
func TokenWatermark(t time.Time) time.Time {
	return t.UTC().Truncate(time.Second).Add(time.Second)
}

// errTokenRevoked is the answer to a token issued before a logout, an
// anonymisation or an erasure of its user.
func errTokenRevoked() error {
	return apperr.New(apperr.CodeTokenRevoked, "this token was issued before the user logged out or was deleted; mint a new one")
}

// erasedAfter reports whether the external id was erased at or after
// issuedAt (to the second, see TokenWatermark).
func (s *Service) erasedAfter(ctx context.Context, tx bun.IDB, partnerID uuid.UUID, hash []byte, issuedAt time.Time) (bool, error) {
	var at []time.Time
	err := tx.NewRaw("SELECT erased_at FROM user_erasures WHERE partner_id = ? AND external_id_hash = ? ORDER BY erased_at DESC LIMIT 1",
		partnerID, hash).Scan(ctx, &at)
	if err != nil {
		return false, fmt.Errorf("load erasure marker: %w", err)
	}
	return len(at) == 1 && issuedAt.Before(TokenWatermark(at[0])), nil
}

// FromTokenTx returns the user a verified consumer token names, creating it
// from the token's profile claims when unknown (seeds 001 and 002), and
// refreshing changed profile claims otherwise. issuedAt is the token's iat
// (or the earliest instant it can have been issued).
//
// Refused, before anything is written: a token of an anonymised user (only
// the partner's upsert revives, USER_ANONYMISED); a token issued before the
// user's last logout, anonymisation or erasure (TOKEN_REVOKED), which the
// users row remembers through revival and, after an erasure, the
// user_erasures marker does, so an old token never re-creates an erased user
// from its claims.
// FromToken is FromTokenTx without a transaction in the common case: a
// known user whose token is not revoked and whose profile claims change
// nothing costs one read, where a transaction would cost a BEGIN and a
// COMMIT around the same read. Any other case (a new user, a profile to
// update, a refusal) runs FromTokenTx in a transaction of its own, which
// decides it again from what it reads there.
func (s *Service) FromToken(ctx context.Context, db bun.IDB, partnerID uuid.UUID, externalID string, issuedAt time.Time, claims Profile) (*User, bool, error) {
	if err := ValidateExternalID("sub", externalID); err != nil {
		return nil, false, apperr.New(apperr.CodeTokenInvalid, "token subject is not a valid user id")
	}
	u, err := s.Get(ctx, db, partnerID, externalID)
	if err == nil && !u.Anonymised() && (u.TokensValidAfter == nil || !issuedAt.Before(*u.TokensValidAfter)) && !changed(u, lenient(claims)) {
		return u, false, nil
	}
	if err != nil && !apperr.Is(err, apperr.CodeUserNotFound) {
		return nil, false, err
	}
	var created bool
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		u, created, err = s.FromTokenTx(ctx, tx, partnerID, externalID, issuedAt, claims)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return u, created, nil
}

func (s *Service) FromTokenTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, externalID string, issuedAt time.Time, claims Profile) (*User, bool, error) {
	if err := ValidateExternalID("sub", externalID); err != nil {
		return nil, false, apperr.New(apperr.CodeTokenInvalid, "token subject is not a valid user id")
	}
	p := lenient(claims)
	revoked := func(u *User) bool { return u.TokensValidAfter != nil && issuedAt.Before(*u.TokensValidAfter) }

	u, err := s.Get(ctx, tx, partnerID, externalID)
	if apperr.Is(err, apperr.CodeUserNotFound) {
		erased, err := s.erasedAfter(ctx, tx, partnerID, s.erasedHash(partnerID, s.hash(partnerID, externalID)), issuedAt)
		if err != nil {
			return nil, false, err
		}
		if erased {
			return nil, false, errTokenRevoked()
		}
		res, err := s.UpsertTx(ctx, tx, partnerID, externalID, p)
		if err != nil {
			return nil, false, err
		}
		if res.Revived || (!res.Created && res.User.Anonymised()) {
			return nil, false, apperr.New(apperr.CodeUserAnonymised, "user was anonymised")
		}
		if revoked(res.User) {
			// Created concurrently (with an erasure's watermark) or logged
			// out meanwhile; the caller's rollback undoes our update.
			return nil, false, errTokenRevoked()
		}
		return res.User, res.Created, nil
	}
	if err != nil {
		return nil, false, err
	}
	if u.Anonymised() {
		return nil, false, apperr.New(apperr.CodeUserAnonymised, "user was anonymised")
	}
	if revoked(u) {
		return nil, false, errTokenRevoked()
	}
	if changed(u, p) {
		res, err := s.UpsertTx(ctx, tx, partnerID, externalID, p)
		if err != nil {
			return nil, false, err
		}
		if res.Revived {
			// Anonymised between our read and the lock: refuse, and the
			// caller's rollback undoes the revival.
			return nil, false, apperr.New(apperr.CodeUserAnonymised, "user was anonymised")
		}
		if revoked(res.User) {
			return nil, false, errTokenRevoked()
		}
		u = res.User
	}
	return u, false, nil
}

func changed(u *User, p Profile) bool {
	diff := func(cur, in *string) bool { return in != nil && (cur == nil || *cur != *in) }
	return diff(u.Email, p.Email) || diff(u.DisplayName, p.DisplayName) || diff(u.FirstName, p.FirstName) ||
		diff(u.LastName, p.LastName) || diff(u.Locale, p.Locale) || diff(u.CountryCode, p.CountryCode)
}

// lenient normalises token claims and drops the ones that do not validate:
// they come from the partner's token, and a malformed profile claim should not
// cost the user their session.
func lenient(p Profile) Profile {
	fields := map[string]**string{
		"email": &p.Email, "displayName": &p.DisplayName, "firstName": &p.FirstName,
		"lastName": &p.LastName, "locale": &p.Locale, "countryCode": &p.CountryCode,
	}
	for range fields {
		n, err := Normalize(p)
		if err == nil {
			return n
		}
		e := apperr.As(err)
		if e == nil || fields[e.Field] == nil {
			break
		}
		*fields[e.Field] = nil
	}
	return Profile{}
}

// EraseTx removes users and everything about them: history, balances,
// counters, events, stored idempotent responses (seed 001 user/delete). It
// is the one operation allowed to delete ledger entries (perks.erasing).
// Tables that reference users cascade; the rest are erased by s.Erase,
// which runs first, in order, then the users go. Each erased
// user leaves a user_erasures marker (consumer tokens issued until then stay
// refused, and the export reports the erasure) and a user.erased event.
func (s *Service) EraseTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	if s.Erase == nil {
		return errors.New("erase users: no erase steps wired (app.EraseSteps)")
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL perks.erasing = 'on'"); err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	// What outlives the user: the marker that keeps old tokens refused and
	// tells the export, and a user.erased event. Neither holds personal
	// data: the internal id, the time and a keyed hash (erasedHash).
	now := s.Now().UTC()
	var found []struct {
		ID   uuid.UUID `bun:"id"`
		Hash []byte    `bun:"external_id_hash"`
	}
	err := tx.NewRaw("SELECT id, external_id_hash FROM users WHERE partner_id = ? AND id IN (?) FOR UPDATE",
		partnerID, bun.List(ids)).Scan(ctx, &found)
	if err != nil {
		return fmt.Errorf("lock users to erase: %w", err)
	}
	erased := make([]uuid.UUID, len(found))
	hashes := make([]string, len(found))
	for i, f := range found {
		erased[i], hashes[i] = f.ID, hex.EncodeToString(s.erasedHash(partnerID, f.Hash))
	}
	if len(found) > 0 {
		_, err = tx.NewRaw(`INSERT INTO user_erasures (partner_id, user_id, external_id_hash, erased_at)
			SELECT ?, u, decode(h, 'hex'), ? FROM unnest(?::uuid[], ?::text[]) AS t (u, h)`,
			partnerID, now, pgdialect.Array(erased), pgdialect.Array(hashes)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("record erasures: %w", err)
		}
	}
	for _, st := range s.Erase {
		if _, err := tx.NewRaw(st.SQL, partnerID, bun.List(ids)).Exec(ctx); err != nil {
			return fmt.Errorf("erase users: %s: %w", st.Name, err)
		}
	}
	// Last, the users, which cascades to balances, ledger entries and
	// counters (and vouchers, once their claims are accounted for).
	if _, err := tx.NewRaw("DELETE FROM users WHERE partner_id = ? AND id IN (?)", partnerID, bun.List(ids)).Exec(ctx); err != nil {
		return fmt.Errorf("erase users: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL perks.erasing = 'off'"); err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	// The events carry no user_id: the user is gone (and events with one
	// are what an erasure deletes). data.userId is the only link.
	evs := make([]*event.Event, 0, len(erased))
	for _, id := range erased {
		ev, err := s.Events.New(partnerID, event.UserErased, nil, map[string]any{"userId": id, "externalUserId": nil, "erasedAt": now})
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	return s.Events.RecordTx(ctx, tx, evs...)
}

// ListFilter selects users for List.
type ListFilter struct {
	After        *uuid.UUID
	UpdatedSince *time.Time
	Country      string
	HasBalance   *bool
	Limit        int
}

// Listed is a user with their balance.
type Listed struct {
	User           `bun:",extend"`
	Points         int64 `bun:"points"`
	LifetimeEarned int64 `bun:"lifetime_earned"`
}

// List returns a keyset page of users ordered by id.
func (s *Service) List(ctx context.Context, db bun.IDB, partnerID uuid.UUID, f ListFilter) ([]Listed, error) {
	var out []Listed
	q := db.NewSelect().Model(&out).
		ColumnExpr("u.*").
		ColumnExpr("coalesce(b.points, 0) AS points, coalesce(b.lifetime_earned, 0) AS lifetime_earned").
		Join("LEFT JOIN balances AS b ON b.partner_id = u.partner_id AND b.user_id = u.id").
		Where("u.partner_id = ?", partnerID).OrderExpr("u.id").Limit(int64(f.Limit))
	if f.After != nil {
		q = q.Where("u.id > ?", *f.After)
	}
	if f.UpdatedSince != nil {
		q = q.Where("u.updated_at >= ?", *f.UpdatedSince)
	}
	if f.Country != "" {
		q = q.Where("u.country_code = ?", f.Country)
	}
	if f.HasBalance != nil {
		if *f.HasBalance {
			q = q.Where("b.points > 0")
		} else {
			q = q.Where("coalesce(b.points, 0) = 0")
		}
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// LogoutTx logs the user out everywhere: consumer tokens issued before now
// are refused from then on (TOKEN_REVOKED). The instant is truncated to the
// second because token iat claims are whole seconds: a token the partner
// mints right after the logout, in the same second, must still work (the
// price is that one minted earlier in that same second does too).
func (s *Service) LogoutTx(ctx context.Context, tx bun.Tx, partnerID, userID uuid.UUID) error {
	now := s.Now().UTC().Truncate(time.Second)
	// greatest: a logout never lowers an anonymisation's watermark.
	res, err := tx.NewUpdate().Model((*User)(nil)).
		Set("tokens_valid_after = greatest(tokens_valid_after, ?), updated_at = ?", now, s.Now().UTC()).
		Where("partner_id = ? AND id = ?", partnerID, userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("logout user %s: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeUserNotFound, "user not found")
	}
	return nil
}

// LogoutExternalTx is LogoutTx for the partner's external user id.
func (s *Service) LogoutExternalTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, externalID string) error {
	u, err := s.Get(ctx, tx, partnerID, externalID)
	if err != nil {
		return err
	}
	return s.LogoutTx(ctx, tx, partnerID, u.ID)
}
