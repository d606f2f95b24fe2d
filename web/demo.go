package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/client"
	"github.com/phoneverify/phoneverify/verify"
)

// The demo's three apps, each a service of its own with an API key of its
// own, as three separate applications would have.
type demoApp struct {
	slug, name, template string
	tweak                func(*pv.Service)
}

func demoApps() []demoApp {
	return []demoApp{
		// Sign-up keeps the registry rules on: one account per phone.
		{slug: "signup", name: "Demo sign-up", template: "Your {app} code is {code}"},
		// The second factor: a code that lives one minute. The phone was
		// proved at sign-up, so the registry rules are off here.
		{slug: "login", name: "Demo login", template: "{code} is your {app} code. It expires in {minutes} min.",
			tweak: func(s *pv.Service) {
				s.CodeTTL = 60 * time.Second
				s.OneSubjectPerPhone, s.RejectAlreadyVerified = false, false
			}},
		// Order confirmation: codes bound to the amount and the payee.
		{slug: "shop", name: "Demo shop", template: "{code} is your PIN to confirm your {app} order.",
			tweak: func(s *pv.Service) {
				s.CodeTTL = 5 * time.Minute
				s.OneSubjectPerPhone, s.RejectAlreadyVerified = false, false
			}},
	}
}

// demoServiceID returns the fixed id of a demo app's service, so every node
// and every restart finds the same one.
func demoServiceID(slug string) string {
	sum := sha256.Sum256([]byte("phoneverify demo service " + slug))
	return "VA" + hex.EncodeToString(sum[:16])
}

// demoAPIKey returns a demo app's API key, derived from the server secret so
// that it survives restarts without being stored anywhere in clear.
func demoAPIKey(secret []byte, slug string) string {
	return "pvk_" + hex.EncodeToString(deriveKey(secret, "demo api key "+slug)[:24])
}

// resendCooldown is how long the login app makes a person wait between two
// codes: the app's own rule, on top of phoneverify's send limit.
const resendCooldown = 30 * time.Second

type demo struct {
	render   *renderer
	csrf     *csrf
	sessions *sessionStore
	accounts *accountStore
	inbox    *Inbox
	now      func() time.Time
	log      *slog.Logger

	signupAPI, loginAPI, shopAPI *client.Client
}

func newDemo(ctx context.Context, cfg *Config, r *renderer) (*demo, error) {
	d := &demo{
		render:   r,
		csrf:     &csrf{key: deriveKey(cfg.Secret, "demo csrf"), cookie: "pv_demo_csrf", path: "/demo/", secure: cfg.SecureCookies},
		sessions: newSessionStore(cfg.Now, cfg.SecureCookies),
		accounts: &accountStore{db: cfg.Store.DB()},
		inbox:    cfg.Inbox,
		now:      cfg.Now,
		log:      cfg.Logger,
	}
	clients := map[string]**client.Client{"signup": &d.signupAPI, "login": &d.loginAPI, "shop": &d.shopAPI}
	for _, app := range demoApps() {
		key, err := ensureDemoApp(ctx, cfg, app)
		if err != nil {
			return nil, err
		}
		c, err := client.New(cfg.APIURL, client.WithAPIKey(key), client.WithHTTPClient(cfg.Client), client.WithUserAgent("phoneverify-demo/"+app.slug))
		if err != nil {
			return nil, fmt.Errorf("web: demo %s: %w", app.slug, err)
		}
		*clients[app.slug] = c
	}
	return d, nil
}

// ensureDemoApp creates a demo app's service and API key if they do not
// exist yet, and returns the key. An operator may change the service's
// settings afterwards; they are kept.
func ensureDemoApp(ctx context.Context, cfg *Config, app demoApp) (string, error) {
	id := demoServiceID(app.slug)
	_, err := cfg.Store.Service(ctx, id)
	if pv.ErrorCode(err) == pv.ENotFound {
		s := pv.NewService(app.name)
		s.ID, s.Template = id, app.template
		if app.tweak != nil {
			app.tweak(s)
		}
		if err := verify.ValidateService(s); err != nil {
			return "", fmt.Errorf("service %s: %w", app.slug, err)
		}
		s.CreatedAt, s.UpdatedAt = cfg.Now().UTC(), cfg.Now().UTC()
		err = cfg.Store.CreateService(ctx, s)
		if pv.ErrorCode(err) == pv.EConflict { // another node made it first
			err = nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("service %s: %w", app.slug, err)
	}

	raw := demoAPIKey(cfg.Secret, app.slug)
	k, err := cfg.Store.APIKeyByHash(ctx, verify.HashAPIKey(raw))
	switch {
	case pv.ErrorCode(err) == pv.ENotFound:
		kid, err := cfg.Engine.NewID("KY")
		if err != nil {
			return "", err
		}
		err = cfg.Store.CreateAPIKey(ctx, &pv.APIKey{ID: kid, ServiceID: id, Name: app.name + " (the demo's own key)",
			Prefix: raw[:10], Hash: verify.HashAPIKey(raw), Scopes: []string{verify.ScopeSend, verify.ScopeCheck},
			CreatedAt: cfg.Now().UTC()})
		if err != nil && pv.ErrorCode(err) != pv.EConflict {
			return "", fmt.Errorf("API key %s: %w", app.slug, err)
		}
	case err != nil:
		return "", fmt.Errorf("API key %s: %w", app.slug, err)
	case k.RevokedAt != nil:
		cfg.Logger.Warn("the demo's API key was revoked: its app will answer that the key is refused", "app", app.slug, "key_id", k.ID)
	}
	return raw, nil
}

func (d *demo) handler() *section {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/assets/style.css", serveStatic)
	mux.HandleFunc("GET /demo/{$}", d.page(d.index))
	mux.HandleFunc("GET /demo/account", d.page(d.accountPage))
	mux.HandleFunc("POST /demo/logout", d.post(d.logout))

	mux.HandleFunc("GET /demo/signup", d.page(d.signupForm))
	mux.HandleFunc("POST /demo/signup", d.post(d.signupStart))
	mux.HandleFunc("GET /demo/signup/verify", d.page(d.signupCodeForm))
	mux.HandleFunc("POST /demo/signup/verify", d.post(d.signupCheck))

	mux.HandleFunc("GET /demo/login", d.page(d.loginForm))
	mux.HandleFunc("POST /demo/login", d.post(d.loginStart))
	mux.HandleFunc("GET /demo/login/verify", d.page(d.loginCodeForm))
	mux.HandleFunc("POST /demo/login/verify", d.post(d.loginCheck))
	mux.HandleFunc("POST /demo/login/resend", d.post(d.loginResend))

	mux.HandleFunc("GET /demo/shop", d.page(d.shop))
	mux.HandleFunc("POST /demo/shop/orders", d.post(d.createOrder))
	mux.HandleFunc("GET /demo/shop/orders/{id}", d.page(d.orderPage))
	mux.HandleFunc("POST /demo/shop/orders/{id}/pin", d.post(d.orderPIN))
	mux.HandleFunc("POST /demo/shop/orders/{id}/confirm", d.post(d.orderConfirm))
	mux.HandleFunc("POST /demo/shop/orders/{id}/edit", d.post(d.orderEdit))

	mux.HandleFunc("/demo/", func(w http.ResponseWriter, r *http.Request) {
		d.render.render(w, http.StatusNotFound, "error", &view{Section: "demo", Title: "Page not found",
			Alert: "There is no such page in the demo."})
	})
	return newSection(d.log, mux)
}

// demoHandler is a page handler with the browser's session, whose lock it
// holds.
type demoHandler func(w http.ResponseWriter, r *http.Request, s *demoSession)

// page serves a GET with the session (started if new).
func (d *demo) page(fn demoHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := d.sessions.ensure(w, r)
		s.mu.Lock()
		defer s.mu.Unlock()
		fn(w, r, s)
	}
}

// post serves a form post: it refuses posts without a valid CSRF token.
func (d *demo) post(fn demoHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !d.csrf.valid(r) {
			d.render.render(w, http.StatusForbidden, "error", &view{Section: "demo", Title: "Form expired",
				Alert: "This form has expired or did not come from this site. Go back, reload the page and try again."})
			return
		}
		s := d.sessions.ensure(w, r)
		s.mu.Lock()
		defer s.mu.Unlock()
		fn(w, r, s)
	}
}

// view returns a page's common data.
func (d *demo) view(w http.ResponseWriter, r *http.Request, s *demoSession, title, nav string) *view {
	v := &view{Section: "demo", Title: title, Nav: nav, CSRF: d.csrf.token(w, r), Notice: s.takeNotice(),
		Errors: map[string]string{}, Form: map[string]string{}}
	if s.account != nil {
		v.User = s.account.Username
	}
	return v
}

// devMessage returns, in development, the last message sent for a
// verification once count were sent, waiting briefly for it; nil in
// production.
func (d *demo) devMessage(ctx context.Context, verificationID string, count int) *devMessage {
	if d.inbox == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, _ := d.inbox.Last(ctx, verificationID, count)
	return &m
}

func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

type indexData struct {
	Dev bool
}

func (d *demo) index(w http.ResponseWriter, r *http.Request, s *demoSession) {
	v := d.view(w, r, s, "Home", "home")
	v.Data = indexData{Dev: d.inbox != nil}
	d.render.render(w, http.StatusOK, "demo_index", v)
}

func (d *demo) accountPage(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if s.account == nil {
		s.notice, s.next = "Sign in to see your account.", "/demo/account"
		redirect(w, r, "/demo/login")
		return
	}
	v := d.view(w, r, s, "Your account", "account")
	v.Data = s.account
	d.render.render(w, http.StatusOK, "demo_account", v)
}

func (d *demo) logout(w http.ResponseWriter, r *http.Request, s *demoSession) {
	s.account, s.login, s.orders = nil, nil, nil
	s.notice = "You are signed out."
	d.csrf.rotate(w, r)
	redirect(w, r, "/demo/")
}

// apiMessage turns an API error into words for the person using the app,
// and names the form field it belongs next to ("" for the page as a whole).
// Apps choose their own words; the API's stable codes are what they match.
func (d *demo) apiMessage(ctx context.Context, err error, phoneField, codeField string) (field, msg string) {
	e := client.AsError(err)
	if e == nil {
		d.log.ErrorContext(ctx, "demo: calling the API", "error", err)
		return "", "phoneverify could not be reached. Try again in a moment."
	}
	switch e.Code {
	case pv.EInvalidPhoneNumber:
		return phoneField, e.Message
	case pv.EUnsupportedNumberType:
		return phoneField, "This number cannot receive text messages. Use a mobile number."
	case pv.ECountryNotAllowed:
		return phoneField, "Numbers of this country are not accepted."
	case pv.EPhoneInUse:
		return phoneField, "This phone number already belongs to another account. Sign in to that account, or use another number."
	case pv.EAlreadyVerified:
		return phoneField, "This account has already verified this phone number."
	case pv.ETooManyRequests:
		return phoneField, "Too many codes were sent to this number. Try again in " + seconds(int((e.RetryAfter+time.Second-1)/time.Second)) + "."
	case pv.EBlockedByFraud:
		return phoneField, "This number cannot be used here."
	case pv.EIncorrectCode:
		left := 0
		if e.AttemptsRemaining != nil {
			left = *e.AttemptsRemaining
		}
		if left == 0 {
			return codeField, "That code is not right, and no attempts are left. Ask for a new code."
		}
		return codeField, "That code is not right. " + plural(left, "attempt") + " left."
	case pv.EInvalidRequest:
		if e.Param == "code" {
			return codeField, "Enter the code from the text message: digits only."
		}
		if e.Param == "to" {
			return phoneField, e.Message
		}
	case pv.EVerificationExpired:
		return codeField, "This code has expired. Ask for a new one."
	case pv.EMaxAttemptsReached:
		return codeField, "Too many wrong codes. Ask for a new one."
	case pv.EVerificationCanceled:
		return codeField, "This code was replaced by a newer one. Use the latest code, or ask for a new one."
	case pv.EAlreadyApproved:
		return codeField, "This code was used already."
	case pv.EVerificationFailed:
		return codeField, "The text message could not be delivered. Ask for a new code."
	case pv.EGatewayUnavailable:
		return "", "The text message could not be sent just now. Try again in a moment."
	case pv.EUnauthorized:
		d.log.ErrorContext(ctx, "demo: the API refused the demo's key", "error", err)
		return "", "phoneverify refused this demo's API key (was it revoked?). Restarting the node does not restore a revoked key."
	}
	d.log.WarnContext(ctx, "demo: API error", "status", e.StatusCode, "code", e.Code)
	return "", e.Message
}

func seconds(n int) string {
	if n <= 0 {
		n = 1
	}
	return plural(n, "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
