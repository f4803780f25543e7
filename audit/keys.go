package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The keys that sign checkpoints are Ed25519 keys in the PEM files OpenSSL
// writes too: the private key as PKCS #8 ("PRIVATE KEY", what
// `openssl genpkey -algorithm ed25519` writes), the public key as PKIX
// ("PUBLIC KEY", `openssl pkey -pubout`).

// GenerateSigningKey returns a new Ed25519 key for checkpoints.
func GenerateSigningKey() (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audit: generate signing key: %w", err)
	}
	return key, nil
}

// MarshalSigningKey returns the PEM (PKCS #8) form of a signing key.
func MarshalSigningKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("audit: encode signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey returns the PEM (PKIX) form of a public key.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("audit: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ReadSigningKey reads the signing key in the PEM file at path. The file must
// not be readable or writable by anyone but its owner: whoever can read it
// can sign a checkpoint of a forged log.
func ReadSigningKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("audit: signing key %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("audit: signing key %s: mode %04o lets others read or change it (chmod 600 %s)", path, perm, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: signing key %s: not a PEM \"PRIVATE KEY\" file (create one with engram audit keygen)", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: signing key %s: a %T, not an Ed25519 key", path, parsed)
	}
	return key, nil
}

// ParsePublicKey reads a public key given as the base64 of its 32 bytes (as
// in a checkpoint and as `engram audit keygen` prints it) or as a PEM
// "PUBLIC KEY" document.
func ParsePublicKey(text []byte) (ed25519.PublicKey, error) {
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text))); err == nil {
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit: public key: %d bytes, want %d", len(raw), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(raw), nil
	}
	block, _ := pem.Decode(text)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("audit: public key: neither base64 nor a PEM \"PUBLIC KEY\" document")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	pub, ok := parsed.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: public key: a %T, not an Ed25519 key", parsed)
	}
	return pub, nil
}

// Fingerprint names a public key briefly: "SHA256:" and the unpadded base64
// of its SHA-256, as OpenSSH names keys.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
