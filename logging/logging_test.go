package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestIDOnEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, FormatJSON, "debug")
	if err != nil {
		t.Fatal(err)
	}
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.DebugContext(r.Context(), "inside")
		log.With("component", "engine").WithGroup("g").InfoContext(r.Context(), "grouped", "k", "v")
	}))
	tests := []struct {
		name, header string
		wantSame     bool
	}{
		{"caller's id", "abc-123_x.y", true},
		{"insane id replaced", "bad id\nwith newline", false},
		{"too long replaced", strings.Repeat("a", 65), false},
		{"none", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			req := httptest.NewRequest("GET", "/x", nil)
			if tt.header != "" {
				req.Header.Set(RequestIDHeader, tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			id := rec.Header().Get(RequestIDHeader)
			if (id == tt.header) != tt.wantSame || id == "" {
				t.Fatalf("X-Request-Id = %q for %q", id, tt.header)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
			}
			for _, line := range lines {
				if !strings.Contains(line, `"request_id":"`+id+`"`) {
					t.Errorf("line without the request id %q: %s", id, line)
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Errorf("not JSON: %s", line)
				}
			}
		})
	}
	buf.Reset()
	log.InfoContext(context.Background(), "outside")
	if strings.Contains(buf.String(), "request_id") {
		t.Errorf("a line outside a request has a request id: %s", buf.String())
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	for _, tt := range []struct{ format, level string }{{"xml", "info"}, {"json", "loud"}} {
		if _, err := New(&bytes.Buffer{}, tt.format, tt.level); err == nil {
			t.Errorf("New(%q, %q) accepted", tt.format, tt.level)
		}
	}
	var buf bytes.Buffer
	log, err := New(&buf, FormatText, "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "msg=shown") {
		t.Errorf("text at warn: %q", buf.String())
	}
}
