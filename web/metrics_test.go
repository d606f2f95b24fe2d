package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/phoneverify/phoneverify/metrics"
	"github.com/phoneverify/phoneverify/web"
)

// TestPagesLabelledByPattern mounts the pages on a mux behind the node's
// metrics middleware, as cmd/phoneverify does: each page request is
// counted under the page's own route pattern, not under the /admin/ or
// /demo/ prefix the pages are mounted at, and never under its raw path.
func TestPagesLabelledByPattern(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{demo: true})
	h, err := web.New(context.Background(), web.Config{Engine: e.engine, Store: e.store, Secret: bytes.Repeat([]byte("s"), 32),
		AdminPassword: adminPassword, Demo: true, APIURL: e.srv.URL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	m := metrics.New()
	srv := m.Middleware(metrics.MuxRoute(mux), mux, nil)

	tests := []struct {
		method, path string
		want         string
	}{
		{"GET", "/admin/login", "GET /admin/login"},
		{"POST", "/admin/login", "POST /admin/login"},
		{"GET", "/admin/", "GET /admin/{$}"},
		{"GET", "/admin/verifications/VEsecret0123456789", "GET /admin/verifications/{id}"},
		{"POST", "/admin/keys/KEYsecret42/revoke", "POST /admin/keys/{id}/revoke"},
		{"GET", "/admin/no-such-page-abc", "/admin/"},
		{"GET", "/demo/signup", "GET /demo/signup"},
		{"POST", "/demo/signup", "POST /demo/signup"},
		{"GET", "/demo/shop/orders/ORDsecret77", "GET /demo/shop/orders/{id}"},
		{"POST", "/demo/shop/orders/ORDsecret77/pin", "POST /demo/shop/orders/{id}/pin"},
		{"GET", "/demo/assets/style.css", "GET /demo/assets/style.css"},
		{"GET", "/demo/nothing-here-xyz", "/demo/"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(""))
			if tt.method == "POST" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			srv.ServeHTTP(rec, req)
			text := scrapeText(t, m)
			want := `phoneverify_http_requests_total{code="` + strconv.Itoa(rec.Code) + `",route="` + tt.want + `"}`
			if !strings.Contains(text, want+" ") {
				t.Errorf("%s %s (answered %d) not counted as %s:\n%s", tt.method, tt.path, rec.Code, want,
					grep(text, "phoneverify_http_requests_total"))
			}
		})
	}
	text := scrapeText(t, m)
	for _, leak := range []string{"VEsecret", "KEYsecret", "ORDsecret", "no-such-page", "nothing-here"} {
		if strings.Contains(text, leak) {
			t.Errorf("raw path %q in the metrics", leak)
		}
	}
	// Only the pages-not-found are labelled by a section's prefix.
	prefix := regexp.MustCompile(`route="/(admin|demo)/"`)
	if got := len(prefix.FindAllString(grep(text, "phoneverify_http_requests_total"), -1)); got != 2 {
		t.Errorf("%d series labelled by a bare prefix, want 2 (the two pages-not-found):\n%s", got,
			grep(text, "phoneverify_http_requests_total"))
	}
}

func scrapeText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
