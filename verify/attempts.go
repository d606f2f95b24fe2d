package verify

import (
	"context"
	"errors"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/phone"
)

// SendAttempts returns the send attempts f selects, oldest first.
func (e *Engine) SendAttempts(ctx context.Context, f pv.AttemptFilter) ([]*pv.SendAttempt, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	return x.SendAttempts(ctx, f)
}

// SendAttempt returns one send attempt. Returns ENotFound if none.
func (e *Engine) SendAttempt(ctx context.Context, id string) (*pv.SendAttempt, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	if !validID(id, "VL") {
		return nil, pv.ParamErrorf(pv.ENotFound, "sid", "No attempt has this id.")
	}
	return x.SendAttempt(ctx, id)
}

// AttemptsSummary returns how many attempts f selects and how many of them
// converted (their verification was approved).
func (e *Engine) AttemptsSummary(ctx context.Context, f pv.AttemptFilter) (total, converted int, err error) {
	x, err := e.extras()
	if err != nil {
		return 0, 0, err
	}
	return x.CountSendAttempts(ctx, f)
}

// SendAttemptsOf returns the attempts of one verification, oldest first, or
// none when the store keeps no attempts.
func (e *Engine) SendAttemptsOf(ctx context.Context, verificationID string) ([]*pv.SendAttempt, error) {
	x, ok := e.store.(pv.ExtrasStore)
	if !ok {
		return nil, nil
	}
	return x.SendAttempts(ctx, pv.AttemptFilter{VerificationID: verificationID})
}

// safeListNumber parses a number for the safe list: any valid number, in
// any line type.
func (e *Engine) safeListNumber(raw string) (string, error) {
	n, err := phone.Parse(raw, e.defaultRegion)
	if err != nil {
		msg := "The phone number is not valid."
		if errors.Is(err, phone.ErrInvalid) {
			msg = err.Error()
		}
		return "", &pv.Error{Code: pv.EInvalidPhoneNumber, Param: "phone_number", Message: msg, Err: err}
	}
	return n.E164, nil
}

// AddToSafeList exempts a number from fraud protection and returns its
// entry (the existing one if it was already listed).
func (e *Engine) AddToSafeList(ctx context.Context, raw string) (*pv.SafeListNumber, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	num, err := e.safeListNumber(raw)
	if err != nil {
		return nil, err
	}
	id, err := e.NewID("GN")
	if err != nil {
		return nil, err
	}
	return x.AddSafeListNumber(ctx, &pv.SafeListNumber{ID: id, Phone: num, CreatedAt: e.Now()})
}

// SafeListed returns the safe list entry of a number. Returns ENotFound if
// the number is not listed.
func (e *Engine) SafeListed(ctx context.Context, raw string) (*pv.SafeListNumber, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	num, err := e.safeListNumber(raw)
	if err != nil {
		return nil, err
	}
	return x.SafeListNumber(ctx, num)
}

// RemoveFromSafeList removes a number from the safe list. Returns ENotFound
// if it is not listed.
func (e *Engine) RemoveFromSafeList(ctx context.Context, raw string) error {
	x, err := e.extras()
	if err != nil {
		return err
	}
	num, err := e.safeListNumber(raw)
	if err != nil {
		return err
	}
	return x.RemoveSafeListNumber(ctx, num)
}
