package eventstore

import "testing"

func TestFirstEventsStartOverWhenFull(t *testing.T) {
	f := newFirstEvents(2)
	f.add(Event{StreamID: "a"})
	f.add(Event{StreamID: "b"})
	if _, ok := f.get("a"); !ok {
		t.Fatal("a forgotten before the cache was full")
	}
	f.add(Event{StreamID: "c"})
	if _, ok := f.get("a"); ok {
		t.Error("a still held after the cache started over")
	}
	if e, ok := f.get("c"); !ok || e.StreamID != "c" {
		t.Errorf("c = %+v, %v", e, ok)
	}
}
