package eventstore

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
)

// DSN returns the connection string to open for the PostgreSQL URL dbURL:
// dbURL with lib/pq's binary_parameters=yes, unless dbURL sets that option
// itself, and with an application_name of its own.
//
// With binary_parameters, lib/pq sends a statement with parameters in one
// round trip (parse, bind and execute together) instead of two, which
// roughly halves the round trips of appends, projectors and queries. Its
// one other effect is that []byte parameters travel in binary format, so
// Engram passes JSON for jsonb columns as strings; bytea columns (the hash
// chain) take []byte in either format.
//
// The application_name names the sessions of one connection pool: the
// name dbURL gives (engram by default) followed by a random suffix, so that
// two processes, or two pools of one process, never share it. The read
// lease tells its holder's appends from any other's by it.
func DSN(dbURL string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return dsn(dbURL, hex.EncodeToString(b[:]))
}

// plainAppName is an unquoted application_name of a key=value string.
var plainAppName = regexp.MustCompile(`(?:^|\s)application_name=([^\s']+)`)

func dsn(dbURL, suffix string) string {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		// A key=value connection string: a later key overrides an earlier one.
		s := strings.TrimSpace(dbURL)
		if !strings.Contains(s, "binary_parameters") {
			s += " binary_parameters=yes"
		}
		name := "engram"
		if m := plainAppName.FindStringSubmatch(s); m != nil {
			name = m[1]
		}
		return s + " application_name=" + name + "-" + suffix
	}
	q := u.Query()
	if !q.Has("binary_parameters") {
		q.Set("binary_parameters", "yes")
	}
	name := q.Get("application_name")
	if name == "" {
		name = "engram"
	}
	q.Set("application_name", name+"-"+suffix)
	u.RawQuery = q.Encode()
	return u.String()
}
