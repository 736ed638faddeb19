package partner

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// AlgorithmOf names the one JWT algorithm a key type is used with (public
// or private key): RSA RS256, EC P-256 ES256, Ed25519 EdDSA. Other curves
// and types are refused. It is the rule behind `perks key add`'s default
// --alg and the algorithm `perks token` signs with.
func AlgorithmOf(key any) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return AlgRS256, nil
	case *ecdsa.PublicKey:
		if k.Curve.Params().Name == "P-256" {
			return AlgES256, nil
		}
	case *ecdsa.PrivateKey:
		if k.Curve.Params().Name == "P-256" {
			return AlgES256, nil
		}
	case ed25519.PublicKey, ed25519.PrivateKey:
		return AlgEdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T (use RSA, EC P-256 or Ed25519)", key)
}

// PublicKeyFilePEM reads an operator's key file for a consumer key: it
// returns the PEM text, which must hold a public key (PKIX or PKCS #1 RSA),
// and the key's algorithm (AlgorithmOf). A private key is refused with the
// command that extracts its public half. UpsertConsumerKey checks the key
// against the algorithm again (ParsePublicKeyPEM).
func PublicKeyFilePEM(b []byte) (pemText, alg string, err error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return "", "", errors.New("not a PEM file")
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		if pub, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return "", "", err
		}
	case "RSA PUBLIC KEY":
		if pub, err = x509.ParsePKCS1PublicKey(block.Bytes); err != nil {
			return "", "", err
		}
	default:
		return "", "", fmt.Errorf("PEM block %q: give the public key (openssl pkey -in private.key -pubout)", block.Type)
	}
	if alg, err = AlgorithmOf(pub); err != nil {
		return "", "", err
	}
	return string(b), alg, nil
}
