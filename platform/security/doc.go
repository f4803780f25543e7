// Package security holds Engram's credential primitives: argon2id password
// hashing (PasswordHasher), HS256 access tokens (Tokens) and opaque random
// tokens such as refresh tokens and API keys (RandomToken, HashToken).
//
// Nothing here logs: callers decide what to log, and must never log a
// password, a token or a hash.
package security
