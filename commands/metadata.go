package commands

import (
	"context"

	"github.com/engramhq/engram/eventstore"
)

type metadataKey struct{}

// WithMetadata returns a context carrying the metadata (request, correlation
// and causation ids, actor) recorded with every event appended under it.
func WithMetadata(ctx context.Context, md eventstore.Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md)
}

// WithRequest returns a context whose commands record, with every event
// they append, the request that caused them: its id (as request and
// causation id) and its correlation id.
func WithRequest(ctx context.Context, requestID, correlationID string) context.Context {
	return WithMetadata(ctx, eventstore.Metadata{CorrelationID: correlationID, CausationID: requestID, RequestID: requestID})
}

func metadataFrom(ctx context.Context) eventstore.Metadata {
	md, _ := ctx.Value(metadataKey{}).(eventstore.Metadata)
	return md
}

// withActor records actorID as the actor of events appended under ctx.
func withActor(ctx context.Context, actorID string) context.Context {
	md := metadataFrom(ctx)
	md.ActorID = actorID
	return WithMetadata(ctx, md)
}
