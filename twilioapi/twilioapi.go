// Package twilioapi serves the Twilio Verify v2 API on phoneverify's engine,
// so that an application written for Twilio Verify works by changing its
// base URL: form-encoded requests with Twilio's parameter names, JSON
// resources with Twilio's field names and SIDs, HTTP Basic authentication
// with an account SID and auth token, and Twilio's error bodies and codes.
//
// Handlers only translate between Twilio's wire format and the engine;
// every rule lives in the verify package.
package twilioapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/clientip"
	"github.com/phoneverify/phoneverify/verify"
)

// Config holds what the API needs.
type Config struct {
	Engine *verify.Engine
	// AccountSID and AuthToken, when both set, are bootstrap credentials for
	// the default service, for development and tests; they are never stored
	// (PHONEVERIFY_COMPAT_ACCOUNT_SID and PHONEVERIFY_COMPAT_AUTH_TOKEN).
	AccountSID string
	AuthToken  string
	// Logger gets every internal error.
	Logger *slog.Logger
	// ClientIP returns the address of the client that sent r, for API keys
	// restricted to address ranges (a [clientip.Resolver]'s ClientIP).
	// Default: the connection's peer. It is not used for the per-IP start
	// limit: callers of this API are backends (Twilio Verify is called
	// server to server), whose end users' addresses arrive through
	// RateLimits buckets, as on Twilio.
	ClientIP func(r *http.Request) string
}

// Handler is the Twilio-compatible API's http.Handler. It serves paths
// under /v2/.
type Handler struct {
	engine     *verify.Engine
	accountSID string
	authToken  string
	log        *slog.Logger
	clientIP   func(r *http.Request) string
	mux        *http.ServeMux
	methods    map[string][]string
	root       http.Handler
}

// New returns the API handler with every route registered.
func New(cfg Config) *Handler {
	h := &Handler{engine: cfg.Engine, accountSID: cfg.AccountSID, authToken: cfg.AuthToken, log: cfg.Logger,
		mux: http.NewServeMux(), methods: map[string][]string{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.clientIP = cfg.ClientIP
	if h.clientIP == nil {
		h.clientIP = (*clientip.Resolver)(nil).ClientIP
	}
	admin, send, check, read := verify.ScopeAdmin, verify.ScopeSend, verify.ScopeCheck, ""
	h.route("POST /v2/Services", admin, h.createService)
	h.route("GET /v2/Services", read, h.listServices)
	h.route("GET /v2/Services/{ServiceSid}", read, h.fetchService)
	h.route("POST /v2/Services/{ServiceSid}", admin, h.updateService)
	h.route("DELETE /v2/Services/{ServiceSid}", admin, h.deleteService)

	h.route("POST /v2/Services/{ServiceSid}/Verifications", send, h.createVerification)
	h.route("GET /v2/Services/{ServiceSid}/Verifications/{Sid}", read, h.fetchVerification)
	h.route("POST /v2/Services/{ServiceSid}/Verifications/{Sid}", send, h.updateVerification)
	h.route("POST /v2/Services/{ServiceSid}/VerificationCheck", check, h.checkVerification)

	h.route("POST /v2/Services/{ServiceSid}/RateLimits", admin, h.createRateLimit)
	h.route("GET /v2/Services/{ServiceSid}/RateLimits", read, h.listRateLimits)
	h.route("GET /v2/Services/{ServiceSid}/RateLimits/{Sid}", read, h.fetchRateLimit)
	h.route("POST /v2/Services/{ServiceSid}/RateLimits/{Sid}", admin, h.updateRateLimit)
	h.route("DELETE /v2/Services/{ServiceSid}/RateLimits/{Sid}", admin, h.deleteRateLimit)
	h.route("POST /v2/Services/{ServiceSid}/RateLimits/{RateLimitSid}/Buckets", admin, h.createBucket)
	h.route("GET /v2/Services/{ServiceSid}/RateLimits/{RateLimitSid}/Buckets", read, h.listBuckets)
	h.route("GET /v2/Services/{ServiceSid}/RateLimits/{RateLimitSid}/Buckets/{Sid}", read, h.fetchBucket)
	h.route("POST /v2/Services/{ServiceSid}/RateLimits/{RateLimitSid}/Buckets/{Sid}", admin, h.updateBucket)
	h.route("DELETE /v2/Services/{ServiceSid}/RateLimits/{RateLimitSid}/Buckets/{Sid}", admin, h.deleteBucket)

	h.route("GET /v2/Attempts", read, h.listAttempts)
	h.route("GET /v2/Attempts/Summary", read, h.attemptsSummary)
	h.route("GET /v2/Attempts/{Sid}", read, h.fetchAttempt)

	h.route("POST /v2/SafeList/Numbers", admin, h.createSafeList)
	h.route("GET /v2/SafeList/Numbers/{PhoneNumber}", read, h.fetchSafeList)
	h.route("DELETE /v2/SafeList/Numbers/{PhoneNumber}", admin, h.deleteSafeList)

	h.root = h.recoverPanics(h.withRequestSID(h.dispatch(h.fallbacks())))
	return h
}

// Pattern returns the route pattern that serves r ("POST
// /v2/Services/{ServiceSid}/Verifications"), or "" when no route does: the
// label of metrics, which must never be the raw path.
func (h *Handler) Pattern(r *http.Request) string {
	_, pattern := h.mux.Handler(r)
	return pattern
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

type ctxKey int

const keyCaller ctxKey = iota

// caller is who a request authenticated as.
type caller struct {
	key        *pv.APIKey
	accountSID string
}

func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(keyCaller).(*caller)
	return c
}

// route registers a handler for "METHOD /path" behind authentication that
// requires scope ("" = any valid credentials).
func (h *Handler) route(pattern, scope string, fn http.HandlerFunc) {
	h.mux.HandleFunc(pattern, h.auth(scope, fn))
	method, path, _ := strings.Cut(pattern, " ")
	h.methods[path] = append(h.methods[path], method)
}

// fallbacks answers requests no route takes with JSON errors: 405 with Allow
// for a known path under another method, 404 otherwise.
func (h *Handler) fallbacks() http.Handler {
	mux := http.NewServeMux()
	for path, methods := range h.methods {
		allow := strings.Join(methods, ", ")
		if slices.Contains(methods, http.MethodGet) {
			allow += ", HEAD"
		}
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			h.writeError(w, r, pv.Errorf(pv.EMethodNotAllowed, "Use %s for this resource.", allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, pv.Errorf(pv.ENotFound, "No such resource."))
	})
	return mux
}

func (h *Handler) dispatch(fallback http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := h.mux.Handler(r); pattern == "" {
			fallback.ServeHTTP(w, r)
			return
		}
		h.mux.ServeHTTP(w, r)
	})
}

// withRequestSID sets Twilio-Request-Id, as Twilio does on every answer.
func (h *Handler) withRequestSID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		w.Header().Set("Twilio-Request-Id", "RQ"+hex.EncodeToString(b[:]))
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", p)
				h.writeError(w, r, pv.Errorf(pv.EInternal, "An internal error occurred."))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// auth requires HTTP Basic credentials: the bootstrap pair, or an account
// SID or API key SID with its secret, whose key holds scope.
func (h *Handler) auth(scope string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := h.authenticate(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if scope != "" && !verify.HasScope(c.key, scope) {
			h.writeError(w, r, pv.Errorf(pv.EForbidden, "These credentials lack the %s scope.", scope))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), keyCaller, c)))
	}
}

func (h *Handler) authenticate(r *http.Request) (*caller, error) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" || pass == "" {
		return nil, pv.Errorf(pv.EUnauthorized, "Send your account SID and auth token with HTTP Basic authentication.")
	}
	if h.accountSID != "" && h.authToken != "" &&
		subtle.ConstantTimeCompare([]byte(user), []byte(h.accountSID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(h.authToken)) == 1 {
		return &caller{accountSID: h.accountSID, key: &pv.APIKey{ID: "bootstrap", Name: "PHONEVERIFY_COMPAT_AUTH_TOKEN",
			ServiceID: h.engine.DefaultServiceID(), Scopes: verify.AllScopes}}, nil
	}
	k, account, err := h.engine.AuthenticateCompat(r.Context(), user, pass, h.clientIP(r))
	if err != nil {
		return nil, err
	}
	return &caller{key: k, accountSID: account}, nil
}

// service returns the service a path names, if the caller may use it: its
// key's own service, or any service for a key with the admin scope.
func (h *Handler) service(r *http.Request) (*pv.Service, *pv.ServiceFeatures, error) {
	sid := r.PathValue("ServiceSid")
	c := callerOf(r.Context())
	if c.key.ServiceID != sid && !verify.HasScope(c.key, verify.ScopeAdmin) {
		return nil, nil, pv.ParamErrorf(pv.ENotFound, "service_sid", "No service has this id.")
	}
	return h.engine.ServiceWithFeatures(r.Context(), sid)
}

// writeJSON answers with v as JSON. Links keep their "&" as it is (no
// HTML escaping): the body is an API answer, never a page.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	b := buf.Bytes()
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":20500,"message":"An internal error occurred.","more_info":"https://www.twilio.com/docs/errors/20500","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// baseURL returns the scheme and host the client reached, for the absolute
// URLs in resources (Twilio's url fields and paging links).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}
