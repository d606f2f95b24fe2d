package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// csrfField is the name of the hidden form field that carries the token.
const csrfField = "csrf_token"

// minCookieValue is the shortest cookie value accepted: rand.Text's 26
// characters hold 128 random bits.
const minCookieValue = 26

// csrf protects form posts with a signed double-submit cookie: the cookie
// holds a random value, each form the HMAC of it under a server key. A post
// is accepted only if the two match, which a page of another site can make
// happen neither by reading the cookie (HttpOnly, SameSite=Strict) nor by
// guessing the HMAC. [http.CrossOriginProtection] refuses cross-origin posts
// as well, by the browser's Sec-Fetch-Site and Origin headers.
type csrf struct {
	key    []byte
	cookie string
	path   string
	secure bool
}

// token returns the token for r's forms, setting the cookie first if r did
// not carry one.
func (c *csrf) token(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(c.cookie); err == nil && len(ck.Value) >= minCookieValue {
		return c.sign(ck.Value)
	}
	return c.rotate(w, r)
}

// rotate sets a new cookie (at sign-in and sign-out) and returns its token.
func (c *csrf) rotate(w http.ResponseWriter, r *http.Request) string {
	value := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name: c.cookie, Value: value, Path: c.path, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r, c.secure),
	})
	return c.sign(value)
}

func (c *csrf) sign(value string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// valid reports whether a form post carries the token of its cookie. It
// parses the form.
func (c *csrf) valid(r *http.Request) bool {
	ck, err := r.Cookie(c.cookie)
	if err != nil || len(ck.Value) < minCookieValue {
		return false
	}
	got := r.PostFormValue(csrfField)
	want := c.sign(ck.Value)
	return hmac.Equal([]byte(got), []byte(want))
}
