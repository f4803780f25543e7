package config

import "strings"

// auditSigningKey validates ENGRAM_AUDIT_SIGNING_KEY: the path of the PEM
// file of the Ed25519 key that signs audit checkpoints. The file itself is
// read, and its permissions checked, by the command that signs.
func (v *validator) auditSigningKey(cfg *Config) {
	const name = "ENGRAM_AUDIT_SIGNING_KEY"
	cfg.AuditSigningKey = strings.TrimSpace(cfg.AuditSigningKey)
	switch key := cfg.AuditSigningKey; {
	case key == "":
	case strings.Contains(key, "-----BEGIN") || strings.ContainsAny(key, "\n\r"):
		// Never echo it: it may be the key itself.
		v.addHidden(name, "must be the path of the key file, not the key itself (create one with: engram audit keygen -o FILE)")
	case strings.ContainsRune(key, 0):
		v.addHidden(name, "must be a file path")
	}
}
