package partner_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/partner"
)

// TestKeyTypeRules: each key type maps to its one JWT algorithm, public or
// private; other curves are refused. A key file must hold a public key
// (PKIX or PKCS #1), and yields its algorithm.
func TestKeyTypeRules(t *testing.T) {
	t.Parallel()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	e384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	epub, epriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pkix := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}

	t.Run("AlgorithmOf", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			key  any
			want string
		}{
			{rk, partner.AlgRS256}, {&rk.PublicKey, partner.AlgRS256},
			{ek, partner.AlgES256}, {&ek.PublicKey, partner.AlgES256},
			{epriv, partner.AlgEdDSA}, {epub, partner.AlgEdDSA},
		} {
			got, err := partner.AlgorithmOf(tc.key)
			require.NoError(t, err, "%T", tc.key)
			require.Equal(t, tc.want, got, "%T", tc.key)
		}
		for _, k := range []any{e384, &e384.PublicKey, []byte("secret")} {
			_, err := partner.AlgorithmOf(k)
			require.ErrorContains(t, err, "use RSA, EC P-256 or Ed25519")
		}
	})

	t.Run("PublicKeyFilePEM", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			file []byte
			alg  string
			err  string
		}{
			{"RSA PKIX", pkix(&rk.PublicKey), partner.AlgRS256, ""},
			{"RSA PKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)}), partner.AlgRS256, ""},
			{"EC P-256", pkix(&ek.PublicKey), partner.AlgES256, ""},
			{"Ed25519", pkix(epub), partner.AlgEdDSA, ""},
			{"EC P-384", pkix(&e384.PublicKey), "", "unsupported key type"},
			{"private key", pkcs8(epriv), "", "give the public key"},
			{"not PEM", []byte("hello"), "", "not a PEM file"},
		} {
			text, alg, err := partner.PublicKeyFilePEM(tc.file)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err, tc.name)
				continue
			}
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.alg, alg, tc.name)
			require.Equal(t, string(tc.file), text, tc.name)
		}
	})
}
