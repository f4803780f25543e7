package security

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/alexedwards/argon2id"
	"golang.org/x/crypto/argon2"
)

// DefaultParams are OWASP's argon2id recommendation: 19 MiB of memory,
// 2 iterations, 1 lane, a 16-byte salt and a 32-byte key.
var DefaultParams = argon2id.Params{
	Memory:      19 * 1024,
	Iterations:  2,
	Parallelism: 1,
	SaltLength:  16,
	KeyLength:   32,
}

// PasswordHasher hashes and verifies passwords with argon2id. Its zero
// value uses DefaultParams; it is safe for concurrent use.
type PasswordHasher struct {
	// Params are the parameters of new hashes (zero: DefaultParams).
	// Verify reads the parameters stored in each hash, so changing them
	// keeps old hashes valid; see NeedsRehash.
	Params argon2id.Params
}

// NewPasswordHasher returns a hasher with DefaultParams.
func NewPasswordHasher() *PasswordHasher {
	return &PasswordHasher{Params: DefaultParams}
}

func (h *PasswordHasher) params() argon2id.Params {
	if h.Params == (argon2id.Params{}) {
		return DefaultParams
	}
	return h.Params
}

// Hash returns the encoded argon2id hash of password
// ("$argon2id$v=19$m=19456,t=2,p=1$salt$key"), with a fresh random salt.
func (h *PasswordHasher) Hash(password string) (string, error) {
	p := h.params()
	encoded, err := argon2id.CreateHash(password, &p)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return encoded, nil
}

// Verify reports whether password matches encodedHash, in constant time.
// It returns an error only when encodedHash is not an argon2id hash.
func (h *PasswordHasher) Verify(password, encodedHash string) (bool, error) {
	ok, err := argon2id.ComparePasswordAndHash(password, encodedHash)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	return ok, nil
}

// VerifyDummy does the work of Verify against a hash no password matches,
// so that a login for an unknown account takes as long as one for a known
// account and does not reveal which accounts exist.
func (h *PasswordHasher) VerifyDummy(password string) {
	_, _ = argon2id.ComparePasswordAndHash(password, dummyHash(h.params()))
}

// dummyHash encodes random bytes as the key of a hash with parameters p:
// verifying against it costs exactly one argon2id derivation, and building
// it costs none.
func dummyHash(p argon2id.Params) string {
	salt := make([]byte, p.SaltLength)
	key := make([]byte, p.KeyLength)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go ≥ 1.24).
	_, _ = rand.Read(key)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// NeedsRehash reports whether encodedHash was made with other parameters
// than h's (or is not an argon2id hash at all): after a successful login,
// store a new hash of the password.
func (h *PasswordHasher) NeedsRehash(encodedHash string) bool {
	p, _, _, err := argon2id.DecodeHash(encodedHash)
	return err != nil || *p != h.params()
}
