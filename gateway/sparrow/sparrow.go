// Package sparrow sends verification texts through Sparrow SMS, a gateway
// for Nepal's networks (NTC, Ncell).
//
// Wire format followed: Sparrow SMS API docs (github.com/sparrowsms/apidocs,
// published at https://docs.sparrowsms.com): "Send SMS / Outgoing / Push /
// MT" (docs/outgoing_sendsms.md: POST /v2/sms/ with token, from, to — 10-digit
// Nepali mobile numbers — and text; 200
// {"count","response_code":200,"response"}; 403
// {"response_code":1000…1013,"response"}) and its form-encoded POST examples
// (docs/sms/examples_outgoing.md).
package sparrow

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
const Name = "sparrow"

// DefaultBaseURL is Sparrow's API host.
const DefaultBaseURL = "https://api.sparrowsms.com"

// Environment variables read by [ConfigFromEnv]. The token may also be
// given as EnvToken+"_FILE".
const (
	EnvToken   = "PHONEVERIFY_GATEWAY_SPARROW_TOKEN"
	EnvFrom    = "PHONEVERIFY_GATEWAY_SPARROW_FROM"
	EnvBaseURL = "PHONEVERIFY_GATEWAY_SPARROW_BASE_URL"
)

// Config is what the gateway needs to reach Sparrow SMS.
type Config struct {
	// Token is the API token generated in Sparrow's dashboard.
	Token string
	// From is the sender identity Sparrow assigned to the account.
	From string
	// BaseURL defaults to [DefaultBaseURL].
	BaseURL string
}

// ConfigFromEnv reads the EnvXxx variables. The gateway is enabled when the
// token and From are set; setting only some of the variables is an error
// naming the missing ones. The returned Config is validated.
func ConfigFromEnv(getenv func(string) string) (cfg Config, enabled bool, err error) {
	token, err := gwenv.Secret(getenv, EnvToken)
	if err != nil {
		return Config{}, false, fmt.Errorf("sparrow: %w", err)
	}
	cfg = Config{Token: token, From: getenv(EnvFrom), BaseURL: getenv(EnvBaseURL)}
	enabled, err = gwenv.Check(
		[]gwenv.Var{{Name: EnvToken, Value: cfg.Token, Secret: true}, {Name: EnvFrom, Value: cfg.From}},
		[]gwenv.Var{{Name: EnvBaseURL, Value: cfg.BaseURL}},
	)
	if err != nil {
		return Config{}, false, fmt.Errorf("sparrow: %w", err)
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
	case c.Token == "":
		return errors.New("sparrow: token is required")
	case c.From == "":
		return errors.New("sparrow: sender identity (From) is required")
	}
	if c.BaseURL != "" {
		if _, err := gw.BaseURL(c.BaseURL); err != nil {
			return fmt.Errorf("sparrow: %w", err)
		}
	}
	return nil
}

// Sender sends messages through Sparrow SMS. It is safe for concurrent use.
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
		return nil, fmt.Errorf("sparrow: %w", err)
	}
	return &Sender{cfg: cfg, client: gw.Client(client), endpoint: base + "/v2/sms/"}, nil
}

// Name returns "sparrow".
func (s *Sender) Name() string { return Name }

// National returns the 10-digit national form Sparrow expects of a Nepali
// mobile number in E.164 ("+9779812345678" gives "9812345678"), and false
// for any other number.
func National(to string) (string, bool) {
	d, ok := gw.Digits(to)
	if !ok {
		return "", false
	}
	n, ok := strings.CutPrefix(d, "977")
	if !ok || len(n) != 10 || n[0] != '9' {
		return "", false
	}
	return n, true
}

// Send submits m. Sparrow only reaches Nepali mobile numbers; any other
// destination is refused with a permanent error before a request is made.
// Sparrow's documented answer carries no message id, so ProviderID is
// empty unless the answer has a message_id.
//
// It returns a *phoneverify.DeliveryError: permanent for response codes
// 1000–1011 (missing field, IP not allowed, invalid token, inactive or
// expired account, invalid receiver or sender, empty text, no valid
// receiver); temporary for 1012 and 1013 (no or insufficient credits: a
// top-up fixes them), HTTP 429 and 5xx, timeouts and connection errors.
func (s *Sender) Send(ctx context.Context, m *phoneverify.Message) (*phoneverify.SendResult, error) {
	if _, err := gw.CheckMessage(Name, m); err != nil {
		return nil, err
	}
	to, ok := National(m.To)
	if !ok {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true,
			Reason: "destination is not a Nepali mobile number (+977 followed by 10 digits starting with 9)"}
	}
	form := url.Values{}
	form.Set("token", s.cfg.Token)
	form.Set("from", s.cfg.From)
	form.Set("to", to)
	form.Set("text", m.Body)
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
	var body struct {
		ResponseCode json.Number     `json:"response_code"`
		Response     string          `json:"response"`
		MessageID    json.RawMessage `json:"message_id"`
	}
	parsed := json.Unmarshal(resp.Body, &body) == nil
	code, _ := strconv.Atoi(body.ResponseCode.String())
	ok2xx := resp.Status/100 == 2
	switch {
	case ok2xx && parsed && code == 200:
		return &phoneverify.SendResult{Gateway: Name, ProviderID: scalar(body.MessageID)}, nil
	case ok2xx && !parsed:
		return nil, &phoneverify.DeliveryError{Gateway: Name, Code: strconv.Itoa(resp.Status), Reason: "answer is not JSON"}
	}
	e := gw.StatusError(Name, resp, body.ResponseCode.String(), gw.Redact(body.Response, m))
	if permanent, known := classify(code); known {
		e.Permanent = permanent
		// Token, IP, account and credit trouble, or a sender it refuses.
		e.Account = code >= 1001 && code <= 1006 || code == 1008 || code == 1012 || code == 1013
	} else if ok2xx {
		// A refusal in a 2xx answer, with a code this package does not know.
		e.Permanent = false
	}
	return nil, e
}

// classify tells whether a Sparrow response code means retrying cannot help.
func classify(code int) (permanent, known bool) {
	switch code {
	case 1000, // a required field is missing
		1001,       // invalid IP address (not allowed for the token)
		1002,       // invalid token
		1003, 1004, // account inactive
		1005, 1006, // account expired
		1007, // invalid receiver
		1008, // invalid sender
		1010, // text cannot be empty
		1011: // no valid receiver
		return true, true
	case 1012, // no credits available
		1013: // insufficient credits
		return false, true
	}
	return false, false
}

// scalar returns a JSON string or number as text, and "" for anything else.
func scalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
