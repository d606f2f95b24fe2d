package httpapi

import (
	"net/http"
	"strconv"

	pv "github.com/phoneverify/phoneverify"
)

// statusOf maps each stable error code to its HTTP status. It is the only
// place the native API makes that choice.
var statusOf = map[string]int{
	pv.EInvalidRequest:        http.StatusBadRequest,
	pv.EInvalidPhoneNumber:    http.StatusBadRequest,
	pv.EUnsupportedNumberType: http.StatusBadRequest,
	pv.EIncorrectCode:         http.StatusBadRequest,
	pv.EUnauthorized:          http.StatusUnauthorized,
	pv.EInvalidToken:          http.StatusUnauthorized,
	pv.EForbidden:             http.StatusForbidden,
	pv.ECountryNotAllowed:     http.StatusForbidden,
	pv.EBlockedByFraud:        http.StatusForbidden,
	pv.ENotFound:              http.StatusNotFound,
	pv.EMethodNotAllowed:      http.StatusMethodNotAllowed,
	pv.EAlreadyVerified:       http.StatusConflict,
	pv.EPhoneInUse:            http.StatusConflict,
	pv.EAlreadyApproved:       http.StatusConflict,
	pv.EVerificationCanceled:  http.StatusConflict,
	pv.EVerificationFailed:    http.StatusConflict,
	pv.EConflict:              http.StatusConflict,
	pv.EVerificationExpired:   http.StatusGone,
	pv.ERequestTooLarge:       http.StatusRequestEntityTooLarge,
	pv.EUnsupportedMediaType:  http.StatusUnsupportedMediaType,
	pv.EMaxAttemptsReached:    http.StatusTooManyRequests,
	pv.ETooManyRequests:       http.StatusTooManyRequests,
	pv.EGatewayUnavailable:    http.StatusServiceUnavailable,
	pv.EUnavailable:           http.StatusServiceUnavailable,
	pv.EInternal:              http.StatusInternalServerError,
}

// StatusOf returns the HTTP status the native API uses for an error code.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	Param             string `json:"param,omitempty"`
	AttemptsRemaining *int   `json:"attempts_remaining,omitempty"`
	RetryAfter        int    `json:"retry_after,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
}

// writeError answers with the error's JSON body and status. Internal errors
// are logged in full and shown to the client only as a generic sentence.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := pv.ErrorCode(err)
	status := StatusOf(code)
	d := errorDetail{Code: code, Message: pv.ErrorMessage(err), RequestID: requestID(r.Context())}
	if e := pv.AsError(err); e != nil {
		d.Param = e.Param
		d.AttemptsRemaining = e.AttemptsRemaining
		if e.RetryAfter > 0 {
			secs := int((e.RetryAfter + 999999999) / 1e9)
			d.RetryAfter = secs
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
	}
	switch {
	case status >= 500:
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", r.Pattern, "code", code, "error", err)
	case code == pv.EUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="phoneverify"`)
	}
	writeJSON(w, status, errorBody{Error: d})
}
