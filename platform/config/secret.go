package config

import "log/slog"

const redacted = "[redacted]"

// Secret is a string that never prints itself: fmt, slog, encoding/json and
// any other TextMarshaler-aware encoder see "[redacted]". Convert it
// explicitly (string(s) or s.Bytes()) where the value is really needed.
type Secret string

// String returns "[redacted]", so %v, %s and %q never reveal the secret.
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v never reveals the secret.
func (s Secret) GoString() string { return redacted }

// LogValue returns "[redacted]", so slog never reveals the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]", so encoders never reveal the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Bytes returns the secret itself, e.g. as an HMAC key.
func (s Secret) Bytes() []byte { return []byte(s) }
