// Package account holds the people who sign in to Perks' web consoles: the
// partner portal's users now, merchant users and platform admins next
// (issues 16 and 17), built once. An account belongs to a realm (partner,
// merchant, platform) and, except for platform admins, to one partner or
// merchant of that realm; its role says what it may do there.
//
// Accounts are created invited, with an activation link (single use,
// expiring, re-issued by inviting again; only a SHA-256 of its token is
// stored). Activation sets a password (argon2id) and enrols a TOTP second
// factor. Sign-in checks both, counts failures per account and locks the
// account for a while after too many, and answers every failure the same
// way (unknown address, wrong password, wrong code, locked, removed), so
// the form tells an attacker nothing. Sessions are server-side rows keyed
// by the SHA-256 of a random cookie token, created fresh at every sign-in
// (the token a browser brought is deleted: no fixation), ended after an
// idle timeout or an absolute one, and all of an account's sessions can be
// ended at once.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/keyring"
)

// Realms.
const (
	RealmPartner  = audit.RealmPartner
	RealmMerchant = audit.RealmMerchant
	RealmPlatform = audit.RealmPlatform
)

// Account statuses.
const (
	StatusInvited = "invited"
	StatusActive  = "active"
	StatusRemoved = "removed"
)

// Account is one person's access to one realm id.
type Account struct {
	bun.BaseModel `bun:"table:accounts"`

	ID               uuid.UUID  `bun:"id,pk,type:uuid"`
	Realm            string     `bun:"realm"`
	RealmID          *uuid.UUID `bun:"realm_id,type:uuid"`
	Email            string     `bun:"email"`
	Name             string     `bun:"name"`
	Role             string     `bun:"role"`
	Status           string     `bun:"status"`
	PasswordHash     *string    `bun:"password_hash"`
	TOTPSecretSealed []byte     `bun:"totp_secret_sealed"`
	TOTPLastStep     int64      `bun:"totp_last_step"`
	FailedSignIns    int        `bun:"failed_sign_ins"`
	LockedUntil      *time.Time `bun:"locked_until"`
	CreatedAt        time.Time  `bun:"created_at"`
	ActivatedAt      *time.Time `bun:"activated_at"`
}

// Scope is the realm id, uuid.Nil for platform admins.
func (a *Account) Scope() uuid.UUID {
	if a.RealmID == nil {
		return uuid.Nil
	}
	return *a.RealmID
}

// Actor is the account as the audit log names it.
func (a *Account) Actor() audit.Actor {
	return audit.Actor{Kind: audit.ActorAccount, ID: a.ID.String(), Label: a.Email}
}

// Service manages accounts, activation links and sessions.
type Service struct {
	Keys  *keyring.Keyring
	Audit *audit.Log
	Now   func() time.Time
	// Issuer names the TOTP entry in authenticator apps (default "Perks").
	Issuer string
	// Argon2 are the password hash costs (default DefaultArgon2).
	Argon2 *Argon2Params
	// ActivationTTL is how long an activation link works (default 72h).
	ActivationTTL time.Duration
	// IdleTimeout ends a session unused for that long (default 30m);
	// AbsoluteTimeout ends any session that old (default 12h).
	IdleTimeout, AbsoluteTimeout time.Duration
	// MaxFailures failed sign-ins in a row lock the account for LockFor
	// (defaults 5 and 15m).
	MaxFailures int
	LockFor     time.Duration
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) argon() Argon2Params {
	if s.Argon2 != nil {
		return *s.Argon2
	}
	return DefaultArgon2
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *Service) issuer() string {
	if s.Issuer == "" {
		return "Perks"
	}
	return s.Issuer
}

func (s *Service) maxFailures() int {
	if s.MaxFailures > 0 {
		return s.MaxFailures
	}
	return 5
}

// Timeouts returns the idle and absolute session timeouts in force.
func (s *Service) Timeouts() (idle, absolute time.Duration) {
	return orDur(s.IdleTimeout, 30*time.Minute), orDur(s.AbsoluteTimeout, 12*time.Hour)
}

// NewToken returns 32 random bytes, base64url: activation links, session
// cookies and CSRF tokens.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is what the tables store of a token: its SHA-256, under a
// purpose label so an activation token is never a session token.
func HashToken(purpose, tok string) []byte {
	h := sha256.Sum256([]byte("perks-account:" + purpose + ":" + tok))
	return h[:]
}

// ErrSignIn is the one answer to every failed sign-in.
func errSignIn() error {
	return apperr.New(apperr.CodeUnauthenticated, "the email, password or code is wrong, or the account is locked for a while; try again later")
}

// ErrLinkInvalid is the answer to an unknown, used or expired link.
func errLinkInvalid() error {
	return apperr.New(apperr.CodeTokenInvalid, "this activation link is not valid any more (used or expired); ask for a new one")
}

// NormalizeEmail trims and checks an address; the local part keeps its
// case, lookups ignore it (the unique index is on lower(email)).
func NormalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 {
		return "", apperr.Field(apperr.CodeInvalidField, "email", "enter one email address such as name@example.com")
	}
	return email, nil
}

// InviteParams describe an invitation.
type InviteParams struct {
	Realm   string
	RealmID uuid.UUID
	Email   string
	Name    string
	Role    string
	// Actor is who invites (audited).
	Actor audit.Actor
}

// Invitation is what InviteTx returns: the account and the activation
// token to put in the link (shown or mailed once, never stored).
type Invitation struct {
	Account   *Account
	Token     string
	ExpiresAt time.Time
}

// InviteTx creates an invited account, or re-invites an account that is
// still invited or was removed, and issues a new activation link (older
// unused links of the account stop working). An active account cannot be
// invited again: CONFLICT. Runs in the caller's transaction.
func (s *Service) InviteTx(ctx context.Context, db bun.IDB, p InviteParams) (*Invitation, error) {
	email, err := NormalizeEmail(p.Email)
	if err != nil {
		return nil, err
	}
	if !ValidRole(p.Realm, p.Role) {
		return nil, apperr.Field(apperr.CodeInvalidField, "role", "role must be one of %s", strings.Join(Roles(p.Realm), ", "))
	}
	if (p.Realm == RealmPlatform) != (p.RealmID == uuid.Nil) {
		return nil, fmt.Errorf("invite: realm %s with realm id %s", p.Realm, p.RealmID)
	}
	a := new(Account)
	err = db.NewSelect().Model(a).Where("realm = ? AND lower(email) = lower(?)", p.Realm, email).For("UPDATE").Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		a = &Account{ID: uuid.New(), Realm: p.Realm, Email: email, Name: strings.TrimSpace(p.Name), Role: p.Role, Status: StatusInvited, CreatedAt: s.now()}
		if p.RealmID != uuid.Nil {
			id := p.RealmID
			a.RealmID = &id
		}
		if _, err := db.NewInsert().Model(a).ExcludeColumn("activated_at", "locked_until", "password_hash", "totp_secret_sealed").Exec(ctx); err != nil {
			return nil, fmt.Errorf("insert account: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("load account: %w", err)
	case a.Scope() != p.RealmID:
		// The address already has an account at another partner: say
		// nothing about which.
		return nil, apperr.Field(apperr.CodeConflict, "email", "this address already has an account; use another address")
	case a.Status == StatusActive:
		return nil, apperr.Field(apperr.CodeConflict, "email", "this address already has an active account")
	default:
		a.Role, a.Status, a.PasswordHash, a.TOTPSecretSealed, a.FailedSignIns, a.LockedUntil = p.Role, StatusInvited, nil, nil, 0, nil
		if n := strings.TrimSpace(p.Name); n != "" {
			a.Name = n
		}
		if _, err := db.NewUpdate().Model(a).Column("role", "status", "name", "password_hash", "totp_secret_sealed", "failed_sign_ins", "locked_until").WherePK().Exec(ctx); err != nil {
			return nil, fmt.Errorf("re-invite account: %w", err)
		}
	}
	if _, err := db.NewDelete().Table("account_activations").Where("account_id = ? AND used_at IS NULL", a.ID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("retire old activation links: %w", err)
	}
	tok := NewToken()
	exp := s.now().Add(orDur(s.ActivationTTL, 72*time.Hour))
	act := &activation{TokenHash: HashToken("activation", tok), AccountID: a.ID, ExpiresAt: exp}
	if _, err := db.NewInsert().Model(act).ExcludeColumn("totp_secret_sealed", "used_at").Exec(ctx); err != nil {
		return nil, fmt.Errorf("insert activation link: %w", err)
	}
	if _, err := s.Audit.RecordTx(ctx, db, audit.Change{
		Realm: p.Realm, RealmID: p.RealmID, Actor: p.Actor, Action: "account.invite", Target: email,
		After: map[string]any{"email": email, "role": p.Role, "name": a.Name},
	}); err != nil {
		return nil, err
	}
	return &Invitation{Account: a, Token: tok, ExpiresAt: exp}, nil
}

// ReissueTx is the self-service "send me a new link": it issues a new
// activation link for the still-invited account of realm with this
// address, to be sent only to that address (which is the proof). Nil and
// no error when there is no such account, so the caller answers the same
// either way.
func (s *Service) ReissueTx(ctx context.Context, db bun.IDB, realm, email string) (*Invitation, error) {
	a := new(Account)
	err := db.NewSelect().Model(a).Where("realm = ? AND lower(email) = lower(?) AND status = ?", realm, strings.TrimSpace(email), StatusInvited).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	return s.InviteTx(ctx, db, InviteParams{Realm: a.Realm, RealmID: a.Scope(), Email: a.Email, Role: a.Role, Actor: a.Actor()})
}

type activation struct {
	bun.BaseModel `bun:"table:account_activations"`

	TokenHash        []byte     `bun:"token_hash,pk"`
	AccountID        uuid.UUID  `bun:"account_id,type:uuid"`
	TOTPSecretSealed []byte     `bun:"totp_secret_sealed"`
	ExpiresAt        time.Time  `bun:"expires_at"`
	UsedAt           *time.Time `bun:"used_at"`
}

func (s *Service) loadActivation(ctx context.Context, db bun.IDB, tok string) (*activation, *Account, error) {
	if tok == "" || len(tok) > 100 {
		return nil, nil, errLinkInvalid()
	}
	act := new(activation)
	err := db.NewSelect().Model(act).Where("token_hash = ?", HashToken("activation", tok)).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, errLinkInvalid()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load activation link: %w", err)
	}
	if act.UsedAt != nil || !act.ExpiresAt.After(s.now()) {
		return nil, nil, errLinkInvalid()
	}
	a := new(Account)
	if err := db.NewSelect().Model(a).Where("id = ?", act.AccountID).Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("load account: %w", err)
	}
	if a.Status != StatusInvited {
		return nil, nil, errLinkInvalid()
	}
	return act, a, nil
}

func totpAAD(accountID uuid.UUID) []byte { return []byte("account-totp:" + accountID.String()) }

// ActivationOffer checks an activation link and returns the account and
// the TOTP secret to enrol, generated on first view and kept with the link
// so the page and the form posted from it agree.
func (s *Service) ActivationOffer(ctx context.Context, db bun.IDB, tok string) (*Account, *Enrolment, error) {
	var a *Account
	var secret string
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		act, acc, err := s.loadActivation(ctx, tx, tok)
		if err != nil {
			return err
		}
		a = acc
		if act.TOTPSecretSealed != nil {
			b, err := s.Keys.Open(act.TOTPSecretSealed, totpAAD(a.ID))
			if err != nil {
				return fmt.Errorf("open offered totp secret: %w", err)
			}
			secret = string(b)
			return nil
		}
		if secret, err = newTOTPSecret(s.issuer(), a.Email); err != nil {
			return err
		}
		sealed, err := s.Keys.Seal([]byte(secret), totpAAD(a.ID))
		if err != nil {
			return err
		}
		_, err = tx.NewUpdate().Model(act).Set("totp_secret_sealed = ?", sealed).WherePK().Exec(ctx)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	e, err := enrolment(s.issuer(), a.Email, secret)
	if err != nil {
		return nil, nil, err
	}
	return a, e, nil
}

// CheckPasswordRules refuses passwords too short or too long.
func CheckPasswordRules(password string) error {
	if n := len([]rune(password)); n < MinPasswordLength || len(password) > MaxPasswordLength {
		return apperr.Field(apperr.CodeInvalidField, "password", "choose a password of %d to %d characters", MinPasswordLength, MaxPasswordLength)
	}
	return nil
}

// Activate uses an activation link: sets the password, enrols the TOTP
// secret ActivationOffer showed (code proves the app has it) and marks the
// link used. Bad input changes nothing.
func (s *Service) Activate(ctx context.Context, db bun.IDB, tok, password, code string) (*Account, error) {
	if err := CheckPasswordRules(password); err != nil {
		return nil, err
	}
	var out *Account
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		act, a, err := s.loadActivation(ctx, tx, tok)
		if err != nil {
			return err
		}
		if act.TOTPSecretSealed == nil {
			return apperr.Field(apperr.CodeInvalidField, "code", "open the activation link again to see the code to scan")
		}
		secret, err := s.Keys.Open(act.TOTPSecretSealed, totpAAD(a.ID))
		if err != nil {
			return fmt.Errorf("open offered totp secret: %w", err)
		}
		step := checkTOTP(string(secret), strings.TrimSpace(code), s.now(), 0)
		if step == 0 {
			return apperr.Field(apperr.CodeInvalidField, "code", "the code does not match: enter the 6 digits your app shows now")
		}
		hash, err := HashPassword(password, s.argon())
		if err != nil {
			return err
		}
		now := s.now()
		a.PasswordHash, a.TOTPSecretSealed, a.TOTPLastStep, a.Status, a.ActivatedAt = &hash, act.TOTPSecretSealed, step, StatusActive, &now
		a.FailedSignIns, a.LockedUntil = 0, nil
		if _, err := tx.NewUpdate().Model(a).Column("password_hash", "totp_secret_sealed", "totp_last_step", "status", "activated_at", "failed_sign_ins", "locked_until").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("activate account: %w", err)
		}
		if _, err := tx.NewUpdate().Model(act).Set("used_at = ?", now).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("use activation link: %w", err)
		}
		if _, err := s.Audit.RecordTx(ctx, tx, audit.Change{Realm: a.Realm, RealmID: a.Scope(), Actor: a.Actor(), Action: "account.activate", Target: a.Email}); err != nil {
			return err
		}
		out = a
		return nil
	})
	return out, err
}

// Session is a signed-in browser.
type Session struct {
	// Token goes in the cookie; only its hash is stored. Empty when loaded.
	Token      string
	TokenHash  []byte
	AccountID  uuid.UUID
	CSRFToken  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	// Sandbox: the portal acts on the partner's sandbox, not the live
	// partner (see SetSessionSandbox).
	Sandbox bool
}

type sessionRow struct {
	bun.BaseModel `bun:"table:account_sessions"`

	TokenHash  []byte    `bun:"token_hash,pk"`
	AccountID  uuid.UUID `bun:"account_id,type:uuid"`
	CSRFToken  string    `bun:"csrf_token"`
	CreatedAt  time.Time `bun:"created_at"`
	LastSeenAt time.Time `bun:"last_seen_at"`
	ExpiresAt  time.Time `bun:"expires_at"`
	Sandbox    bool      `bun:"sandbox"`
}

// dummyHash keeps an unknown address as slow as a wrong password.
var dummyHash, _ = HashPassword("not a password of anyone", DefaultArgon2)

// SignIn checks email, password and TOTP code in realm and opens a new
// session. oldToken is the session cookie the browser brought, if any: it
// is deleted whoever it belonged to, so a session planted before sign-in
// never becomes signed in (fixation). Every failure is the same
// UNAUTHENTICATED error; MaxFailures failures in a row lock the account
// for LockFor, during which even the right password fails.
func (s *Service) SignIn(ctx context.Context, db bun.IDB, realm, email, password, code, oldToken string) (*Session, *Account, error) {
	if oldToken != "" {
		if _, err := db.NewDelete().Table("account_sessions").Where("token_hash = ?", HashToken("session", oldToken)).Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("drop old session: %w", err)
		}
	}
	if len(password) > MaxPasswordLength {
		return nil, nil, errSignIn()
	}
	a := new(Account)
	err := db.NewSelect().Model(a).Where("realm = ? AND lower(email) = lower(?)", realm, strings.TrimSpace(email)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		_, _ = CheckPassword(password, dummyHash)
		return nil, nil, errSignIn()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load account: %w", err)
	}
	now := s.now()
	if a.Status != StatusActive || a.PasswordHash == nil {
		_, _ = CheckPassword(password, dummyHash)
		return nil, nil, errSignIn()
	}
	if a.LockedUntil != nil && a.LockedUntil.After(now) {
		_, _ = CheckPassword(password, dummyHash)
		return nil, nil, errSignIn()
	}
	ok, err := CheckPassword(password, *a.PasswordHash)
	if err != nil {
		return nil, nil, err
	}
	var step int64
	if ok {
		secret, err := s.Keys.Open(a.TOTPSecretSealed, totpAAD(a.ID))
		if err != nil {
			return nil, nil, fmt.Errorf("open totp secret: %w", err)
		}
		step = checkTOTP(string(secret), strings.TrimSpace(code), now, a.TOTPLastStep)
	}
	if !ok || step == 0 {
		// Count atomically: parallel guesses each count.
		_, err := db.NewRaw(`UPDATE accounts SET failed_sign_ins = failed_sign_ins + 1,
			locked_until = CASE WHEN failed_sign_ins + 1 >= ? THEN ?::timestamptz ELSE locked_until END
			WHERE id = ?`, s.maxFailures(), now.Add(orDur(s.LockFor, 15*time.Minute)), a.ID).Exec(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("count failed sign-in: %w", err)
		}
		return nil, nil, errSignIn()
	}
	sess := &Session{Token: NewToken(), AccountID: a.ID, CSRFToken: NewToken(), CreatedAt: now, LastSeenAt: now}
	_, abs := s.Timeouts()
	sess.ExpiresAt = now.Add(abs)
	sess.TokenHash = HashToken("session", sess.Token)
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// The step only moves forward: a code replayed in parallel loses.
		res, err := tx.NewRaw(`UPDATE accounts SET failed_sign_ins = 0, locked_until = NULL, totp_last_step = ?
			WHERE id = ? AND totp_last_step < ? AND status = 'active'`, step, a.ID, step).Exec(ctx)
		if err != nil {
			return fmt.Errorf("record sign-in: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errSignIn()
		}
		row := &sessionRow{TokenHash: sess.TokenHash, AccountID: a.ID, CSRFToken: sess.CSRFToken, CreatedAt: now, LastSeenAt: now, ExpiresAt: sess.ExpiresAt}
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	a.FailedSignIns, a.LockedUntil, a.TOTPLastStep = 0, nil, step
	return sess, a, nil
}

// touchEvery limits last_seen_at writes to one per minute per session.
const touchEvery = time.Minute

// Session finds the signed-in session of a cookie token and its account.
// Unknown, idle-expired, absolutely-expired sessions and sessions of an
// account no longer active all answer (nil, nil, nil); expired rows are
// deleted on the way.
func (s *Service) Session(ctx context.Context, db bun.IDB, tok string) (*Session, *Account, error) {
	if tok == "" || len(tok) > 100 {
		return nil, nil, nil
	}
	row := new(sessionRow)
	err := db.NewSelect().Model(row).Where("token_hash = ?", HashToken("session", tok)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load session: %w", err)
	}
	now := s.now()
	idle, _ := s.Timeouts()
	if !row.ExpiresAt.After(now) || !row.LastSeenAt.Add(idle).After(now) {
		_, _ = db.NewDelete().Model(row).WherePK().Exec(ctx)
		return nil, nil, nil
	}
	a := new(Account)
	if err := db.NewSelect().Model(a).Where("id = ?", row.AccountID).Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("load account: %w", err)
	}
	if a.Status != StatusActive {
		return nil, nil, nil
	}
	if now.Sub(row.LastSeenAt) >= touchEvery {
		row.LastSeenAt = now
		if _, err := db.NewUpdate().Model(row).Column("last_seen_at").WherePK().Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("touch session: %w", err)
		}
	}
	return &Session{TokenHash: row.TokenHash, AccountID: row.AccountID, CSRFToken: row.CSRFToken, CreatedAt: row.CreatedAt, LastSeenAt: row.LastSeenAt, ExpiresAt: row.ExpiresAt,
		Sandbox: row.Sandbox}, a, nil
}

// SignOut ends one session.
func (s *Service) SignOut(ctx context.Context, db bun.IDB, tok string) error {
	if _, err := db.NewDelete().Table("account_sessions").Where("token_hash = ?", HashToken("session", tok)).Exec(ctx); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// SignOutEverywhere ends every session of the account.
func (s *Service) SignOutEverywhere(ctx context.Context, db bun.IDB, accountID uuid.UUID) (int64, error) {
	res, err := db.NewDelete().Table("account_sessions").Where("account_id = ?", accountID).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete sessions: %w", err)
	}
	return res.RowsAffected()
}

// List returns the accounts of one realm id (removed ones included, last).
func (s *Service) List(ctx context.Context, db bun.IDB, realm string, realmID uuid.UUID) ([]Account, error) {
	var out []Account
	q := db.NewSelect().Model(&out).Where("realm = ?", realm)
	if realmID == uuid.Nil {
		q = q.Where("realm_id IS NULL")
	} else {
		q = q.Where("realm_id = ?", realmID)
	}
	if err := q.OrderExpr("status = 'removed', lower(email)").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// memberTx loads an account of the actor's own realm id for update;
// anything else is NOT_FOUND (an id from another partner says nothing).
func memberTx(ctx context.Context, tx bun.IDB, actor *Account, id uuid.UUID) (*Account, error) {
	a := new(Account)
	q := tx.NewSelect().Model(a).Where("id = ? AND realm = ?", id, actor.Realm)
	if actor.RealmID == nil {
		q = q.Where("realm_id IS NULL")
	} else {
		q = q.Where("realm_id = ?", *actor.RealmID)
	}
	err := q.For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "no such user")
	}
	if err != nil {
		return nil, fmt.Errorf("load account: %w", err)
	}
	return a, nil
}

// lastOwnerTx refuses a change that would leave the realm id without an
// active account holding the realm's managing role.
func lastOwnerTx(ctx context.Context, tx bun.IDB, a *Account) error {
	admin := AdminRole(a.Realm)
	if a.Role != admin || a.Status != StatusActive {
		return nil
	}
	n, err := tx.NewSelect().Table("accounts").Where("realm = ? AND realm_id IS NOT DISTINCT FROM ? AND role = ? AND status = 'active' AND id <> ?", a.Realm, a.RealmID, admin, a.ID).Count(ctx)
	if err != nil {
		return fmt.Errorf("count owners: %w", err)
	}
	if n == 0 {
		return apperr.New(apperr.CodeConflict, "this is the last %s: make someone else %s first", admin, admin)
	}
	return nil
}

// SetRole changes the role of an account of the actor's realm id.
func (s *Service) SetRole(ctx context.Context, db bun.IDB, actor *Account, id uuid.UUID, role string) error {
	if !ValidRole(actor.Realm, role) {
		return apperr.Field(apperr.CodeInvalidField, "role", "role must be one of %s", strings.Join(Roles(actor.Realm), ", "))
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		a, err := memberTx(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if a.Role == role {
			return nil
		}
		if err := lastOwnerTx(ctx, tx, a); err != nil {
			return err
		}
		before := a.Role
		if _, err := tx.NewUpdate().Model(a).Set("role = ?", role).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		_, err = s.Audit.RecordTx(ctx, tx, audit.Change{Realm: actor.Realm, RealmID: actor.Scope(), Actor: actor.Actor(), Action: "account.role", Target: a.Email,
			Before: map[string]any{"role": before}, After: map[string]any{"role": role}})
		return err
	})
}

// Remove takes an account's access away: it can no longer sign in, its
// sessions end now, and its pending activation links stop working. The
// row stays so the audit log keeps naming it.
func (s *Service) Remove(ctx context.Context, db bun.IDB, actor *Account, id uuid.UUID) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		a, err := memberTx(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if a.Status == StatusRemoved {
			return nil
		}
		if err := lastOwnerTx(ctx, tx, a); err != nil {
			return err
		}
		before := a.Status
		if _, err := tx.NewUpdate().Model(a).Set("status = 'removed'").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("remove account: %w", err)
		}
		if _, err := tx.NewDelete().Table("account_sessions").Where("account_id = ?", a.ID).Exec(ctx); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		if _, err := tx.NewDelete().Table("account_activations").Where("account_id = ? AND used_at IS NULL", a.ID).Exec(ctx); err != nil {
			return fmt.Errorf("retire links: %w", err)
		}
		_, err = s.Audit.RecordTx(ctx, tx, audit.Change{Realm: actor.Realm, RealmID: actor.Scope(), Actor: actor.Actor(), Action: "account.remove", Target: a.Email,
			Before: map[string]any{"status": before, "role": a.Role}, After: map[string]any{"status": StatusRemoved}})
		return err
	})
}

// contains is slices.Contains, kept for readability at call sites.
func contains(list []string, v string) bool { return slices.Contains(list, v) }
