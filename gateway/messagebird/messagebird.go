// Package messagebird sends verification texts through the MessageBird
// (now Bird) SMS Messaging API.
//
// Wire format followed: MessageBird REST API "Send outbound SMS" (POST
// https://rest.messagebird.com/messages, header "Authorization: AccessKey
// {key}", JSON body with originator, recipients — numbers in international
// format without "+" — and body, plus datacoding; 201 with the Message
// object and its id), its error object {"errors":[{"code","description",
// "parameter"}]} with codes 2, 9, 10, 20, 21, 25, 98, 99 (MessageBird API
// reference, "Errors"; Bird "Failed API Requests"
// https://docs.bird.com/connectivity-platform/troubleshooting-voice/failed-api-requests),
// and MessageBird's Go client github.com/messagebird/go-rest-api (sms/message.go).
package messagebird

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/gwenv"
	"github.com/phoneverify/phoneverify/gateway/internal/gsm7"
	"github.com/phoneverify/phoneverify/gateway/internal/gw"
)

// Name is the gateway name reported in results and errors.
const Name = "messagebird"

// DefaultBaseURL is MessageBird's REST API.
const DefaultBaseURL = "https://rest.messagebird.com"

// Environment variables read by [ConfigFromEnv]. The access key may also be
// given as EnvAccessKey+"_FILE".
const (
	EnvAccessKey  = "PHONEVERIFY_GATEWAY_MESSAGEBIRD_ACCESS_KEY"
	EnvOriginator = "PHONEVERIFY_GATEWAY_MESSAGEBIRD_ORIGINATOR"
	EnvBaseURL    = "PHONEVERIFY_GATEWAY_MESSAGEBIRD_BASE_URL"
)

// Config is what the gateway needs to reach MessageBird.
type Config struct {
	// AccessKey is a live (or test) access key.
	AccessKey string
	// Originator is the sender: a number with country code, or an
	// alphanumeric string of at most 11 characters.
	Originator string
	// BaseURL defaults to [DefaultBaseURL].
	BaseURL string
}

// ConfigFromEnv reads the EnvXxx variables. The gateway is enabled when the
// access key and originator are set; setting only some of the variables is
// an error naming the missing ones. The returned Config is validated.
func ConfigFromEnv(getenv func(string) string) (cfg Config, enabled bool, err error) {
	key, err := gwenv.Secret(getenv, EnvAccessKey)
	if err != nil {
		return Config{}, false, fmt.Errorf("messagebird: %w", err)
	}
	cfg = Config{AccessKey: key, Originator: getenv(EnvOriginator), BaseURL: getenv(EnvBaseURL)}
	enabled, err = gwenv.Check(
		[]gwenv.Var{{Name: EnvAccessKey, Value: cfg.AccessKey, Secret: true}, {Name: EnvOriginator, Value: cfg.Originator}},
		[]gwenv.Var{{Name: EnvBaseURL, Value: cfg.BaseURL}},
	)
	if err != nil {
		return Config{}, false, fmt.Errorf("messagebird: %w", err)
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
	case c.AccessKey == "":
		return errors.New("messagebird: access key is required")
	case c.Originator == "":
		return errors.New("messagebird: originator is required")
	case !validOriginator(c.Originator):
		return errors.New("messagebird: originator must be a number or at most 11 letters and digits")
	}
	if c.BaseURL != "" {
		if _, err := gw.BaseURL(c.BaseURL); err != nil {
			return fmt.Errorf("messagebird: %w", err)
		}
	}
	return nil
}

func validOriginator(s string) bool {
	digits := strings.TrimPrefix(s, "+")
	if _, err := strconv.ParseUint(digits, 10, 64); err == nil {
		return len(digits) <= 16
	}
	return len(s) <= 11
}

// Sender sends messages through MessageBird. It is safe for concurrent use.
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
		return nil, fmt.Errorf("messagebird: %w", err)
	}
	return &Sender{cfg: cfg, client: gw.Client(client), endpoint: base + "/messages"}, nil
}

// Name returns "messagebird".
func (s *Sender) Name() string { return Name }

type request struct {
	Originator string        `json:"originator"`
	Recipients []json.Number `json:"recipients"`
	Body       string        `json:"body"`
	// DataCoding is set to "unicode" for text outside GSM 03.38; the
	// default ("plain") would replace those characters.
	DataCoding string `json:"datacoding,omitempty"`
}

// Send creates a message for m. The result's ProviderID is the message id,
// which status reports carry as id.
//
// It returns a *phoneverify.DeliveryError: permanent for error codes 2
// (request not allowed: bad access key), 9 (missing or no correct
// recipients), 10 (invalid parameter such as the originator), 20, 21 and
// 98; temporary for 25 (not enough balance: a top-up fixes it), 99
// (internal error), HTTP 429 and 5xx, timeouts and connection errors.
func (s *Sender) Send(ctx context.Context, m *phoneverify.Message) (*phoneverify.SendResult, error) {
	to, err := gw.CheckMessage(Name, m)
	if err != nil {
		return nil, err
	}
	r := request{Originator: s.cfg.Originator, Recipients: []json.Number{json.Number(to)}, Body: m.Body}
	if !gsm7.Is(m.Body) {
		r.DataCoding = "unicode"
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "cannot encode request", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, &phoneverify.DeliveryError{Gateway: Name, Permanent: true, Reason: "cannot build request", Err: err}
	}
	req.Header.Set("Authorization", "AccessKey "+s.cfg.AccessKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := gw.Do(s.client, req)
	if err != nil {
		return nil, gw.TransportError(Name, err)
	}
	if resp.Status/100 == 2 {
		var msg struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(resp.Body, &msg); err != nil || msg.ID == "" {
			return nil, &phoneverify.DeliveryError{Gateway: Name, Code: strconv.Itoa(resp.Status), Reason: "answer without a message id"}
		}
		return &phoneverify.SendResult{Gateway: Name, ProviderID: msg.ID}, nil
	}
	var body struct {
		Errors []struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
			Parameter   string `json:"parameter"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(resp.Body, &body)
	if len(body.Errors) == 0 {
		return nil, gw.StatusError(Name, resp, "", "")
	}
	first := body.Errors[0]
	reason := first.Description
	if first.Parameter != "" {
		reason += " (" + first.Parameter + ")"
	}
	e := gw.StatusError(Name, resp, strconv.Itoa(first.Code), gw.Redact(reason, m))
	if permanent, known := classify(first.Code); known {
		e.Permanent = permanent
		// 2: bad access key; 25: no balance.
		e.Account = first.Code == 2 || first.Code == 25
	}
	return nil, e
}

// classify tells whether a MessageBird error code means retrying cannot
// help.
func classify(code int) (permanent, known bool) {
	switch code {
	case 2, // request not allowed (incorrect access_key)
		9,  // missing params / no (correct) recipients found
		10, // invalid params, e.g. originator is invalid
		20, // not found
		21, // bad request
		98: // API (endpoint) not found
		return true, true
	case 25, // not enough balance
		99: // internal error
		return false, true
	}
	return false, false
}
