package cli

import (
	"context"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/projections"
)

// readiness answers /readyz from the parts an instance depends on.
type readiness struct{ in *instance }

var _ app.Readiness = readiness{}

// Ready reports the cache, the Redis read models, the revocations, the
// database, the router and the projections. The instance is ready when the
// revocations are current (else authenticated requests are refused), the
// database answers, the router runs and no projection lags by more than
// ENGRAM_PROJECTION_MAX_LAG events; the Redis read models are informative
// (queries fall back to SQL).
func (r readiness) Ready(ctx context.Context) (app.ReadyReport, bool) {
	in := r.in
	report := app.ReadyReport{"cache": in.caches.Backend()}
	if in.readModels != nil {
		report["read_models"] = in.readModels.Status(ctx)
	}
	revoked := in.revocations.Status()
	report["revocations"] = revoked
	ok := revoked.Current
	if err := in.db.PingContext(ctx); err != nil {
		report["postgres"] = "unreachable"
		ok = false
	} else {
		report["postgres"] = "ok"
	}
	if in.router.IsRunning() {
		report["router"] = "running"
	} else {
		report["router"] = "stopped"
		ok = false
	}
	if !ok {
		return report, false
	}
	statuses, err := in.checkpoints.Status(ctx, projections.Names(in.projectors))
	if err != nil {
		report["projections"] = "unknown"
		return report, false
	}
	report["projections"] = statuses
	for _, s := range statuses {
		if s.LagEvents > in.cfg.ProjectionMaxLag {
			ok = false
		}
	}
	return report, ok
}
