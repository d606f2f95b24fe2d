// Package phoneverify holds the domain of phone-number verification: the
// types, the stable error codes and the interfaces the engine needs. It
// imports no infrastructure; adapters (stores, gateways, HTTP APIs) live in
// sibling packages that depend on this one, never the reverse.
package phoneverify

import (
	"net/netip"
	"strings"
	"time"
)

// Status is the lifecycle state of a Verification.
type Status string

// Verification statuses.
const (
	StatusPending            Status = "pending"
	StatusApproved           Status = "approved"
	StatusCanceled           Status = "canceled"
	StatusExpired            Status = "expired"
	StatusMaxAttemptsReached Status = "max_attempts_reached"
	StatusFailed             Status = "failed"
)

// Final reports whether no further transition can leave s.
func (s Status) Final() bool { return s != StatusPending }

// Channel is how a code reaches the person.
type Channel string

// ChannelSMS is the only channel phoneverify delivers today.
const ChannelSMS Channel = "sms"

// Limits on service settings, checked by Service.Validate.
const (
	MinCodeLength = 4
	MaxCodeLength = 10
	MinCodeTTL    = 10 * time.Second
	MaxCodeTTL    = 24 * time.Hour
)

// Service is one application's verification settings. API keys belong to a
// service, and every verification is started in one.
type Service struct {
	ID        string
	Name      string
	IsDefault bool

	// CodeLength is the number of digits of each code (4–10).
	CodeLength int
	// CodeTTL is how long a code stays valid after it is sent.
	CodeTTL time.Duration
	// MaxSends is how many codes one number may be sent within SendWindow.
	MaxSends   int
	SendWindow time.Duration
	// MaxAttempts is how many checks one verification allows.
	MaxAttempts int
	// Template is the message text; it may use {code}, {app} and {minutes}.
	// Empty means the built-in template.
	Template string
	// WebOTPDomain, when set, appends "@domain #code" as the message's last line.
	WebOTPDomain string
	// OneSubjectPerPhone refuses a start for a phone that another subject has
	// verified (phone_in_use).
	OneSubjectPerPhone bool
	// RejectAlreadyVerified refuses a start for a subject whose verified phone
	// is already this number (already_verified).
	RejectAlreadyVerified bool
	// TokenTTL is the lifetime of the proof issued on approval.
	TokenTTL time.Duration
	// Limits are the service's abuse limits and geo permissions.
	Limits ServiceLimits

	CreatedAt time.Time
	UpdatedAt time.Time
}

// DefaultTemplate is the message used when a service sets none.
const DefaultTemplate = "Your {app} verification code is {code}"

// NewService returns a service named name with phoneverify's defaults.
func NewService(name string) *Service {
	return &Service{
		Name:                  name,
		CodeLength:            6,
		CodeTTL:               10 * time.Minute,
		MaxSends:              5,
		SendWindow:            10 * time.Minute,
		MaxAttempts:           5,
		OneSubjectPerPhone:    true,
		RejectAlreadyVerified: true,
		TokenTTL:              15 * time.Minute,
	}
}

// Validate returns an invalid_request error naming the first bad setting.
func (s *Service) Validate() error {
	switch {
	case strings.TrimSpace(s.Name) == "":
		return ParamErrorf(EInvalidRequest, "name", "A service needs a name.")
	case len(s.Name) > 100:
		return ParamErrorf(EInvalidRequest, "name", "A service name may be at most 100 characters.")
	case s.CodeLength < MinCodeLength || s.CodeLength > MaxCodeLength:
		return ParamErrorf(EInvalidRequest, "code_length", "The code length must be between %d and %d digits.", MinCodeLength, MaxCodeLength)
	case s.CodeTTL < MinCodeTTL || s.CodeTTL > MaxCodeTTL:
		return ParamErrorf(EInvalidRequest, "code_ttl", "The code lifetime must be between %s and %s.", MinCodeTTL, MaxCodeTTL)
	case s.MaxSends < 1 || s.MaxSends > 1000:
		return ParamErrorf(EInvalidRequest, "max_sends", "The send limit must be between 1 and 1000.")
	case s.SendWindow < time.Second || s.SendWindow > 7*24*time.Hour:
		return ParamErrorf(EInvalidRequest, "send_window", "The send window must be between 1s and 168h.")
	case s.MaxAttempts < 1 || s.MaxAttempts > 100:
		return ParamErrorf(EInvalidRequest, "max_attempts", "The attempt limit must be between 1 and 100.")
	case s.TokenTTL < time.Second || s.TokenTTL > 30*24*time.Hour:
		return ParamErrorf(EInvalidRequest, "token_ttl", "The token lifetime must be between 1s and 720h.")
	case len(s.Template) > 600:
		return ParamErrorf(EInvalidRequest, "template", "The message template may be at most 600 characters.")
	case s.Template != "" && !strings.Contains(s.Template, "{code}"):
		return ParamErrorf(EInvalidRequest, "template", "The message template must contain {code}.")
	case len(s.WebOTPDomain) > 253 || strings.ContainsAny(s.WebOTPDomain, " \t\r\n#@/"):
		return ParamErrorf(EInvalidRequest, "webotp_domain", "The WebOTP domain must be a bare host name.")
	}
	return s.Limits.Validate()
}

// Verification is one attempt to prove that a person holds a phone number.
// It never holds the code itself, only CodeHash, a keyed hash of it.
type Verification struct {
	ID        string
	ServiceID string
	// To is the phone number in E.164.
	To string
	// Country is the ISO region of To (e.g. "NP").
	Country string
	Channel Channel
	Status  Status
	// Subject is the app's user id the verification is bound to, if any.
	Subject string
	// Amount and Payee bind a payment or order confirmation to its content.
	Amount string
	Payee  string
	Locale string

	SendCount   int
	Attempts    int
	MaxAttempts int
	CodeHash    []byte

	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// StatusAt returns the status as seen at now: a pending verification whose
// code has expired reads as expired even before a sweep records it.
func (v *Verification) StatusAt(now time.Time) Status {
	if v.Status == StatusPending && !now.Before(v.ExpiresAt) {
		return StatusExpired
	}
	return v.Status
}

// AttemptsRemaining returns how many checks are left.
func (v *Verification) AttemptsRemaining() int {
	if n := v.MaxAttempts - v.Attempts; n > 0 {
		return n
	}
	return 0
}

// VerifiedPhone is a registry entry: the phone a subject has proved it holds.
type VerifiedPhone struct {
	ServiceID      string
	Subject        string
	Phone          string
	VerificationID string
	VerifiedAt     time.Time
}

// APIKey authorises calls for one service. Only a hash of the key is kept.
type APIKey struct {
	ID        string
	ServiceID string
	Name      string
	// Prefix is the first characters of the key, shown to tell keys apart.
	Prefix string
	Hash   []byte
	Scopes []string
	// AllowedIPs, when not empty, are the only source address ranges the
	// key is accepted from; a request from elsewhere is refused (403).
	AllowedIPs []netip.Prefix
	CreatedAt  time.Time
	// LastUsedAt is when the key was last accepted, recorded at most once
	// a minute per key ([APIKeyTouchInterval]).
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// APIKeyTouchInterval is how stale an API key's LastUsedAt may be before an
// accepted request records it again: a write per minute per key, not one
// per request.
const APIKeyTouchInterval = time.Minute

// SigningKey is a token signing key as kept in the store: the private key is
// sealed (encrypted under the server secret) by the token package.
type SigningKey struct {
	ID        string
	Sealed    []byte
	CreatedAt time.Time
	// RetiredAt is when the key stopped signing; it still verifies tokens
	// issued before, until they expire.
	RetiredAt *time.Time
}
