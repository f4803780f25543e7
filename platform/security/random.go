package security

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// MinTokenBytes is the fewest random bytes RandomToken accepts: 128 bits
// cannot be guessed.
const MinTokenBytes = 16

// RandomToken returns prefix followed by nbytes random bytes in unpadded
// base64url, e.g. RandomToken("rt_", 32) for a refresh token or
// RandomToken("sk-", 32) for an API key. nbytes must be at least
// MinTokenBytes.
func RandomToken(prefix string, nbytes int) (string, error) {
	if nbytes < MinTokenBytes {
		return "", fmt.Errorf("random token: %d bytes is fewer than %d", nbytes, MinTokenBytes)
	}
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken returns the hex SHA-256 of token, the form in which refresh
// tokens and API keys are stored and looked up. A fast hash is right here:
// the tokens are random and long, so there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ConstantTimeEqual reports whether a and b are equal, taking a time that
// depends on their lengths only, not on where they differ.
func ConstantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
