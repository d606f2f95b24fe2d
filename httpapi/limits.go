package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// limitsRoutes registers each service's abuse limits and geo permissions,
// for keys with the admin scope: the same settings as the CLI's service
// flags (--per-ip, --allow-countries, …), in one resource, since the
// country lists are kept and replaced with the limits.
func (h *Handler) limitsRoutes() {
	h.route("GET /v1/services/{id}/limits", h.auth(verify.ScopeAdmin, h.getServiceLimits))
	h.route("PUT /v1/services/{id}/limits", h.auth(verify.ScopeAdmin, h.putServiceLimits))
}

// serviceLimitsJSON is a service's limits: each as the service sets it
// ("default", "off" or "N/DURATION" such as "10/24h0m0s"), the geo lists,
// and under effective the limit in force for each ("off" or N/DURATION).
type serviceLimitsJSON struct {
	ServiceID      string            `json:"service_id"`
	PerNumberDay   string            `json:"per_number_day"`
	PerIP          string            `json:"per_ip"`
	PerSubject     string            `json:"per_subject"`
	PerCountry     string            `json:"per_country"`
	BudgetHour     string            `json:"budget_hour"`
	BudgetDay      string            `json:"budget_day"`
	FailedChecks   string            `json:"failed_checks"`
	AllowCountries []string          `json:"allow_countries"`
	DenyCountries  []string          `json:"deny_countries"`
	Effective      map[string]string `json:"effective"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// serviceLimitsRequest is the body of PUT: it replaces every limit and
// both lists. A limit left out (or null) follows the default; a list left
// out is empty.
type serviceLimitsRequest struct {
	PerNumberDay   *string  `json:"per_number_day"`
	PerIP          *string  `json:"per_ip"`
	PerSubject     *string  `json:"per_subject"`
	PerCountry     *string  `json:"per_country"`
	BudgetHour     *string  `json:"budget_hour"`
	BudgetDay      *string  `json:"budget_day"`
	FailedChecks   *string  `json:"failed_checks"`
	AllowCountries []string `json:"allow_countries"`
	DenyCountries  []string `json:"deny_countries"`
}

func (h *Handler) getServiceLimits(w http.ResponseWriter, r *http.Request) {
	id, err := h.managedService(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	svc, eff, err := h.engine.ServiceLimits(r.Context(), id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toServiceLimitsJSON(svc, eff))
}

func (h *Handler) putServiceLimits(w http.ResponseWriter, r *http.Request) {
	id, err := h.managedService(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var req serviceLimitsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	l, err := req.limits()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	svc, eff, err := h.engine.SetServiceLimits(r.Context(), id, l)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toServiceLimitsJSON(svc, eff))
}

// limits reads the request into the service's limits; a limit that does
// not parse is a 400 naming it. An empty string is refused: it would
// otherwise read as off, the opposite of leaving the field out.
func (req *serviceLimitsRequest) limits() (pv.ServiceLimits, error) {
	l := pv.ServiceLimits{AllowCountries: req.AllowCountries, DenyCountries: req.DenyCountries}
	for _, f := range []struct {
		name string
		v    *string
	}{
		{"per_number_day", req.PerNumberDay}, {"per_ip", req.PerIP}, {"per_subject", req.PerSubject},
		{"per_country", req.PerCountry}, {"budget_hour", req.BudgetHour}, {"budget_day", req.BudgetDay},
		{"failed_checks", req.FailedChecks},
	} {
		if f.v == nil {
			continue
		}
		lim, err := pv.ParseLimitSetting(*f.v)
		if err == nil && strings.TrimSpace(*f.v) == "" {
			err = errors.New("the limit is empty")
		}
		if err != nil {
			return l, &pv.Error{Code: pv.EInvalidRequest, Param: f.name, Err: err,
				Message: fmt.Sprintf(`The %s limit must be "default", "off" or N/DURATION such as "10/24h": a count of 1 to %d and a window of at least 1ms.`, f.name, pv.MaxLimitEvents)}
		}
		*l.Field(f.name) = lim
	}
	return l, nil
}

func toServiceLimitsJSON(svc *pv.Service, eff verify.StartLimits) serviceLimitsJSON {
	l := &svc.Limits
	out := serviceLimitsJSON{
		ServiceID:      svc.ID,
		PerNumberDay:   pv.LimitSetting(l.PerNumberDay),
		PerIP:          pv.LimitSetting(l.PerIP),
		PerSubject:     pv.LimitSetting(l.PerSubject),
		PerCountry:     pv.LimitSetting(l.PerCountry),
		BudgetHour:     pv.LimitSetting(l.BudgetHour),
		BudgetDay:      pv.LimitSetting(l.BudgetDay),
		FailedChecks:   pv.LimitSetting(l.FailedChecks),
		AllowCountries: nonNil(l.AllowCountries),
		DenyCountries:  nonNil(l.DenyCountries),
		Effective:      map[string]string{},
		UpdatedAt:      svc.UpdatedAt.UTC(),
	}
	for _, name := range pv.LimitNames {
		out.Effective[name] = eff.Limit(name).String()
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
