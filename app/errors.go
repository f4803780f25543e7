package app

import (
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

// The errors a transport tells apart, beyond the domain's (domain.Error)
// and the commands' (commands.ErrPreconditionFailed,
// commands.ErrIdempotencyKeyUsed).
var (
	// ErrConcurrency means that another writer changed a stream the command
	// needed unchanged (a creation whose stream exists, an If-Match).
	ErrConcurrency = eventstore.ErrConcurrency
	// ErrNotCaughtUp means that a read model did not apply a position
	// within the read-your-writes timeout.
	ErrNotCaughtUp = projections.ErrNotCaughtUp
	// ErrRevocationsUnknown means that this instance cannot tell which
	// credentials were revoked (see RevocationChecker).
	ErrRevocationsUnknown = projections.ErrRevocationsUnknown
)

// StoredResponse is the first answer given to an idempotent request.
type StoredResponse = eventstore.StoredResponse
