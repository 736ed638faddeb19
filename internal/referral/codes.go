package referral

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// Alphabet is what a '#' of a code pattern draws from: digits and upper
// case letters without the ones read or typed for another (0/O, 1/I/L),
// so a code read aloud or copied from a screenshot still works.
const Alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

var codeRE = regexp.MustCompile(`^[A-Z0-9_-]{3,64}$`)

// NormalizeCode is a code as stored: trimmed, upper case (codes are
// case-insensitive). ok is false for anything that cannot be a code.
func NormalizeCode(code string) (string, bool) {
	c := strings.ToUpper(strings.TrimSpace(code))
	return c, codeRE.MatchString(c)
}

// Generate draws a code from pattern: each '#' a random character of
// Alphabet (crypto/rand: codes are not guessable from each other), the
// rest kept.
func Generate(pattern string) (string, error) {
	var b strings.Builder
	n := big.NewInt(int64(len(Alphabet)))
	for _, r := range pattern {
		if r != '#' {
			b.WriteRune(r)
			continue
		}
		i, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", fmt.Errorf("draw a referral code: %w", err)
		}
		b.WriteByte(Alphabet[i.Int64()])
	}
	return b.String(), nil
}

// maxCodeDraws bounds the retries of a code drawn twice. With the default
// pattern (31^8 codes) a second draw is already a one-in-billions event;
// a partner whose short pattern is full gets an error, not a loop.
const maxCodeDraws = 8

// CodeOf returns the user's code, or "" when they have none yet.
func (s *Service) CodeOf(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (string, error) {
	var code string
	err := db.NewRaw(`SELECT code FROM referral_codes WHERE partner_id = ? AND user_id = ?`, partnerID, userID).Scan(ctx, &code)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load referral code: %w", err)
	}
	return code, nil
}

// EnsureCode returns the user's code, giving them one drawn from the
// partner's pattern the first time it is asked for (every user has a
// code; it is made when first read, so no user-creating path has to
// remember it). Concurrent first reads agree: the insert does nothing on
// a conflict and the code is read back; a draw taken by another user is
// drawn again.
func (s *Service) EnsureCode(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (string, error) {
	code, err := s.CodeOf(ctx, db, partnerID, userID)
	if err != nil || code != "" {
		return code, err
	}
	pol, _, err := s.Policy(ctx, db, partnerID)
	if err != nil {
		return "", err
	}
	for range maxCodeDraws {
		c, err := Generate(pol.CodePattern)
		if err != nil {
			return "", err
		}
		var got string
		err = db.NewRaw(`INSERT INTO referral_codes (partner_id, user_id, code, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING RETURNING code`, partnerID, userID, c, s.Now().UTC()).Scan(ctx, &got)
		if err == nil {
			return got, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			if isForeignKeyViolation(err) {
				return "", apperr.New(apperr.CodeUserNotFound, "user not found")
			}
			return "", fmt.Errorf("give a referral code: %w", err)
		}
		// Either the user got a code meanwhile, or the draw is taken.
		if code, err := s.CodeOf(ctx, db, partnerID, userID); err != nil || code != "" {
			return code, err
		}
	}
	return "", fmt.Errorf("no free referral code after %d draws of pattern %q", maxCodeDraws, pol.CodePattern)
}

// SetCodeTx gives the user the partner's own code (seed 003's
// referralCode on the upsert), replacing a drawn one. field names the
// input in errors. A code another user has is REFERRAL_CODE_TAKEN (which
// aborts tx: the whole upsert is refused and changes nothing). Referrals
// made with the old code keep it on record.
func (s *Service) SetCodeTx(ctx context.Context, tx bun.Tx, partnerID, userID uuid.UUID, field, code string) (string, error) {
	c, ok := NormalizeCode(code)
	if !ok {
		return "", apperr.Field(apperr.CodeInvalidField, field, "%s must be 3 to 64 letters, digits, '_' or '-'", field)
	}
	var got string
	err := tx.NewRaw(`INSERT INTO referral_codes AS rc (partner_id, user_id, code, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (partner_id, user_id) DO UPDATE SET code = EXCLUDED.code RETURNING code`,
		partnerID, userID, c, s.Now().UTC()).Scan(ctx, &got)
	switch {
	case err == nil:
		return got, nil
	case sqlState(err) == "23505":
		return "", apperr.Field(apperr.CodeReferralCodeTaken, field, "another user already has this referral code")
	default:
		return "", fmt.Errorf("set referral code: %w", err)
	}
}

type sqlStater interface{ SQLState() string }

func sqlState(err error) string {
	var e sqlStater
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

func isForeignKeyViolation(err error) bool { return sqlState(err) == "23503" }
