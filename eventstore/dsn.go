package eventstore

import (
	"net/url"
	"strings"
)

// DSN returns the connection string to open for the PostgreSQL URL dbURL:
// dbURL with lib/pq's binary_parameters=yes, unless dbURL sets that option
// itself.
//
// With it, lib/pq sends a statement with parameters in one round trip
// (parse, bind and execute together) instead of two, which roughly halves
// the round trips of appends, projectors and queries. Its one other effect
// is that []byte parameters travel in binary format, so Engram passes JSON
// for jsonb columns as strings; bytea columns (the hash chain) take []byte
// in either format.
func DSN(dbURL string) string {
	if strings.Contains(dbURL, "binary_parameters") {
		return dbURL
	}
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		// A key=value connection string.
		return strings.TrimSpace(dbURL) + " binary_parameters=yes"
	}
	q := u.Query()
	q.Set("binary_parameters", "yes")
	u.RawQuery = q.Encode()
	return u.String()
}
