// Package keyring holds the master key and everything derived from it:
// sealing partner secrets at rest (AES-256-GCM) and keyed hashes of
// identifiers that must stay findable after the plain value is erased.
//
// Subkeys are derived per purpose with HMAC-SHA256(master, purpose), so a
// sealed secret and a lookup hash never share a key.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key length in bytes.
const KeySize = 32

// sealVersion prefixes every sealed value so the format can change later.
const sealVersion byte = 1

// Keyring seals and hashes with keys derived from one master key.
type Keyring struct {
	aead        cipher.AEAD
	hashKey     []byte
	macKey      []byte
	fingerprint []byte
}

// fingerprintLabel derives the fingerprint. Like every derived key it is a
// one-way HMAC of the master key, so storing it reveals nothing of the key.
const fingerprintLabel = "perks master key fingerprint"

// New builds a Keyring from the raw master key.
func New(master []byte) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(master))
	}
	block, err := aes.NewCipher(derive(master, "perks/seal/v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Keyring{
		aead:    aead,
		hashKey: derive(master, "perks/lookup-hash/v1"),
		macKey:  derive(master, "perks/mac/v1"),

		fingerprint: derive(master, fingerprintLabel),
	}, nil
}

// Parse decodes a base64 (standard or URL, padded or not) master key.
func Parse(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return New(b)
		}
	}
	return nil, errors.New("master key is not valid base64")
}

// Fingerprint identifies the master key: HMAC-SHA256(master, "perks master
// key fingerprint"). The database records the first one it is used with
// (database.CheckMasterKey), so a process holding another key is refused at
// startup instead of sealing secrets nobody else can open.
func (k *Keyring) Fingerprint() []byte { return append([]byte(nil), k.fingerprint...) }

// DevKeyPath is where the development master key lives in dir.
func DevKeyPath(dir string) string { return filepath.Join(dir, "master.key") }

// LoadOrCreateDevKey reads the development master key from dir/master.key,
// creating it (0600) when missing. Only for PERKS_ENV=development; dir must
// be absolute, so that a command run from another working directory never
// creates a second key next to it.
func LoadOrCreateDevKey(dir string) (*Keyring, bool, error) {
	if !filepath.IsAbs(dir) {
		return nil, false, fmt.Errorf("secrets directory %q is not absolute", dir)
	}
	path := DevKeyPath(dir)
	if b, err := os.ReadFile(path); err == nil {
		k, err := Parse(string(b))
		return k, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create secrets dir: %w", err)
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, err
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				return nil, false, rerr
			}
			k, perr := Parse(string(b))
			return k, false, perr
		}
		return nil, false, fmt.Errorf("write master key: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(enc + "\n"); err != nil {
		return nil, false, err
	}
	k, err := New(raw)
	return k, true, err
}

func derive(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Seal encrypts plaintext; aad binds the ciphertext to its context (for
// example the credential id), so a sealed value copied to another row fails
// to open.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+k.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value made by Seal with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < 1+ns+k.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errors.New("sealed value is malformed")
	}
	pt, err := k.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], aad)
	if err != nil {
		return nil, errors.New("sealed value does not open with this master key")
	}
	return pt, nil
}

// LookupHash returns a keyed hash of value in a namespace (a partner id),
// stable for as long as the master key is.
func (k *Keyring) LookupHash(namespace, value string) []byte {
	m := hmac.New(sha256.New, k.hashKey)
	m.Write([]byte(namespace))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// MAC signs server-issued opaque values (cursors, tokens) with a key
// separate from the lookup hashes.
func (k *Keyring) MAC(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k.macKey)
	for _, p := range parts {
		var l [4]byte
		n := len(p)
		l[0], l[1], l[2], l[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		m.Write(l[:])
		m.Write(p)
	}
	return m.Sum(nil)
}
