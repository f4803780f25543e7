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
	httpapi "github.com/engramhq/engram/transport/http"
)

// TicketTTL is how long an SSE ticket may wait to be used.
const TicketTTL = 60 * time.Second

// ticketPrefix starts every ticket.
const ticketPrefix = "sset_"

// ticket is what a ticket stands for: the credential that asked for it.
// Only its hash is the key, so that the store never holds a usable ticket.
type ticket struct {
	UserID    string     `json:"user_id"`
	Roles     []string   `json:"roles"`
	Scopes    []string   `json:"scopes"`
	SessionID string     `json:"session_id,omitempty"`
	KeyID     string     `json:"key_id,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

type ticketJSON struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

func ticketKey(t string) string { return "sse-ticket:" + security.HashToken(t) }

// issueTicket answers POST /v1/auth/sse-ticket: a single-use ticket that
// authenticates one live stream with ?ticket=, for browsers, whose
// EventSource cannot send an Authorization header.
func (h *Hub) issueTicket(c echo.Context) error {
	a, ok := httpapi.ActorOf(c)
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
	t := ticket{UserID: a.UserID, Roles: a.Roles, Scopes: a.Scopes, SessionID: a.SessionID, KeyID: a.KeyID}
	if expiry, ok := httpapi.CredentialExpiry(c); ok {
		t.ExpiresAt = &expiry
	}
	payload, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode ticket: %w", err)
	}
	if err := h.tickets.Set(c.Request().Context(), ticketKey(value), payload, TicketTTL); err != nil {
		return fmt.Errorf("store ticket: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, ticketJSON{Ticket: value, ExpiresIn: int(TicketTTL.Seconds())})
}

// redeem takes a ticket: the actor it stands for and when its credential
// expires. An unknown, used or expired ticket gives an empty actor.
func (h *Hub) redeem(ctx context.Context, value string) (access.Actor, time.Time, error) {
	if len(value) > 128 {
		return access.Actor{}, time.Time{}, nil
	}
	payload, found, err := h.tickets.Take(ctx, ticketKey(value))
	if err != nil || !found {
		return access.Actor{}, time.Time{}, err
	}
	var t ticket
	if err := json.Unmarshal(payload, &t); err != nil {
		return access.Actor{}, time.Time{}, fmt.Errorf("decode ticket: %w", err)
	}
	var expiry time.Time
	if t.ExpiresAt != nil {
		expiry = *t.ExpiresAt
		if !expiry.After(time.Now()) {
			return access.Actor{}, time.Time{}, nil
		}
	}
	return access.Actor{UserID: t.UserID, Roles: t.Roles, Scopes: t.Scopes, SessionID: t.SessionID, KeyID: t.KeyID}, expiry, nil
}
