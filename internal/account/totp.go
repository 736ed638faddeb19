package account

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP settings: RFC 6238 defaults every authenticator app understands.
const (
	totpPeriod = 30
	totpSkew   = 1 // one step either side: clocks drift
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Enrolment is a TOTP secret offered on the activation page: as text for
// people who cannot scan, as an otpauth:// URI and as a QR code PNG.
type Enrolment struct {
	Secret string
	URI    string
	QRPNG  []byte
}

// QRDataURL is the QR code as a data: URL for an <img>.
func (e *Enrolment) QRDataURL() string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG)
}

// newTOTPSecret generates a secret for the account's address.
func newTOTPSecret(issuer, email string) (string, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: email, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", err
	}
	return k.Secret(), nil
}

// enrolment renders a stored secret for the activation page.
func enrolment(issuer, email, secret string) (*Enrolment, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: email, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Secret: mustB32(secret)})
	if err != nil {
		return nil, err
	}
	img, err := k.Image(240, 240)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return &Enrolment{Secret: secret, URI: k.URL(), QRPNG: buf.Bytes()}, nil
}

// checkTOTP returns the time step code matches (within totpSkew of now),
// or 0 when it matches none. A step at or before lastStep is refused: a
// code is accepted once.
func checkTOTP(secret, code string, now time.Time, lastStep int64) int64 {
	if len(code) != 6 {
		return 0
	}
	step := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := step + d
		if s <= lastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s
		}
	}
	return 0
}

// mustB32 decodes the base32 text of a secret made by newTOTPSecret (no
// padding); a malformed one yields nil, and Generate then makes a fresh
// secret, which the enrolment would show: callers only pass stored secrets.
func mustB32(s string) []byte {
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}
