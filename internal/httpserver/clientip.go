package httpserver

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address a request came from, for rate limits,
// lockouts and the audit trail.
//
// It is the TCP peer, unless that peer is a trusted proxy (TRUSTED_PROXIES,
// empty by default). Only then is X-Forwarded-For read, from the right:
// the rightmost address that is not itself a trusted proxy is the client.
// The leftmost entry, which some libraries use (ulule/limiter's
// TrustForwardHeader among them), is whatever the client chose to send, so
// a client rotating it would get a fresh rate limit on every request.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			return peer // a malformed chain: trust nothing in it
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a
		}
	}
	return peer
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
