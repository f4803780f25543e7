package sse

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/transport/request"
)

// TicketTTL is how long a new SSE ticket waits for its first stream.
const TicketTTL = 60 * time.Second

// DefaultTicketLifetime is the default of Config.TicketLifetime.
const DefaultTicketLifetime = 15 * time.Minute

// maxTicketBytes bounds what is hashed and looked up as a ticket; issued
// tickets are 48 bytes.
const maxTicketBytes = 128

// ticketPrefix starts every ticket.
const ticketPrefix = "sset_"

// ticket is what a ticket stands for: the credential that asked for it,
// how long it may be used, and the one stream it opens. Only its hash is
// the key, so that the store never holds a usable ticket.
type ticket struct {
	UserID    string   `json:"user_id"`
	Roles     []string `json:"roles"`
	Scopes    []string `json:"scopes"`
	SessionID string   `json:"session_id,omitempty"`
	KeyID     string   `json:"key_id,omitempty"`
	// Until is when the ticket stops opening streams, and when the streams
	// it opened end: its lifetime after minting, or the expiry of its
	// credential if that comes first.
	Until time.Time `json:"until"`
	// Stream is the stream the ticket is bound to ("" until its first use):
	// reconnections may open that stream again, and no other.
	Stream string `json:"stream,omitempty"`
}

func (t ticket) actor() access.Actor {
	return access.Actor{UserID: t.UserID, Roles: t.Roles, Scopes: t.Scopes, SessionID: t.SessionID, KeyID: t.KeyID}
}

type ticketJSON struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

func ticketKey(t string) string { return "sse-ticket:" + security.HashToken(t) }

// issueTicket answers POST /v1/auth/sse-ticket: a ticket that authenticates
// live streams with ?ticket=, for browsers, whose EventSource cannot send an
// Authorization header. Its first stream binds it: from then on it opens
// that stream again (an EventSource reconnecting to the URL it was given)
// and no other, until its lifetime or its credential ends.
func (h *Hub) issueTicket(c echo.Context) error {
	a, ok := request.Actor(c)
	if !ok {
		return unauthorized(c, "authentication required")
	}
	if err := access.CheckRead(a); err != nil {
		return err
	}
	value, err := security.RandomToken(ticketPrefix, 32)
	if err != nil {
		return err
	}
	t := ticket{UserID: a.UserID, Roles: a.Roles, Scopes: a.Scopes, SessionID: a.SessionID, KeyID: a.KeyID,
		Until: time.Now().Add(h.cfg.TicketLifetime)}
	if expiry, ok := request.CredentialExpiry(c); ok && expiry.Before(t.Until) {
		t.Until = expiry
	}
	if err := h.storeTicket(c.Request().Context(), value, t, TicketTTL); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, ticketJSON{Ticket: value, ExpiresIn: int(TicketTTL.Seconds())})
}

func (h *Hub) storeTicket(ctx context.Context, value string, t ticket, ttl time.Duration) error {
	payload, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode ticket: %w", err)
	}
	if err := h.tickets.Set(ctx, ticketKey(value), payload, ttl); err != nil {
		return fmt.Errorf("store ticket: %w", err)
	}
	return nil
}

// ticketRefusal says why a ticket was refused, for the client.
type ticketRefusal string

const (
	ticketUnknown        ticketRefusal = "the ticket is invalid or expired; get a new one"
	ticketOtherStream    ticketRefusal = "the ticket was issued for another stream; get a new one for this one"
	ticketCredentialGone ticketRefusal = "the session or API key that asked for the ticket has ended"
)

// redeem takes a ticket for the stream named by streamKey: the actor it
// stands for and when the stream must end. The first use binds the ticket
// to that stream; later uses (reconnections) must name the same one. The
// credential that asked for the ticket is checked again every time: a
// ticket dies with it. A refused ticket gives a refusal and no actor.
func (h *Hub) redeem(ctx context.Context, value, streamKey string) (access.Actor, time.Time, ticketRefusal, error) {
	if len(value) > maxTicketBytes {
		return access.Actor{}, time.Time{}, ticketUnknown, nil
	}
	key := ticketKey(value)
	t, found, err := h.loadTicket(ctx, key, h.tickets.Get)
	if err != nil || !found {
		return access.Actor{}, time.Time{}, ticketUnknown, err
	}
	if !time.Now().Before(t.Until) {
		return access.Actor{}, time.Time{}, ticketUnknown, h.dropTicket(ctx, key)
	}
	if t.Stream != "" && t.Stream != streamKey {
		return access.Actor{}, time.Time{}, ticketOtherStream, nil
	}
	revoked, err := h.credentialRevoked(ctx, t.actor())
	if err != nil {
		return access.Actor{}, time.Time{}, "", err
	}
	if revoked {
		return access.Actor{}, time.Time{}, ticketCredentialGone, h.dropTicket(ctx, key)
	}
	if t.Stream == "" {
		// The first use: claim the ticket atomically (of two first uses,
		// one wins), then keep it, bound to this stream, for reconnections.
		claimed, found, err := h.loadTicket(ctx, key, h.tickets.Take)
		if err != nil || !found {
			return access.Actor{}, time.Time{}, ticketUnknown, err
		}
		if claimed.Stream != "" && claimed.Stream != streamKey {
			return access.Actor{}, time.Time{}, ticketOtherStream, nil
		}
		t = claimed
		t.Stream = streamKey
		if ttl := time.Until(t.Until); ttl > 0 {
			if err := h.storeTicket(ctx, value, t, ttl); err != nil {
				return access.Actor{}, time.Time{}, "", err
			}
		}
	}
	return t.actor(), t.Until, "", nil
}

// loadTicket reads the ticket stored under key with read (Get or Take).
func (h *Hub) loadTicket(ctx context.Context, key string, read func(context.Context, string) ([]byte, bool, error)) (ticket, bool, error) {
	payload, found, err := read(ctx, key)
	if err != nil {
		return ticket{}, false, fmt.Errorf("read ticket: %w", err)
	}
	if !found {
		return ticket{}, false, nil
	}
	var t ticket
	if err := json.Unmarshal(payload, &t); err != nil {
		return ticket{}, false, fmt.Errorf("decode ticket: %w", err)
	}
	return t, true, nil
}

func (h *Hub) dropTicket(ctx context.Context, key string) error {
	if err := h.tickets.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete ticket: %w", err)
	}
	return nil
}

// credentialRevoked reports whether the session or API key of actor has
// been revoked.
func (h *Hub) credentialRevoked(ctx context.Context, a access.Actor) (bool, error) {
	switch {
	case a.SessionID != "":
		return h.revocations.SessionRevoked(ctx, a.SessionID)
	case a.KeyID != "":
		return h.revocations.KeyRevoked(ctx, a.KeyID)
	}
	return false, nil
}
