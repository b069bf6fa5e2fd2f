package bbmsl

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadKey reads an RSA private key from a PEM file (PKCS#1 "RSA PRIVATE
// KEY" or PKCS#8 "PRIVATE KEY"). Errors name the file, never its contents.
func LoadKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bbmsl: read private key file %s: %w", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("bbmsl: private key file %s holds no PEM block", path)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bbmsl: private key file %s: not a valid PKCS#1 RSA key", path)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bbmsl: private key file %s: not a valid PKCS#8 key", path)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("bbmsl: private key file %s: not an RSA key", path)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("bbmsl: private key file %s: PEM type %q, want RSA PRIVATE KEY or PRIVATE KEY", path, block.Type)
}

// Sign returns the envelope for an inner request: the request serialized
// once, and the signature of exactly those bytes.
func Sign(key *rsa.PrivateKey, inner map[string]any) ([]byte, error) {
	text, err := json.Marshal(inner)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(text)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{Request: string(text), Signature: base64.StdEncoding.EncodeToString(sig)})
}

// Verify checks an envelope's signature with the public key and returns the
// inner request text.
func Verify(pub *rsa.PublicKey, body []byte) (string, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", fmt.Errorf("not a signed envelope: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signature)
	if err != nil {
		return "", errors.New("signature is not base64")
	}
	sum := sha256.Sum256([]byte(env.Request))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return "", errors.New("signature does not match the request")
	}
	return env.Request, nil
}

type envelope struct {
	Request   string `json:"request"`
	Signature string `json:"signature"`
}
