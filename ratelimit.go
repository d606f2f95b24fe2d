package phoneverify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLimitEvents caps Limit.Max: every implementation keeps the time of each
// event in the window (a sliding log), so a limit costs O(Max) space per key.
const MaxLimitEvents = 10000

// Limit is a rate: at most Max events for one key in any interval of length
// Window. The zero Limit is off.
type Limit struct {
	Max    int
	Window time.Duration
}

// Off reports whether l limits nothing (its zero value).
func (l Limit) Off() bool { return l.Max == 0 && l.Window == 0 }

// String renders l as [ParseLimit] reads it, e.g. "30/10m0s", or "off".
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return strconv.Itoa(l.Max) + "/" + l.Window.String()
}

// Validate returns an error unless 1 ≤ Max ≤ [MaxLimitEvents] and Window is
// at least a millisecond (the resolution every limiter keeps).
func (l Limit) Validate() error {
	switch {
	case l.Max < 1 || l.Max > MaxLimitEvents:
		return fmt.Errorf("limit %d/%s: the count must be between 1 and %d", l.Max, l.Window, MaxLimitEvents)
	case l.Window < time.Millisecond:
		return fmt.Errorf("limit %d/%s: the window must be at least 1ms", l.Max, l.Window)
	}
	return nil
}

// ParseLimit reads "N/DURATION" (for example "30/10m" or "1000/1h", the
// duration as [time.ParseDuration] reads it), or "off", "0" or "" for the
// zero Limit.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "0", "off":
		return Limit{}, nil
	}
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("limit %q: want N/DURATION such as 30/10m, or off", s)
	}
	max, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil {
		return Limit{}, fmt.Errorf("limit %q: the count is not a whole number", s)
	}
	window, err := time.ParseDuration(strings.TrimSpace(d))
	if err != nil {
		return Limit{}, fmt.Errorf("limit %q: %w", s, err)
	}
	l := Limit{Max: max, Window: window}
	if err := l.Validate(); err != nil {
		return Limit{}, err
	}
	return l, nil
}

// Decision is a limiter's answer to one event.
type Decision struct {
	// Allowed reports whether the event fits the limit; it was then
	// recorded. A refused event is not recorded and does not count.
	Allowed bool
	// Remaining is how many more events the key may have right now: after
	// this one if it was allowed, 0 if it was refused.
	Remaining int
	// RetryAfter, on a refusal, is how long until the oldest event in the
	// window leaves it, so that one more event fits. It is 0 when allowed.
	RetryAfter time.Duration
}

// Limiter counts events per key against a [Limit]. Every implementation is a
// sliding log with millisecond resolution and is exact: an event at time t is
// allowed if and only if fewer than limit.Max events of the same key were
// allowed in (t − limit.Window, t], so no interval of length Window ever
// holds more than Max allowed events, and none is refused while there is
// room. Concurrent calls for one key, from any number of goroutines or nodes
// sharing the limiter's backend, are serialised.
//
// A key should name what it protects and the kind of limit (for example
// "start:ip:SERVICE:203.0.113.7"); one key must always be used with the same
// Limit.
//
// Allow returns a refusal as a Decision with Allowed false, not as an error.
// It returns an error for an invalid limit (see [Limit.Validate]), an
// *Error with code EUnavailable when the limiter's backend (database,
// Redis) cannot be reached, so that callers can fail closed, and any other
// error for an internal failure. A caller's canceled context is returned as
// is (wrapped).
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
}

// ErrInvalidLimit is wrapped by the error a [Limiter] returns for a limit
// that fails [Limit.Validate].
var ErrInvalidLimit = errors.New("invalid limit")

// CheckLimit returns an error wrapping [ErrInvalidLimit] if l is invalid.
// Limiters call it first.
func CheckLimit(l Limit) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLimit, err)
	}
	return nil
}

// SlotUpdater is implemented by a [Limiter] that keeps its counters in the
// store's own database and can record an event inside the transaction of
// an update ([Store.UpdateVerification]), so that a check takes its
// failed-check slot and saves its attempt in one transaction instead of
// two, with the slot still taken before apply compares the code.
type SlotUpdater interface {
	// SlotsInUpdate reports whether UpdateVerificationWithSlot updates
	// the verifications of st (the limiter's counters are in st's
	// database) and is cheaper than a separate Allow; when false the
	// engine calls Allow and then st.
	SlotsInUpdate(st Store) bool
	// UpdateVerificationWithSlot is [Store.UpdateVerification] that, in
	// the same transaction, first calls slot with the verification as
	// read; if slot returns ok, it records an event for key under limit
	// exactly as [Limiter.Allow] would and passes the decision to apply
	// (nil when slot returned !ok). A refused event is not recorded; a
	// recorded one commits only with what apply saves, and not at all if
	// apply returns an error. Errors as UpdateVerification, and as Allow
	// for the event.
	UpdateVerificationWithSlot(ctx context.Context, ref VerificationRef, slot func(*Verification) (key string, limit Limit, ok bool),
		apply func(*Verification, *Decision) (*Update, error)) (*Verification, error)
}
