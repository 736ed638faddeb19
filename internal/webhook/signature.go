package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret, as the specification does.
const SecretPrefix = "whsec_"

// secretSize is the number of random bytes in a signing secret.
const secretSize = 32

// newSecret returns 32 random bytes.
func newSecret() []byte {
	b := make([]byte, secretSize)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return b
}

// EncodeSecret renders key as the partner sees it: whsec_ + base64.
func EncodeSecret(key []byte) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// DecodeSecret returns the HMAC key of a whsec_ secret. The prefix is
// optional, as in the specification's reference libraries.
func DecodeSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret must be whsec_ followed by base64")
	}
	return key, nil
}

// Sign returns the webhook-signature header value: one "v1,<base64>" entry
// per key, separated by spaces. The signed content is
// id + "." + timestamp + "." + body.
func Sign(keys [][]byte, id string, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, "v1,"+base64.StdEncoding.EncodeToString(mac(k, id, t, body)))
	}
	return strings.Join(parts, " ")
}

func mac(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verification errors.
var (
	ErrNoMatchingSignature = errors.New("no matching webhook signature")
	ErrTimestampTolerance  = errors.New("webhook timestamp outside the tolerance")
)

// Verify checks a delivery the way a receiver should: the timestamp within
// tolerance of now (against replays), and any v1 entry of the signature
// header matching (several are sent while a secret rotates), compared in
// constant time. It is the Go snippet of docs/webhooks.md.
func Verify(secret, id, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := DecodeSecret(secret)
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrTimestampTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTimestampTolerance
	}
	want := mac(key, id, timestamp, body)
	for _, entry := range strings.Fields(signature) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}
