// Package client is a typed Go client for phoneverify's native JSON API (v1).
//
// It speaks the API over HTTP, as any application does, and turns every
// error answer into an [*Error] carrying the API's stable code, so callers
// match on codes rather than on messages or statuses:
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithAPIKey(key))
//	v, err := c.Start(ctx, client.StartParams{To: "+14155552671", Subject: "user-42"})
//	res, err := c.Check(ctx, client.CheckParams{ID: v.ID, Code: typed, Subject: "user-42"})
//	if client.IsCode(err, client.CodeIncorrectCode) { … }
//
// Every method takes a context and makes exactly one request unless
// [WithRetry] is given: a verification start is not idempotent (a second
// start for the same number is a resend), so retrying is the caller's choice.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Stable error codes of the API (see the README's error table). They never
// change meaning; [IsCode] matches on them.
const (
	CodeInvalidRequest        = "invalid_request"
	CodeInvalidPhoneNumber    = "invalid_phone_number"
	CodeUnsupportedNumberType = "unsupported_number_type"
	CodeCountryNotAllowed     = "country_not_allowed"
	CodeIncorrectCode         = "incorrect_code"
	CodeUnauthorized          = "unauthorized"
	CodeInvalidToken          = "invalid_token"
	CodeForbidden             = "forbidden"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeAlreadyVerified       = "already_verified"
	CodePhoneInUse            = "phone_in_use"
	CodeVerificationApproved  = "verification_approved"
	CodeVerificationCanceled  = "verification_canceled"
	CodeVerificationFailed    = "verification_failed"
	CodeVerificationExpired   = "verification_expired"
	CodeRequestTooLarge       = "request_too_large"
	CodeUnsupportedMediaType  = "unsupported_media_type"
	CodeTooManyRequests       = "too_many_requests"
	CodeMaxAttemptsReached    = "max_attempts_reached"
	CodeBlockedByFraud        = "blocked_by_fraud_protection"
	CodeGatewayUnavailable    = "gateway_unavailable"
	CodeUnavailable           = "unavailable"
	CodeInternal              = "internal"
)

// Verification statuses.
const (
	StatusPending            = "pending"
	StatusApproved           = "approved"
	StatusCanceled           = "canceled"
	StatusExpired            = "expired"
	StatusMaxAttemptsReached = "max_attempts_reached"
	StatusFailed             = "failed"
)

// maxAnswerBytes bounds how much of an answer is read: the API's answers
// are small, and a misdirected base URL must not fill memory.
const maxAnswerBytes = 1 << 20

// Client calls one phoneverify node (or a load balancer in front of many).
// It is safe for concurrent use.
type Client struct {
	base      string
	key       string
	http      *http.Client
	userAgent string
	retries   int
	maxWait   time.Duration
	sleep     func(ctx context.Context, d time.Duration) error
}

// Option configures a [Client] made by [New].
type Option func(*Client) error

// WithAPIKey sets the API key sent as "Authorization: Bearer <key>". Every
// route but the JWKS and health checks needs one.
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(key, "\r\n") {
			return errors.New("client: the API key holds a line break")
		}
		c.key = key
		return nil
	}
}

// WithHTTPClient sets the http.Client requests go through (its transport,
// timeout, proxies). The default is http.DefaultClient, which has no
// timeout: give requests a context deadline or set one here.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("client: nil http.Client")
		}
		c.http = hc
		return nil
	}
}

// WithUserAgent sets the User-Agent header, so the operator's logs say
// which application called.
func WithUserAgent(ua string) Option {
	return func(c *Client) error { c.userAgent = ua; return nil }
}

// WithRetry retries a request answered 503 (unavailable) or 429
// (too_many_requests, max_attempts_reached excepted) up to n more times,
// waiting as long as the answer's Retry-After says (one second when it
// says nothing) but never longer than maxWait per wait; an answer asking
// for a longer wait is returned as it is. A retried start may be a resend
// when the first one was in fact committed, so use it knowingly for starts.
func WithRetry(n int, maxWait time.Duration) Option {
	return func(c *Client) error {
		if n < 0 || maxWait < 0 {
			return errors.New("client: WithRetry needs n ≥ 0 and maxWait ≥ 0")
		}
		c.retries, c.maxWait = n, maxWait
		return nil
	}
}

// New returns a client for the node at baseURL ("http://127.0.0.1:8080",
// optionally with a path prefix the node is mounted under).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q is not an absolute http or https URL", baseURL)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: http.DefaultClient, userAgent: "phoneverify-go-client", sleep: sleepCtx}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// BaseURL returns the base URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// StartParams is the body of a start (POST /v1/verifications). Only To is
// required.
type StartParams struct {
	// To is the phone number, in any common format.
	To string `json:"to"`
	// Channel is "sms" (the default and only channel).
	Channel string `json:"channel,omitempty"`
	// Locale picks the message language (e.g. "ne"); default by country.
	Locale string `json:"locale,omitempty"`
	// Subject binds the verification to the application's user id.
	Subject string `json:"subject,omitempty"`
	// AppHash appends the Android SMS Retriever line.
	AppHash string `json:"app_hash,omitempty"`
	// Amount and Payee bind a payment or order confirmation.
	Amount string `json:"amount,omitempty"`
	Payee  string `json:"payee,omitempty"`
}

// CheckParams is the body of a check (POST /v1/verifications/check): the
// code and either ID or To.
type CheckParams struct {
	ID      string `json:"id,omitempty"`
	To      string `json:"to,omitempty"`
	Code    string `json:"code"`
	Subject string `json:"subject,omitempty"`
	Amount  string `json:"amount,omitempty"`
	Payee   string `json:"payee,omitempty"`
}

// Verification is the verification resource. It never carries the code.
type Verification struct {
	ID                string    `json:"id"`
	ServiceID         string    `json:"service_id"`
	To                string    `json:"to"`
	Channel           string    `json:"channel"`
	Status            string    `json:"status"`
	Subject           string    `json:"subject,omitempty"`
	Amount            string    `json:"amount,omitempty"`
	Payee             string    `json:"payee,omitempty"`
	Locale            string    `json:"locale,omitempty"`
	SendCount         int       `json:"send_count"`
	Attempts          int       `json:"attempts"`
	AttemptsRemaining int       `json:"attempts_remaining"`
	ExpiresAt         time.Time `json:"expires_at"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// Message is one entry of a verification's message history (never the
// text or the code).
type Message struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Gateway    string    `json:"gateway,omitempty"`
	ProviderID string    `json:"provider_id,omitempty"`
	Error      string    `json:"error,omitempty"`
	Attempts   int       `json:"attempts"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// VerificationDetail is a fetched verification with its messages.
type VerificationDetail struct {
	Verification
	Messages []Message `json:"messages"`
}

// CheckResult is the answer to a successful check: the approved
// verification and the signed proof.
type CheckResult struct {
	Verification
	// Token is the EdDSA JWT proving the phone; verify it with the keys of
	// [Client.JWKS] or look it up with [Client.Introspect].
	Token          string    `json:"token"`
	TokenExpiresAt time.Time `json:"token_expires_at"`
}

// TokenInfo is what the node knows of a valid proof.
type TokenInfo struct {
	Active         bool      `json:"active"`
	PhoneNumber    string    `json:"phone_number"`
	Subject        string    `json:"subject,omitempty"`
	VerificationID string    `json:"verification_id"`
	ServiceID      string    `json:"service_id"`
	Amount         string    `json:"amount,omitempty"`
	Payee          string    `json:"payee,omitempty"`
	VerifiedAt     time.Time `json:"verified_at"`
	IssuedAt       time.Time `json:"issued_at"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// SubjectPhone is a subject's verified phone from the registry.
type SubjectPhone struct {
	Subject        string    `json:"subject"`
	PhoneNumber    string    `json:"phone_number"`
	VerificationID string    `json:"verification_id"`
	VerifiedAt     time.Time `json:"verified_at"`
}

// Settings of a limit besides "N/DURATION" (such as "10/24h"): see
// [Limits].
const (
	// LimitDefault follows the node's server-wide setting of the limit.
	LimitDefault = "default"
	// LimitOff turns the limit off for the service.
	LimitOff = "off"
)

// Limits holds one value per abuse limit of a service. In a service's own
// settings each is [LimitDefault], [LimitOff] or "N/DURATION": at most N
// in any window of DURATION (a Go duration), such as "10/24h". The limits
// in force are [LimitOff] or N/DURATION.
type Limits struct {
	// PerNumberDay caps the codes sent to one number over a long window,
	// beside the service's max sends per send window.
	PerNumberDay string `json:"per_number_day,omitempty"`
	// PerIP caps the starts from one client address (IPv6: one /64).
	PerIP string `json:"per_ip,omitempty"`
	// PerSubject caps the starts naming one subject.
	PerSubject string `json:"per_subject,omitempty"`
	// PerCountry caps the starts for numbers of one destination country.
	PerCountry string `json:"per_country,omitempty"`
	// BudgetHour and BudgetDay are the service's SMS budget (windows of
	// exactly 1h and 24h); reaching one refuses every start until the
	// window has room.
	BudgetHour string `json:"budget_hour,omitempty"`
	BudgetDay  string `json:"budget_day,omitempty"`
	// FailedChecks caps the codes compared for one number across all its
	// verifications.
	FailedChecks string `json:"failed_checks,omitempty"`
}

// ServiceLimits are a service's abuse limits and geo permissions, as
// [Client.ServiceLimits] reads them.
type ServiceLimits struct {
	ServiceID string `json:"service_id"`
	// Limits are the service's own settings.
	Limits
	// AllowCountries, when not empty, are the only ISO countries codes are
	// sent to; DenyCountries are those they are never sent to. A start to
	// any other is refused with country_not_allowed.
	AllowCountries []string `json:"allow_countries"`
	DenyCountries  []string `json:"deny_countries"`
	// Effective are the limits the service runs with: its own where it
	// sets one, the node's default otherwise.
	Effective Limits    `json:"effective"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ServiceLimitsParams replaces a service's limits and geo permissions
// ([Client.SetServiceLimits]). It replaces them all: a limit left "" is
// sent as absent and follows the node's default again, and a nil list is
// empty, so the zero value restores the defaults.
type ServiceLimitsParams struct {
	Limits
	// AllowCountries and DenyCountries are ISO country codes (GB, not
	// UK); give at most one of the two.
	AllowCountries []string `json:"allow_countries,omitempty"`
	DenyCountries  []string `json:"deny_countries,omitempty"`
}

// ServiceLimits reads a service's abuse limits and geo permissions (GET
// /v1/services/{id}/limits; admin scope). serviceID may be "default".
// A service the key does not manage is not_found.
func (c *Client) ServiceLimits(ctx context.Context, serviceID string) (*ServiceLimits, error) {
	var l ServiceLimits
	if err := c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(serviceID)+"/limits", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// SetServiceLimits replaces every limit and both country lists of a
// service (PUT /v1/services/{id}/limits; admin scope) and returns them as
// saved. A bad limit or list is an [*Error] with code invalid_request and
// Param naming it ("per_ip", "deny_countries"), and changes nothing.
func (c *Client) SetServiceLimits(ctx context.Context, serviceID string, p ServiceLimitsParams) (*ServiceLimits, error) {
	var l ServiceLimits
	if err := c.do(ctx, http.MethodPut, "/v1/services/"+url.PathEscape(serviceID)+"/limits", p, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Start sends a code to p.To (POST /v1/verifications). A start for a number
// with a pending verification is a resend: the same verification, a new
// code, SendCount + 1.
func (c *Client) Start(ctx context.Context, p StartParams) (*Verification, error) {
	var v Verification
	if err := c.do(ctx, http.MethodPost, "/v1/verifications", p, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Get fetches a verification and its messages (GET /v1/verifications/{id}).
func (c *Client) Get(ctx context.Context, id string) (*VerificationDetail, error) {
	var v VerificationDetail
	if err := c.do(ctx, http.MethodGet, "/v1/verifications/"+url.PathEscape(id), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Cancel cancels a pending verification (POST /v1/verifications/{id}/cancel).
func (c *Client) Cancel(ctx context.Context, id string) (*Verification, error) {
	var v Verification
	if err := c.do(ctx, http.MethodPost, "/v1/verifications/"+url.PathEscape(id)+"/cancel", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Check checks a code (POST /v1/verifications/check). A wrong code is an
// [*Error] with code incorrect_code and AttemptsRemaining set.
func (c *Client) Check(ctx context.Context, p CheckParams) (*CheckResult, error) {
	var r CheckResult
	if err := c.do(ctx, http.MethodPost, "/v1/verifications/check", p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Introspect looks a proof up (GET /v1/tokens/{token}); a forged or expired
// one is an [*Error] with code invalid_token.
func (c *Client) Introspect(ctx context.Context, token string) (*TokenInfo, error) {
	var t TokenInfo
	if err := c.do(ctx, http.MethodGet, "/v1/tokens/"+url.PathEscape(token), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Subject returns the subject's verified phone (GET /v1/subjects/{subject});
// not_found when it has none.
func (c *Client) Subject(ctx context.Context, subject string) (*SubjectPhone, error) {
	var s SubjectPhone
	if err := c.do(ctx, http.MethodGet, "/v1/subjects/"+url.PathEscape(subject), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// JWKS returns the public key set (GET /.well-known/jwks.json) as received,
// for a JOSE library to parse.
func (c *Client) JWKS(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/.well-known/jwks.json", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Healthz reports whether the node process answers (GET /healthz).
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Readyz reports whether the node can serve (GET /readyz): an [*Error]
// with code unavailable, naming what is down, when it cannot.
func (c *Client) Readyz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil)
}

// do sends one request (and retries, when configured) and decodes a 2xx
// answer into out (nil: discard it).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		payload = b
	}
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, payload, out)
		wait, retry := c.retryAfter(err, attempt)
		if !retry {
			return err
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return err
		}
	}
}

// retryAfter says whether err may be retried under WithRetry, and after
// how long.
func (c *Client) retryAfter(err error, attempt int) (time.Duration, bool) {
	var e *Error
	if attempt >= c.retries || !errors.As(err, &e) {
		return 0, false
	}
	if e.StatusCode != http.StatusServiceUnavailable && (e.StatusCode != http.StatusTooManyRequests || e.Code == CodeMaxAttemptsReached) {
		return 0, false
	}
	wait := e.RetryAfter
	if wait <= 0 {
		wait = time.Second
	}
	if wait > c.maxWait {
		return 0, false
	}
	return wait, true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) once(ctx context.Context, method, path string, payload []byte, out any) error {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("client: %s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return errorFrom(res, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Error is an error answer of the API. Match on Code (see [IsCode]); the
// Message is a sentence meant for people.
type Error struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is the stable error code ("incorrect_code"). An answer that is
	// not the API's JSON error (a proxy's 502 page) has Code "".
	Code string
	// Message says what went wrong, in words safe to show a user.
	Message string
	// Param names the request parameter at fault, if any.
	Param string
	// AttemptsRemaining is set on incorrect_code answers.
	AttemptsRemaining *int
	// RetryAfter is when a refused request may succeed (429, 503), from
	// the body's retry_after or the Retry-After header.
	RetryAfter time.Duration
	// RequestID identifies the request in the node's logs.
	RequestID string
}

// Error implements error.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "no error code"
	}
	return fmt.Sprintf("phoneverify: %d %s: %s", e.StatusCode, code, e.Message)
}

// IsCode reports whether err is (or wraps) an [*Error] with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// AsError returns err as an [*Error], or nil when it is not an API answer
// (a connection failure, a canceled context).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// errorFrom reads an error answer; the node's error format is
// {"error":{"code","message","param"?,"attempts_remaining"?,"retry_after"?,"request_id"}}.
func errorFrom(res *http.Response, raw []byte) *Error {
	var body struct {
		Error struct {
			Code              string `json:"code"`
			Message           string `json:"message"`
			Param             string `json:"param"`
			AttemptsRemaining *int   `json:"attempts_remaining"`
			RetryAfter        int    `json:"retry_after"`
			RequestID         string `json:"request_id"`
		} `json:"error"`
	}
	e := &Error{StatusCode: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
	if err := json.Unmarshal(raw, &body); err == nil && body.Error.Code != "" {
		d := body.Error
		e.Code, e.Message, e.Param, e.AttemptsRemaining = d.Code, d.Message, d.Param, d.AttemptsRemaining
		e.RetryAfter = time.Duration(d.RetryAfter) * time.Second
		if d.RequestID != "" {
			e.RequestID = d.RequestID
		}
	} else {
		e.Message = "phoneverify answered " + res.Status
	}
	if e.RetryAfter == 0 {
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}
