package test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// revalidate checks the conditional GET of path: the answer has an ETag, the
// same request with If-None-Match gets 304 with no body and the ETag again.
// It returns the ETag.
func revalidate(t *testing.T, c *enginetest.Client, path string) string {
	t.Helper()
	first := c.Must(http.StatusOK, "GET", path, nil)
	etag := first.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("GET %s: no ETag", path)
	}
	again := c.Do("GET", path, nil, "If-None-Match: "+etag)
	if again.Status != http.StatusNotModified || len(again.Body) != 0 || again.Header.Get("ETag") != etag {
		t.Fatalf("GET %s with If-None-Match %s = %d, ETag %q, %d bytes; want 304, the same ETag and no body",
			path, etag, again.Status, again.Header.Get("ETag"), len(again.Body))
	}
	return etag
}

// changed checks that a GET of path with the old ETag, after a change, gets
// 200 with the body and a new ETag. It returns the new ETag.
func changed(t *testing.T, c *enginetest.Client, path, old, minPosition string) string {
	t.Helper()
	r := c.Do("GET", path, nil, "If-None-Match: "+old, "Engram-Min-Position: "+minPosition)
	if r.Status != http.StatusOK || len(r.Body) == 0 {
		t.Fatalf("GET %s with a stale If-None-Match = %d %s, want 200 with the body", path, r.Status, r.Body)
	}
	etag := r.Header.Get("ETag")
	if etag == "" || etag == old {
		t.Fatalf("GET %s after a change: ETag %q, want a new one (was %s)", path, etag, old)
	}
	return etag
}

// Conditional GETs: a conversation, a page of its messages and the list of
// workspaces answer 304 while they have not changed, and 200 with a new ETag
// once they have; ETags are not shared between callers whose views differ.
func TestConditionalGETs(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{Env: quietCognition()})
	ada := inst.Signup(t, "Ada")
	bob := inst.Signup(t, "Bob")

	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Research"})
	wsID := ws.Map(t)["id"].(string)
	conv := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/conversations", map[string]any{"title": "Plans"})
	convID := conv.Map(t)["id"].(string)
	post := ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"content": "first"})
	ada.Must(http.StatusOK, "GET", "/v1/conversations/"+convID, nil, "Engram-Min-Position: "+post.Position())
	// The assistant records its (muted) routing decision in the
	// conversation's stream: wait for it, so that the version below stays.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c struct{ Version int }
		ada.Must(http.StatusOK, "GET", "/v1/conversations/"+convID, nil).JSON(t, &c)
		if c.Version >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the routing decision of the first message was not recorded: conversation at version %d", c.Version)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}

	t.Run("conversation", func(t *testing.T) {
		path := "/v1/conversations/" + convID
		etag := revalidate(t, ada, path)
		if strings.HasPrefix(etag, "W/") {
			t.Errorf("a conversation's ETag %s is weak; want its stream version", etag)
		}
		// The conversation's ETag is its version: If-Match takes it.
		renamed := ada.Must(http.StatusOK, "PATCH", path, map[string]any{"title": "Plans, v2"}, "If-Match: "+etag)
		newETag := changed(t, ada, path, etag, renamed.Position())
		if newETag != renamed.Header.Get("ETag") {
			t.Errorf("GET after the rename: ETag %s, the rename answered %s", newETag, renamed.Header.Get("ETag"))
		}
		revalidate(t, ada, path)
	})

	t.Run("messages page", func(t *testing.T) {
		path := "/v1/conversations/" + convID + "/messages?limit=20"
		etag := revalidate(t, ada, path)
		next := ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"content": "second"})
		changed(t, ada, path, etag, next.Position())
		revalidate(t, ada, path)
		// Another page of the same conversation has another ETag.
		if other := ada.Must(http.StatusOK, "GET", path+"&after="+post.Position(), nil); other.Header.Get("ETag") == etag {
			t.Errorf("two pages share the ETag %s", etag)
		}
	})

	t.Run("workspaces list", func(t *testing.T) {
		path := "/v1/workspaces"
		adaETag := revalidate(t, ada, path)
		bobETag := revalidate(t, bob, path)
		if adaETag == bobETag {
			t.Fatalf("two callers with different workspaces share the ETag %s", adaETag)
		}
		// Sharing a workspace with Bob adds it to his list.
		shared := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/members", map[string]any{"user_id": bob.UserID, "role": "viewer"})
		bobETag = changed(t, bob, path, bobETag, shared.Position())
		// A change to a workspace changes the list of everyone who sees it.
		renamed := ada.Must(http.StatusOK, "PATCH", "/v1/workspaces/"+wsID, map[string]any{"name": "Research, v2"})
		changed(t, ada, path, adaETag, renamed.Position())
		bobETag = changed(t, bob, path, bobETag, renamed.Position())
		// Bob's removal is seen at once: his old ETag misses.
		removed := ada.Must(http.StatusNoContent, "DELETE", "/v1/workspaces/"+wsID+"/members/"+bob.UserID, nil)
		changed(t, bob, path, bobETag, removed.Position())
		if r := bob.Do("GET", "/v1/workspaces/"+wsID, nil, "If-None-Match: *"); r.Status != http.StatusNotFound {
			t.Errorf("a removed member's conditional GET of the workspace = %d, want 404", r.Status)
		}
	})
}

// An idempotent replay answers as the first answer did: status, body, ETag,
// Engram-Position and Location.
func TestIdempotentReplayHeaders(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{Env: quietCognition()})
	ada := inst.Signup(t, "Ada")
	body := map[string]any{"name": "Once"}
	first := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", body, "Idempotency-Key: replay-headers-1")
	again := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", body, "Idempotency-Key: replay-headers-1")
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the retry was not a replay: %v", again.Header)
	}
	for _, h := range []string{"ETag", "Engram-Position", "Location"} {
		if got, want := again.Header.Get(h), first.Header.Get(h); got == "" || got != want {
			t.Errorf("replayed %s = %q, want the first answer's %q", h, got, want)
		}
	}
	if string(again.Body) != string(first.Body) {
		t.Errorf("replayed body = %s, want %s", again.Body, first.Body)
	}
}

// Every answer carries the security headers, refusals made before any route
// (a body over the limit, no credentials, an unknown route) included.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{Env: quietCognition()})
	ada := inst.Signup(t, "Ada")
	anon := inst.Client(t)
	huge := map[string]any{"name": strings.Repeat("x", 2<<20)}
	answers := map[string]*enginetest.Response{
		"413":           ada.Do("POST", "/v1/workspaces", huge),
		"401":           anon.Do("GET", "/v1/workspaces", nil),
		"unknown route": ada.OffContract().Do("GET", "/v1/nowhere", nil),
		"200":           ada.Do("GET", "/v1/workspaces", nil),
	}
	if answers["413"].Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("an oversized body = %d, want 413", answers["413"].Status)
	}
	for what, r := range answers {
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s answer (%d): %s = %q, want %q", what, r.Status, h, got, want)
			}
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s answer (%d): no X-Request-Id", what, r.Status)
		}
	}
}
