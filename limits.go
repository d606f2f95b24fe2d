package phoneverify

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ServiceLimits are one service's own abuse limits, layered on top of the
// per-number send window (Service.MaxSends per Service.SendWindow). Each
// limit is a pointer: nil means "use the server-wide default" (set by the
// operator's environment), a non-nil zero [Limit] turns the limit off for
// this service, and anything else replaces the default. That way a service
// created before a default changed still follows it, and one that opted out
// stays out.
type ServiceLimits struct {
	// PerNumberDay caps the codes sent to one number over a longer window
	// than SendWindow (e.g. 10 per 24h), so that a slow drip of resends
	// still ends.
	PerNumberDay *Limit `json:"per_number_day,omitempty"`
	// PerIP caps starts from one client address (IPv4) or /64 (IPv6).
	PerIP *Limit `json:"per_ip,omitempty"`
	// PerSubject caps starts naming one subject, whatever the number.
	PerSubject *Limit `json:"per_subject,omitempty"`
	// PerCountry caps starts for numbers of one destination country.
	PerCountry *Limit `json:"per_country,omitempty"`
	// BudgetHour and BudgetDay are the service's SMS budget: codes sent,
	// over all numbers. Reaching one trips the service's breaker: every
	// start is refused until the window has room, and an alert is raised.
	BudgetHour *Limit `json:"budget_hour,omitempty"`
	BudgetDay  *Limit `json:"budget_day,omitempty"`
	// FailedChecks caps the codes compared for one number, across all its
	// verifications, so that cycling start and check cannot multiply
	// guesses.
	FailedChecks *Limit `json:"failed_checks,omitempty"`
	// AllowCountries, when not empty, are the only ISO countries codes may
	// be sent to; DenyCountries are countries they may never be sent to.
	// At most one of the two is set.
	AllowCountries []string `json:"allow_countries,omitempty"`
	DenyCountries  []string `json:"deny_countries,omitempty"`
}

// ServiceLimitsStore is a [Store] that replaces a service's limits alone,
// in one statement: a change of limits then never writes back the other
// settings of the service as they stood when it was read, so it cannot
// undo a concurrent change of them (and, as it moves UpdatedAt on, a
// concurrent [Store.UpdateService] from an older read gets EConflict
// instead of undoing it). The engine uses it when the store has it, and a
// read and [Store.UpdateService] otherwise.
type ServiceLimitsStore interface {
	// UpdateServiceLimits replaces every limit and geo permission of the
	// service serviceID with l and sets its UpdatedAt to at, or to a
	// millisecond past the stored one if at is not later. Returns
	// ENotFound if there is no such service.
	UpdateServiceLimits(ctx context.Context, serviceID string, l *ServiceLimits, at time.Time) error
}

// LimitNames lists the limits of [ServiceLimits] by their stable names,
// which the service API, the CLI and the store use.
var LimitNames = []string{"per_number_day", "per_ip", "per_subject", "per_country", "budget_hour", "budget_day", "failed_checks"}

// Field returns the address of the limit named name (one of [LimitNames]),
// or nil for an unknown name.
func (l *ServiceLimits) Field(name string) **Limit {
	switch name {
	case "per_number_day":
		return &l.PerNumberDay
	case "per_ip":
		return &l.PerIP
	case "per_subject":
		return &l.PerSubject
	case "per_country":
		return &l.PerCountry
	case "budget_hour":
		return &l.BudgetHour
	case "budget_day":
		return &l.BudgetDay
	case "failed_checks":
		return &l.FailedChecks
	}
	return nil
}

// Validate returns an invalid_request error naming the first bad limit or
// country list.
func (l *ServiceLimits) Validate() error {
	for _, name := range LimitNames {
		p := *l.Field(name)
		if p == nil || p.Off() {
			continue
		}
		if err := p.Validate(); err != nil {
			return ParamErrorf(EInvalidRequest, name, "The %s limit is invalid: %v.", name, err)
		}
	}
	for _, b := range []struct {
		name string
		want time.Duration
		l    *Limit
	}{{"budget_hour", time.Hour, l.BudgetHour}, {"budget_day", 24 * time.Hour, l.BudgetDay}} {
		if b.l != nil && !b.l.Off() && b.l.Window != b.want {
			return ParamErrorf(EInvalidRequest, b.name, "The %s budget counts over %s.", b.name, b.want)
		}
	}
	if len(l.AllowCountries) > 0 && len(l.DenyCountries) > 0 {
		return ParamErrorf(EInvalidRequest, "allow_countries", "Give an allow-list or a deny-list of countries, not both.")
	}
	for _, list := range []struct {
		param string
		cc    []string
	}{{"allow_countries", l.AllowCountries}, {"deny_countries", l.DenyCountries}} {
		if len(list.cc) > 300 {
			return ParamErrorf(EInvalidRequest, list.param, "A country list may hold at most 300 codes.")
		}
		for _, c := range list.cc {
			if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
				return ParamErrorf(EInvalidRequest, list.param, "%q is not an ISO country code such as NP or US.", c)
			}
		}
	}
	return nil
}

// CountryAllowed reports whether codes may be sent to numbers of country
// (an ISO code such as "NP").
func (l *ServiceLimits) CountryAllowed(country string) bool {
	country = strings.ToUpper(country)
	if len(l.AllowCountries) > 0 {
		for _, c := range l.AllowCountries {
			if c == country {
				return true
			}
		}
		return false
	}
	for _, c := range l.DenyCountries {
		if c == country {
			return false
		}
	}
	return true
}

// ParseCountries reads a comma-separated list of ISO country codes
// ("NP, in,US"), upper-casing them; "" and "none" are the empty list.
func ParseCountries(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range strings.Split(s, ",") {
		c = strings.ToUpper(strings.TrimSpace(c))
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			return nil, fmt.Errorf("%q is not an ISO country code such as NP or US", c)
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// LimitSetting renders a limit pointer for display: "default" for nil,
// else [Limit.String].
func LimitSetting(l *Limit) string {
	if l == nil {
		return "default"
	}
	return l.String()
}

// ParseLimitSetting reads what [LimitSetting] writes: "default" (nil), or
// anything [ParseLimit] reads.
func ParseLimitSetting(s string) (*Limit, error) {
	if strings.EqualFold(strings.TrimSpace(s), "default") {
		return nil, nil
	}
	l, err := ParseLimit(s)
	if err != nil {
		return nil, err
	}
	return &l, nil
}
