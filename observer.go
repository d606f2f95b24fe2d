package phoneverify

// Observer is told what the engine decided, after the decision is committed,
// so that metrics (and anything else that only watches) stay out of the
// engine. Implementations must be cheap and safe for concurrent use; they
// must not block.
type Observer interface {
	// Started is called once a verification is committed: a new one, or a
	// resend of a pending one (resend true).
	Started(v *Verification, resend bool)
	// Checked is called after a check changed a verification: v is as
	// saved (approved, still pending after a wrong code, or
	// max_attempts_reached).
	Checked(v *Verification, approved bool)
	// Finished is called when a verification reaches a final status other
	// than by a check: canceled, expired (lazily or by the sweep, when the
	// store says which), failed.
	Finished(v *Verification)
	// Refused is called when a start or a check is refused by a limit or
	// by fraud protection. reason is a short stable label such as
	// "per_ip", "per_country", "per_number", "geo", "fraud_prefix".
	Refused(serviceID, reason string)
	// Alert is called on a condition an operator must see at once, such as
	// a service's SMS budget breaker tripping. kind is a short stable label.
	Alert(serviceID, kind string)
}

// NopObserver observes nothing. Embed it to implement only some methods.
type NopObserver struct{}

// Started does nothing.
func (NopObserver) Started(*Verification, bool) {}

// Checked does nothing.
func (NopObserver) Checked(*Verification, bool) {}

// Finished does nothing.
func (NopObserver) Finished(*Verification) {}

// Refused does nothing.
func (NopObserver) Refused(string, string) {}

// Alert does nothing.
func (NopObserver) Alert(string, string) {}
