package verify

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/phone"
)

// extras returns the store's [pv.ExtrasStore], or EUnavailable when the
// store does not keep what the Twilio-compatible features need.
func (e *Engine) extras() (pv.ExtrasStore, error) {
	x, ok := e.store.(pv.ExtrasStore)
	if !ok {
		return nil, pv.Errorf(pv.EUnavailable, "This store does not keep service features, rate limits or send attempts.")
	}
	return x, nil
}

// features returns the features of a service, or the zero value when the
// store keeps none.
func (e *Engine) features(ctx context.Context, serviceID string) (*pv.ServiceFeatures, error) {
	x, ok := e.store.(pv.ExtrasStore)
	if !ok {
		return &pv.ServiceFeatures{ServiceID: serviceID}, nil
	}
	return x.ServiceFeatures(ctx, serviceID)
}

// cachedServiceFeatures is features through the same short-lived cache as
// service settings, for the start path.
func (e *Engine) cachedServiceFeatures(ctx context.Context, serviceID string) (*pv.ServiceFeatures, error) {
	now := time.Now()
	var gen uint64
	if e.cacheTTL > 0 {
		e.mu.Lock()
		c, ok := e.featureCache[serviceID]
		gen = e.serviceGen
		e.mu.Unlock()
		if ok && now.Before(c.expires) {
			return c.f, nil
		}
	}
	f, err := e.features(ctx, serviceID)
	if err != nil {
		return nil, err
	}
	if e.cacheTTL > 0 {
		e.mu.Lock()
		if e.serviceGen == gen {
			e.featureCache[serviceID] = cachedFeatures{f: f, expires: now.Add(e.cacheTTL)}
		}
		e.mu.Unlock()
	}
	return f, nil
}

// ServiceWithFeatures returns a service and its features. Returns ENotFound
// if there is no such service or it was deleted.
func (e *Engine) ServiceWithFeatures(ctx context.Context, id string) (*pv.Service, *pv.ServiceFeatures, error) {
	if !validID(id, "VA") {
		return nil, nil, pv.ParamErrorf(pv.ENotFound, "service_sid", "No service has this id.")
	}
	svc, err := e.store.Service(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	f, err := e.features(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if f.DeletedAt != nil {
		return nil, nil, pv.ParamErrorf(pv.ENotFound, "service_sid", "This service was deleted.")
	}
	return svc, f, nil
}

// Services returns every service that was not deleted, oldest first, with
// its features.
func (e *Engine) Services(ctx context.Context) ([]*pv.Service, []*pv.ServiceFeatures, error) {
	all, err := e.store.Services(ctx)
	if err != nil {
		return nil, nil, err
	}
	var (
		svcs  []*pv.Service
		feats []*pv.ServiceFeatures
	)
	for _, s := range all {
		f, err := e.features(ctx, s.ID)
		if err != nil {
			return nil, nil, err
		}
		if f.DeletedAt == nil {
			svcs, feats = append(svcs, s), append(feats, f)
		}
	}
	return svcs, feats, nil
}

// CreateService saves a new service with its features; it sets svc.ID and
// the times. Returns EInvalidRequest naming the first bad setting.
func (e *Engine) CreateService(ctx context.Context, svc *pv.Service, f *pv.ServiceFeatures) error {
	x, err := e.extras()
	if err != nil {
		return err
	}
	if err := ValidateService(svc); err != nil {
		return err
	}
	if svc.ID, err = e.NewID("VA"); err != nil {
		return err
	}
	svc.IsDefault = false
	svc.CreatedAt, svc.UpdatedAt = e.Now(), e.Now()
	if err := e.store.CreateService(ctx, svc); err != nil {
		return err
	}
	f.ServiceID, f.DeletedAt = svc.ID, nil
	return x.SaveServiceFeatures(ctx, f)
}

// UpdateService saves every setting of svc, as read (with its UpdatedAt)
// and then changed, and its features, in one transaction. Returns EInvalidRequest naming the
// first bad setting, ENotFound if the service does not exist, and
// EConflict, saving nothing, if the service changed since svc was read:
// read it again, apply the change and retry.
func (e *Engine) UpdateService(ctx context.Context, svc *pv.Service, f *pv.ServiceFeatures) error {
	x, err := e.extras()
	if err != nil {
		return err
	}
	if err := ValidateService(svc); err != nil {
		return err
	}
	readAt := svc.UpdatedAt
	svc.UpdatedAt = e.Now()
	f.ServiceID = svc.ID
	if err := x.UpdateServiceWithFeatures(ctx, svc, f, readAt); err != nil {
		svc.UpdatedAt = readAt
		return err
	}
	e.ForgetService(svc.ID)
	return nil
}

// changeServiceTries bounds how often [Engine.ChangeService] applies a
// change again to a fresh read when the service keeps changing under it.
const changeServiceTries = 5

// ChangeService reads the service id and its features, lets change edit
// them, and saves them as [Engine.UpdateService] does. If the service
// changed between the read and the write (its limits through the API, or
// another update), change runs again on a fresh read, so that the change in
// between is kept rather than undone; change must therefore derive its
// edit from its arguments alone. Returns what change returns, the errors of
// [Engine.ServiceWithFeatures] and [Engine.UpdateService], and EConflict if
// the service still changed under it after a few tries.
func (e *Engine) ChangeService(ctx context.Context, id string, change func(*pv.Service, *pv.ServiceFeatures) error) (*pv.Service, *pv.ServiceFeatures, error) {
	for try := 1; ; try++ {
		svc, f, err := e.ServiceWithFeatures(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		if err := change(svc, f); err != nil {
			return nil, nil, err
		}
		err = e.UpdateService(ctx, svc, f)
		if pv.ErrorCode(err) == pv.EConflict && try < changeServiceTries {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return svc, f, nil
	}
}

// DeleteService deletes a service: it answers as not found from then on and
// its API keys stop working. The default service cannot be deleted.
func (e *Engine) DeleteService(ctx context.Context, id string) error {
	x, err := e.extras()
	if err != nil {
		return err
	}
	svc, _, err := e.ServiceWithFeatures(ctx, id)
	if err != nil {
		return err
	}
	if svc.IsDefault {
		return pv.ParamErrorf(pv.EInvalidRequest, "service_sid", "The default service cannot be deleted.")
	}
	err = x.DeleteService(ctx, id, e.Now())
	e.ForgetService(id)
	return err
}

// startExtras is what a service's features add to one start.
type startExtras struct {
	appName       string
	amount, payee string
	warning       bool
}

const maxAppNameLen = 100

// prepareStart applies the service's features to a start: custom codes,
// PSD2, the app name override and programmable rate limits (counted here,
// before the start, like every other start that names them).
func (e *Engine) prepareStart(ctx context.Context, svc *pv.Service, req *StartRequest) (*startExtras, error) {
	ext := &startExtras{appName: svc.Name}
	_, hasExtras := e.store.(pv.ExtrasStore)
	if req.AppName != "" {
		if err := validText("custom_friendly_name", req.AppName, maxAppNameLen); err != nil {
			return nil, err
		}
		ext.appName = req.AppName
	}
	if !hasExtras && req.CustomCode == "" && len(req.RateLimits) == 0 {
		return ext, nil
	}
	f, err := e.cachedServiceFeatures(ctx, svc.ID)
	if err != nil {
		return nil, err
	}
	if req.CustomCode != "" {
		if !f.CustomCodeEnabled {
			return nil, pv.ParamErrorf(pv.EInvalidRequest, "custom_code", "Custom codes are not enabled for this service.")
		}
		if !validCustomCode(req.CustomCode) {
			return nil, pv.ParamErrorf(pv.EInvalidRequest, "custom_code", "A custom code must be %d to %d digits.", pv.MinCodeLength, pv.MaxCodeLength)
		}
	}
	if f.PSD2Enabled {
		switch {
		case req.Amount == "":
			return nil, pv.ParamErrorf(pv.EInvalidRequest, "amount", "This service confirms payments (PSD2): the amount is required.")
		case req.Payee == "":
			return nil, pv.ParamErrorf(pv.EInvalidRequest, "payee", "This service confirms payments (PSD2): the payee is required.")
		}
		ext.amount, ext.payee = req.Amount, req.Payee
	}
	ext.warning = f.DoNotShareWarning
	if err := e.hitRateLimits(ctx, svc.ID, req.RateLimits); err != nil {
		return nil, err
	}
	return ext, nil
}

func validCustomCode(code string) bool {
	return len(code) >= pv.MinCodeLength && len(code) <= pv.MaxCodeLength && otp.ValidFormat(code, len(code))
}

// codeFormatOK reports whether a checked code has a shape the service could
// have sent: its code length, or any custom code length when custom codes
// are enabled.
func (e *Engine) codeFormatOK(ctx context.Context, svc *pv.Service, code string) bool {
	if otp.ValidFormat(code, svc.CodeLength) {
		return true
	}
	if !validCustomCode(code) {
		return false
	}
	f, err := e.features(ctx, svc.ID)
	return err == nil && f.CustomCodeEnabled
}

// sendAttempt returns the record of this send (Twilio's
// send_code_attempts) for the start to write in its own transaction, or nil
// when the store keeps no such records.
func (e *Engine) sendAttempt(v *pv.Verification) (*pv.SendAttempt, error) {
	if _, ok := e.store.(pv.ExtrasStore); !ok {
		return nil, nil
	}
	id, err := e.NewID("VL")
	if err != nil {
		return nil, err
	}
	return &pv.SendAttempt{ID: id, VerificationID: v.ID, ServiceID: v.ServiceID,
		Channel: v.Channel, Phone: v.To, Country: v.Country, CreatedAt: v.UpdatedAt}, nil
}

// Approve approves a pending verification without a code, for services
// whose codes the application makes itself (custom codes): the application
// checked the code. Returns EInvalidRequest if the service does not allow
// custom codes, and the reason as an error if the verification is no
// longer pending.
func (e *Engine) Approve(ctx context.Context, serviceID, id string) (*pv.Verification, error) {
	if !validID(id, "VE") {
		return nil, pv.ParamErrorf(pv.ENotFound, "id", "No verification has this id.")
	}
	f, err := e.features(ctx, serviceID)
	if err != nil {
		return nil, err
	}
	if !f.CustomCodeEnabled {
		return nil, pv.ParamErrorf(pv.EInvalidRequest, "status", "Only services with custom codes enabled may approve a verification without a check.")
	}
	now := e.Now()
	v, err := e.updateVerification(ctx, pv.VerificationRef{ServiceID: serviceID, ID: id}, func(v *pv.Verification) (*pv.Update, error) {
		if err := closedError(v, now); err != nil {
			return nil, err
		}
		v.Status, v.UpdatedAt = pv.StatusApproved, now
		up := &pv.Update{Save: true}
		if v.Subject != "" {
			up.Register = &pv.VerifiedPhone{ServiceID: v.ServiceID, Subject: v.Subject, Phone: v.To, VerificationID: v.ID, VerifiedAt: now}
		}
		return up, nil
	})
	if err != nil {
		return nil, notFoundParam(err, "id")
	}
	e.observer.Checked(v, true)
	e.log.InfoContext(ctx, "verification approved without a check", "verification_id", v.ID)
	return v, nil
}

// ValidateFeatures checks a service's echoed settings for size, so that a
// client cannot store arbitrary amounts of data in them.
func ValidateFeatures(f *pv.ServiceFeatures) error {
	if len(f.Echo) > 64 {
		return pv.Errorf(pv.EInvalidRequest, "Too many service settings.")
	}
	for k, v := range f.Echo {
		if len(k) > 64 || len(v) > 1024 || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return pv.ParamErrorf(pv.EInvalidRequest, k, "The setting %s must be valid text of at most 1024 bytes.", k)
		}
	}
	return nil
}

// LookupType returns the line type of an E.164 number as the phone package
// classifies it ("mobile", "fixed_line", …), or "" if it cannot tell.
func (e *Engine) LookupType(e164 string) string {
	n, err := phone.Parse(e164, "")
	if err != nil {
		return ""
	}
	return string(n.Type)
}

// Latest returns the newest verification for a number in a service, as seen
// now (a lapsed one reads as expired). Returns ENotFound (param to) if no
// verification was started for the number.
func (e *Engine) Latest(ctx context.Context, serviceID, raw string) (*pv.Verification, error) {
	num, err := e.Number(raw, "to")
	if err != nil {
		return nil, err
	}
	// The store reads the newest verification of a number only under its
	// lock; nothing is written.
	v, err := e.updateVerification(ctx, pv.VerificationRef{ServiceID: serviceID, Phone: num.E164},
		func(*pv.Verification) (*pv.Update, error) { return &pv.Update{}, nil })
	if err != nil {
		return nil, notFoundParam(err, "to")
	}
	v.Status = v.StatusAt(e.Now())
	return v, nil
}
