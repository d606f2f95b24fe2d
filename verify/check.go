package verify

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/phone"
	"github.com/phoneverify/phoneverify/token"
)

// CheckRequest is a code the person typed, for a verification named by ID or
// by the number it was sent to. Subject, Amount and Payee must equal those
// the verification was started with.
type CheckRequest struct {
	ServiceID string
	ID        string
	To        string
	Code      string
	Subject   string
	Amount    string
	Payee     string
}

// CheckResult is an approved verification and its proof.
type CheckResult struct {
	Verification   *pv.Verification
	Token          string
	TokenExpiresAt time.Time
}

// Check compares a code. The attempt is counted, in the same transaction and
// before the comparison, so no verification is ever tried more than its
// maximum and at most one check approves it. Errors:
// EIncorrectCode (with AttemptsRemaining), EMaxAttemptsReached,
// EAlreadyApproved, EVerificationCanceled, EVerificationExpired,
// EVerificationFailed, EForbidden (subject, amount or payee differ),
// ENotFound, EInvalidRequest.
func (e *Engine) Check(ctx context.Context, req CheckRequest) (*CheckResult, error) {
	svc, err := e.Service(ctx, req.ServiceID)
	if err != nil {
		return nil, err
	}
	ref := pv.VerificationRef{ServiceID: svc.ID}
	switch {
	case req.ID != "" && req.To != "":
		return nil, pv.ParamErrorf(pv.EInvalidRequest, "to", "Give either id or to, not both.")
	case req.ID != "":
		if !validID(req.ID, "VE") {
			return nil, pv.ParamErrorf(pv.ENotFound, "id", "No verification has this id.")
		}
		ref.ID = req.ID
	case req.To != "":
		num, err := e.Number(req.To, "to")
		if err != nil {
			return nil, err
		}
		ref.Phone = num.E164
	default:
		return nil, pv.ParamErrorf(pv.EInvalidRequest, "id", "Name the verification by id or by the number it was sent to (to).")
	}
	if req.Code == "" {
		return nil, pv.ParamErrorf(pv.EInvalidRequest, "code", "The code is required.")
	}
	if !e.codeFormatOK(ctx, svc, req.Code) {
		return nil, pv.ParamErrorf(pv.EInvalidRequest, "code", "The code must be %d digits.", svc.CodeLength)
	}
	if err := validateBindings(req.Subject, req.Amount, req.Payee); err != nil {
		return nil, err
	}
	now := e.Now()
	update, slot := e.store.UpdateVerification, (*pv.Decision)(nil)
	capLimit := e.effectiveLimits(svc).FailedChecks
	if e.slots != nil && !capLimit.Off() {
		// The cap's slot is taken in the check's own transaction, after
		// the read and before the comparison: one transaction, not two.
		update = func(ctx context.Context, ref pv.VerificationRef, apply func(*pv.Verification) (*pv.Update, error)) (*pv.Verification, error) {
			return e.slots.UpdateVerificationWithSlot(ctx, ref, func(v *pv.Verification) (string, pv.Limit, bool) {
				if closedError(v, now) != nil { // compares nothing: takes no slot
					return "", pv.Limit{}, false
				}
				return checkCapKey(svc.ID, v.To), capLimit, true
			}, func(v *pv.Verification, d *pv.Decision) (*pv.Update, error) {
				slot = d
				return apply(v)
			})
		}
	} else if err := e.guardCheck(ctx, svc, ref); err != nil {
		return nil, err
	}

	var (
		outcome error
		capTo   string // the number a refused slot was for
	)
	v, err := e.updateVerificationVia(ctx, update, ref, func(v *pv.Verification) (*pv.Update, error) {
		outcome = nil // a store may run apply again after a conflict
		if err := closedError(v, now); err != nil {
			if v.Status == pv.StatusPending { // lazily expired: record it
				v.Status, v.UpdatedAt = pv.StatusExpired, now
				outcome = err
				return &pv.Update{Save: true}, nil
			}
			return nil, err
		}
		if slot != nil && !slot.Allowed {
			capTo = v.To
			return nil, errCapReached // nothing is written, nothing compared
		}
		v.Attempts++
		v.UpdatedAt = now
		// Every comparison runs, in constant time, whatever the others say.
		codeOK := e.hasher.Equal(v.ID, req.Code, v.CodeHash)
		subjectOK := equal(v.Subject, req.Subject)
		amountOK := equal(v.Amount, req.Amount)
		payeeOK := equal(v.Payee, req.Payee)
		if codeOK && subjectOK && amountOK && payeeOK {
			v.Status = pv.StatusApproved
			up := &pv.Update{Save: true, Conversion: e.fraudConversion(v, now)}
			if v.Subject != "" {
				up.Register = &pv.VerifiedPhone{ServiceID: v.ServiceID, Subject: v.Subject, Phone: v.To, VerificationID: v.ID, VerifiedAt: now}
			}
			return up, nil
		}
		if v.Attempts >= v.MaxAttempts {
			v.Status = pv.StatusMaxAttemptsReached
		}
		remaining := v.AttemptsRemaining()
		switch {
		case codeOK && !subjectOK:
			outcome = &pv.Error{Code: pv.EForbidden, Param: "subject", AttemptsRemaining: &remaining,
				Message: "This verification was started for another subject."}
		case codeOK:
			param := "amount"
			if amountOK {
				param = "payee"
			}
			outcome = &pv.Error{Code: pv.EForbidden, Param: param, AttemptsRemaining: &remaining,
				Message: "The amount and payee must be those the code was sent for."}
		default:
			msg := "The code is incorrect."
			if remaining == 0 {
				msg = "The code is incorrect and no attempts remain; start a new verification."
			}
			outcome = &pv.Error{Code: pv.EIncorrectCode, Param: "code", AttemptsRemaining: &remaining, Message: msg}
		}
		return &pv.Update{Save: true}, nil
	})
	if errors.Is(err, errCapReached) {
		return nil, e.capReached(ctx, svc, capTo, capLimit, *slot)
	}
	if err != nil {
		param := "id"
		if ref.Phone != "" {
			param = "to"
		}
		return nil, notFoundParam(err, param)
	}
	if outcome != nil {
		if v.Status == pv.StatusExpired {
			e.observer.Finished(v)
		} else {
			e.observer.Checked(v, false)
		}
		e.log.InfoContext(ctx, "verification check refused", "verification_id", v.ID, "reason", pv.ErrorCode(outcome),
			"attempts", v.Attempts, "status", v.Status)
		return nil, outcome
	}
	claims := token.Claims{
		Subject: v.Subject, PhoneNumber: v.To, VerificationID: v.ID, ServiceID: v.ServiceID,
		// JWT times are whole seconds; truncate so the API says what the token says.
		Amount: v.Amount, Payee: v.Payee, IssuedAt: now.Truncate(time.Second), ExpiresAt: now.Add(svc.TokenTTL).Truncate(time.Second),
	}
	tok, err := e.keys.Issue(claims)
	if err != nil {
		return nil, err
	}
	e.observer.Checked(v, true)
	e.countFraudConversion(ctx, v)
	e.log.InfoContext(ctx, "verification approved", "verification_id", v.ID, "to", phone.Mask(v.To), "attempts", v.Attempts)
	return &CheckResult{Verification: v, Token: tok, TokenExpiresAt: claims.ExpiresAt}, nil
}

// guardCheck applies the per-number failed-check cap ([Engine.guardChecks])
// to the number a check names. A check by id reads the verification first
// for its number; one that can no longer be checked compares nothing, so it
// takes no slot (its final status does not change).
func (e *Engine) guardCheck(ctx context.Context, svc *pv.Service, ref pv.VerificationRef) error {
	if e.limiter == nil || e.effectiveLimits(svc).FailedChecks.Off() {
		return nil
	}
	e164 := ref.Phone
	if ref.ID != "" {
		v, err := e.store.Verification(ctx, svc.ID, ref.ID)
		if err != nil {
			return notFoundParam(err, "id")
		}
		if closedError(v, e.Now()) != nil {
			return nil
		}
		e164 = v.To
	}
	return e.guardChecks(ctx, svc, e164)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// closedError says why a verification can no longer be checked, or nil if it
// is pending.
func closedError(v *pv.Verification, now time.Time) error {
	switch v.StatusAt(now) {
	case pv.StatusPending:
		return nil
	case pv.StatusApproved:
		return pv.Errorf(pv.EAlreadyApproved, "This verification is already approved.")
	case pv.StatusCanceled:
		return pv.Errorf(pv.EVerificationCanceled, "This verification was canceled.")
	case pv.StatusExpired:
		return pv.Errorf(pv.EVerificationExpired, "This verification has expired; start a new one.")
	case pv.StatusMaxAttemptsReached:
		return pv.Errorf(pv.EMaxAttemptsReached, "This verification has no check attempts left; start a new one.")
	default:
		return pv.Errorf(pv.EVerificationFailed, "The code for this verification could not be delivered; start a new one.")
	}
}

// Get returns a verification as seen now (a lapsed one reads as expired).
func (e *Engine) Get(ctx context.Context, serviceID, id string) (*pv.Verification, error) {
	if !validID(id, "VE") {
		return nil, pv.ParamErrorf(pv.ENotFound, "id", "No verification has this id.")
	}
	v, err := e.store.Verification(ctx, serviceID, id)
	if err != nil {
		return nil, notFoundParam(err, "id")
	}
	v.Status = v.StatusAt(e.Now())
	return v, nil
}

// Messages returns the message history of a verification: when each
// message was queued, which gateway took it and what became of it. It never
// holds the text or the code. Returns ENotFound if there is no such
// verification.
func (e *Engine) Messages(ctx context.Context, serviceID, id string) ([]*pv.OutboxMessage, error) {
	if !validID(id, "VE") {
		return nil, pv.ParamErrorf(pv.ENotFound, "id", "No verification has this id.")
	}
	return e.store.Messages(ctx, serviceID, id)
}

// Cancel ends a pending verification; its code stops working at once.
// Returns the reason as an error if it is no longer pending.
func (e *Engine) Cancel(ctx context.Context, serviceID, id string) (*pv.Verification, error) {
	if !validID(id, "VE") {
		return nil, pv.ParamErrorf(pv.ENotFound, "id", "No verification has this id.")
	}
	now := e.Now()
	v, err := e.updateVerification(ctx, pv.VerificationRef{ServiceID: serviceID, ID: id}, func(v *pv.Verification) (*pv.Update, error) {
		if err := closedError(v, now); err != nil {
			return nil, err
		}
		v.Status, v.UpdatedAt = pv.StatusCanceled, now
		return &pv.Update{Save: true}, nil
	})
	if err != nil {
		return nil, notFoundParam(err, "id")
	}
	e.observer.Finished(v)
	return v, nil
}

// notFoundParam names the parameter that matched nothing, so a client knows
// which of its inputs to fix.
func notFoundParam(err error, param string) error {
	if pv.ErrorCode(err) != pv.ENotFound {
		return err
	}
	msg := "No verification has this id."
	if param == "to" {
		msg = "No verification was started for this number."
	}
	return &pv.Error{Code: pv.ENotFound, Param: param, Message: msg, Err: err}
}

// ExpireDue records as expired every pending verification whose code
// lapsed (the store records verification.expired for those of services
// with subscriptions) and wakes the event workers if it expired any.
func (e *Engine) ExpireDue(ctx context.Context) (int, error) {
	n, err := e.store.ExpireVerifications(ctx, e.Now())
	if err == nil && n > 0 && e.events != nil {
		e.eventsNotify()
	}
	return n, err
}

// Introspect checks a proof and returns its claims. Returns EInvalidToken when
// it is forged, expired, or issued for another service.
func (e *Engine) Introspect(ctx context.Context, serviceID, raw string) (*token.Claims, error) {
	c, err := e.keys.Verify(ctx, raw, e.Now())
	if err != nil {
		if errors.Is(err, token.ErrInvalid) {
			return nil, &pv.Error{Code: pv.EInvalidToken, Message: "The token is invalid or expired.", Err: err}
		}
		return nil, fmt.Errorf("verify: introspect: %w", err)
	}
	if c.ServiceID != serviceID {
		return nil, pv.Errorf(pv.EInvalidToken, "The token is invalid or expired.")
	}
	return c, nil
}

// VerifiedPhone returns the phone a subject has verified.
// Returns ENotFound if it has none.
func (e *Engine) VerifiedPhone(ctx context.Context, serviceID, subject string) (*pv.VerifiedPhone, error) {
	if subject == "" {
		return nil, pv.ParamErrorf(pv.EInvalidRequest, "subject", "The subject is required.")
	}
	if err := validText("subject", subject, maxSubjectLen); err != nil {
		return nil, err
	}
	p, err := e.store.VerifiedPhone(ctx, serviceID, subject)
	if pv.ErrorCode(err) == pv.ENotFound {
		return nil, &pv.Error{Code: pv.ENotFound, Param: "subject", Message: "This subject has no verified phone number.", Err: err}
	}
	return p, err
}

// validID reports whether id has the shape of an id with the given prefix,
// so malformed ids are answered without a database round trip.
func validID(id, prefix string) bool {
	if len(id) != len(prefix)+32 || !strings.HasPrefix(id, prefix) {
		return false
	}
	for _, c := range id[len(prefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
