// Package webhook hands each verification message to an operator's own
// HTTPS endpoint as a signed JSON POST, for operators who deliver through a
// gateway phoneverify has no adapter for.
//
// Requests follow the Standard Webhooks specification v1.0.0
// (https://www.standardwebhooks.com, github.com/standard-webhooks/standard-webhooks
// spec/standard-webhooks.md): headers webhook-id, webhook-timestamp (Unix
// seconds) and webhook-signature ("v1," and the base64 HMAC-SHA256 of
// "{id}.{timestamp}.{body}"), secrets serialized as "whsec_" and base64, 2xx
// meaning delivered. With a "whsec_" secret any Standard Webhooks library
// can verify them; [Verify] can with either form of secret (see [Key]).
//
// The body is the JSON object
//
//	{"to":"+9779812345678","body":"Your code is 482913","code":"482913","verification_id":"…","locale":"en"}
//
// with all five fields always present.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/gwenv"
	"github.com/phoneverify/phoneverify/gateway/internal/gw"
)

// Name is the gateway name reported in results and errors.
const Name = "webhook"

// Environment variables read by [ConfigFromEnv]. The secret may also be
// given as EnvSecret+"_FILE".
const (
	EnvURL    = "PHONEVERIFY_GATEWAY_WEBHOOK_URL"
	EnvSecret = "PHONEVERIFY_GATEWAY_WEBHOOK_SECRET"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a secret serialized the Standard Webhooks way: the
// base64 of the key follows it.
const SecretPrefix = "whsec_"

// MinKeyLen is the shortest signing key [New] accepts, the specification's
// minimum of 24 random bytes.
const MinKeyLen = 24

// DefaultTolerance is the clock skew [Verify] allows when given none; the
// value Standard Webhooks libraries use.
const DefaultTolerance = 5 * time.Minute

// Errors returned by [Key], [Sign] and [Verify].
var (
	ErrInvalidSecret           = errors.New("webhook: invalid secret")
	ErrMissingHeaders          = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp        = errors.New("webhook: invalid webhook-timestamp")
	ErrTimestampOutOfTolerance = errors.New("webhook: webhook-timestamp outside the tolerance")
	ErrNoMatchingSignature     = errors.New("webhook: no matching signature")
)

// Key returns the HMAC key a secret stands for. A secret starting with
// "whsec_" (the form Standard Webhooks tools generate and print) is the
// base64 of the key; any other non-empty string is used as the key
// byte for byte, the convention of Symfony and other senders. (The
// reference Go library also base64-decodes unprefixed secrets; give such
// secrets the prefix here.)
func Key(secret string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("%w: the part after %q is not base64", ErrInvalidSecret, SecretPrefix)
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("%w: empty key", ErrInvalidSecret)
		}
		return key, nil
	}
	if secret == "" {
		return nil, fmt.Errorf("%w: empty secret", ErrInvalidSecret)
	}
	return []byte(secret), nil
}

// Sign returns the webhook-signature header value for a message: "v1,"
// followed by the base64 HMAC-SHA256, keyed with [Key](secret), of
// id + "." + Unix seconds of ts + "." + body.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := Key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte("."))
	h.Write([]byte(strconv.FormatInt(unix, 10)))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received webhook as the specification asks receivers
// to: the three headers must be present, webhook-timestamp must be within
// tolerance of now (DefaultTolerance when tolerance is not positive), and
// one of the space-separated "v1,…" signatures must match body exactly as
// received (compared in constant time; other versions are ignored, which
// allows key rotation and asymmetric signatures alongside).
func Verify(secret string, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := headers.Get(HeaderID), headers.Get(HeaderTimestamp), headers.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrTimestampOutOfTolerance
	}
	key, err := Key(secret)
	if err != nil {
		return err
	}
	want := mac(key, id, unix, body)
	for _, sig := range strings.Fields(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}

// Config is where and how to sign the webhook.
type Config struct {
	// URL is the operator's endpoint; https unless it is on a trusted
	// network, since the body holds the code.
	URL string
	// Secret signs requests; see [Key] for its two accepted forms.
	Secret string
}

// ConfigFromEnv reads EnvURL and EnvSecret. The gateway is enabled when
// both are set; setting only one is an error naming the other. The returned
// Config is validated.
func ConfigFromEnv(getenv func(string) string) (cfg Config, enabled bool, err error) {
	secret, err := gwenv.Secret(getenv, EnvSecret)
	if err != nil {
		return Config{}, false, fmt.Errorf("webhook: %w", err)
	}
	cfg = Config{URL: getenv(EnvURL), Secret: secret}
	enabled, err = gwenv.Check(
		[]gwenv.Var{{Name: EnvURL, Value: cfg.URL}, {Name: EnvSecret, Value: cfg.Secret, Secret: true}}, nil)
	if err != nil {
		return Config{}, false, fmt.Errorf("webhook: %w", err)
	}
	if !enabled {
		return Config{}, false, nil
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, false, err
	}
	return cfg, true, nil
}

// Validate reports the first problem with c: the URL must be an absolute
// http or https URL and the secret must give a key of at least MinKeyLen
// bytes.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("webhook: URL must be an absolute http or https URL")
	}
	key, err := Key(c.Secret)
	if err != nil {
		return err
	}
	if len(key) < MinKeyLen {
		return fmt.Errorf("%w: the key must be at least %d bytes", ErrInvalidSecret, MinKeyLen)
	}
	return nil
}

// Sender posts signed messages to the operator's endpoint. It is safe for
// concurrent use.
type Sender struct {
	url    string
	key    []byte
	client *http.Client
	now    func() time.Time
}

var _ phoneverify.Sender = (*Sender)(nil)

// Option changes a Sender made by [New].
type Option func(*Sender)

// WithClock makes the Sender read the time, for webhook-timestamp, from
// now instead of time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Sender) { s.now = now }
}

// New returns a Sender for cfg. A nil client means a new http.Client with a
// 30-second timeout. The Sender uses a copy of client that does not follow
// redirects: the specification treats 3xx as a failure (update the URL
// instead), and following one would re-post the code elsewhere.
func New(cfg Config, client *http.Client, opts ...Option) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, _ := Key(cfg.Secret)
	c := *gw.Client(client)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &Sender{url: cfg.URL, key: key, client: &c, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Name returns "webhook".
func (s *Sender) Name() string { return Name }

// payload is the request body; the field order is the documented one.
type payload struct {
	To             string `json:"to"`
	Body           string `json:"body"`
	Code           string `json:"code"`
	VerificationID string `json:"verification_id"`
	Locale         string `json:"locale"`
}

// MessageID returns the webhook-id sent for m: "msg_" and 22 base64url
// characters of an HMAC, keyed with the signing key, of m's verification
// id, code, destination and body. It is the same on every retry of one
// message, so the receiver can use it as an idempotency key, and differs
// when a resend brings a new code. Keying it keeps the id from revealing
// the code, which a plain hash of a six-digit code would.
func (s *Sender) MessageID(m *phoneverify.Message) string {
	h := hmac.New(sha256.New, s.key)
	for _, part := range []string{"phoneverify webhook-id v1", m.VerificationID, m.Code, m.To, m.Body} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "msg_" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Send posts m. The result's ProviderID is the webhook-id (see
// [Sender.MessageID]), the key the receiver can find the message by.
//
// It returns a *phoneverify.DeliveryError: permanent for 3xx (redirects are
// not followed) and for 4xx other than 408 and 429 (410 Gone included);
// temporary for 408, 429 and 5xx (with RetryAfter from Retry-After),
// timeouts and connection errors.
func (s *Sender) Send(ctx context.Context, m *phoneverify.Message) (*phoneverify.SendResult, error) {
	if _, err := gw.CheckMessage(Name, m); err != nil {
		return nil, err
	}
	body, err := json.Marshal(payload{To: m.To, Body: m.Body, Code: m.Code, VerificationID: m.VerificationID, Locale: m.Locale})
	if err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "cannot encode request", Err: err}
	}
	id := s.MessageID(m)
	unix := s.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "cannot build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(unix, 10))
	req.Header.Set(HeaderSignature, "v1,"+base64.StdEncoding.EncodeToString(mac(s.key, id, unix, body)))

	resp, err := gw.Do(s.client, req)
	if err != nil {
		return nil, gw.TransportError(Name, err)
	}
	switch {
	case resp.Status/100 == 2:
		return &phoneverify.SendResult{Gateway: Name, ProviderID: id}, nil
	case resp.Status/100 == 3:
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Code: strconv.Itoa(resp.Status),
			Reason: "endpoint redirects; configure the final URL"}
	}
	e := gw.StatusError(Name, resp, "", "")
	e.Permanent = resp.Status/100 == 4 && resp.Status != http.StatusRequestTimeout && resp.Status != http.StatusTooManyRequests
	return nil, e
}
