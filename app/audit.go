package app

import (
	"context"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/eventstore"
)

// Auditor reads, folds and verifies the event log for auditors, recording
// every read it serves (audit.Service).
type Auditor interface {
	// Events returns a page of the whole log; StreamEvents one of a stream.
	Events(ctx context.Context, r audit.Reader, q audit.Query) (audit.Page, error)
	StreamEvents(ctx context.Context, r audit.Reader, streamID string, q audit.Query) (audit.Page, error)
	// Export and ExportStream write every matching event, in order, and
	// return how many they wrote.
	Export(ctx context.Context, r audit.Reader, q audit.Query, write func(audit.Item) error) (int64, error)
	ExportStream(ctx context.Context, r audit.Reader, streamID string, q audit.Query, write func(audit.Item) error) (int64, error)
	// State folds a stream up to a version or a time.
	State(ctx context.Context, r audit.Reader, streamID string, p audit.Point) (audit.State, error)
	// Verify checks the hash chains of the log (or of one stream), calling
	// onBreak for every break it finds.
	Verify(ctx context.Context, r audit.Reader, streamID string, onBreak func(Break) error) (VerifyReport, error)
	// VerifyProjections compares the SQL read models (or the one named)
	// with the log.
	VerifyProjections(ctx context.Context, r audit.Reader, name string) (audit.ProjectionsReport, error)
}

var _ Auditor = (*audit.Service)(nil)

// Break is a place where a hash chain of the log does not hold.
type Break = eventstore.Break

// VerifyReport sums up a verification of the log's hash chains.
type VerifyReport = eventstore.VerifyReport

// ViaAPI marks an audit reader who reads through the HTTP API
// (audit.Reader.Via).
const ViaAPI = auditlog.ViaAPI
