package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocsWorkedExamples recomputes every worked example of docs/auth.md
// with the server's own code, so the page cannot drift from what Perks
// verifies.
func TestDocsWorkedExamples(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/auth.md")
	require.NoError(t, err)
	doc := string(b)
	has := func(v string) {
		t.Helper()
		require.Contains(t, doc, v)
	}
	const ts, secret, body = "1790000000", "dev_acme_secret_change_me", `{"externalUserId":"usr_demo_001"}`
	has(SignV1([]byte(secret), ts, []byte(body)))
	has(SignV1([]byte(secret), ts, nil))
	has(SignV2([]byte(secret), ts, "DELETE", "/integrations/users/usr_demo_001", nil))

	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	key := ed25519.NewKeyFromSeed(seed)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	has(base64.StdEncoding.EncodeToString(der))
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)
	has(base64.StdEncoding.EncodeToString(pubDER))
	sum := sha256.Sum256([]byte(body))
	has(hex.EncodeToString(sum[:]))
	empty := sha256.Sum256(nil)
	has(hex.EncodeToString(empty[:]))
	has(SignEd25519(key, ts, "POST", "/integrations/users", []byte(body), "create-usr_demo_001-1"))

	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hs := func(secret, header, payload string) string {
		in := b64(header) + "." + b64(payload)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	const pid, rjSecret = "5f0c8a52-3d6e-4c1b-9a57-2b8e4f1d7c90", "partnerSecret-acme-0123456789abcdef"
	has(hs(rjSecret, `{"alg":"HS256","typ":"JWT"}`, `{"iss":"`+pid+`","sub":"","iat":1790000000,"data_header":"[]","data_body":"[]"}`))
	dataBody := `"` + strings.ReplaceAll(body, `"`, `\"`) + `"`
	has(hs(rjSecret, `{"alg":"HS256","typ":"JWT"}`, `{"iss":"`+pid+`","sub":"perks_bt_3q2-7wAAAAAexampleexampleexampleexample","iat":1790000000,"data_header":"[]","data_body":`+dataBody+`}`))
	require.NoError(t, checkDataBody([]byte(dataBody), []byte(body)), "the example's data_body binds its body")

	bulk := []byte(`{"externalUserIds":["usr_demo_001","usr_demo_002"]}`)
	bulkSum := sha256.Sum256(bulk)
	has(hex.EncodeToString(bulkSum[:]))
	require.NoError(t, checkBodyDigest(hex.EncodeToString(bulkSum[:]), bulk))
	has(hs(rjSecret, `{"alg":"HS256","typ":"JWT"}`, `{"iss":"`+pid+`","sub":"perks_bt_3q2-7wAAAAAexampleexampleexampleexample","iat":1790000000,"jti":"multidelete-2026-11-25-1","htm":"POST","htu":"https://perks.example/integrations/users/multidelete","data_body_sha256":"`+hex.EncodeToString(bulkSum[:])+`"}`))

	has(hs("Zx8kq3mV7pR2sT9wY4bN6cH1jL5dF0gA", `{"alg":"HS256","typ":"JWT","kid":"IRa1b2c3d4e5f6AcmeAccount"}`,
		`{"user":{"id":"john@example.com","accountId":"john@example.com","firstName":"John","lastName":"Doe","email":"john@example.com","locale":"en_US"},"exp":1790600000}`))
}
