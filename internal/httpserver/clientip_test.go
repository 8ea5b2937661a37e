package httpserver_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/example/order-mcp/internal/httpserver"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		peer    string
		xff     []string // one entry per X-Forwarded-For header line
		trusted []netip.Prefix
		want    string
	}{
		{"PeerWithoutProxiesIsTheClient", "203.0.113.9:4444", nil, nil, "203.0.113.9"},
		{"ForwardedForFromAnUntrustedPeerIsIgnored", "203.0.113.9:4444", []string{"127.0.0.1"}, nil, "203.0.113.9"},
		{"ForwardedForIsIgnoredWhenNoProxyIsTrusted", "10.0.0.1:4444", []string{"198.51.100.1"}, nil, "10.0.0.1"},
		{"ForwardedForFromAPeerOutsideTheTrustedListIsIgnored", "203.0.113.9:4444", []string{"198.51.100.1"}, proxies, "203.0.113.9"},
		{"TrustedProxyNamesTheClient", "10.0.0.1:4444", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"PrependedFakeEntriesDoNotChooseTheAddress", "10.0.0.1:4444", []string{"127.0.0.1, 1.1.1.1, 198.51.100.1"}, proxies, "198.51.100.1"},
		{"FakeEntriesInAnEarlierHeaderLineDoNotChooseTheAddress", "10.0.0.1:4444", []string{"127.0.0.1, 1.1.1.1", "198.51.100.1"}, proxies, "198.51.100.1"},
		{"TrustedProxyChainIsSkippedFromTheRight", "10.0.0.1:4444", []string{"127.0.0.1, 198.51.100.1, 10.0.0.2, 10.0.0.3"}, proxies, "198.51.100.1"},
		{"FakeTrustedAddressLeftOfTheClientIsNotTaken", "10.0.0.1:4444", []string{"10.9.9.9, 198.51.100.1"}, proxies, "198.51.100.1"},
		{"OnlyTrustedEntriesFallBackToThePeer", "10.0.0.1:4444", []string{"10.0.0.2, 10.0.0.3"}, proxies, "10.0.0.1"},
		{"NoForwardedForFromATrustedProxyIsThePeer", "10.0.0.1:4444", nil, proxies, "10.0.0.1"},
		{"MalformedChainIsThePeer", "10.0.0.1:4444", []string{"198.51.100.1, not-an-ip"}, proxies, "10.0.0.1"},
		{"EmptyEntryIsThePeer", "10.0.0.1:4444", []string{"198.51.100.1,"}, proxies, "10.0.0.1"},
		{"EntryWithAPortIsThePeer", "10.0.0.1:4444", []string{"198.51.100.1:8080"}, proxies, "10.0.0.1"},
		{"MalformedEntryBehindAnotherProxyIsThePeer", "10.0.0.1:4444", []string{"198.51.100.1, garbage, 10.0.0.2"}, proxies, "10.0.0.1"},
		{"IPv4MappedPeerIsUnmapped", "[::ffff:203.0.113.9]:4444", nil, nil, "203.0.113.9"},
		{"IPv4MappedTrustedPeerIsStillTrusted", "[::ffff:10.0.0.1]:4444", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"IPv4MappedForwardedEntryIsUnmapped", "10.0.0.1:4444", []string{"::ffff:198.51.100.1"}, proxies, "198.51.100.1"},
		{"IPv4MappedTrustedEntryIsSkipped", "10.0.0.1:4444", []string{"198.51.100.1, ::ffff:10.0.0.2"}, proxies, "198.51.100.1"},
		{"IPv6ClientBehindAnIPv6Proxy", "[fd00::1]:4444", []string{"2001:db8::7"}, proxies, "2001:db8::7"},
		{"PeerWithoutAPortIsParsed", "203.0.113.9", nil, nil, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/mcp", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := httpserver.ClientIP(r, tt.trusted)
			if want := netip.MustParseAddr(tt.want); got != want {
				t.Fatalf("ClientIP = %v, want %v", got, want)
			}
		})
	}

	t.Run("UnparseablePeerIsNoAddress", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/mcp", nil)
		r.RemoteAddr = "@"
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		if got := httpserver.ClientIP(r, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}); got.IsValid() {
			t.Fatalf("ClientIP = %v, want the invalid address", got)
		}
	})
}
