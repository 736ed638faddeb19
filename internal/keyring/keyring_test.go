package keyring

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k, err := New(bytes.Repeat([]byte{7}, KeySize))
	require.NoError(t, err)

	sealed, err := k.Seal([]byte("dev_acme_secret_change_me"), []byte("cred-1"))
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "dev_acme")

	pt, err := k.Open(sealed, []byte("cred-1"))
	require.NoError(t, err)
	require.Equal(t, "dev_acme_secret_change_me", string(pt))

	_, err = k.Open(sealed, []byte("cred-2"))
	require.Error(t, err, "aad binds the value to its row")

	other, err := New(bytes.Repeat([]byte{8}, KeySize))
	require.NoError(t, err)
	_, err = other.Open(sealed, []byte("cred-1"))
	require.Error(t, err, "another master key cannot open it")

	sealed[len(sealed)-1] ^= 1
	_, err = k.Open(sealed, []byte("cred-1"))
	require.Error(t, err, "tampering is detected")

	_, err = k.Open([]byte{1, 2}, nil)
	require.Error(t, err)
}

func TestLookupHashIsNamespaced(t *testing.T) {
	t.Parallel()
	k, err := New(bytes.Repeat([]byte{1}, KeySize))
	require.NoError(t, err)
	require.Equal(t, k.LookupHash("p1", "u"), k.LookupHash("p1", "u"))
	require.NotEqual(t, k.LookupHash("p1", "u"), k.LookupHash("p2", "u"))
	require.NotEqual(t, k.LookupHash("p1", "u"), k.LookupHash("p1u", ""))
}

func TestParseAndDevKey(t *testing.T) {
	t.Parallel()
	_, err := Parse("not base64!!")
	require.Error(t, err)
	_, err = Parse("c2hvcnQ=")
	require.Error(t, err, "short keys are refused")

	dir := t.TempDir()
	k1, created, err := LoadOrCreateDevKey(dir)
	require.NoError(t, err)
	require.True(t, created)
	fi, err := os.Stat(filepath.Join(dir, "master.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	k2, created, err := LoadOrCreateDevKey(dir)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, k1.LookupHash("a", "b"), k2.LookupHash("a", "b"), "the key persists across runs")
}

// TestFingerprint: stable for a key, different between keys, and never a
// key usable for anything else; a relative development key directory is
// refused (it would depend on the working directory).
func TestFingerprint(t *testing.T) {
	t.Parallel()
	a, err := New(bytes.Repeat([]byte{1}, KeySize))
	require.NoError(t, err)
	a2, err := New(bytes.Repeat([]byte{1}, KeySize))
	require.NoError(t, err)
	b, err := New(bytes.Repeat([]byte{2}, KeySize))
	require.NoError(t, err)
	require.Len(t, a.Fingerprint(), 32)
	require.Equal(t, a.Fingerprint(), a2.Fingerprint())
	require.NotEqual(t, a.Fingerprint(), b.Fingerprint())
	require.NotEqual(t, a.Fingerprint(), a.hashKey)
	require.NotEqual(t, a.Fingerprint(), a.macKey)
	a.Fingerprint()[0] ^= 0xff
	require.Equal(t, a.Fingerprint(), a2.Fingerprint(), "callers get a copy")

	_, _, err = LoadOrCreateDevKey(".secrets")
	require.ErrorContains(t, err, "not absolute")
}
