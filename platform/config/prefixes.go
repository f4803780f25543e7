package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Prefixes is a list of IP networks, parsed from a comma-separated list of
// CIDRs such as "10.0.0.0/8, 192.168.1.7". A bare address means that
// address alone (/32 or /128).
type Prefixes []netip.Prefix

// UnmarshalText parses a comma-separated list of CIDRs or addresses,
// reporting every bad entry.
func (p *Prefixes) UnmarshalText(text []byte) error {
	var (
		out      Prefixes
		problems []string
	)
	for entry := range strings.SplitSeq(string(text), ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		prefix, err := parsePrefix(entry)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out = append(out, prefix)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	*p = out
	return nil
}

// Contains reports whether addr lies in one of the networks.
func (p Prefixes) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, prefix := range p {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// String returns the networks as a comma-separated list of CIDRs.
func (p Prefixes) String() string {
	parts := make([]string, len(p))
	for i, prefix := range p {
		parts[i] = prefix.String()
	}
	return strings.Join(parts, ",")
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		if prefix.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: write IPv4 networks in IPv4 form", s)
		}
		return prefix.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
	}
	if addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: zones are not allowed", s)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}
