package phoneverify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Message is one text to deliver. Body already holds the code; Code is given
// separately for gateways (such as the signed webhook) whose receiver formats
// its own text. Neither is ever logged outside the log gateway.
type Message struct {
	VerificationID string
	ServiceID      string
	// To is the destination in E.164.
	To string
	// Country is the ISO region of To, when known; routing uses it.
	Country string
	Body    string
	Code    string
	Locale  string
}

// SendResult describes an accepted message.
type SendResult struct {
	// Gateway names the gateway that accepted the message.
	Gateway string
	// ProviderID is the provider's id of the message, for delivery receipts.
	ProviderID string
}

// Sender hands a message to a gateway. It returns a *DeliveryError when the
// gateway refused or could not be reached, so the caller can tell whether a
// retry may succeed.
type Sender interface {
	Send(ctx context.Context, m *Message) (*SendResult, error)
}

// DeliveryError is a failed send. Permanent errors about the message (a
// number the provider cannot reach) are not retried and fail the
// verification; temporary ones (5xx, timeouts, throttling) are retried.
// Account errors (bad credentials, a refused sender, no balance) are
// permanent for that gateway, so a router moves on to the next one, and the
// outbox retries them like temporary errors, since an operator can fix them.
type DeliveryError struct {
	Gateway   string
	Permanent bool
	// Account marks a failure of the gateway's own account or setup (bad
	// credentials, a sender it refuses, no balance) rather than of the
	// message: another gateway may still deliver it.
	Account bool
	// Code is the provider's own error code or HTTP status, if any.
	Code string
	// Reason is a short description safe to store and show an operator.
	Reason string
	// RetryAfter is the provider's hint, if it gave one.
	RetryAfter time.Duration
	Err        error
}

// Error implements error.
func (e *DeliveryError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	s := fmt.Sprintf("%s: %s delivery error", e.Gateway, kind)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a delivery error that retrying cannot fix.
func IsPermanent(err error) bool {
	var d *DeliveryError
	return errors.As(err, &d) && d.Permanent
}
