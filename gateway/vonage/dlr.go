package vonage

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DeliveryReceipt is a delivery receipt (DLR) Vonage sends to the
// account's webhook as the SMS API definition's DeliveryReceipt schema
// describes.
type DeliveryReceipt struct {
	// MessageID is the id Send returned as ProviderID (messageId).
	MessageID string
	// MSISDN is the destination number, E.164 without "+".
	MSISDN string
	// To is the sender id the message was sent from.
	To string
	// Status is one of delivered, expired, failed, rejected, accepted,
	// buffered or unknown.
	Status string
	// ErrCode is the carrier's reason, "0" when there is none (err-code).
	ErrCode          string
	NetworkCode      string
	Price            string
	SCTS             string
	MessageTimestamp string
	ClientRef        string
}

// Final reports whether the status will not change again.
func (d *DeliveryReceipt) Final() bool {
	switch d.Status {
	case "delivered", "expired", "failed", "rejected":
		return true
	}
	return false
}

// Delivered reports whether the handset received the message.
func (d *DeliveryReceipt) Delivered() bool { return d.Status == "delivered" }

// ErrMalformedReceipt is returned by [ParseDeliveryReceipt] and
// [DeliveryReceiptParams] for requests that are not delivery receipts.
var ErrMalformedReceipt = errors.New("vonage: malformed delivery receipt")

// maxReceipt bounds the body of a delivery receipt request.
const maxReceipt = 64 << 10

// DeliveryReceiptParams returns the parameters of a delivery receipt
// request, in whichever way the account's dashboard has Vonage send them:
// GET with a query string, POST form-encoded, or POST JSON (values as
// strings). Pass them to [CheckSignature] and [ParseDeliveryReceipt].
func DeliveryReceiptParams(r *http.Request) (url.Values, error) {
	if r.Method == http.MethodGet {
		return r.URL.Query(), nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReceipt+1))
	if err != nil {
		return nil, fmt.Errorf("vonage: reading delivery receipt: %w", err)
	}
	if len(body) > maxReceipt {
		return nil, fmt.Errorf("%w: body too large", ErrMalformedReceipt)
	}
	if ct != "application/json" {
		params, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedReceipt, err)
		}
		for k, vs := range r.URL.Query() {
			params[k] = append(params[k], vs...)
		}
		return params, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedReceipt, err)
	}
	params := url.Values{}
	for k, raw := range fields {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			params.Set(k, s)
			continue
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] == '{' || raw[0] == '[' {
			return nil, fmt.Errorf("%w: field %q is not a scalar", ErrMalformedReceipt, k)
		}
		if string(raw) != "null" {
			params.Set(k, string(raw))
		}
	}
	return params, nil
}

// ParseDeliveryReceipt reads a receipt from its parameters. It requires
// messageId and status.
func ParseDeliveryReceipt(params url.Values) (*DeliveryReceipt, error) {
	d := &DeliveryReceipt{
		MessageID:        params.Get("messageId"),
		MSISDN:           params.Get("msisdn"),
		To:               params.Get("to"),
		Status:           params.Get("status"),
		ErrCode:          params.Get("err-code"),
		NetworkCode:      params.Get("network-code"),
		Price:            params.Get("price"),
		SCTS:             params.Get("scts"),
		MessageTimestamp: params.Get("message-timestamp"),
		ClientRef:        params.Get("client-ref"),
	}
	if d.MessageID == "" || d.Status == "" {
		return nil, fmt.Errorf("%w: messageId and status are required", ErrMalformedReceipt)
	}
	return d, nil
}

// SignatureMethod is the signing algorithm chosen in the Vonage dashboard.
type SignatureMethod string

// Signature methods Vonage offers; MD5Hash is its default.
const (
	MD5Hash    SignatureMethod = "md5hash"
	MD5HMAC    SignatureMethod = "md5"
	SHA1HMAC   SignatureMethod = "sha1"
	SHA256HMAC SignatureMethod = "sha256"
	SHA512HMAC SignatureMethod = "sha512"
)

// Errors returned by [CheckSignature].
var (
	ErrMissingSignature = errors.New("vonage: request has no sig parameter")
	ErrBadSignature     = errors.New("vonage: signature does not match")
	ErrStaleSignature   = errors.New("vonage: signed timestamp outside the tolerance")
	ErrUnknownMethod    = errors.New("vonage: unknown signature method")
)

// Signature computes Vonage's signature of params ("sig" excluded) as the
// signing guide and Vonage's own libraries define it: every parameter,
// sorted by name, is written as "&name=value" with any "&" or "=" in the
// value replaced by "_"; MD5Hash then takes the lowercase hex MD5 of that
// string with the secret appended, and the HMAC methods the uppercase hex
// HMAC of that string keyed with the secret.
func Signature(params url.Values, secret string, method SignatureMethod) (string, error) {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sig" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	clean := strings.NewReplacer("&", "_", "=", "_")
	for _, k := range keys {
		b.WriteString("&")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(clean.Replace(params.Get(k)))
	}
	var h hash.Hash
	switch method {
	case MD5Hash:
		sum := md5.Sum([]byte(b.String() + secret))
		return hex.EncodeToString(sum[:]), nil
	case MD5HMAC:
		h = hmac.New(md5.New, []byte(secret))
	case SHA1HMAC:
		h = hmac.New(sha1.New, []byte(secret))
	case SHA256HMAC:
		h = hmac.New(sha256.New, []byte(secret))
	case SHA512HMAC:
		h = hmac.New(sha512.New, []byte(secret))
	default:
		return "", fmt.Errorf("%w %q", ErrUnknownMethod, method)
	}
	h.Write([]byte(b.String()))
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil))), nil
}

// CheckSignature verifies the sig parameter of a signed delivery receipt
// (Vonage signs webhooks only when support enables it for the account).
// The hex comparison ignores case and runs in constant time. With a
// positive tolerance, the signed timestamp parameter (Unix seconds) must
// also be within tolerance of now, which defeats replays.
func CheckSignature(params url.Values, secret string, method SignatureMethod, now time.Time, tolerance time.Duration) error {
	got := params.Get("sig")
	if got == "" {
		return ErrMissingSignature
	}
	want, err := Signature(params, secret, method)
	if err != nil {
		return err
	}
	gotBytes, err := hex.DecodeString(got)
	wantBytes, _ := hex.DecodeString(want)
	if err != nil || !hmac.Equal(gotBytes, wantBytes) {
		return ErrBadSignature
	}
	if tolerance > 0 {
		ts, err := strconv.ParseInt(params.Get("timestamp"), 10, 64)
		if err != nil {
			return ErrStaleSignature
		}
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return ErrStaleSignature
		}
	}
	return nil
}
