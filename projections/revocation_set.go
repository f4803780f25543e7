package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/defaults"
)

// ErrRevocationsUnknown is returned by RevocationSet lookups when the set
// cannot show that it is current: it has not loaded yet, or it has not
// heard from the event log within its staleness bound. Authenticated
// requests are then refused (503) rather than trusted.
var ErrRevocationsUnknown = errors.New("revoked credentials unknown: this instance is not keeping up with the event log")

// Defaults of RevocationSetConfig.
const (
	DefaultRevocationsStaleAfter = 3 * time.Second
	DefaultRevocationsCheckEvery = 250 * time.Millisecond
)

// RevocationSetConfig configures a RevocationSet.
type RevocationSetConfig struct {
	// Window is how long after its revocation a session's access tokens
	// could still be presented: the access token lifetime plus leeway. A
	// revoked session is forgotten after it.
	Window time.Duration
	// StaleAfter is the staleness bound: once the set has not shown for
	// that long that it has applied the head of the log, lookups fail with
	// ErrRevocationsUnknown (default DefaultRevocationsStaleAfter).
	StaleAfter time.Duration
	// CheckEvery is how often Run compares the set with the head of the
	// log (default DefaultRevocationsCheckEvery).
	CheckEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// RevocationSet keeps, in this process's memory, every revoked session
// that still matters and every revoked API key, so that authenticating a
// request costs no network round trip. It is fed every event of the log in
// commit order through Observe (or Handle, a Watermill handler, for a
// Tailer subscription), loaded from the log at start (Load), and learns of
// the revocations made here at once (RevokeSession, RevokeKey).
//
// Staleness is bounded: Run reads the head of the log every CheckEvery, and
// the set is current as of the last head it had applied. A revocation
// committed on any instance is refused here as soon as the tail delivers it
// (milliseconds: the tail is woken by NOTIFY, and polls otherwise); if the
// set cannot show for StaleAfter that it is current (the database or the
// tail lost), every lookup fails with ErrRevocationsUnknown — fail closed —
// and Status says so for /readyz.
type RevocationSet struct {
	cfg    RevocationSetConfig
	logger *slog.Logger

	mu       sync.RWMutex
	sessions map[string]time.Time // revoked session → when it stops mattering
	keys     map[string]struct{}  // revoked API keys
	applied  eventstore.Cursor    // the last event observed
	loaded   bool
	current  time.Time          // the set held everything committed before this moment
	target   *eventstore.Cursor // a head not yet applied, read at targetAt
	targetAt time.Time
}

// NewRevocationSet returns an empty set; it is not current until Load has
// run and Run has compared it with the head of the log.
func NewRevocationSet(cfg RevocationSetConfig, logger *slog.Logger) (*RevocationSet, error) {
	if cfg.Window <= 0 {
		return nil, errors.New("revocation set: the window must be positive")
	}
	if logger == nil {
		return nil, errors.New("revocation set: a logger is required")
	}
	defaults.Positive(&cfg.StaleAfter, DefaultRevocationsStaleAfter)
	defaults.Positive(&cfg.CheckEvery, DefaultRevocationsCheckEvery)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RevocationSet{cfg: cfg, logger: logger, sessions: map[string]time.Time{}, keys: map[string]struct{}{}}, nil
}

// Handle is a Watermill handler over the log's messages (e.g. a Tailer
// subscription): it observes every event. A message that is not an event
// is logged and skipped.
func (s *RevocationSet) Handle(msg *message.Message) error {
	if e, ok := eventstore.EventOf(msg, s.logger, "revocation set"); ok {
		s.Observe(e)
	}
	return nil
}

// Observe applies one event of the log. Events must come in commit order;
// observing one twice changes nothing.
func (s *RevocationSet) Observe(e eventstore.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(e.StreamType, e.StreamID, e.Type, e.RecordedAt)
	if c := e.Cursor(); c.After(s.applied) {
		s.applied = c
	}
	if s.target != nil && !s.target.After(s.applied) {
		s.current, s.target = s.targetAt, nil
	}
}

// apply records the revocation an event holds, if any. s.mu is held.
func (s *RevocationSet) apply(streamType, streamID, eventType string, at time.Time) {
	switch {
	case streamType == session.StreamType && eventType == session.EventRevoked:
		if until := at.Add(s.cfg.Window); until.After(s.cfg.Now()) {
			s.sessions[strings.TrimPrefix(streamID, session.StreamType+"-")] = until
		}
	case streamType == apikey.StreamType && eventType == apikey.EventRevoked:
		s.keys[strings.TrimPrefix(streamID, apikey.StreamType+"-")] = struct{}{}
	}
}

// Load adds every revocation already in the log: of sessions within the
// window, and of API keys. Call it once the feed of Observe has started,
// so that together they miss nothing (an event seen twice is harmless).
// head returns the head of the log in commit order (eventstore.Store.Head):
// it is read first, so that everything up to it is in what Load reads
// next, and the set counts as having applied it.
func (s *RevocationSet) Load(ctx context.Context, db *sql.DB, head func(context.Context) (eventstore.Cursor, error)) error {
	readAt := s.cfg.Now()
	h, err := head(ctx)
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT stream_type, stream_id, type, recorded_at FROM events
		WHERE (stream_type = $1 AND type = $2 AND recorded_at > $3) OR (stream_type = $4 AND type = $5)`,
		session.StreamType, session.EventRevoked, s.cfg.Now().Add(-s.cfg.Window), apikey.StreamType, apikey.EventRevoked)
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	defer rows.Close()
	type revocation struct {
		streamType, streamID, eventType string
		at                              time.Time
	}
	var all []revocation
	for rows.Next() {
		var r revocation
		if err := rows.Scan(&r.streamType, &r.streamID, &r.eventType, &r.at); err != nil {
			return fmt.Errorf("load revocations: %w", err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range all {
		s.apply(r.streamType, r.streamID, r.eventType, r.at)
	}
	if h.After(s.applied) {
		s.applied = h
	}
	if s.target == nil || !s.target.After(s.applied) {
		s.current, s.target = readAt, nil
	}
	s.loaded = true
	return nil
}

// Run compares the set with the head of the log every CheckEvery until ctx
// ends, which keeps the set's currency known, and forgets sessions whose
// window has passed. head returns the head of the log in commit order
// (eventstore.Store.Head).
func (s *RevocationSet) Run(ctx context.Context, head func(context.Context) (eventstore.Cursor, error)) {
	ticker := time.NewTicker(s.cfg.CheckEvery)
	defer ticker.Stop()
	for {
		s.check(ctx, head)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// check reads the head once: when the set has applied it, the set is
// current as of the moment of the read; otherwise the head becomes the
// target that a later Observe will reach.
func (s *RevocationSet) check(ctx context.Context, head func(context.Context) (eventstore.Cursor, error)) {
	readAt := s.cfg.Now()
	h, err := head(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("revocation set: head of the log unknown", "err", err)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !h.After(s.applied):
		s.current, s.target = readAt, nil
	case s.target == nil:
		s.target, s.targetAt = &h, readAt
	}
	now := s.cfg.Now()
	for id, until := range s.sessions {
		if !until.After(now) {
			delete(s.sessions, id)
		}
	}
}

// usable returns nil when lookups may be trusted. s.mu is held.
func (s *RevocationSet) usable() error {
	if !s.loaded || s.cfg.Now().Sub(s.current) > s.cfg.StaleAfter {
		return ErrRevocationsUnknown
	}
	return nil
}

// SessionRevoked reports whether the session was revoked. An identifier
// that is not a session id is revoked. It fails with ErrRevocationsUnknown
// when the set is not current.
func (s *RevocationSet) SessionRevoked(_ context.Context, sessionID string) (bool, error) {
	if !validUUID(sessionID) {
		return true, nil
	}
	return revokedIn(s, s.sessions, sessionID)
}

// KeyRevoked reports whether the API key was revoked. It fails with
// ErrRevocationsUnknown when the set is not current.
func (s *RevocationSet) KeyRevoked(_ context.Context, keyID string) (bool, error) {
	return revokedIn(s, s.keys, keyID)
}

// revokedIn reports whether id is in revoked, one of s's sets (whose maps
// are made once, with s), under s's lock. It fails with
// ErrRevocationsUnknown when s is not current.
func revokedIn[V any](s *RevocationSet, revoked map[string]V, id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(); err != nil {
		return false, err
	}
	_, in := revoked[id]
	return in, nil
}

// RevokeSession records at once a session revoked by this process, before
// the tail delivers its event.
func (s *RevocationSet) RevokeSession(_ context.Context, sessionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sessionID] = s.cfg.Now().Add(s.cfg.Window)
}

// RevokeKey records at once an API key revoked by this process.
func (s *RevocationSet) RevokeKey(_ context.Context, keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keyID] = struct{}{}
}

// RevocationStatus is what /readyz shows of the set.
type RevocationStatus struct {
	// Current reports whether lookups are trusted (false: authenticated
	// requests are refused).
	Current bool `json:"current"`
	// Age is how long ago the set was last shown to hold the whole log.
	Age string `json:"age"`
	// Position is the last event observed.
	Position int64 `json:"position"`
	// Sessions and Keys count the revoked credentials held.
	Sessions int `json:"sessions"`
	Keys     int `json:"keys"`
}

// Status reports the set's currency and size.
func (s *RevocationSet) Status() RevocationStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := RevocationStatus{Current: s.usable() == nil, Position: s.applied.Position, Sessions: len(s.sessions), Keys: len(s.keys), Age: "never"}
	if !s.current.IsZero() {
		st.Age = s.cfg.Now().Sub(s.current).Round(time.Millisecond).String()
	}
	return st
}

// validUUID reports whether s is a UUID in its canonical 36-character form.
func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
