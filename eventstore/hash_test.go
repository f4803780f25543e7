package eventstore

import (
	"encoding/hex"
	"testing"
	"time"
)

func TestCanonicalNumberIsExact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"0", "0"},
		{"-0", "0"},
		{"0.000e7", "0"},
		{"1", "1"},
		{"1.0", "1"},
		{"1.50", "1.5"},
		{"1e2", "100"},
		{"1.00e1", "10"},
		{"-12.5e-1", "-1.25"},
		{"0.1", "0.1"},
		{"1e-7", "1e-7"},
		{"1e21", "1e+21"},
		{"1E+21", "1e+21"},
		{"1.2345678901234568e20", "123456789012345680000"}, // the spelling of a double
		// Values no double holds: their exact spelling, not the nearest double's.
		{"9007199254740992", "9007199254740992"},
		{"9007199254740993", "9007199254740993"},
		{"-9223372036854775807", "-9223372036854775807"},
		{"18446744073709551615", "18446744073709551615"},
		{"123456789012345678901", "123456789012345678901"},
		{"0.10000000000000001", "0.10000000000000001"},
		{"123456789012345678901234567890", "1.2345678901234567890123456789e+29"},
		{"0.0000001000000000000000001", "1.000000000000000001e-7"},
		{"1e-400", "1e-400"},
	}
	for _, c := range cases {
		got, err := canonicalNumber(c.in, true)
		if err != nil || got != c.want {
			t.Errorf("canonicalNumber(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	// Beyond a double's range: refused on write, read exactly on verification.
	if got, err := canonicalNumber("1E400", true); err == nil {
		t.Errorf("canonicalNumber(1E400) on write = %q, want an error", got)
	}
	if got, err := canonicalNumber("1E400", false); err != nil || got != "1e+400" {
		t.Errorf("canonicalNumber(1E400) on read = %q, %v", got, err)
	}
	if got, err := canonicalNumber("1e99999999999999999999", false); err == nil {
		t.Errorf("canonicalNumber(1e99999999999999999999) = %q, want an error", got)
	}
}

func hashTestEvent() *Event {
	return &Event{EventID: "0190a000-0000-7000-8000-000000000001", StreamID: "gadget-g1", StreamType: "gadget",
		StreamVersion: 2, Type: "gadget.tuned", SchemaVersion: 1,
		RecordedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC),
		PrevHash:   []byte("0123456789abcdef0123456789abcdef")}
}

// The scheme Append writes with is pinned: a change to the canonical form
// would make every stored hash unverifiable.
func TestChainHashIsPinned(t *testing.T) {
	e := hashTestEvent()
	h, err := chainHash(e.PrevHash, e, []byte(`{"dial": 11, "big": 9007199254740993, "f": 0.5, "s": "é<&>"}`),
		[]byte(`{"actor_id":"u-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	const want = "0edccd0fe039311323734d4683cf93a32185c03293bb931e206040fe1bd43279"
	if got := hex.EncodeToString(h); got != want {
		t.Fatalf("chain hash = %s, want %s", got, want)
	}
}

func TestVerifyHashKnowsBothSchemes(t *testing.T) {
	e := hashTestEvent()
	md := []byte(`{"actor_id":"u-1"}`)
	written := []byte(`{"n": 9007199254740992, "x": 1.5}`)

	// An event written before exact hashing verifies with the legacy rule.
	legacy, err := legacyDocument(e, written, md)
	if err != nil {
		t.Fatal(err)
	}
	e.Hash = digest(e.PrevHash, legacy)
	if scheme, ok := verifyHash(e, []byte(`{"x":1.50,"n":9007199254740992}`), md); !ok || scheme != 1 {
		t.Fatalf("legacy event: scheme %d, ok %v", scheme, ok)
	}
	// Its numbers were only bound as doubles: 2^53+1 rounds to 2^53. The
	// leaf of a checkpoint binds them exactly.
	tampered := []byte(`{"n": 9007199254740993, "x": 1.5}`)
	if _, ok := verifyHash(e, tampered, md); !ok {
		t.Fatal("the legacy rule is expected to miss a change beyond 2^53")
	}
	e.GlobalPosition, e.TxID = 7, 700
	before, okBefore := leafOf(e, string(written), string(md))
	after, okAfter := leafOf(e, string(tampered), string(md))
	if string(before) == string(after) || !okBefore || !okAfter {
		t.Fatalf("the leaf does not bind numbers exactly (hash reproduced: %v, %v)", okBefore, okAfter)
	}

	// An event written now verifies with the exact rule, and the same change
	// is caught by the exact rule and not accepted by the legacy one.
	e.Hash, err = chainHash(e.PrevHash, e, written, md)
	if err != nil {
		t.Fatal(err)
	}
	if scheme, ok := verifyHash(e, []byte(`{"x":1.50,"n":9.007199254740992e15}`), md); !ok || scheme != 2 {
		t.Fatalf("exact event: scheme %d, ok %v", scheme, ok)
	}
	for _, data := range []string{
		`{"n": 9007199254740993, "x": 1.5}`,
		`{"n": 9007199254740992.0000001, "x": 1.5}`,
		`{"n": 9007199254740992, "x": 1.5000000000000001}`,
	} {
		if scheme, ok := verifyHash(e, []byte(data), md); ok {
			t.Errorf("changed to %s: accepted by scheme %d", data, scheme)
		}
	}
	// Beyond a double's range Append refuses; verification reads it.
	if _, err := chainHash(nil, e, []byte(`{"n": 1e309}`), md); err == nil {
		t.Fatal("1e309 accepted on write")
	}
	if _, ok := verifyHash(e, []byte(`{"n": 1e309}`), md); ok {
		t.Fatal("1e309 verified")
	}
}
