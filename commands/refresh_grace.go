package commands

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DefaultRefreshReuseGrace is how long after a refresh the refresh token it
// spent still answers with the same new pair, for a client that sent the
// refresh several times at once or retried it after a lost answer.
const DefaultRefreshReuseGrace = 10 * time.Second

// GraceStore keeps the answers of recent refreshes for the reuse grace: pass
// the cache shared by every instance, so that a retry reaching another
// instance gets the same answer. Entries are sealed with a key derived from
// the spent refresh token, so the store never holds a usable token.
type GraceStore interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// graceAnswer is the answer of one refresh, kept for its reuse grace.
type graceAnswer struct {
	Tokens
	UserID string    `json:"user_id"`
	Until  time.Time `json:"until"` // end of the grace
}

// graceKey names the kept answer of the refresh that rotated to the token
// whose hash is newHash: one entry per rotation, so that contenders of a
// refresh race, which write before they append, never overwrite the winner's.
func graceKey(newHash string) string { return "refresh:grace:" + newHash }

// sealKey derives the key that seals an answer from the spent refresh token:
// only whoever presents that token can open it.
func sealKey(spentToken string) []byte {
	sum := sha256.Sum256([]byte("engram refresh grace v1\x00" + spentToken))
	return sum[:]
}

func sealGrace(spentToken string, a graceAnswer) ([]byte, error) {
	plain, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("seal refresh answer: %w", err)
	}
	aead, err := graceAEAD(spentToken)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go ≥ 1.24).
	return aead.Seal(nonce, nonce, plain, nil), nil
}

func openGrace(spentToken string, sealed []byte) (graceAnswer, error) {
	aead, err := graceAEAD(spentToken)
	if err != nil {
		return graceAnswer{}, err
	}
	if len(sealed) < aead.NonceSize() {
		return graceAnswer{}, errors.New("open refresh answer: too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return graceAnswer{}, fmt.Errorf("open refresh answer: %w", err)
	}
	var a graceAnswer
	if err := json.Unmarshal(plain, &a); err != nil {
		return graceAnswer{}, fmt.Errorf("open refresh answer: %w", err)
	}
	return a, nil
}

func graceAEAD(spentToken string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(sealKey(spentToken))
	if err != nil {
		return nil, fmt.Errorf("refresh answer cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("refresh answer cipher: %w", err)
	}
	return aead, nil
}
