package twilioapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	pv "github.com/phoneverify/phoneverify"
)

// Twilio error codes the API answers with.
const (
	CodeUnauthorized         = 20003
	CodeMethodNotAllowed     = 20004
	CodeForbidden            = 20403
	CodeNotFound             = 20404
	CodeTooLarge             = 20413
	CodeUnsupportedMedia     = 20415
	CodeTooManyRequests      = 20429
	CodeInternal             = 20500
	CodeUnavailable          = 20503
	CodeInvalidParameter     = 60200
	CodeMaxCheckAttempts     = 60202
	CodeMaxSendAttempts      = 60203
	CodeLandline             = 60205
	CodeConcurrentRequests   = 60212
	CodeNoTarget             = 60221
	CodeChannelDisabled      = 60223
	CodeFraudBlocked         = 60410
	CodeGeoPermission        = 60605
	moreInfoBase             = "https://www.twilio.com/docs/errors/"
	messageNotFoundResource  = "The requested resource %s was not found"
	defaultInternalMessage   = "An internal error occurred."
	defaultUnavailableReason = "The service is unavailable; try again later."
)

// Body is Twilio's error body.
type Body struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// errNoTarget is returned when a request names no phone number (or
// verification) to act on: Twilio's 60221.
var errNoTarget = &pv.Error{Code: pv.EInvalidRequest, Param: "to", Message: "Give the phone number (To) or the verification (VerificationSid)."}

// twilioParam returns the Twilio name of a parameter the engine names.
func twilioParam(p string) string {
	switch p {
	case "to":
		return "To"
	case "code":
		return "Code"
	case "id":
		return "VerificationSid"
	case "channel":
		return "Channel"
	case "locale":
		return "Locale"
	case "app_hash":
		return "AppHash"
	case "amount":
		return "Amount"
	case "payee":
		return "Payee"
	case "custom_code":
		return "CustomCode"
	case "custom_friendly_name":
		return "CustomFriendlyName"
	case "rate_limits":
		return "RateLimits"
	case "name":
		return "FriendlyName"
	case "code_length":
		return "CodeLength"
	case "unique_name":
		return "UniqueName"
	case "description":
		return "Description"
	case "max":
		return "Max"
	case "interval":
		return "Interval"
	case "phone_number":
		return "PhoneNumber"
	case "status":
		return "Status"
	case "service_sid":
		return "ServiceSid"
	case "rate_limit_sid":
		return "RateLimitSid"
	case "bucket_sid", "sid":
		return "Sid"
	case "risk_check":
		return "RiskCheck"
	}
	return p
}

// ErrorFor maps an error to Twilio's HTTP status, error code and message.
// It is the only place the Twilio-compatible API makes that choice, as
// httpapi.StatusOf is for the native API. Internal errors get a generic
// message; the caller logs them.
func ErrorFor(err error) (status, code int, message string) {
	e := pv.AsError(err)
	if e == nil {
		return http.StatusInternalServerError, CodeInternal, defaultInternalMessage
	}
	param := twilioParam(e.Param)
	invalid := func() (int, int, string) {
		if param == "" {
			return http.StatusBadRequest, CodeInvalidParameter, "Invalid parameter: " + e.Message
		}
		return http.StatusBadRequest, CodeInvalidParameter, "Invalid parameter `" + param + "`: " + e.Message
	}
	switch e.Code {
	case pv.EInvalidRequest:
		switch {
		case errors.Is(err, errNoTarget):
			return http.StatusBadRequest, CodeNoTarget, "No target: " + e.Message
		case e.Param == "channel":
			return http.StatusBadRequest, CodeChannelDisabled, "Delivery channel disabled: " + e.Message
		}
		return invalid()
	case pv.EInvalidPhoneNumber, pv.EAlreadyVerified, pv.EPhoneInUse:
		return invalid()
	case pv.EUnsupportedNumberType:
		return http.StatusBadRequest, CodeLandline, "SMS is not supported by landline phone number: " + e.Message
	case pv.ECountryNotAllowed:
		return http.StatusForbidden, CodeGeoPermission, "Verification delivery attempt blocked (geo permissions): " + e.Message
	case pv.EBlockedByFraud:
		return http.StatusForbidden, CodeFraudBlocked, "Verification delivery attempt blocked (fraud protection): " + e.Message
	case pv.EUnauthorized, pv.EInvalidToken:
		return http.StatusUnauthorized, CodeUnauthorized, "Authentication Error - " + e.Message
	case pv.EForbidden:
		if e.AttemptsRemaining != nil && *e.AttemptsRemaining == 0 {
			return http.StatusTooManyRequests, CodeMaxCheckAttempts, "Max check attempts reached: " + e.Message
		}
		return http.StatusForbidden, CodeForbidden, "Forbidden: " + e.Message
	case pv.ENotFound:
		return http.StatusNotFound, CodeNotFound, e.Message
	case pv.EAlreadyApproved, pv.EVerificationExpired, pv.EMaxAttemptsReached, pv.EVerificationCanceled, pv.EVerificationFailed:
		// Twilio deletes a verification once it is approved, expires or
		// runs out of attempts; beyond Twilio, the message says which.
		return http.StatusNotFound, CodeNotFound, e.Message
	case pv.EIncorrectCode:
		if e.AttemptsRemaining != nil && *e.AttemptsRemaining == 0 {
			return http.StatusTooManyRequests, CodeMaxCheckAttempts, "Max check attempts reached: " + e.Message
		}
		return invalid()
	case pv.ETooManyRequests:
		switch e.Param {
		case "rate_limits":
			return http.StatusTooManyRequests, CodeTooManyRequests, "Too many requests: " + e.Message
		case "code": // the number's failed-check cap
			return http.StatusTooManyRequests, CodeMaxCheckAttempts, "Max check attempts reached: " + e.Message
		}
		return http.StatusTooManyRequests, CodeMaxSendAttempts, "Max send attempts reached: " + e.Message
	case pv.EConflict:
		if e.Param != "" {
			return invalid()
		}
		return http.StatusTooManyRequests, CodeConcurrentRequests, "Too many concurrent requests for phone number: " + e.Message
	case pv.EMethodNotAllowed:
		return http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed: " + e.Message
	case pv.EUnsupportedMediaType:
		return http.StatusUnsupportedMediaType, CodeUnsupportedMedia, e.Message
	case pv.ERequestTooLarge:
		return http.StatusRequestEntityTooLarge, CodeTooLarge, e.Message
	case pv.EGatewayUnavailable, pv.EUnavailable:
		msg := e.Message
		if msg == "" {
			msg = defaultUnavailableReason
		}
		return http.StatusServiceUnavailable, CodeUnavailable, msg
	}
	return http.StatusInternalServerError, CodeInternal, defaultInternalMessage
}

// writeError answers with Twilio's error body. Internal errors are logged in
// full and shown only as a generic sentence; a 404 names the resource, as
// Twilio's do.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := ErrorFor(err)
	if code == CodeNotFound {
		path := strings.TrimPrefix(r.URL.Path, "/v2")
		msg = strings.Replace(messageNotFoundResource, "%s", path, 1) + ": " + msg
	}
	if e := pv.AsError(err); e != nil && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+999_999_999)/1e9)))
	}
	switch {
	case status >= 500:
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", r.Pattern, "code", code, "error", err)
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="phoneverify"`)
	}
	writeJSON(w, status, Body{Code: code, Message: msg, MoreInfo: moreInfoBase + strconv.Itoa(code), Status: status})
}
