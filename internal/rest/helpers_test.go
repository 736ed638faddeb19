package rest_test

import (
	"crypto/hmac"
	"crypto/sha256"
)

func hs256(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}
