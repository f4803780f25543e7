package commands_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/test/pgtest"
)

type testSecrets struct{}

func (testSecrets) NewSecret(prefix string) (string, error) { return security.RandomToken(prefix, 32) }
func (testSecrets) HashSecret(s string) string              { return security.HashToken(s) }

// Concurrent refreshes with one refresh token all get the same new pair and
// leave the session alive; the spent token presented after the grace is
// reuse, and ends the session.
func TestRefreshReuseGrace(t *testing.T) {
	store, err := eventstore.New(pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	tokens, err := security.NewTokens([]byte("a secret of at least thirty-two bytes, for tests"), "engram", "engram-api", 15*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	grace := cache.NewMemory()
	defer grace.Close()
	cmds, err := commands.New(commands.Dependencies{
		Store: store, Hasher: &security.PasswordHasher{Params: argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}},
		Tokens: tokens, Secrets: testSecrets{}, RefreshTTL: time.Hour,
		RefreshGrace: grace, RefreshReuseGrace: 10 * time.Second, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const password = "correct horse battery staple"
	if _, err := cmds.Register.Handle(ctx, commands.Register{Email: "ada@example.com", Password: password, DisplayName: "Ada"}); err != nil {
		t.Fatal(err)
	}
	login, err := cmds.Login.Handle(ctx, commands.Login{Email: "ada@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}

	// Eight at once, with the first refresh token.
	results := make([]commands.RefreshResult, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: login.RefreshToken})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if results[i].RefreshToken != results[0].RefreshToken || results[i].AccessToken != results[0].AccessToken {
			t.Fatalf("refresh %d got another pair than refresh 0", i)
		}
	}
	pair := results[0]
	if pair.RefreshToken == login.RefreshToken || pair.SessionID != login.SessionID {
		t.Fatal("the refresh did not rotate the token")
	}
	events, err := store.ReadStream(ctx, "session-"+login.SessionID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[1].Type != "session.refreshed" {
		t.Fatalf("session events = %d (last %s), want started and one refreshed", len(events), events[len(events)-1].Type)
	}

	// Within the grace, a late retry gets the same pair again.
	clock.Add(int64(9 * time.Second))
	again, err := cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: login.RefreshToken})
	if err != nil || again.RefreshToken != pair.RefreshToken {
		t.Fatalf("retry within the grace: %v", err)
	}

	// The new token rotates as usual; the first token is now two rotations
	// old: reuse, whatever the grace.
	next, err := cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: pair.RefreshToken})
	if err != nil {
		t.Fatalf("refresh with the new token: %v", err)
	}
	clock.Add(int64(11 * time.Second))

	// After the grace, the token spent by the latest rotation is reuse: the
	// session ends.
	if _, err := cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: pair.RefreshToken}); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("reuse after the grace = %v, want unauthorized", err)
	}
	if _, err := cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: next.RefreshToken}); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("the current token after reuse = %v, want unauthorized (session revoked)", err)
	}
	events, err = store.ReadStream(ctx, "session-"+login.SessionID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.Type != "session.revoked" {
		t.Fatalf("last session event = %s, want session.revoked", last.Type)
	}
}

// Without a grace store, a concurrent duplicate refresh is reuse, as before.
func TestRefreshWithoutGraceRevokesOnReuse(t *testing.T) {
	store, err := eventstore.New(pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := security.NewTokens([]byte("a secret of at least thirty-two bytes, for tests"), "engram", "engram-api", 15*time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := commands.New(commands.Dependencies{
		Store: store, Hasher: &security.PasswordHasher{Params: argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}},
		Tokens: tokens, Secrets: testSecrets{}, RefreshTTL: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := cmds.Register.Handle(ctx, commands.Register{Email: "bob@example.com", Password: "correct horse battery staple", DisplayName: "Bob"}); err != nil {
		t.Fatal(err)
	}
	login, err := cmds.Login.Handle(ctx, commands.Login{Email: "bob@example.com", Password: "correct horse battery staple"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: login.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: login.RefreshToken}); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("reuse without a grace = %v, want unauthorized", err)
	}
}
