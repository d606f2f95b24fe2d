package web

import (
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phoneverify/phoneverify/client"
	"github.com/phoneverify/phoneverify/phone"
)

// pendingSignup is a sign-up waiting for its code: the account exists only
// once the phone is verified.
type pendingSignup struct {
	accountID, username string
	passwordHash        []byte
	verificationID      string
	to                  string
	sendCount           int
	expiresAt           time.Time
}

// pendingLogin is a login whose password was right, waiting for its code.
type pendingLogin struct {
	account        *account
	verificationID string
	sendCount      int
	expiresAt      time.Time
	sentAt         time.Time
}

// codePage is the data of the page that asks for a code.
type codePage struct {
	Heading string
	// To is the masked number the code went to.
	To        string
	Expires   time.Time
	Action    string
	Label     string
	Submit    string
	Resend    *resendInfo
	BackURL   string
	BackLabel string
}

// resendInfo is the "send a new code" part of the login's code page.
type resendInfo struct {
	Action string
	// Wait is how many seconds are left of the cool-down, 0 if none; At is
	// when it ends.
	Wait int
	At   time.Time
}

func (d *demo) signupForm(w http.ResponseWriter, r *http.Request, s *demoSession) {
	d.render.render(w, http.StatusOK, "demo_signup", d.view(w, r, s, "Sign up", "signup"))
}

// validUsername checks a demo username: 3–32 lower-case letters, digits,
// dots, dashes or underscores.
func validUsername(u string) bool {
	if len(u) < 3 || len(u) > 32 {
		return false
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (d *demo) signupStart(w http.ResponseWriter, r *http.Request, s *demoSession) {
	ctx := r.Context()
	username := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	password := r.PostFormValue("password")
	number := strings.TrimSpace(r.PostFormValue("phone"))
	v := d.view(w, r, s, "Sign up", "signup")
	v.Form["username"], v.Form["phone"] = username, number // never the password
	switch {
	case username == "":
		v.Errors["username"] = "Choose a username."
	case !validUsername(username):
		v.Errors["username"] = "Use 3 to 32 lower-case letters, digits, dots, dashes or underscores."
	}
	if n := utf8.RuneCountInString(password); n < 8 || n > 128 {
		v.Errors["password"] = "Use a password of 8 to 128 characters."
	}
	if number == "" {
		v.Errors["phone"] = "Enter your mobile phone number."
	}
	if len(v.Errors) == 0 {
		existing, err := d.accounts.byUsername(ctx, username)
		if err != nil {
			d.log.ErrorContext(ctx, "demo: reading an account", "error", err)
			v.Alert = "The account could not be checked. Try again in a moment."
		} else if existing != nil {
			v.Errors["username"] = "This username is taken. Choose another, or sign in."
		}
	}
	if len(v.Errors) > 0 || v.Alert != "" {
		d.render.render(w, http.StatusUnprocessableEntity, "demo_signup", v)
		return
	}
	hash, err := hashPassword(password)
	if err != nil {
		d.log.ErrorContext(ctx, "demo: hashing a password", "error", err)
		v.Alert = "Something went wrong. Try again."
		d.render.render(w, http.StatusInternalServerError, "demo_signup", v)
		return
	}
	// The account's id is the subject: phoneverify records the verified
	// phone as this account's, and refuses it to any other.
	accountID := "acct_" + strings.ToLower(rand.Text())
	ver, err := d.signupAPI.Start(ctx, client.StartParams{To: number, Subject: accountID})
	if err != nil {
		field, msg := d.apiMessage(ctx, err, "phone", "phone")
		if field == "" {
			v.Alert = msg
		} else {
			v.Errors[field] = msg
		}
		d.render.render(w, http.StatusUnprocessableEntity, "demo_signup", v)
		return
	}
	s.signup = &pendingSignup{accountID: accountID, username: username, passwordHash: hash,
		verificationID: ver.ID, to: ver.To, sendCount: ver.SendCount, expiresAt: ver.ExpiresAt}
	redirect(w, r, "/demo/signup/verify")
}

func (d *demo) signupCodePage(w http.ResponseWriter, r *http.Request, s *demoSession, status int, v *view) {
	p := s.signup
	v.Data = codePage{Heading: "Confirm your phone number", To: phone.Mask(p.to), Expires: p.expiresAt,
		Action: "/demo/signup/verify", Label: "Code", Submit: "Create account",
		BackURL: "/demo/signup", BackLabel: "Use another number"}
	v.Dev = d.devMessage(r.Context(), p.verificationID, p.sendCount)
	d.render.render(w, status, "demo_code", v)
}

func (d *demo) signupCodeForm(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if s.signup == nil {
		redirect(w, r, "/demo/signup")
		return
	}
	d.signupCodePage(w, r, s, http.StatusOK, d.view(w, r, s, "Confirm your phone number", "signup"))
}

func (d *demo) signupCheck(w http.ResponseWriter, r *http.Request, s *demoSession) {
	ctx := r.Context()
	p := s.signup
	if p == nil {
		s.notice = "Your sign-up has expired. Please start again."
		redirect(w, r, "/demo/signup")
		return
	}
	v := d.view(w, r, s, "Confirm your phone number", "signup")
	code := strings.TrimSpace(r.PostFormValue("code"))
	if code == "" {
		v.Errors["code"] = "Enter the code from the text message."
		d.signupCodePage(w, r, s, http.StatusUnprocessableEntity, v)
		return
	}
	res, err := d.signupAPI.Check(ctx, client.CheckParams{ID: p.verificationID, Code: code, Subject: p.accountID})
	if err != nil {
		field, msg := d.apiMessage(ctx, err, "code", "code")
		if field == "" {
			v.Alert = msg
		} else {
			v.Errors[field] = msg
		}
		d.signupCodePage(w, r, s, http.StatusUnprocessableEntity, v)
		return
	}
	a := &account{ID: p.accountID, Username: p.username, Phone: res.To, PasswordHash: p.passwordHash, CreatedAt: d.now().UTC()}
	if err := d.accounts.create(ctx, a); err != nil {
		s.signup = nil
		v := d.view(w, r, s, "Sign up", "signup")
		if errors.Is(err, errUsernameTaken) {
			v.Errors["username"] = "This username was taken meanwhile. Choose another."
		} else {
			d.log.ErrorContext(ctx, "demo: creating an account", "error", err)
			v.Alert = "The account could not be created. Try again in a moment."
		}
		d.render.render(w, http.StatusConflict, "demo_signup", v)
		return
	}
	s.signup, s.account = nil, a
	s.notice = "Welcome, " + a.Username + "! Your account is ready and your phone number " + phone.Mask(a.Phone) + " is verified."
	d.csrf.rotate(w, r)
	redirect(w, r, "/demo/account")
}

func (d *demo) loginForm(w http.ResponseWriter, r *http.Request, s *demoSession) {
	d.render.render(w, http.StatusOK, "demo_login", d.view(w, r, s, "Sign in", "login"))
}

func (d *demo) loginStart(w http.ResponseWriter, r *http.Request, s *demoSession) {
	ctx := r.Context()
	username := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	password := r.PostFormValue("password")
	v := d.view(w, r, s, "Sign in", "login")
	v.Form["username"] = username
	if username == "" {
		v.Errors["username"] = "Enter your username."
	}
	if password == "" {
		v.Errors["password"] = "Enter your password."
	}
	if len(v.Errors) > 0 {
		d.render.render(w, http.StatusUnprocessableEntity, "demo_login", v)
		return
	}
	a, err := d.accounts.byUsername(ctx, username)
	if err != nil {
		d.log.ErrorContext(ctx, "demo: reading an account", "error", err)
		v.Alert = "Signing in is not possible just now. Try again in a moment."
		d.render.render(w, http.StatusServiceUnavailable, "demo_login", v)
		return
	}
	hash := dummyHash()
	if a != nil {
		hash = a.PasswordHash
	}
	// The hash is checked even for an unknown name, so both take as long.
	if ok := checkPassword(hash, password); !ok || a == nil {
		v.Errors["password"] = "The username or the password is wrong."
		d.render.render(w, http.StatusUnauthorized, "demo_login", v)
		return
	}
	// The password was right: now the second factor.
	ver, err := d.loginAPI.Start(ctx, client.StartParams{To: a.Phone, Subject: a.ID})
	if err != nil {
		_, v.Alert = d.apiMessage(ctx, err, "", "")
		d.render.render(w, http.StatusServiceUnavailable, "demo_login", v)
		return
	}
	s.login = &pendingLogin{account: a, verificationID: ver.ID, sendCount: ver.SendCount, expiresAt: ver.ExpiresAt, sentAt: d.now()}
	redirect(w, r, "/demo/login/verify")
}

func (d *demo) loginCodePage(w http.ResponseWriter, r *http.Request, s *demoSession, status int, v *view) {
	p := s.login
	ready := p.sentAt.Add(resendCooldown)
	wait := int((ready.Sub(d.now()) + time.Second - 1) / time.Second)
	v.Data = codePage{Heading: "Enter your sign-in code", To: phone.Mask(p.account.Phone), Expires: p.expiresAt,
		Action: "/demo/login/verify", Label: "Code", Submit: "Sign in",
		Resend:  &resendInfo{Action: "/demo/login/resend", Wait: max(wait, 0), At: ready},
		BackURL: "/demo/login", BackLabel: "Sign in as someone else"}
	v.Dev = d.devMessage(r.Context(), p.verificationID, p.sendCount)
	d.render.render(w, status, "demo_code", v)
}

func (d *demo) loginCodeForm(w http.ResponseWriter, r *http.Request, s *demoSession) {
	if s.login == nil {
		redirect(w, r, "/demo/login")
		return
	}
	d.loginCodePage(w, r, s, http.StatusOK, d.view(w, r, s, "Enter your sign-in code", "login"))
}

func (d *demo) loginCheck(w http.ResponseWriter, r *http.Request, s *demoSession) {
	ctx := r.Context()
	p := s.login
	if p == nil {
		s.notice = "Your sign-in has expired. Please start again."
		redirect(w, r, "/demo/login")
		return
	}
	v := d.view(w, r, s, "Enter your sign-in code", "login")
	code := strings.TrimSpace(r.PostFormValue("code"))
	if code == "" {
		v.Errors["code"] = "Enter the code from the text message."
		d.loginCodePage(w, r, s, http.StatusUnprocessableEntity, v)
		return
	}
	if _, err := d.loginAPI.Check(ctx, client.CheckParams{ID: p.verificationID, Code: code, Subject: p.account.ID}); err != nil {
		field, msg := d.apiMessage(ctx, err, "code", "code")
		if field == "" {
			v.Alert = msg
		} else {
			v.Errors[field] = msg
		}
		d.loginCodePage(w, r, s, http.StatusUnprocessableEntity, v)
		return
	}
	s.account, s.login = p.account, nil
	s.notice = "You are signed in as " + p.account.Username + "."
	d.csrf.rotate(w, r)
	next := s.next
	s.next = ""
	if next == "" {
		next = "/demo/account"
	}
	redirect(w, r, next)
}

func (d *demo) loginResend(w http.ResponseWriter, r *http.Request, s *demoSession) {
	ctx := r.Context()
	p := s.login
	if p == nil {
		redirect(w, r, "/demo/login")
		return
	}
	v := d.view(w, r, s, "Enter your sign-in code", "login")
	if wait := p.sentAt.Add(resendCooldown).Sub(d.now()); wait > 0 {
		v.Errors["resend"] = "Please wait " + seconds(int((wait+time.Second-1)/time.Second)) + " before asking for a new code."
		d.loginCodePage(w, r, s, http.StatusTooManyRequests, v)
		return
	}
	// A start while the code is pending is a resend: a new code, the old
	// one dead. After expiry it starts a new verification.
	ver, err := d.loginAPI.Start(ctx, client.StartParams{To: p.account.Phone, Subject: p.account.ID})
	if err != nil {
		_, msg := d.apiMessage(ctx, err, "", "")
		v.Errors["resend"] = msg
		d.loginCodePage(w, r, s, http.StatusServiceUnavailable, v)
		return
	}
	p.verificationID, p.sendCount, p.expiresAt, p.sentAt = ver.ID, ver.SendCount, ver.ExpiresAt, d.now()
	s.notice = "A new code is on its way. The previous code no longer works."
	redirect(w, r, "/demo/login/verify")
}
