package livebus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/platform/livebus"
	"github.com/engramhq/engram/test/redistest"
)

func newRedisBus(t *testing.T, client *redis.Client, prefix string) *livebus.Redis {
	t.Helper()
	bus, err := livebus.NewRedis(t.Context(), client, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return bus
}

func next(t *testing.T, ch <-chan livebus.Signal) livebus.Signal {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no signal within 5s")
	}
	return livebus.Signal{}
}

// contract runs against every Bus: publisher and subscriber may be on
// different buses of one deployment.
func contract(t *testing.T, pub, sub livebus.Bus) {
	ctx := t.Context()
	ch, stop := sub.Subscribe()
	other, stopOther := sub.Subscribe()
	defer stopOther()

	want := livebus.Signal{Type: livebus.TypeTyping, ConversationID: "c1", WorkspaceID: "w1", UserID: "u1",
		Data: json.RawMessage(`{"state":"start"}`)}
	if err := pub.Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	for _, c := range []<-chan livebus.Signal{ch, other} {
		got := next(t, c)
		if got.Type != want.Type || got.ConversationID != want.ConversationID || got.WorkspaceID != want.WorkspaceID ||
			got.UserID != want.UserID || string(got.Data) != string(want.Data) {
			t.Fatalf("received %+v, want %+v", got, want)
		}
	}

	for name, bad := range map[string]livebus.Signal{
		"no type":         {ConversationID: "c1"},
		"newline in type": {Type: "typing\ndata: x", ConversationID: "c1"},
		"no conversation": {Type: livebus.TypeStatus},
		"invalid data":    {Type: livebus.TypeStatus, ConversationID: "c1", Data: json.RawMessage(`{`)},
		"data over limit": {Type: livebus.TypeDelta, ConversationID: "c1", Data: json.RawMessage(`"` + string(make([]byte, livebus.MaxDataBytes)) + `"`)},
	} {
		if err := pub.Publish(ctx, bad); err == nil {
			t.Errorf("%s: Publish succeeded", name)
		}
	}

	// After stop, the channel receives nothing; the other still does.
	stop()
	stop()
	deliveredOnlyTo(t, pub, livebus.Signal{Type: livebus.TypeStatus, ConversationID: "c2"}, other, ch)
}

// deliveredOnlyTo publishes s on pub and checks that to receives it while
// silent, by then, has received nothing.
func deliveredOnlyTo(t *testing.T, pub livebus.Bus, s livebus.Signal, to, silent <-chan livebus.Signal) {
	t.Helper()
	if err := pub.Publish(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if got := next(t, to); got.ConversationID != s.ConversationID {
		t.Fatalf("subscriber received %+v, want %+v", got, s)
	}
	select {
	case got := <-silent:
		t.Fatalf("silent subscriber received %+v", got)
	default:
	}
}

func TestLocal(t *testing.T) {
	bus := livebus.NewLocal()
	contract(t, bus, bus)
}

func TestRedisAcrossInstances(t *testing.T) {
	client := redistest.Client(t, "")
	p := redistest.NewPrefix()
	a, b := newRedisBus(t, client, p), newRedisBus(t, client, p)
	contract(t, a, b)

	// Another prefix is another deployment: it hears nothing.
	foreign := newRedisBus(t, client, redistest.NewPrefix())
	ch, stop := foreign.Subscribe()
	defer stop()
	mine, stopMine := b.Subscribe()
	defer stopMine()
	deliveredOnlyTo(t, a, livebus.Signal{Type: livebus.TypeTyping, ConversationID: "c3"}, mine, ch)
}

// A subscriber that never reads does not block publishers: it loses
// signals instead, and receives again once it reads.
func TestSlowSubscriberLosesSignals(t *testing.T) {
	bus := livebus.NewLocal()
	slow, stop := bus.Subscribe()
	defer stop()
	const n = 5000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if err := bus.Publish(t.Context(), livebus.Signal{Type: livebus.TypeDelta, ConversationID: "c"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	buffered := len(slow)
	if buffered == 0 || buffered >= n {
		t.Fatalf("%d of %d signals buffered; want some, not all", buffered, n)
	}
	for range buffered {
		<-slow
	}
	if err := bus.Publish(t.Context(), livebus.Signal{Type: livebus.TypeStatus, ConversationID: "again"}); err != nil {
		t.Fatal(err)
	}
	if got := next(t, slow); got.ConversationID != "again" {
		t.Fatalf("received %+v after catching up", got)
	}
}
