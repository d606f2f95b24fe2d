// Package httpapi serves phoneverify's native JSON API (v1) over the engine.
// Handlers only translate between HTTP and the engine; every rule lives in
// the verify package.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// Config holds what the API needs.
type Config struct {
	Engine *verify.Engine
	// JWKS returns the public key set to publish.
	JWKS func() ([]byte, error)
	// Ready reports whether the node can serve (database reachable).
	Ready func(ctx context.Context) error
	// Logger gets one line per request and every internal error.
	Logger *slog.Logger
	// Routes are extra routes that take no API key, by ServeMux pattern
	// ("POST /v1/receipts/twilio"): delivery receipts, which their
	// providers' signatures authenticate. An error they return is answered
	// in the API's error format.
	Routes map[string]RouteFunc
	// ClientIP returns the address of the client that sent r, for the
	// per-IP start limit. Default: the connection's remote address
	// ([RemoteIP]). This is the hook for deployments behind a proxy or
	// load balancer, which must take the address from a header (such as
	// X-Forwarded-For) that only their trusted proxies may set.
	ClientIP func(r *http.Request) string
}

// RouteFunc serves one request of an extra route. It writes the success
// answer itself and returns an error for the API to answer instead.
type RouteFunc func(w http.ResponseWriter, r *http.Request) error

// Handler is the native API's http.Handler.
type Handler struct {
	engine *verify.Engine
	jwks   func() ([]byte, error)
	ready  func(ctx context.Context) error
	log    *slog.Logger
	// clientIP names the client of a request.
	clientIP func(r *http.Request) string
	mux      *http.ServeMux
	// methods lists the methods registered per path, for JSON 404/405 answers
	// (ServeMux's own are plain text).
	methods map[string][]string
	root    http.Handler
}

// New returns the API handler with every route registered.
func New(cfg Config) *Handler {
	h := &Handler{engine: cfg.Engine, jwks: cfg.JWKS, ready: cfg.Ready, log: cfg.Logger, mux: http.NewServeMux(), methods: map[string][]string{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.clientIP = cfg.ClientIP
	if h.clientIP == nil {
		h.clientIP = RemoteIP
	}
	h.route("POST /v1/verifications", h.auth(verify.ScopeSend, h.startVerification))
	h.route("GET /v1/verifications/{id}", h.auth("", h.getVerification))
	h.route("POST /v1/verifications/{id}/cancel", h.auth(verify.ScopeSend, h.cancelVerification))
	h.route("POST /v1/verifications/check", h.auth(verify.ScopeCheck, h.checkVerification))
	h.route("GET /v1/tokens/{token}", h.auth("", h.introspectToken))
	h.route("GET /v1/subjects/{subject}", h.auth("", h.getSubject))
	h.route("GET /.well-known/jwks.json", h.getJWKS)
	for pattern, fn := range cfg.Routes {
		h.route(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	h.route("GET /healthz", h.healthz)
	h.route("GET /readyz", h.readyz)
	h.root = h.recoverPanics(h.withRequestID(h.dispatch(h.fallbacks())))
	return h
}

// route registers a handler for "METHOD /path".
func (h *Handler) route(pattern string, fn http.HandlerFunc) {
	h.mux.HandleFunc(pattern, fn)
	method, path, _ := strings.Cut(pattern, " ")
	h.methods[path] = append(h.methods[path], method)
}

// fallbacks answers requests no route takes: 405 with Allow for a known path
// under another method, 404 otherwise — both as JSON errors.
func (h *Handler) fallbacks() http.Handler {
	mux := http.NewServeMux()
	for path, methods := range h.methods {
		allow := strings.Join(methods, ", ")
		if slices.Contains(methods, http.MethodGet) {
			allow += ", HEAD"
		}
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			h.writeError(w, r, pv.Errorf(pv.EMethodNotAllowed, "Use %s for this endpoint.", allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, pv.Errorf(pv.ENotFound, "No such endpoint: %s.", r.URL.Path))
	})
	return mux
}

// dispatch sends a request to its route, or to fallback when none matches.
func (h *Handler) dispatch(fallback http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := h.mux.Handler(r); pattern == "" {
			fallback.ServeHTTP(w, r)
			return
		}
		h.mux.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyAPIKey
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

func apiKey(ctx context.Context) *pv.APIKey {
	k, _ := ctx.Value(keyAPIKey).(*pv.APIKey)
	return k
}

// withRequestID tags each request with an id (the caller's X-Request-Id when
// it is sane) that appears in logs and error bodies.
func (h *Handler) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
	})
}

func saneRequestID(id string) bool {
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

// recoverPanics turns a panic into a logged internal error rather than a
// dropped connection.
func (h *Handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", p, "request_id", requestID(r.Context()))
				h.writeError(w, r, pv.Errorf(pv.EInternal, "An internal error occurred."))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// auth requires a valid API key holding scope ("" = any valid key).
func (h *Handler) auth(scope string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			h.writeError(w, r, pv.Errorf(pv.EUnauthorized, "Send an API key as Authorization: Bearer <key>."))
			return
		}
		k, err := h.engine.Authenticate(r.Context(), raw)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if scope != "" && !verify.HasScope(k, scope) {
			h.writeError(w, r, pv.Errorf(pv.EForbidden, "This API key lacks the %s scope.", scope))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), keyAPIKey, k)))
	}
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := h.ready(ctx); err != nil {
			h.log.WarnContext(ctx, "not ready", "error", err)
			msg := "The database is unavailable."
			if pv.ErrorCode(err) == pv.EUnavailable {
				msg = pv.ErrorMessage(err) // names what is down: the database, Redis
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable",
				"error": errorDetail{Code: pv.EUnavailable, Message: msg}})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// RemoteIP returns the IP address of the connection r came on, without the
// port; the default [Config.ClientIP].
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) getJWKS(w http.ResponseWriter, r *http.Request) {
	b, err := h.jwks()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
