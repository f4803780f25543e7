package app

import (
	"context"
	"errors"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/queries"
)

// Application is everything a transport drives.
type Application struct {
	Commands commands.Commands
	Queries  queries.Queries
	// Tokens parses access tokens.
	Tokens TokenParser
	// Revocations tells whether a session or an API key was revoked,
	// consistently across instances.
	Revocations RevocationChecker
	// Counters count failed logins for throttling; pass the cache shared by
	// every instance.
	Counters Counters
	// Responses reads the stored first answers of idempotent requests.
	Responses ResponseStore
	// Readiness tells whether the instance can serve.
	Readiness Readiness
	// Audit reads, folds and verifies the event log for auditors; nil
	// means that this instance offers no audit.
	Audit Auditor
	// Experts are the domain experts this instance runs.
	Experts []Expert
}

// Validate refuses an application with a missing part (Audit and Experts
// may be empty).
func (a *Application) Validate() error {
	if a.Tokens == nil || a.Revocations == nil || a.Counters == nil || a.Responses == nil || a.Readiness == nil {
		return errors.New("app: tokens, revocations, counters, stored responses and readiness are required")
	}
	if a.Commands.PostMessage == nil || a.Queries.ListMessages == nil {
		return errors.New("app: commands and queries are required")
	}
	return nil
}

// TokenParser validates access tokens.
type TokenParser interface {
	// Parse returns the claims of a valid, unexpired token, and an error
	// for any other.
	Parse(token string) (security.Claims, error)
}

// RevocationChecker tells whether a credential was revoked. Both answers
// must hold on every instance from the moment the revoking command returns;
// an instance that cannot tell fails with ErrRevocationsUnknown.
type RevocationChecker interface {
	SessionRevoked(ctx context.Context, sessionID string) (bool, error)
	KeyRevoked(ctx context.Context, keyID string) (bool, error)
}

// Counters count events in fixed windows. The program passes the cache,
// shared by every instance, so that a limit holds across all of them.
type Counters interface {
	// Get returns the value of key, and false when there is none.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Incr adds one to key and returns the result; a new key expires after
	// ttl.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

// ResponseStore reads the answers stored for idempotent requests (see
// commands.Idempotency).
type ResponseStore interface {
	// IdempotentResponse returns the answer stored under (scope, key), and
	// false when there is none.
	IdempotentResponse(ctx context.Context, scope, key string) (StoredResponse, bool, error)
}

// Readiness tells whether the instance can serve.
type Readiness interface {
	// Ready reports the state of each part the instance depends on, and
	// whether all of them allow it to serve.
	Ready(ctx context.Context) (ReadyReport, bool)
}

// ReadyReport is the state of each part an instance depends on, by name.
type ReadyReport map[string]any

// Expert describes a domain expert this instance runs.
type Expert struct {
	Name         string
	Capabilities []string
}
