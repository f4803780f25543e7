package projections_test

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
	"github.com/engramhq/engram/test/eventgen"
)

// TestRebuildRate measures the rebuild rate of every SQL projector over a
// generated history of ENGRAM_REBUILD_EVENTS events (default 1,000,000) in a
// throwaway database. It is a measurement, not a check, and runs only with
// ENGRAM_REBUILD_RATE=1:
//
//	ENGRAM_REBUILD_RATE=1 go test -run TestRebuildRate -v -timeout 30m ./projections/
func TestRebuildRate(t *testing.T) {
	if os.Getenv("ENGRAM_REBUILD_RATE") != "1" {
		t.Skip("a measurement: set ENGRAM_REBUILD_RATE=1 to run it")
	}
	n := 1_000_000
	if v := os.Getenv("ENGRAM_REBUILD_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("ENGRAM_REBUILD_EVENTS: %v", err)
		}
	}
	workers := 0 // the default
	if v := os.Getenv("ENGRAM_REBUILD_WORKERS"); v != "" {
		workers, _ = strconv.Atoi(v)
	}
	store := projectionstest.New(t).Store
	ctx := t.Context()
	start := time.Now()
	written, err := eventgen.New(store, 1).Append(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("appended %d events in %s", written, time.Since(start).Round(time.Millisecond))

	debug.SetGCPercent(400) // as engram projections rebuild does
	r, err := projections.NewRebuilder(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range projections.SQL() {
		res, err := r.Rebuild(ctx, p.(projections.TableProjector), projections.RebuildOptions{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-14s %8d events in %7s: %8.0f events/s", p.Name(), res.Events,
			res.Elapsed.Round(time.Millisecond), res.Rate())
	}
}
