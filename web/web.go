// Package web serves phoneverify's web pages: the demo apps under /demo/ and
// the admin dashboard under /admin/.
//
// The demo apps (sign-up, login with an SMS second factor, order
// confirmation with a PIN) are small apps of their own: they call the node's
// public native API over HTTP with API keys of their own, exactly as an
// application would, and keep their users in a table of their own. The
// dashboard reads statistics from the store and manages API keys through the
// engine.
//
// Every page is plain HTML rendered on the server with html/template: it
// works without JavaScript, and every template, style sheet and chart is
// embedded in the binary (charts are SVG drawn on the server). Forms carry
// CSRF tokens and cross-origin posts are refused.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/phoneverify/phoneverify/clientip"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// Config holds what the pages need. Engine, Store and Secret are required;
// the demo also needs APIURL.
type Config struct {
	// Engine and Store are the node's.
	Engine *verify.Engine
	Store  *store.Store
	// Secret is the server secret: the keys that sign session cookies and
	// CSRF tokens, and the demo's API keys, are derived from it, so every
	// node sharing a secret agrees on them.
	Secret []byte

	// Demo serves the demo apps under /demo/.
	Demo bool
	// APIURL is the base URL of the native API the demo apps call, such as
	// http://127.0.0.1:8080 (the node's own address).
	APIURL string
	// Client is the HTTP client the demo calls the API with; default: one
	// with a 10-second timeout.
	Client *http.Client
	// Inbox, in development only, lets the demo's code pages show the last
	// message sent for their verification. Leave it nil in production: with
	// it set, anyone who can reach the demo can read the codes.
	Inbox *Inbox

	// AdminPassword, when set, signs in to the dashboard (as do API keys
	// with the admin scope).
	AdminPassword string
	// SecureCookies marks cookies Secure even on requests that reached the
	// node over plain HTTP: set it when the public URL is https and a proxy
	// terminates TLS. Requests over TLS always get Secure cookies.
	SecureCookies bool
	// Gateways describes the configured gateways, for the dashboard.
	Gateways []Gateway

	// ClientIP names the client of a request (a [clientip.Resolver]'s
	// ClientIP behind proxies), for the sign-in lockout and API keys
	// restricted to address ranges. Default: the connection's peer.
	ClientIP func(r *http.Request) string

	// Logger receives errors; numbers are masked and codes never logged.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Gateway describes one configured SMS gateway for the dashboard.
type Gateway struct {
	Name        string
	Description string
}

// Handler serves the pages. Create it with [New] and register it with
// [Handler.Mount].
type Handler struct {
	admin *admin
	demo  *demo
}

// New returns the pages' handler. With cfg.Demo set it makes sure the demo's
// services and API keys exist, creating them on first start.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.Engine == nil || cfg.Store == nil || len(cfg.Secret) == 0 {
		return nil, errors.New("web: Engine, Store and Secret are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = (*clientip.Resolver)(nil).ClientIP
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	r, err := newRenderer()
	if err != nil {
		return nil, err
	}
	h := &Handler{admin: newAdmin(&cfg, r)}
	if cfg.Demo {
		if cfg.APIURL == "" {
			return nil, errors.New("web: the demo needs APIURL")
		}
		if h.demo, err = newDemo(ctx, &cfg, r); err != nil {
			return nil, fmt.Errorf("web: demo: %w", err)
		}
	}
	return h, nil
}

// Mount registers the dashboard under /admin/ and, when enabled, the demo
// under /demo/ on mux. The handlers it registers have a Pattern method
// naming each page's own route, which metrics.MuxRoute over mux uses to
// label requests by page.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("/admin/", h.admin.handler())
	if h.demo != nil {
		mux.Handle("/demo/", h.demo.handler())
	}
}

// section serves one part of the pages (the dashboard or the demo) under
// the prefix it is mounted at: its own routes, behind what every page gets
// (see [protect]).
type section struct {
	mux  *http.ServeMux
	next http.Handler
}

func newSection(log *slog.Logger, mux *http.ServeMux) *section {
	return &section{mux: mux, next: protect(log, mux)}
}

// ServeHTTP implements http.Handler.
func (s *section) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.next.ServeHTTP(w, r) }

// Pattern returns the pattern of the section's route that serves r ("GET
// /admin/keys", "POST /demo/shop/orders/{id}/pin"; "/admin/" or "/demo/"
// for the section's page-not-found). It makes a section a metrics.Router
// (without this package importing metrics): a node's request metrics and
// log lines name the page's own route rather than the prefix the section
// is mounted under, and never the raw path, whose ids would make the
// labels unbounded.
func (s *section) Pattern(r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	return pattern
}

// deriveKey returns a key for one purpose, derived from the server secret.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("phoneverify web: " + purpose))
	return m.Sum(nil)
}

// protect wraps a section's routes with what every page gets: security
// headers, refusal of cross-origin posts, and recovery from panics.
func protect(log *slog.Logger, next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Cross-origin form posts are refused.", http.StatusForbidden)
	}))
	inner := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic serving page", "path", r.URL.Path, "panic", p)
				http.Error(w, "An internal error occurred.", http.StatusInternalServerError)
			}
		}()
		inner.ServeHTTP(w, r)
	})
}

// secureRequest reports whether cookies set in answer to r must be Secure.
func secureRequest(r *http.Request, always bool) bool { return always || r.TLS != nil }
