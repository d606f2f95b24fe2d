// Package logging builds phoneverify's structured logger and carries the
// request id of an HTTP request in its context, so that every line logged
// while the request is served names it (request_id) without each call
// passing it.
//
// What is logged is the callers' business: phone numbers are masked with
// phone.Mask, codes, API keys and secrets never appear, and requests are
// named by their route pattern, never by their raw path (a path can hold a
// token).
package logging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// Formats and levels New accepts.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// New returns a logger writing to w in format (json or text) at level
// (debug, info, warn or error), with request ids added from the context.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	case FormatText:
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
	return slog.New(NewHandler(h)), nil
}

type ctxKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// NewRequestID returns a fresh random request id (16 hex digits).
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestIDHeader is the header a request id is read from and answered in.
const RequestIDHeader = "X-Request-Id"

// FromRequest returns the request id r's context carries; failing that, the
// caller's X-Request-Id when it is sane (up to 64 letters, digits, '-', '_'
// and '.'), so that a proxy's id follows the request; failing that, a new
// one.
func FromRequest(r *http.Request) string {
	if id := RequestID(r.Context()); id != "" {
		return id
	}
	if id := r.Header.Get(RequestIDHeader); Sane(id) {
		return id
	}
	return NewRequestID()
}

// Sane reports whether a caller's request id may be used: 1 to 64 letters,
// digits, '-', '_' or '.' (nothing that could forge a log line).
func Sane(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Middleware gives every request a request id (see [FromRequest]), in its
// context and in the X-Request-Id response header.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := FromRequest(r)
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

// Handler is a slog.Handler that adds request_id, from the context of each
// record, to what the handler it wraps writes.
type Handler struct {
	next slog.Handler
}

// NewHandler wraps next.
func NewHandler(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler: a record logged with a context that
// carries a request id gets it as request_id.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler. The request id stays inside the group,
// as every attribute added later does.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name)}
}
