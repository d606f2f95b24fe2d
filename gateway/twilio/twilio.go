// Package twilio sends verification texts through Twilio Programmable
// Messaging and checks the status callbacks Twilio posts back.
//
// Wire format followed: Twilio "Message resource" (Create a Message:
// POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded To,
// From or MessagingServiceSid, Body, StatusCallback; HTTP basic auth with
// the Account SID and Auth Token; 201 with the message's sid and status),
// https://www.twilio.com/docs/messaging/api/message-resource, the REST API
// base URL and authentication in https://twilio.com/docs/sms/api, error
// bodies {"code","message","more_info","status"} in "Twilio API responses"
// https://www.twilio.com/docs/usage/twilios-response and the error
// dictionary https://www.twilio.com/docs/api/errors, and request signing in
// "Secure webhooks" https://www.twilio.com/docs/usage/webhooks/webhooks-security.
package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/gwenv"
	"github.com/phoneverify/phoneverify/gateway/internal/gw"
)

// Name is the gateway name reported in results and errors.
const Name = "twilio"

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// Environment variables read by [ConfigFromEnv]. The Auth Token may also be
// given as EnvAuthToken+"_FILE".
const (
	EnvAccountSID     = "PHONEVERIFY_GATEWAY_TWILIO_ACCOUNT_SID"
	EnvAuthToken      = "PHONEVERIFY_GATEWAY_TWILIO_AUTH_TOKEN"
	EnvFrom           = "PHONEVERIFY_GATEWAY_TWILIO_FROM"
	EnvBaseURL        = "PHONEVERIFY_GATEWAY_TWILIO_BASE_URL"
	EnvStatusCallback = "PHONEVERIFY_GATEWAY_TWILIO_STATUS_CALLBACK"
)

// Config is what the gateway needs to reach Twilio.
type Config struct {
	// AccountSID is the account's SID ("AC" and 32 hex digits); it is the
	// basic-auth user name and part of the request path.
	AccountSID string
	// AuthToken is the account's auth token, the basic-auth password.
	AuthToken string
	// From is the sender: a Twilio number in E.164, an alphanumeric sender
	// id, or a Messaging Service SID ("MG" and 32 hex digits), which is
	// sent as MessagingServiceSid instead of From.
	From string
	// BaseURL defaults to [DefaultBaseURL].
	BaseURL string
	// StatusCallback, if set, is the URL Twilio posts delivery status
	// changes to; see [ParseStatusCallback] and [ValidateSignature].
	StatusCallback string
}

// ConfigFromEnv reads the EnvXxx variables. The gateway is enabled when the
// Account SID, Auth Token and From are set; setting only some of the
// variables is an error naming the missing ones. The returned Config has
// been validated.
func ConfigFromEnv(getenv func(string) string) (cfg Config, enabled bool, err error) {
	token, err := gwenv.Secret(getenv, EnvAuthToken)
	if err != nil {
		return Config{}, false, fmt.Errorf("twilio: %w", err)
	}
	cfg = Config{
		AccountSID:     getenv(EnvAccountSID),
		AuthToken:      token,
		From:           getenv(EnvFrom),
		BaseURL:        getenv(EnvBaseURL),
		StatusCallback: getenv(EnvStatusCallback),
	}
	enabled, err = gwenv.Check(
		[]gwenv.Var{{Name: EnvAccountSID, Value: cfg.AccountSID}, {Name: EnvAuthToken, Value: cfg.AuthToken, Secret: true}, {Name: EnvFrom, Value: cfg.From}},
		[]gwenv.Var{{Name: EnvBaseURL, Value: cfg.BaseURL}, {Name: EnvStatusCallback, Value: cfg.StatusCallback}},
	)
	if err != nil {
		return Config{}, false, fmt.Errorf("twilio: %w", err)
	}
	if !enabled {
		return Config{}, false, nil
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, false, err
	}
	return cfg, true, nil
}

// Validate reports the first problem with c. An empty BaseURL is allowed and
// means [DefaultBaseURL].
func (c Config) Validate() error {
	if !isSID(c.AccountSID, "AC") {
		return errors.New("twilio: account SID must be \"AC\" followed by 32 hex digits")
	}
	if c.AuthToken == "" {
		return errors.New("twilio: auth token is required")
	}
	if c.From == "" {
		return errors.New("twilio: sender (From) is required")
	}
	if c.BaseURL != "" {
		if _, err := gw.BaseURL(c.BaseURL); err != nil {
			return fmt.Errorf("twilio: %w", err)
		}
	}
	if c.StatusCallback != "" {
		u, err := url.Parse(c.StatusCallback)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("twilio: status callback must be an absolute http or https URL")
		}
	}
	return nil
}

func isSID(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != 32 {
		return false
	}
	for _, r := range rest {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// Sender sends messages through Twilio. It is safe for concurrent use.
type Sender struct {
	cfg      Config
	client   *http.Client
	endpoint string
}

var _ phoneverify.Sender = (*Sender)(nil)

// New returns a Sender for cfg. A nil client means a new http.Client with a
// 30-second timeout; share one client between gateways to reuse connections.
func New(cfg Config, client *http.Client) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := gw.BaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("twilio: %w", err)
	}
	return &Sender{
		cfg:      cfg,
		client:   gw.Client(client),
		endpoint: base + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
	}, nil
}

// Name returns "twilio".
func (s *Sender) Name() string { return Name }

// Send creates a Message resource for m. The result's ProviderID is the
// Message SID (SM…), which status callbacks carry as MessageSid.
//
// It returns a *phoneverify.DeliveryError: permanent for Twilio errors about
// the destination (21211 invalid number, 21614 not a mobile number, 21408
// region not enabled, 21610 unsubscribed recipient, …), the sender or the
// credentials; temporary for 20429 and HTTP 429 (with RetryAfter), 21611
// (sender queue full), 5xx, timeouts and connection errors.
func (s *Sender) Send(ctx context.Context, m *phoneverify.Message) (*phoneverify.SendResult, error) {
	if _, err := gw.CheckMessage(Name, m); err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("To", m.To)
	if isSID(s.cfg.From, "MG") {
		form.Set("MessagingServiceSid", s.cfg.From)
	} else {
		form.Set("From", s.cfg.From)
	}
	form.Set("Body", m.Body)
	if s.cfg.StatusCallback != "" {
		form.Set("StatusCallback", s.cfg.StatusCallback)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "cannot build request", Err: err}
	}
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	resp, err := gw.Do(s.client, req)
	if err != nil {
		return nil, gw.TransportError(Name, err)
	}
	if resp.Status/100 == 2 {
		var msg struct {
			SID    string `json:"sid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(resp.Body, &msg); err != nil || msg.SID == "" {
			return nil, &phoneverify.DeliveryError{Gateway: Name, Code: strconv.Itoa(resp.Status),
				Reason: "answer without a message sid"}
		}
		return &phoneverify.SendResult{Gateway: Name, ProviderID: msg.SID}, nil
	}
	return nil, apiError(resp, m)
}

// classify tells whether a Twilio error code means retrying cannot help
// (permanent) or may (temporary). Codes it does not know (known false) are
// judged by the HTTP status.
func classify(code int) (permanent, known bool) {
	switch code {
	case 10001, // account is not active
		20003, // authentication error
		20404, // resource (account) not found
		21211, // invalid 'To' phone number
		21212, // invalid 'From' phone number
		21266, // 'To' and 'From' are the same
		21401, // invalid phone number
		21407, // number type does not support SMS
		21408, // permission to send an SMS has not been enabled for the region
		21602, // message body is required
		21604, // 'To' phone number is required
		21606, // 'From' is not a valid, SMS-capable number for the account
		21608, // unverified number (trial account)
		21610, // attempt to send to unsubscribed recipient
		21612, // 'To' number is not currently reachable
		21614, // 'To' number is not a valid mobile number
		21617, // body exceeds 1600 characters
		21659, // 'From' is not a Twilio phone number or short code
		21703, // Messaging Service has no phone number available
		21705: // invalid Messaging Service
		return true, true
	case 20429, // too many requests
		20500, // internal server error
		20503, // service unavailable
		21611, // 'From' number exceeded the maximum number of queued messages
		30001: // queue overflow
		return false, true
	}
	return false, false
}

// accountError tells whether a Twilio error code blames the account or its
// sender rather than the message, so another gateway may deliver it.
func accountError(code int) bool {
	switch code {
	case 10001, 20003, 20404, 21212, 21606, 21659, 21703, 21705:
		return true
	}
	return false
}

func apiError(resp *gw.Response, m *phoneverify.Message) error {
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(resp.Body, &body)
	code := ""
	if body.Code != 0 {
		code = strconv.Itoa(body.Code)
	}
	e := gw.StatusError(Name, resp, code, gw.Redact(body.Message, m))
	if permanent, known := classify(body.Code); known {
		e.Permanent = permanent
		e.Account = accountError(body.Code)
	}
	return e
}
