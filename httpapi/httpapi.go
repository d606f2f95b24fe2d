// Package httpapi serves phoneverify's native JSON API (v1) over the engine.
// Handlers only translate between HTTP and the engine; every rule lives in
// the verify package.
//
// [New] returns an [http.Handler] with every route registered; mount it at
// the root of a listener, or under a prefix with http.StripPrefix. The API
// is described by the OpenAPI 3.1 document [OpenAPI], also served at
// /openapi.json. Every error answer is one JSON envelope with a stable code
// ([Codes], [StatusOf]).
package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/logging"
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
	// per-IP start limit and API keys restricted to address ranges.
	// Default: the connection's remote address ([RemoteIP]). Behind a
	// proxy or load balancer, set it to a [clientip.Resolver]'s ClientIP,
	// which reads X-Forwarded-For only from trusted proxies.
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
	h.route("POST /v1/event-subscriptions", h.auth(verify.ScopeAdmin, h.createSubscription))
	h.route("GET /v1/event-subscriptions", h.auth(verify.ScopeAdmin, h.listSubscriptions))
	h.route("DELETE /v1/event-subscriptions/{id}", h.auth(verify.ScopeAdmin, h.deleteSubscription))
	h.route("GET /v1/events", h.auth(verify.ScopeAdmin, h.listEvents))
	h.fraudRoutes()
	h.limitsRoutes()
	for pattern, fn := range cfg.Routes {
		h.route(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	h.route("GET /healthz", h.healthz)
	h.route("GET /readyz", h.readyz)
	h.route("GET /openapi.json", h.getOpenAPI)
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

// Pattern returns the route pattern that serves r ("POST
// /v1/verifications"), or "" when no route does: the label of metrics and
// logs, which must never be the raw path.
func (h *Handler) Pattern(r *http.Request) string {
	_, pattern := h.mux.Handler(r)
	return pattern
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

type ctxKey int

const keyAPIKey ctxKey = 0

func requestID(ctx context.Context) string { return logging.RequestID(ctx) }

func apiKey(ctx context.Context) *pv.APIKey {
	k, _ := ctx.Value(keyAPIKey).(*pv.APIKey)
	return k
}

// withRequestID tags each request with an id that appears in logs and
// error bodies: the one an outer [logging.Middleware] gave it, else the
// caller's X-Request-Id when it is sane, else a new one.
func (h *Handler) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := logging.FromRequest(r)
		w.Header().Set(logging.RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(logging.WithRequestID(r.Context(), id)))
	})
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
				h.log.ErrorContext(r.Context(), "panic serving request", "route", h.Pattern(r), "panic", p)
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
		k, err := h.engine.Authenticate(r.Context(), raw, h.clientIP(r))
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
