package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/phone"
)

type namedLimit struct {
	name  string
	limit pv.Limit
}

// named lists the limits by their [pv.LimitNames] names.
func (l StartLimits) named() []namedLimit {
	return []namedLimit{
		{"per_number_day", l.PerNumberDay}, {"per_ip", l.PerIP}, {"per_subject", l.PerSubject},
		{"per_country", l.PerCountry}, {"budget_hour", l.BudgetHour}, {"budget_day", l.BudgetDay},
		{"failed_checks", l.FailedChecks},
	}
}

// Limit returns the limit named name (one of [pv.LimitNames]); the zero
// (off) Limit for an unknown name.
func (l StartLimits) Limit(name string) pv.Limit {
	for _, n := range l.named() {
		if n.name == name {
			return n.limit
		}
	}
	return pv.Limit{}
}

// effectiveLimits returns the limits that apply to svc: its own where it
// sets one, the server-wide default otherwise.
func (e *Engine) effectiveLimits(svc *pv.Service) StartLimits {
	l := e.limits
	pick := func(own *pv.Limit, def pv.Limit) pv.Limit {
		if own != nil {
			return *own
		}
		return def
	}
	s := &svc.Limits
	l.PerNumberDay = pick(s.PerNumberDay, l.PerNumberDay)
	l.PerIP = pick(s.PerIP, l.PerIP)
	l.PerSubject = pick(s.PerSubject, l.PerSubject)
	l.PerCountry = pick(s.PerCountry, l.PerCountry)
	l.BudgetHour = pick(s.BudgetHour, l.BudgetHour)
	l.BudgetDay = pick(s.BudgetDay, l.BudgetDay)
	l.FailedChecks = pick(s.FailedChecks, l.FailedChecks)
	return l
}

// EffectiveLimits returns the limits a service runs with: its own settings
// over the server-wide defaults. Returns ENotFound if there is no such
// service.
func (e *Engine) EffectiveLimits(ctx context.Context, serviceID string) (StartLimits, error) {
	svc, err := e.Service(ctx, serviceID)
	if err != nil {
		return StartLimits{}, err
	}
	return e.effectiveLimits(svc), nil
}

// breaker is one service budget's state on this node.
type breaker struct {
	openUntil time.Time
	alerted   time.Time
}

// checkStartLimits applies the limits a limiter keeps, in order: per client
// address, per subject, per country, then the service's SMS budgets (last,
// so that a start refused by another limit does not spend budget). Each is
// one limiter call; a limit that is off costs nothing. A limiter that cannot
// be reached refuses the start (EUnavailable): sends cost money, so an
// outage must not lift the limits.
//
// Every call records an event when it allows, so a start refused by a later
// limit (or in the store, by the per-number limits) has still counted
// against the earlier ones: the limits err on the side of refusing.
func (e *Engine) checkStartLimits(ctx context.Context, serviceID string, limits StartLimits, req StartRequest, country string, isTest bool) error {
	if e.limiter == nil {
		return nil
	}
	checks := []struct {
		kind, value string
		limit       pv.Limit
		msg         string
	}{
		{"ip", ipKey(req.ClientIP), limits.PerIP, "Too many verifications were started from this IP address"},
		{"subject", req.Subject, limits.PerSubject, "Too many verifications were started for this subject"},
		{"country", country, limits.PerCountry, "Too many verifications were started for numbers in this country"},
	}
	for _, c := range checks {
		if c.limit.Off() || c.value == "" {
			continue
		}
		d, err := e.allow(ctx, "start:"+c.kind+":"+serviceID+":"+c.value, c.limit, c.kind)
		if err != nil {
			return err
		}
		if !d.Allowed {
			e.observer.Refused(serviceID, "per_"+c.kind)
			e.log.InfoContext(ctx, "start rate-limited", "service_id", serviceID, "limit", c.kind, "retry_after", d.RetryAfter)
			param := ""
			if c.kind == "subject" {
				param = "subject"
			}
			return &pv.Error{Code: pv.ETooManyRequests, Param: param, RetryAfter: ceilSecond(d.RetryAfter),
				Message: fmt.Sprintf("%s (%s limit: at most %d per %s).", c.msg, c.kind, c.limit.Max, c.limit.Window)}
		}
	}
	if isTest { // test numbers send nothing: they spend no budget
		return nil
	}
	for _, b := range []struct {
		window string
		limit  pv.Limit
	}{{"hour", limits.BudgetHour}, {"day", limits.BudgetDay}} {
		if b.limit.Off() {
			continue
		}
		if err := e.spendBudget(ctx, serviceID, b.window, b.limit); err != nil {
			return err
		}
	}
	return nil
}

// spendBudget counts one SMS against a service's budget. When the budget is
// spent the service's breaker opens: every start is refused with 429
// too_many_requests and Retry-After until the budget's window has room
// again, without a limiter call while this node knows it is open, and an
// alert is raised (an ERROR log line and Observer.Alert) at most once per
// window per node.
func (e *Engine) spendBudget(ctx context.Context, serviceID, window string, limit pv.Limit) error {
	key := serviceID + ":" + window
	now := e.Now()
	e.breakerMu.Lock()
	br := e.breakers[key]
	e.breakerMu.Unlock()
	refuse := func(wait time.Duration) error {
		e.observer.Refused(serviceID, "budget")
		return &pv.Error{Code: pv.ETooManyRequests, RetryAfter: ceilSecond(wait),
			Message: fmt.Sprintf("This service has sent its SMS budget (at most %d per %s); no codes are sent until it has room again.", limit.Max, window)}
	}
	if now.Before(br.openUntil) {
		return refuse(br.openUntil.Sub(now))
	}
	d, err := e.allow(ctx, "budget:"+window+":"+serviceID, limit, "budget_"+window)
	if err != nil {
		return err
	}
	if d.Allowed {
		return nil
	}
	alert := br.alerted.IsZero() || now.Sub(br.alerted) >= limit.Window
	e.breakerMu.Lock()
	br = e.breakers[key]
	br.openUntil = now.Add(d.RetryAfter)
	if alert {
		br.alerted = now
	}
	e.breakers[key] = br
	e.breakerMu.Unlock()
	if alert {
		e.log.ErrorContext(ctx, "ALERT sms budget exceeded", "service_id", serviceID, "window", window,
			"limit", limit.Max, "retry_after", ceilSecond(d.RetryAfter))
		e.observer.Alert(serviceID, "sms_budget")
	}
	return refuse(d.RetryAfter)
}

// allow asks the limiter, logging an unreachable one.
func (e *Engine) allow(ctx context.Context, key string, limit pv.Limit, what string) (pv.Decision, error) {
	d, err := e.limiter.Allow(ctx, key, limit)
	if err != nil && pv.ErrorCode(err) == pv.EUnavailable {
		e.log.WarnContext(ctx, "rate limiter unavailable; request refused", "limit", what, "error", err)
	}
	return d, err
}

// guardChecks counts one code comparison for a number against the
// service's failed-check cap, before the comparison runs: the cap bounds
// the codes compared for the number across all its verifications, so
// cycling start and check cannot multiply an attacker's guesses. The slot is
// taken atomically in the (shared) limiter, so concurrent checks on any
// nodes never compare more than the cap. A right code takes a slot too: the
// limiter cannot give one back, and a person needs one right code.
//
// Returns ETooManyRequests (param code, with RetryAfter) once the cap is
// reached.
func (e *Engine) guardChecks(ctx context.Context, svc *pv.Service, e164 string) error {
	limit := e.effectiveLimits(svc).FailedChecks
	if limit.Off() || e.limiter == nil {
		return nil
	}
	d, err := e.limiter.Allow(ctx, checkCapKey(svc.ID, e164), limit)
	if pv.ErrorCode(err) == pv.EUnavailable {
		// Fail open, unlike starts: the cap is the second bound on
		// guesses. The first — a verification's attempts and the number's
		// sends per day, both kept in the database — still holds, and an
		// outage of the limiter must not stop people from typing the codes
		// they already have.
		e.log.WarnContext(ctx, "rate limiter unavailable; failed-check cap skipped for this check",
			"service_id", svc.ID, "error", err)
		e.observer.Alert(svc.ID, "limiter_unavailable")
		return nil
	}
	if err != nil {
		return err
	}
	if d.Allowed {
		return nil
	}
	return e.capReached(ctx, svc, e164, limit, d)
}

// checkCapKey is the limiter key of a number's failed-check cap.
func checkCapKey(serviceID, e164 string) string { return "check:number:" + serviceID + ":" + e164 }

// errCapReached is what a check's apply returns when the failed-check cap
// refused its slot in the check's own transaction ([pv.SlotUpdater]).
var errCapReached = errors.New("verify: failed-check cap reached")

// capReached reports and returns a check refused by the failed-check cap,
// whose limiter refused with d.
func (e *Engine) capReached(ctx context.Context, svc *pv.Service, e164 string, limit pv.Limit, d pv.Decision) error {
	e.observer.Refused(svc.ID, "failed_checks")
	e.log.InfoContext(ctx, "check refused: too many codes tried for this number", "service_id", svc.ID,
		"to", phone.Mask(e164), "retry_after", ceilSecond(d.RetryAfter))
	return &pv.Error{Code: pv.ETooManyRequests, Param: "code", RetryAfter: ceilSecond(d.RetryAfter),
		Message: fmt.Sprintf("Too many codes were tried for this number: at most %d per %s. Try again later.", limit.Max, limit.Window)}
}

// ServiceLimits returns a service, with its own limits and geo permissions
// in svc.Limits, and the limits it runs with: its own over the server-wide
// defaults. It reads the store, not the service cache, so that what an
// operator just saved is what they read back. Returns ENotFound (param id)
// if there is no such service or it was deleted.
func (e *Engine) ServiceLimits(ctx context.Context, serviceID string) (*pv.Service, StartLimits, error) {
	svc, err := e.liveService(ctx, serviceID)
	if err != nil {
		return nil, StartLimits{}, err
	}
	return svc, e.effectiveLimits(svc), nil
}

// SetServiceLimits replaces every limit and geo permission of a service
// with l: a limit l leaves nil follows the server-wide default again, a
// zero one is off, and country codes are upper-cased and de-duplicated.
// Everything is checked before anything is written, and the limits are
// written together (in one statement where the store is a
// [pv.ServiceLimitsStore]), so a refused change leaves the service as it
// was. This node applies the new limits to the next start; other nodes once
// their service cache (Config.ServiceCacheTTL) lapses.
//
// Returns the service as saved and the limits it now runs with, as
// [Engine.ServiceLimits] does. Returns EInvalidRequest naming the first bad
// limit or country list, and ENotFound (param id) if there is no such
// service or it was deleted.
func (e *Engine) SetServiceLimits(ctx context.Context, serviceID string, l pv.ServiceLimits) (*pv.Service, StartLimits, error) {
	svc, err := e.liveService(ctx, serviceID)
	if err != nil {
		return nil, StartLimits{}, err
	}
	l.AllowCountries, l.DenyCountries = normalCountries(l.AllowCountries), normalCountries(l.DenyCountries)
	if err := ValidateLimits(&l); err != nil {
		return nil, StartLimits{}, err
	}
	now := e.Now()
	if ls, ok := e.store.(pv.ServiceLimitsStore); ok {
		err = ls.UpdateServiceLimits(ctx, svc.ID, &l, now)
	} else {
		readAt := svc.UpdatedAt
		svc.Limits, svc.UpdatedAt = l, now
		err = e.store.UpdateService(ctx, svc, readAt)
	}
	e.ForgetService(svc.ID)
	if err != nil {
		return nil, StartLimits{}, serviceNotFound(err)
	}
	e.log.InfoContext(ctx, "service limits replaced", "service_id", svc.ID)
	return e.ServiceLimits(ctx, svc.ID)
}

// ValidateLimits checks a service's limits and geo permissions: each limit
// and the shape of the country lists ([pv.ServiceLimits.Validate]), and
// that every country is one phone numbers are known for, so that a typo
// ("UK" for GB) is refused rather than silently blocking, or allowing,
// nothing. Returns EInvalidRequest naming the first bad limit or list.
func ValidateLimits(l *pv.ServiceLimits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	for _, list := range []struct {
		param string
		cc    []string
	}{{"allow_countries", l.AllowCountries}, {"deny_countries", l.DenyCountries}} {
		for _, c := range list.cc {
			if !phone.ValidRegion(c) {
				return pv.ParamErrorf(pv.EInvalidRequest, list.param, "%q is not a country phone numbers are known for; use ISO 3166 codes such as NP, GB or US.", c)
			}
		}
	}
	return nil
}

// normalCountries upper-cases and trims country codes and drops repeats,
// keeping the first of each; an empty list stays nil.
func normalCountries(cc []string) []string {
	var out []string
	for _, c := range cc {
		c = strings.ToUpper(strings.TrimSpace(c))
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// liveService reads a service from the store, refusing one that was
// deleted. Returns ENotFound (param id) for both.
func (e *Engine) liveService(ctx context.Context, id string) (*pv.Service, error) {
	if !validID(id, "VA") { // not even the shape of one: spare the store a malformed key
		return nil, serviceNotFound(pv.Errorf(pv.ENotFound, "No service has this id."))
	}
	svc, err := e.store.Service(ctx, id)
	if err != nil {
		return nil, serviceNotFound(err)
	}
	f, err := e.features(ctx, svc.ID)
	if err != nil {
		return nil, err
	}
	if f.DeletedAt != nil {
		return nil, pv.ParamErrorf(pv.ENotFound, "id", "This service was deleted.")
	}
	return svc, nil
}

// serviceNotFound names the id in a not_found error about a service.
func serviceNotFound(err error) error {
	if pv.ErrorCode(err) != pv.ENotFound {
		return err
	}
	return &pv.Error{Code: pv.ENotFound, Param: "id", Message: "No service has this id.", Err: err}
}
