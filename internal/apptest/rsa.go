package apptest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
)

func signRS256(key *rsa.PrivateKey, input []byte) ([]byte, error) {
	h := sha256.Sum256(input)
	return rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
}
