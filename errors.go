package phoneverify

import (
	"errors"
	"fmt"
	"time"
)

// Stable error codes. They are part of the API contract: clients and scripts
// match on them, so a code is never renamed or reused for another meaning.
const (
	EInvalidRequest        = "invalid_request"
	EInvalidPhoneNumber    = "invalid_phone_number"
	EUnsupportedNumberType = "unsupported_number_type"
	ECountryNotAllowed     = "country_not_allowed"
	EUnauthorized          = "unauthorized"
	EForbidden             = "forbidden"
	ENotFound              = "not_found"
	EIncorrectCode         = "incorrect_code"
	EMaxAttemptsReached    = "max_attempts_reached"
	ETooManyRequests       = "too_many_requests"
	EAlreadyVerified       = "already_verified"
	EPhoneInUse            = "phone_in_use"
	EBlockedByFraud        = "blocked_by_fraud_protection"
	EGatewayUnavailable    = "gateway_unavailable"
	EInvalidToken          = "invalid_token"
	EAlreadyApproved       = "verification_approved"
	EVerificationCanceled  = "verification_canceled"
	EVerificationExpired   = "verification_expired"
	EVerificationFailed    = "verification_failed"
	EConflict              = "conflict"
	EUnavailable           = "unavailable"
	EInternal              = "internal"
	EMethodNotAllowed      = "method_not_allowed"
	EUnsupportedMediaType  = "unsupported_media_type"
	ERequestTooLarge       = "request_too_large"
)

// Error is the one error type of phoneverify's domain. Its Message is safe to
// show to an API client; anything else (driver errors, stack details) stays
// wrapped in Err and is only logged.
type Error struct {
	// Code is one of the E* constants.
	Code string
	// Message is a human sentence safe to show a client.
	Message string
	// Param names the request parameter at fault, if any.
	Param string
	// RetryAfter tells a client when a refused request may succeed.
	RetryAfter time.Duration
	// AttemptsRemaining is set on incorrect_code answers.
	AttemptsRemaining *int
	// Err is the underlying cause, never shown to clients.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("phoneverify: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("phoneverify: %s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause so errors.Is keeps working.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ParamErrorf returns an *Error that names the request parameter at fault.
func ParamErrorf(code, param, format string, args ...any) *Error {
	return &Error{Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// EInternal for any other non-nil error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of err, and a generic sentence
// for internal errors so that no internal detail reaches a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}

// AsError returns err as an *Error, or nil if it is not one.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
