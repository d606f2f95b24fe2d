package clientip_test

import (
	"net/http/httptest"
	"testing"

	"github.com/phoneverify/phoneverify/clientip"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, trusted, remote string
		xff                   []string
		want                  string
	}{
		{"no proxies: the peer", "", "198.51.100.1:5", []string{"203.0.113.1"}, "198.51.100.1"},
		{"untrusted peer: header ignored", "10.0.0.0/8", "198.51.100.1:5", []string{"203.0.113.1"}, "198.51.100.1"},
		{"trusted peer, no header", "10.0.0.0/8", "10.0.0.1:5", nil, "10.0.0.1"},
		{"trusted peer: rightmost entry", "10.0.0.0/8", "10.0.0.1:5", []string{"203.0.113.1"}, "203.0.113.1"},
		{"spoofed left entries ignored", "10.0.0.0/8", "10.0.0.1:5", []string{"1.1.1.1, 2.2.2.2, 203.0.113.1"}, "203.0.113.1"},
		{"trusted hops skipped", "10.0.0.0/8", "10.0.0.1:5", []string{"1.1.1.1, 203.0.113.1, 10.2.2.2, 10.3.3.3"}, "203.0.113.1"},
		{"several headers are one list", "10.0.0.0/8", "10.0.0.1:5", []string{"1.1.1.1", "203.0.113.1, 10.2.2.2"}, "203.0.113.1"},
		{"garbage stops the walk at the last good hop", "10.0.0.0/8", "10.0.0.1:5", []string{"203.0.113.1, junk, 10.2.2.2"}, "10.2.2.2"},
		{"all trusted: the leftmost", "10.0.0.0/8", "10.0.0.1:5", []string{"10.4.4.4, 10.2.2.2"}, "10.4.4.4"},
		{"entries with ports", "10.0.0.0/8", "10.0.0.1:5", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"v6 proxy", "fd00::/8", "[fd00::1]:5", []string{"2001:db8::7"}, "2001:db8::7"},
		{"mapped v4 peer", "10.0.0.0/8", "[::ffff:10.0.0.1]:5", []string{"203.0.113.1"}, "203.0.113.1"},
		{"bare address as proxy", "192.0.2.7", "192.0.2.7:5", []string{"203.0.113.1"}, "203.0.113.1"},
		{"bare address is only itself", "192.0.2.7", "192.0.2.8:5", []string{"203.0.113.1"}, "192.0.2.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := clientip.Parse(tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.remote
			for _, h := range tt.xff {
				req.Header.Add("X-Forwarded-For", h)
			}
			if got := r.ClientIP(req); got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.0/8,,nope"} {
		if _, err := clientip.Parse(bad); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
}
