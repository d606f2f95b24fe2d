// Package receipts serves the delivery receipts gateways post back:
// Twilio's status callbacks and Vonage's delivery receipts. Each request is
// authenticated by its provider's signature, not by an API key, and moves
// the message the provider knows by its id to its new status.
//
// Handlers return their errors as *phoneverify.Error for the native API to
// answer in its format (see httpapi.Config.Routes): a bad signature is
// forbidden (403), a request that is no receipt invalid_request (400).
package receipts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/twilio"
	"github.com/phoneverify/phoneverify/gateway/vonage"
)

// Paths of the receipt endpoints.
const (
	TwilioPath = "/v1/receipts/twilio"
	VonagePath = "/v1/receipts/vonage"
)

// maxForm bounds a receipt's body; receipts are a few hundred bytes.
const maxForm = 64 << 10

// Store is what receipts need of the store.
type Store interface {
	UpdateMessageStatus(ctx context.Context, gateway, providerID string, status pv.MessageStatus, errText string, at time.Time) (bool, error)
}

// Config holds what a Handler needs. Store is required; each endpoint is
// served only when its provider is configured.
type Config struct {
	Store Store
	// TwilioAuthToken and TwilioURL enable POST /v1/receipts/twilio.
	// TwilioURL is the status callback URL exactly as Twilio was given it
	// (PHONEVERIFY_PUBLIC_URL + "/v1/receipts/twilio"): it is part of what
	// Twilio signs, and a proxy in front of the node may rewrite what the
	// node sees.
	TwilioAuthToken string
	TwilioURL       string
	// Vonage enables GET and POST /v1/receipts/vonage. With
	// VonageSignatureSecret set, only receipts signed with it (by
	// VonageSignatureMethod, default md5hash) are taken.
	Vonage                bool
	VonageSignatureSecret string
	VonageSignatureMethod vonage.SignatureMethod
	// EventsNotify, when set, is called after a receipt changed a message,
	// which records a message event if its service has subscriptions, to
	// wake the workers that post events (events.Dispatcher's Notify);
	// other nodes' workers find it by polling.
	EventsNotify func()
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger gets a line per refused receipt. Default: discard.
	Logger *slog.Logger
	// Observe, when not nil, is called once for each receipt that moved a
	// message to its final status, with the gateway and that status (such
	// as metrics.Metrics.MessageReceipt); not for a refused receipt, a
	// repeat, a status that changes nothing, or a message nobody knows, so
	// that counting its calls counts each message's fate once. It is
	// called after the change is committed, from the request's goroutine:
	// it must be safe for concurrent use and quick.
	Observe func(gateway string, status pv.MessageStatus)
}

// Handler serves the receipt endpoints.
type Handler struct {
	cfg Config
	now func() time.Time
	log *slog.Logger
}

// New returns a Handler, or an error naming the missing setting.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("receipts: Store is required")
	}
	if (cfg.TwilioAuthToken == "") != (cfg.TwilioURL == "") {
		return nil, errors.New("receipts: Twilio receipts need both the auth token and the callback URL")
	}
	if cfg.VonageSignatureMethod == "" {
		cfg.VonageSignatureMethod = vonage.MD5Hash
	}
	if cfg.VonageSignatureSecret != "" {
		if _, err := vonage.Signature(nil, "", cfg.VonageSignatureMethod); err != nil {
			return nil, fmt.Errorf("receipts: %w", err)
		}
	}
	h := &Handler{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Routes returns the endpoints to mount, by ServeMux pattern: only those
// whose provider is configured.
func (h *Handler) Routes() map[string]func(http.ResponseWriter, *http.Request) error {
	routes := map[string]func(http.ResponseWriter, *http.Request) error{}
	if h.cfg.TwilioURL != "" {
		routes["POST "+TwilioPath] = h.Twilio
	}
	if h.cfg.Vonage {
		routes["GET "+VonagePath] = h.Vonage
		routes["POST "+VonagePath] = h.Vonage
	}
	return routes
}

var errForbidden = pv.Errorf(pv.EForbidden, "The request's signature is not valid.")

// Twilio serves a Twilio status callback, signed in X-Twilio-Signature.
func (h *Handler) Twilio(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return &pv.Error{Code: pv.EInvalidRequest, Message: "The body must be a form-encoded status callback.", Err: err}
	}
	if !twilio.ValidateSignature(h.cfg.TwilioAuthToken, h.cfg.TwilioURL, r.PostForm, r.Header.Get("X-Twilio-Signature")) {
		h.log.WarnContext(r.Context(), "receipt refused: bad signature", "gateway", twilio.Name)
		return errForbidden
	}
	sid, status, code := twilio.ParseStatusCallback(r.PostForm)
	if sid == "" || status == "" {
		return pv.Errorf(pv.EInvalidRequest, "The status callback has no MessageSid or MessageStatus.")
	}
	errText := ""
	if code != "" && code != "0" {
		errText = "twilio error " + code
	}
	return h.apply(w, r, twilio.Name, sid, TwilioStatus(status), errText)
}

// Vonage serves a Vonage delivery receipt (GET query, POST form or JSON),
// checking its sig parameter when a signature secret is configured.
func (h *Handler) Vonage(w http.ResponseWriter, r *http.Request) error {
	params, err := vonage.DeliveryReceiptParams(r)
	if err != nil {
		return &pv.Error{Code: pv.EInvalidRequest, Message: "The request is not a delivery receipt.", Err: err}
	}
	if h.cfg.VonageSignatureSecret != "" {
		// No timestamp tolerance: a replayed receipt only repeats a status.
		if err := vonage.CheckSignature(params, h.cfg.VonageSignatureSecret, h.cfg.VonageSignatureMethod, h.now(), 0); err != nil {
			h.log.WarnContext(r.Context(), "receipt refused: bad signature", "gateway", vonage.Name, "reason", err)
			return errForbidden
		}
	}
	d, err := vonage.ParseDeliveryReceipt(params)
	if err != nil {
		return &pv.Error{Code: pv.EInvalidRequest, Message: "The delivery receipt has no messageId or status.", Err: err}
	}
	errText := ""
	if d.ErrCode != "" && d.ErrCode != "0" {
		errText = "vonage err-code " + d.ErrCode
	}
	return h.apply(w, r, vonage.Name, d.MessageID, VonageStatus(d.Status), errText)
}

func (h *Handler) apply(w http.ResponseWriter, r *http.Request, gateway, providerID string, status pv.MessageStatus, errText string) error {
	changed := false
	if status != "" {
		var err error
		changed, err = h.cfg.Store.UpdateMessageStatus(r.Context(), gateway, providerID, status, errText, h.now().UTC())
		if err != nil {
			return err
		}
		if changed && h.cfg.EventsNotify != nil {
			h.cfg.EventsNotify()
		}
	}
	if changed && h.cfg.Observe != nil {
		h.cfg.Observe(gateway, status)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]bool{"updated": changed})
}

// TwilioStatus maps a Twilio message status to phoneverify's, or "" for a
// status that tells nothing new (receiving, unknown).
func TwilioStatus(s string) pv.MessageStatus {
	switch s {
	case "accepted", "scheduled", "queued":
		return pv.MessageQueued
	case "sending", "sent":
		return pv.MessageSent
	case "delivered", "read":
		return pv.MessageDelivered
	case "undelivered":
		return pv.MessageUndelivered
	case "failed", "canceled":
		return pv.MessageFailed
	}
	return ""
}

// VonageStatus maps a Vonage receipt status to phoneverify's, or "" for
// unknown.
func VonageStatus(s string) pv.MessageStatus {
	switch s {
	case "accepted", "buffered":
		return pv.MessageSent
	case "delivered":
		return pv.MessageDelivered
	case "expired":
		return pv.MessageUndelivered
	case "failed", "rejected":
		return pv.MessageFailed
	}
	return ""
}
