// Package vonage sends verification texts through the Vonage (Nexmo) SMS
// API and reads the delivery receipts Vonage posts back.
//
// Wire format followed: the Vonage SMS API OpenAPI definition
// (github.com/Nexmo/api-specification, definitions/sms.yml, "Send an SMS":
// POST https://rest.nexmo.com/sms/json with an
// application/x-www-form-urlencoded body of api_key, api_secret, from, to
// (E.164 without "+"), text and type; 200 with
// {"message-count","messages":[{"to","message-id","status","error-text",…}]}
// and a per-message status), the status table of "Troubleshooting SMS"
// https://developer.vonage.com/messaging/sms/guides/troubleshooting-sms and
// "API Errors" https://developer.vonage.com/api-errors/sms, the
// DeliveryReceipt schema of the same definition, and "Signing Messages"
// https://developer.vonage.com/getting-started/concepts/signing-messages.
package vonage

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
	"github.com/phoneverify/phoneverify/gateway/internal/gsm7"
	"github.com/phoneverify/phoneverify/gateway/internal/gw"
)

// Name is the gateway name reported in results and errors.
const Name = "vonage"

// DefaultBaseURL is the SMS API's host.
const DefaultBaseURL = "https://rest.nexmo.com"

// Environment variables read by [ConfigFromEnv]. The API secret may also be
// given as EnvAPISecret+"_FILE".
const (
	EnvAPIKey    = "PHONEVERIFY_GATEWAY_VONAGE_API_KEY"
	EnvAPISecret = "PHONEVERIFY_GATEWAY_VONAGE_API_SECRET"
	EnvFrom      = "PHONEVERIFY_GATEWAY_VONAGE_FROM"
	EnvBaseURL   = "PHONEVERIFY_GATEWAY_VONAGE_BASE_URL"
)

// Config is what the gateway needs to reach Vonage.
type Config struct {
	APIKey    string
	APISecret string
	// From is the sender: a virtual number in E.164 without "+", or an
	// alphanumeric sender id where the destination country allows one.
	From string
	// BaseURL defaults to [DefaultBaseURL].
	BaseURL string
}

// ConfigFromEnv reads the EnvXxx variables. The gateway is enabled when the
// API key, API secret and From are set; setting only some of the variables
// is an error naming the missing ones. The returned Config is validated.
func ConfigFromEnv(getenv func(string) string) (cfg Config, enabled bool, err error) {
	secret, err := gwenv.Secret(getenv, EnvAPISecret)
	if err != nil {
		return Config{}, false, fmt.Errorf("vonage: %w", err)
	}
	cfg = Config{APIKey: getenv(EnvAPIKey), APISecret: secret, From: getenv(EnvFrom), BaseURL: getenv(EnvBaseURL)}
	enabled, err = gwenv.Check(
		[]gwenv.Var{{Name: EnvAPIKey, Value: cfg.APIKey}, {Name: EnvAPISecret, Value: cfg.APISecret, Secret: true}, {Name: EnvFrom, Value: cfg.From}},
		[]gwenv.Var{{Name: EnvBaseURL, Value: cfg.BaseURL}},
	)
	if err != nil {
		return Config{}, false, fmt.Errorf("vonage: %w", err)
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

// Validate reports the first problem with c. An empty BaseURL is allowed.
func (c Config) Validate() error {
	switch {
	case c.APIKey == "":
		return errors.New("vonage: API key is required")
	case c.APISecret == "":
		return errors.New("vonage: API secret is required")
	case c.From == "":
		return errors.New("vonage: sender (From) is required")
	}
	if c.BaseURL != "" {
		if _, err := gw.BaseURL(c.BaseURL); err != nil {
			return fmt.Errorf("vonage: %w", err)
		}
	}
	return nil
}

// Sender sends messages through the Vonage SMS API. It is safe for
// concurrent use.
type Sender struct {
	cfg      Config
	client   *http.Client
	endpoint string
}

var _ phoneverify.Sender = (*Sender)(nil)

// New returns a Sender for cfg. A nil client means a new http.Client with a
// 30-second timeout.
func New(cfg Config, client *http.Client) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := gw.BaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("vonage: %w", err)
	}
	return &Sender{cfg: cfg, client: gw.Client(client), endpoint: base + "/sms/json"}, nil
}

// Name returns "vonage".
func (s *Sender) Name() string { return Name }

// Send submits m. Text outside the GSM 7-bit alphabet is sent with
// type=unicode. Vonage splits long text itself and answers with one entry
// per part; the result's ProviderID is the first part's message-id, the one
// delivery receipts carry as messageId.
//
// Vonage answers HTTP 200 even for refused messages; each part's status
// decides. It returns a *phoneverify.DeliveryError: temporary for status 1
// (throttled), 5 (internal error), 9 (partner quota: no credit left), 10 (too
// many binds) and 13 (communication failure), and for HTTP 429, 5xx,
// timeouts and connection errors; permanent for invalid parameters or
// numbers (3, 6), barred numbers (7, 33), bad credentials or a barred
// account (4, 8, 14), an unauthorized sender (15) and the other documented
// refusals.
func (s *Sender) Send(ctx context.Context, m *phoneverify.Message) (*phoneverify.SendResult, error) {
	to, err := gw.CheckMessage(Name, m)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("api_key", s.cfg.APIKey)
	form.Set("api_secret", s.cfg.APISecret)
	form.Set("from", s.cfg.From)
	form.Set("to", to)
	form.Set("text", m.Body)
	if !gsm7.Is(m.Body) {
		form.Set("type", "unicode")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "cannot build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	resp, err := gw.Do(s.client, req)
	if err != nil {
		return nil, gw.TransportError(Name, err)
	}
	if resp.Status/100 != 2 {
		var body struct {
			// Errors outside the per-message scheme use the RFC 7807 shape.
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(resp.Body, &body)
		return nil, gw.StatusError(Name, resp, "", gw.Redact(strings.TrimSpace(body.Title+" "+body.Detail), m))
	}
	var body struct {
		Messages []struct {
			MessageID string `json:"message-id"`
			Status    string `json:"status"`
			ErrorText string `json:"error-text"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || len(body.Messages) == 0 {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Code: strconv.Itoa(resp.Status), Reason: "answer without messages"}
	}
	for _, part := range body.Messages {
		if part.Status != "0" {
			return nil, &phoneverify.DeliveryError{
				Gateway:   Name,
				Permanent: permanent(part.Status),
				Account:   accountStatus(part.Status),
				Code:      part.Status,
				Reason:    gw.Redact(part.ErrorText, m),
			}
		}
	}
	return &phoneverify.SendResult{Gateway: Name, ProviderID: body.Messages[0].MessageID}, nil
}

// accountStatus tells whether a per-message status blames the account or
// its sender rather than the message: another gateway may deliver it.
func accountStatus(status string) bool {
	switch status {
	case "4", "8", "9", "11", "14", "15", "32":
		return true
	}
	return false
}

// permanent tells whether a per-message status means retrying cannot help.
// Statuses not in the documented table are taken as temporary so that a new
// code does not drop a message.
func permanent(status string) bool {
	switch status {
	case "2", // missing parameters
		"3",  // invalid parameters (including the number)
		"4",  // invalid credentials
		"6",  // invalid message: unrecognized number prefix
		"7",  // number barred (blacklisted)
		"8",  // partner account barred
		"11", // account not enabled for HTTP
		"12", // message too long
		"14", // invalid signature
		"15", // invalid sender address
		"16", // invalid TTL
		"19", // facility not allowed
		"20", // invalid message class
		"22", // invalid network code
		"23", // invalid callback URL
		"29", // non-whitelisted destination (demo account)
		"32", // signature and API secret disallowed
		"33": // number de-activated
		return true
	}
	// 1 throttled, 5 internal error, 9 partner quota violation (top up and
	// retry), 10 too many existing binds, 13 communication failure.
	return false
}
