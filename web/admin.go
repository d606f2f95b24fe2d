package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

const (
	adminCookie     = "pv_admin_session"
	adminSessionTTL = 8 * time.Hour
	// Failed sign-ins allowed per client address and window.
	adminMaxFailures   = 5
	adminFailureWindow = 15 * time.Minute
)

type admin struct {
	engine   *verify.Engine
	store    *store.Store
	render   *renderer
	csrf     *csrf
	limiter  *attemptLimiter
	password string
	// sessionKey signs the session cookie.
	sessionKey []byte
	secure     bool
	gateways   []Gateway
	clientIP   func(r *http.Request) string
	now        func() time.Time
	log        *slog.Logger
}

func newAdmin(cfg *Config, r *renderer) *admin {
	return &admin{
		engine:     cfg.Engine,
		store:      cfg.Store,
		render:     r,
		csrf:       &csrf{key: deriveKey(cfg.Secret, "admin csrf"), cookie: "pv_admin_csrf", path: "/admin/", secure: cfg.SecureCookies},
		limiter:    newAttemptLimiter(adminMaxFailures, adminFailureWindow, cfg.Now),
		password:   cfg.AdminPassword,
		sessionKey: deriveKey(cfg.Secret, "admin session"),
		secure:     cfg.SecureCookies,
		gateways:   cfg.Gateways,
		clientIP:   cfg.ClientIP,
		now:        cfg.Now,
		log:        cfg.Logger,
	}
}

func (a *admin) handler() *section {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/assets/style.css", serveStatic)
	mux.HandleFunc("GET /admin/login", a.loginForm)
	mux.HandleFunc("POST /admin/login", a.login)
	mux.HandleFunc("POST /admin/logout", a.authPost(a.logout))
	mux.HandleFunc("GET /admin/{$}", a.auth(a.overview))
	mux.HandleFunc("GET /admin/verifications", a.auth(a.verifications))
	mux.HandleFunc("GET /admin/verifications/{id}", a.auth(a.verification))
	mux.HandleFunc("GET /admin/keys", a.auth(a.keys))
	mux.HandleFunc("POST /admin/keys", a.authPost(a.createKey))
	mux.HandleFunc("POST /admin/keys/{id}/revoke", a.authPost(a.revokeKey))
	mux.HandleFunc("/admin/", a.auth(func(w http.ResponseWriter, r *http.Request, _ *adminSession) {
		a.render.render(w, http.StatusNotFound, "error", &view{Section: "admin", Title: "Page not found",
			Alert: "There is no such page in the dashboard."})
	}))
	return newSection(a.log, mux)
}

// adminSession is what the signed session cookie holds. Sessions are not
// kept on the server, so any node sharing the secret accepts them.
type adminSession struct {
	Expires int64 `json:"exp"`
	// KeyID is the id of the API key that signed in; empty for the admin
	// password. Revoking the key ends its sessions.
	KeyID string `json:"kid,omitempty"`
	// Password fingerprints the admin password a session was opened with:
	// changing the password ends those sessions.
	Password string `json:"pw,omitempty"`
	// Who describes who signed in, for the page header.
	Who   string `json:"who"`
	Nonce string `json:"n"`
}

func (a *admin) mac(payload string) string {
	m := hmac.New(sha256.New, a.sessionKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *admin) passwordFingerprint() string {
	return a.mac("password " + a.password)[:16]
}

// session returns the request's valid session, or nil.
func (a *admin) session(r *http.Request) *adminSession {
	ck, err := r.Cookie(adminCookie)
	if err != nil {
		return nil
	}
	payload, sig, ok := strings.Cut(ck.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(a.mac(payload))) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	var s adminSession
	if err := json.Unmarshal(raw, &s); err != nil || a.now().Unix() >= s.Expires {
		return nil
	}
	switch {
	case s.KeyID == "":
		if a.password == "" || subtle.ConstantTimeCompare([]byte(s.Password), []byte(a.passwordFingerprint())) != 1 {
			return nil
		}
	case s.KeyID != "bootstrap":
		if !a.keyActive(r.Context(), s.KeyID, a.clientIP(r)) {
			return nil
		}
	}
	return &s
}

// keyActive reports whether the API key exists, is not revoked and may be
// used from clientIP.
func (a *admin) keyActive(ctx context.Context, id, clientIP string) bool {
	keys, err := a.store.APIKeys(ctx)
	if err != nil {
		a.log.WarnContext(ctx, "admin: reading API keys", "error", err)
		return false
	}
	for _, k := range keys {
		if k.ID == id {
			return k.RevokedAt == nil && verify.KeyAllows(k, clientIP)
		}
	}
	return false
}

func (a *admin) setSession(w http.ResponseWriter, r *http.Request, s adminSession) {
	s.Expires = a.now().Add(adminSessionTTL).Unix()
	s.Nonce = rand.Text()
	raw, _ := json.Marshal(s)
	payload := base64.RawURLEncoding.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{Name: adminCookie, Value: payload + "." + a.mac(payload), Path: "/admin/",
		MaxAge: int(adminSessionTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: secureRequest(r, a.secure)})
}

// adminHandler is a dashboard handler with the signed-in session.
type adminHandler func(w http.ResponseWriter, r *http.Request, s *adminSession)

// auth requires a session; without one it sends the browser to sign in.
func (a *admin) auth(fn adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := a.session(r)
		if s == nil {
			target := "/admin/login"
			if r.Method == http.MethodGet && r.URL.Path != "/admin/" {
				target += "?next=" + r.URL.EscapedPath()
			}
			redirect(w, r, target)
			return
		}
		fn(w, r, s)
	}
}

// authPost requires a session and a valid CSRF token.
func (a *admin) authPost(fn adminHandler) http.HandlerFunc {
	return a.auth(func(w http.ResponseWriter, r *http.Request, s *adminSession) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !a.csrf.valid(r) {
			a.formExpired(w)
			return
		}
		fn(w, r, s)
	})
}

func (a *admin) formExpired(w http.ResponseWriter) {
	a.render.render(w, http.StatusForbidden, "error", &view{Section: "admin", Title: "Form expired",
		Alert: "This form has expired or did not come from this site. Go back, reload the page and try again."})
}

// view returns a page's common data.
func (a *admin) view(w http.ResponseWriter, r *http.Request, s *adminSession, title, nav string) *view {
	v := &view{Section: "admin", Title: title, Nav: nav, CSRF: a.csrf.token(w, r),
		Errors: map[string]string{}, Form: map[string]string{}}
	if s != nil {
		v.User = s.Who
	}
	return v
}

// safeNext returns next if it is a dashboard path, else the overview.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin/") && !strings.HasPrefix(next, "/admin//") && !strings.ContainsAny(next, `\`) {
		return next
	}
	return "/admin/"
}

type loginData struct {
	Next        string
	PasswordSet bool
}

func (a *admin) loginForm(w http.ResponseWriter, r *http.Request) {
	if a.session(r) != nil {
		redirect(w, r, "/admin/")
		return
	}
	v := a.view(w, r, nil, "Sign in to the dashboard", "login")
	v.Data = loginData{Next: safeNext(r.URL.Query().Get("next")), PasswordSet: a.password != ""}
	a.render.render(w, http.StatusOK, "admin_login", v)
}

func (a *admin) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !a.csrf.valid(r) {
		a.formExpired(w)
		return
	}
	v := a.view(w, r, nil, "Sign in to the dashboard", "login")
	v.Data = loginData{Next: safeNext(r.PostFormValue("next")), PasswordSet: a.password != ""}
	addr := a.clientIP(r)
	if wait := a.limiter.wait(addr); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		v.Alert = "Too many failed sign-in attempts from your address. Try again in " + waitText(wait) + "."
		a.render.render(w, http.StatusTooManyRequests, "admin_login", v)
		return
	}
	s, msg := a.authenticate(r.Context(), r.PostFormValue("secret"), addr)
	if s == nil {
		a.limiter.fail(addr)
		a.log.WarnContext(r.Context(), "admin sign-in refused", "addr", addr)
		v.Errors["secret"] = msg
		a.render.render(w, http.StatusUnauthorized, "admin_login", v)
		return
	}
	a.limiter.reset(addr)
	a.setSession(w, r, *s)
	a.csrf.rotate(w, r)
	a.log.InfoContext(r.Context(), "admin signed in", "who", s.Who, "addr", addr)
	redirect(w, r, safeNext(r.PostFormValue("next")))
}

// authenticate checks the admin password or an API key with the admin
// scope. It returns the session to open, or nil and why not.
func (a *admin) authenticate(ctx context.Context, secret, clientIP string) (*adminSession, string) {
	if secret == "" {
		return nil, "Enter the admin password or an API key with the admin scope."
	}
	// Compared as hashes, so neither the time nor the length of the
	// password leaks.
	if a.password != "" {
		got, want := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(a.password))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return &adminSession{Password: a.passwordFingerprint(), Who: "admin password"}, ""
		}
	}
	k, err := a.engine.Authenticate(ctx, secret, clientIP)
	switch {
	case err == nil && verify.HasScope(k, verify.ScopeAdmin):
		who := "API key “" + k.Name + "”"
		if k.Prefix != "" {
			who += " (" + k.Prefix + "…)"
		}
		return &adminSession{KeyID: k.ID, Who: who}, ""
	case err == nil:
		return nil, "This API key lacks the admin scope."
	case pv.ErrorCode(err) == pv.EUnavailable:
		return nil, "The database is unavailable; try again in a moment."
	case pv.ErrorCode(err) == pv.EForbidden:
		return nil, "This API key may not be used from your address."
	}
	return nil, "The password or API key is not right."
}

func (a *admin) logout(w http.ResponseWriter, r *http.Request, _ *adminSession) {
	http.SetCookie(w, &http.Cookie{Name: adminCookie, Value: "", Path: "/admin/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r, a.secure)})
	a.csrf.rotate(w, r)
	redirect(w, r, "/admin/login")
}

// waitText renders a wait in minutes, or seconds under a minute.
func waitText(d time.Duration) string {
	if d < time.Minute {
		return seconds(int((d + time.Second - 1) / time.Second))
	}
	return plural(int((d+time.Minute-1)/time.Minute), "minute")
}
