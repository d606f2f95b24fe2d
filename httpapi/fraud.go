package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// fraudRoutes registers fraud protection's endpoints: its decisions and
// each service's settings, all for keys with the admin scope.
func (h *Handler) fraudRoutes() {
	h.route("GET /v1/fraud/decisions", h.auth(verify.ScopeAdmin, h.listFraudDecisions))
	h.route("GET /v1/services/{id}/fraud", h.auth(verify.ScopeAdmin, h.getFraudSettings))
	h.route("PUT /v1/services/{id}/fraud", h.auth(verify.ScopeAdmin, h.putFraudSettings))
}

// fraudDecisionJSON is one fraud decision; the number is masked.
type fraudDecisionJSON struct {
	ID          string    `json:"id"`
	ServiceID   string    `json:"service_id"`
	Reason      string    `json:"reason"`
	Action      string    `json:"action"`
	Prefix      string    `json:"prefix,omitempty"`
	Country     string    `json:"country,omitempty"`
	To          string    `json:"to,omitempty"`
	IP          string    `json:"ip,omitempty"`
	Unconverted int64     `json:"unconverted"`
	Budget      int64     `json:"budget"`
	Until       time.Time `json:"until"`
	CreatedAt   time.Time `json:"created_at"`
}

const maxDecisionsPage = 200

func (h *Handler) listFraudDecisions(w http.ResponseWriter, r *http.Request) {
	f, err := decisionFilter(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f.ServiceID = apiKey(r.Context()).ServiceID
	want := f.Limit
	f.Limit++ // one more tells whether there is a next page
	ds, err := h.engine.FraudDecisions(r.Context(), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := struct {
		Decisions     []fraudDecisionJSON `json:"decisions"`
		NextPageToken string              `json:"next_page_token,omitempty"`
	}{Decisions: []fraudDecisionJSON{}}
	for i, d := range ds {
		if i == want {
			out.NextPageToken = ds[i-1].ID
			break
		}
		out.Decisions = append(out.Decisions, fraudDecisionJSON{ID: d.ID, ServiceID: d.ServiceID, Reason: d.Reason,
			Action: d.Action, Prefix: d.Prefix, Country: d.Country, To: d.Phone, IP: d.IP, Unconverted: d.Unconverted,
			Budget: d.Budget, Until: d.Until.UTC(), CreatedAt: d.CreatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// decisionFilter reads the query's filters; a bad one is a 400 naming it.
func decisionFilter(r *http.Request) (pv.FraudDecisionFilter, error) {
	q := r.URL.Query()
	f := pv.FraudDecisionFilter{Limit: 50}
	for name := range q {
		switch name {
		case "reason", "action", "country", "prefix", "after", "before", "limit", "page_token":
		default:
			return f, pv.ParamErrorf(pv.EInvalidRequest, name, "Unknown parameter %q.", name)
		}
	}
	switch f.Reason = q.Get("reason"); f.Reason {
	case "", pv.FraudReasonPrefix, pv.FraudReasonCountry, pv.FraudReasonIP:
	default:
		return f, pv.ParamErrorf(pv.EInvalidRequest, "reason", "The reason must be fraud_prefix, fraud_country or fraud_ip.")
	}
	switch f.Action = q.Get("action"); f.Action {
	case "", "blocked", "monitored":
	default:
		return f, pv.ParamErrorf(pv.EInvalidRequest, "action", "The action must be blocked or monitored.")
	}
	if f.Country = strings.ToUpper(q.Get("country")); f.Country != "" && !isLetters(f.Country, 2) {
		return f, pv.ParamErrorf(pv.EInvalidRequest, "country", "The country must be an ISO 3166 code such as NP.")
	}
	if f.Prefix = q.Get("prefix"); f.Prefix != "" && !isPrefix(f.Prefix) {
		return f, pv.ParamErrorf(pv.EInvalidRequest, "prefix", "The prefix must be + and 1 to 15 digits.")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"after", &f.After}, {"before", &f.Before}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, pv.ParamErrorf(pv.EInvalidRequest, p.name, "The %s time must be RFC 3339, e.g. 2026-11-22T10:00:00Z.", p.name)
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDecisionsPage {
			return f, pv.ParamErrorf(pv.EInvalidRequest, "limit", "The limit must be between 1 and %d.", maxDecisionsPage)
		}
		f.Limit = n
	}
	if f.BeforeID = q.Get("page_token"); f.BeforeID != "" && !validPrefixedID(f.BeforeID, "FD") {
		return f, pv.ParamErrorf(pv.EInvalidRequest, "page_token", "The page token is not valid.")
	}
	return f, nil
}

func isLetters(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func isPrefix(s string) bool {
	if len(s) < 2 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validPrefixedID(id, prefix string) bool {
	if len(id) != len(prefix)+32 || !strings.HasPrefix(id, prefix) {
		return false
	}
	for _, c := range id[len(prefix):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// fraudSettingsJSON is a service's fraud settings; durations are Go
// duration strings ("24h").
type fraudSettingsJSON struct {
	ServiceID    string    `json:"service_id"`
	Mode         string    `json:"mode"`
	PrefixFloor  int       `json:"prefix_floor"`
	CountryFloor int       `json:"country_floor"`
	BudgetRatio  float64   `json:"budget_ratio"`
	Window       string    `json:"window"`
	Cooldown     string    `json:"cooldown"`
	IPCountries  int       `json:"ip_countries"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
}

// fraudSettingsRequest is the body of PUT: every field optional, an absent
// one takes its default.
type fraudSettingsRequest struct {
	Mode         string  `json:"mode"`
	PrefixFloor  int     `json:"prefix_floor"`
	CountryFloor int     `json:"country_floor"`
	BudgetRatio  float64 `json:"budget_ratio"`
	Window       string  `json:"window"`
	Cooldown     string  `json:"cooldown"`
	IPCountries  int     `json:"ip_countries"`
}

// managedService resolves the {id} of a service's settings routes (fraud,
// limits; "default" names the default service). A key may manage its own
// service; a key of the default service (the operator's) may manage any.
func (h *Handler) managedService(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "default" {
		id = h.engine.DefaultServiceID()
	}
	k := apiKey(r.Context())
	if id != k.ServiceID && k.ServiceID != h.engine.DefaultServiceID() {
		return "", pv.ParamErrorf(pv.ENotFound, "id", "No service has this id.")
	}
	return id, nil
}

func (h *Handler) getFraudSettings(w http.ResponseWriter, r *http.Request) {
	id, err := h.managedService(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s, err := h.engine.FraudSettings(r.Context(), id)
	if err != nil {
		h.writeError(w, r, notFoundID(err))
		return
	}
	writeJSON(w, http.StatusOK, toFraudSettingsJSON(s))
}

func (h *Handler) putFraudSettings(w http.ResponseWriter, r *http.Request) {
	id, err := h.managedService(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var req fraudSettingsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	s := &pv.FraudSettings{ServiceID: id, Mode: pv.FraudMode(req.Mode), PrefixFloor: req.PrefixFloor,
		CountryFloor: req.CountryFloor, BudgetRatio: req.BudgetRatio, IPCountries: req.IPCountries}
	for _, d := range []struct {
		name, v string
		dst     *time.Duration
	}{{"window", req.Window, &s.Window}, {"cooldown", req.Cooldown, &s.Cooldown}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, d.name, "The %s must be a positive duration such as 24h.", d.name))
			return
		}
		*d.dst = v
	}
	saved, err := h.engine.SaveFraudSettings(r.Context(), s)
	if err != nil {
		h.writeError(w, r, notFoundID(err))
		return
	}
	writeJSON(w, http.StatusOK, toFraudSettingsJSON(saved))
}

func notFoundID(err error) error {
	if e := pv.AsError(err); e != nil && e.Code == pv.ENotFound {
		return pv.ParamErrorf(pv.ENotFound, "id", "No service has this id.")
	}
	return err
}

func toFraudSettingsJSON(s *pv.FraudSettings) fraudSettingsJSON {
	out := fraudSettingsJSON{ServiceID: s.ServiceID, Mode: string(s.Mode), PrefixFloor: s.PrefixFloor,
		CountryFloor: s.CountryFloor, BudgetRatio: s.BudgetRatio, Window: s.Window.String(), Cooldown: s.Cooldown.String(),
		IPCountries: s.IPCountries}
	if !s.UpdatedAt.IsZero() && s.UpdatedAt.Unix() > 0 {
		out.UpdatedAt = s.UpdatedAt.UTC()
	}
	return out
}
