// Package clientip names the client of an HTTP request: the connection's
// peer, or, only when that peer is a trusted proxy, the address the proxies
// recorded in X-Forwarded-For. The native API, the Twilio-compatible API
// and the web pages all take the address from here, so a limit or a key's
// address range means the same thing on each.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver names the client of a request. The zero Resolver (no trusted
// proxies) always answers the connection's peer and ignores headers.
type Resolver struct {
	trusted []netip.Prefix
}

// Parse returns a Resolver that trusts the proxies in list, a
// comma-separated list of CIDRs or bare addresses
// (PHONEVERIFY_TRUSTED_PROXIES), e.g. "10.0.0.0/8, 192.0.2.7".
func Parse(list string) (*Resolver, error) {
	r := &Resolver{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			var err error
			if p, err = netip.ParsePrefix(item); err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR such as 10.0.0.0/8 or an address", item)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR such as 10.0.0.0/8 or an address", item)
			}
			a = a.Unmap().WithZone("")
			p = netip.PrefixFrom(a, a.BitLen())
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

// Trusted returns the trusted proxy ranges.
func (r *Resolver) Trusted() []netip.Prefix {
	if r == nil {
		return nil
	}
	return r.trusted
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address as text (IPv4 addresses mapped into
// IPv6 written as IPv4). The peer is the client unless it is a trusted
// proxy; then X-Forwarded-For (every such header, in order, as one list) is
// walked from the right, skipping trusted proxies, and the first address
// that is not one is the client. A client can put anything at the left of
// the header, but never to the right of what a trusted proxy appended, so
// this is the only reading that cannot be spoofed. An entry that is not an
// address stops the walk at the last address known good; a header made only
// of trusted proxies gives its leftmost one.
func (r *Resolver) ClientIP(req *http.Request) string {
	peer, ok := parseAddr(req.RemoteAddr)
	if !ok {
		host, _, err := net.SplitHostPort(req.RemoteAddr)
		if err != nil {
			return req.RemoteAddr
		}
		return host
	}
	if r == nil || len(r.trusted) == 0 || !r.isTrusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, h := range req.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseAddr(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		client = a
		if !r.isTrusted(a) {
			break
		}
	}
	return client.String()
}

// parseAddr reads an address, with or without a port ("203.0.113.7",
// "203.0.113.7:443", "[2001:db8::1]:443", "2001:db8::1").
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
