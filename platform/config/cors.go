package config

import (
	"net/url"
	"strings"
)

// corsOrigins checks the origins of ENGRAM_CORS_ALLOWED_ORIGINS and returns
// them as browsers send them (lower-case scheme and host, no default port
// dropped: a browser sends the port it was given), without empty entries
// or duplicates. Each must be http:// or https:// with a host and nothing
// after it; wildcards are refused, since every origin allowed is one more
// page that can spend a user's ticket.
func (v *validator) corsOrigins(name string, origins []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, raw := range origins {
		o := strings.TrimSpace(raw)
		if o == "" {
			continue
		}
		if strings.Contains(o, "*") {
			v.add(name, raw, "wildcards are not allowed: list each origin, e.g. https://app.example.com")
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			v.add(name, raw, "must be comma-separated origins, each scheme://host[:port] (http or https, no path), e.g. https://app.example.com")
			continue
		}
		o = strings.ToLower(u.Scheme + "://" + u.Host)
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}
