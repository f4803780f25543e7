package sse

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/cache"
)

// noRevocations revokes nothing.
type noRevocations struct{}

func (noRevocations) SessionRevoked(context.Context, string) (bool, error) { return false, nil }
func (noRevocations) KeyRevoked(context.Context, string) (bool, error)     { return false, nil }

// revocationList revokes the sessions and keys put in it.
type revocationList struct {
	mu      sync.Mutex
	revoked map[string]bool
}

func (r *revocationList) revoke(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.revoked == nil {
		r.revoked = map[string]bool{}
	}
	r.revoked[id] = true
}

func (r *revocationList) is(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revoked[id]
}

func (r *revocationList) SessionRevoked(_ context.Context, id string) (bool, error) {
	return r.is(id), nil
}
func (r *revocationList) KeyRevoked(_ context.Context, id string) (bool, error) { return r.is(id), nil }

func TestTicketReopensItsOwnStreamOnly(t *testing.T) {
	h, _ := newTestHub(t, newFakeLog(), Config{}, nil)
	ctx := context.Background()
	until := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	if err := h.storeTicket(ctx, "sset_a", ticket{UserID: "u1", SessionID: "s1", Until: until}, TicketTTL); err != nil {
		t.Fatal(err)
	}
	conv := streamKey(scopeConversation, "c1")
	for i := range 3 { // the first stream, then two reconnections
		a, end, refusal, err := h.redeem(ctx, "sset_a", conv)
		if err != nil || refusal != "" || a.UserID != "u1" || a.SessionID != "s1" || !end.Equal(until) {
			t.Fatalf("use %d: actor %+v, end %v, refusal %q, err %v", i+1, a, end, refusal, err)
		}
	}
	for _, other := range []string{streamKey(scopeConversation, "c2"), streamKey(scopeWorkspace, "c1"), streamKey(scopeAll, "")} {
		if a, _, refusal, err := h.redeem(ctx, "sset_a", other); err != nil || refusal != ticketOtherStream || a.UserID != "" {
			t.Fatalf("%s: actor %+v, refusal %q, err %v; want refused as another stream's", other, a, refusal, err)
		}
	}
	// Refused elsewhere, the ticket still reopens its own stream.
	if _, _, refusal, err := h.redeem(ctx, "sset_a", conv); err != nil || refusal != "" {
		t.Fatalf("after a refusal elsewhere: refusal %q, err %v", refusal, err)
	}
}

func TestTicketRefusals(t *testing.T) {
	revocations := &revocationList{}
	h, err := NewHub(context.Background(), Config{}, Dependencies{Log: newFakeLog(), Tickets: newTestTickets(t), Revocations: revocations})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	ctx := context.Background()
	later := time.Now().Add(time.Minute)
	store := func(value string, tk ticket) {
		t.Helper()
		if err := h.storeTicket(ctx, value, tk, TicketTTL); err != nil {
			t.Fatal(err)
		}
	}
	store("sset_session", ticket{UserID: "u1", SessionID: "s1", Until: later})
	store("sset_key", ticket{UserID: "u1", KeyID: "k1", Until: later})
	store("sset_expired", ticket{UserID: "u1", SessionID: "s2", Until: time.Now().Add(-time.Second)})
	revocations.revoke("s1")
	revocations.revoke("k1")

	long := "sset_" + string(make([]byte, maxTicketBytes))
	for _, c := range []struct {
		value string
		want  ticketRefusal
	}{
		{"sset_session", ticketCredentialGone},
		{"sset_key", ticketCredentialGone},
		{"sset_expired", ticketUnknown},
		{"sset_unknown", ticketUnknown},
		{long, ticketUnknown},
	} {
		a, _, refusal, err := h.redeem(ctx, c.value, streamKey(scopeAll, ""))
		if err != nil || refusal != c.want || a.UserID != "" {
			t.Errorf("%.20s: actor %+v, refusal %q, err %v; want %q", c.value, a, refusal, err, c.want)
		}
	}
	// A ticket refused for its credential is gone, whatever happens to it.
	for _, value := range []string{"sset_session", "sset_key", "sset_expired"} {
		if _, found, _ := h.tickets.Get(ctx, ticketKey(value)); found {
			t.Errorf("%s is still stored", value)
		}
	}
}

func newTestTickets(t *testing.T) TicketStore {
	m := cache.NewMemory()
	t.Cleanup(func() { _ = m.Close() })
	return m
}
