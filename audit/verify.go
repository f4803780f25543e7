package audit

import (
	"context"

	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/eventstore"
)

// Verify checks the hash chain and the version sequence of every stream, or
// of the one stream streamID when it is not empty, calling onBreak for each
// break found, in bounded memory (see eventstore.Store.VerifyLog). It records
// the read with the number of breaks found and returns the report. It returns
// a CodeNotFound error when streamID names a stream without events.
func (s *Service) Verify(ctx context.Context, r Reader, streamID string, onBreak func(eventstore.Break) error) (eventstore.VerifyReport, error) {
	filter := map[string]any{}
	if streamID != "" {
		if err := s.checkStream(ctx, streamID); err != nil {
			return eventstore.VerifyReport{}, err
		}
		filter["stream_id"] = streamID
	}
	report, err := s.store.VerifyLog(ctx, streamID, onBreak)
	if err != nil {
		return report, err
	}
	if err := s.record(ctx, r, auditlog.OperationVerify, auditlog.FormatJSON, filter, report.Breaks, true); err != nil {
		return report, err
	}
	return report, nil
}
