package auditlog

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/domaintest"
)

func validRead() Read {
	return Read{ActorID: "u-1", Via: ViaAPI, Operation: OperationEvents, Format: FormatJSON,
		Filter: json.RawMessage(`{ "types": ["user.registered"], "from_position": 3 }`), ResultCount: 2, Complete: true, SessionID: "s-1"}
}

func TestRecord(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Read)
		fields []string
	}{
		{"valid", func(*Read) {}, nil},
		{"cli without credentials", func(r *Read) { r.Via, r.SessionID, r.ActorID = ViaCLI, "", "cli:ada" }, nil},
		{"absent filter is the empty object", func(r *Read) { r.Filter = nil }, nil},
		{"every bad field", func(r *Read) {
			r.ActorID, r.Via, r.Operation, r.Format, r.Filter, r.ResultCount, r.SessionID, r.KeyID =
				"", "mail", "delete", "xml", json.RawMessage(`[1]`), -1, "a b", "k\x00"
		}, []string{"actor_id", "via", "operation", "format", "filter", "result_count", "session_id", "key_id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := validRead()
			tc.change(&r)
			e, err := Record(r)
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("Record: %v", err)
				}
				if e.EventType() != EventLogRead || e.ActorID != r.ActorID || e.ResultCount != r.ResultCount {
					t.Fatalf("event = %+v", e)
				}
				return
			}
			if names := domaintest.InvalidFields(t, err); !slices.Equal(names, tc.fields) {
				t.Fatalf("fields = %v, want %v", names, tc.fields)
			}
		})
	}
}

func TestRecordCanonicalisesTheFilter(t *testing.T) {
	e, err := Record(validRead())
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Filter) != `{"from_position":3,"types":["user.registered"]}` {
		t.Fatalf("filter = %s", e.Filter)
	}
	e, err = Record(Read{ActorID: "u", Via: ViaCLI, Operation: OperationVerify, Format: FormatJSON})
	if err != nil || string(e.Filter) != `{}` {
		t.Fatalf("empty filter = %s, %v", e.Filter, err)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	e, err := Record(validRead())
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(EventLogRead, 1, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, domain.Event(e)) {
		t.Fatalf("decoded %#v, want %#v", got, e)
	}
	// A filter stored with other spacing decodes to the same canonical form.
	got, err = Decode(EventLogRead, 1, []byte(`{"actor_id":"u-1","filter":{ "b": 1, "a": 2 }}`))
	if err != nil || string(got.(LogRead).Filter) != `{"a":2,"b":1}` {
		t.Fatalf("decode = %#v, %v", got, err)
	}
}

func TestDecodeRefusesUnknownEvents(t *testing.T) {
	for _, tc := range []struct {
		typ     string
		version int
		data    string
	}{
		{"audit.log_written", 1, `{}`},
		{EventLogRead, 2, `{}`},
	} {
		if _, err := Decode(tc.typ, tc.version, []byte(tc.data)); !errors.Is(err, domain.ErrUnknownEvent) {
			t.Errorf("Decode(%s v%d) = %v, want ErrUnknownEvent", tc.typ, tc.version, err)
		}
	}
	if _, err := Decode(EventLogRead, 1, []byte(`{"result_count": "many"}`)); err == nil || errors.Is(err, domain.ErrUnknownEvent) {
		t.Errorf("malformed data: %v", err)
	}
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
