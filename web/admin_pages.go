package web

import (
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/phone"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// ranges are the windows the overview offers.
func ranges() []struct {
	Name string
	D    time.Duration
} {
	return []struct {
		Name string
		D    time.Duration
	}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}
}

type groupRow struct {
	Key, Label string
	store.Counts
}

type overviewData struct {
	Range     string
	Ranges    []string
	Window    store.Window
	Total     store.Counts
	Chart     template.HTML
	Hours     []store.HourCounts
	Countries []groupRow
	Services  []groupRow
	Gateways  []Gateway
	Fraud     fraudSection
}

// serviceNames maps service ids to names.
func (a *admin) serviceNames(r *http.Request) map[string]string {
	names := map[string]string{}
	svcs, err := a.store.Services(r.Context())
	if err != nil {
		a.log.WarnContext(r.Context(), "admin: listing services", "error", err)
	}
	for _, s := range svcs {
		names[s.ID] = s.Name
	}
	return names
}

// unavailable renders the page that says the database did not answer.
func (a *admin) unavailable(w http.ResponseWriter, r *http.Request, s *adminSession, err error) {
	a.log.ErrorContext(r.Context(), "admin: reading the store", "error", err)
	v := a.view(w, r, s, "Unavailable", "")
	v.Alert = "The data could not be read: " + pv.ErrorMessage(err) + " Try again in a moment."
	a.render.render(w, http.StatusServiceUnavailable, "error", v)
}

func (a *admin) overview(w http.ResponseWriter, r *http.Request, s *adminSession) {
	ctx := r.Context()
	d := overviewData{Range: "24h", Gateways: a.gateways}
	span := 24 * time.Hour
	for _, rg := range ranges() {
		d.Ranges = append(d.Ranges, rg.Name)
		if rg.Name == r.URL.Query().Get("range") {
			d.Range, span = rg.Name, rg.D
		}
	}
	now := a.now().UTC()
	// From a whole hour, so the chart's bars are whole hours; to this very
	// millisecond included (the window is half-open).
	d.Window = store.Window{Since: now.Truncate(time.Hour).Add(time.Hour - span), Until: now.Add(time.Millisecond)}
	var err error
	if d.Total, err = a.store.VerificationCounts(ctx, d.Window); err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	if d.Hours, err = a.store.HourlyVerificationCounts(ctx, d.Window); err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	d.Chart = hourlyChart(d.Hours)
	countries, err := a.store.VerificationCountsBy(ctx, store.ByCountry, d.Window, 50)
	if err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	for _, g := range countries {
		label := g.Key
		if label == "" {
			label = "unknown (test numbers)"
		}
		d.Countries = append(d.Countries, groupRow{Key: g.Key, Label: label, Counts: g.Counts})
	}
	services, err := a.store.VerificationCountsBy(ctx, store.ByService, d.Window, 50)
	if err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	names := a.serviceNames(r)
	for _, g := range services {
		label := names[g.Key]
		if label == "" {
			label = g.Key
		}
		d.Services = append(d.Services, groupRow{Key: g.Key, Label: label, Counts: g.Counts})
	}
	if d.Fraud, err = a.fraudSection(ctx, names); err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	v := a.view(w, r, s, "Overview", "overview")
	v.Data = d
	a.render.render(w, http.StatusOK, "admin_overview", v)
}

// verificationRow is a verification as the dashboard shows it: the number
// masked, never the code (which the store does not have) nor its hash.
type verificationRow struct {
	ID, Service, To, Country, Status, Subject, Amount, Payee string
	SendCount, Attempts, MaxAttempts                         int
	CreatedAt, UpdatedAt, ExpiresAt                          time.Time
}

func (a *admin) row(v *pv.Verification, names map[string]string) verificationRow {
	svc := names[v.ServiceID]
	if svc == "" {
		svc = v.ServiceID
	}
	return verificationRow{ID: v.ID, Service: svc, To: phone.Mask(v.To), Country: v.Country,
		Status: string(v.StatusAt(a.now())), Subject: v.Subject, Amount: v.Amount, Payee: v.Payee,
		SendCount: v.SendCount, Attempts: v.Attempts, MaxAttempts: v.MaxAttempts,
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, ExpiresAt: v.ExpiresAt}
}

func statuses() []string {
	return []string{string(pv.StatusPending), string(pv.StatusApproved), string(pv.StatusCanceled),
		string(pv.StatusExpired), string(pv.StatusMaxAttemptsReached), string(pv.StatusFailed)}
}

type verificationsData struct {
	Status   string
	Statuses []string
	Rows     []verificationRow
}

func (a *admin) verifications(w http.ResponseWriter, r *http.Request, s *adminSession) {
	status := r.URL.Query().Get("status")
	if !slices.Contains(statuses(), status) {
		status = ""
	}
	list, err := a.store.RecentVerifications(r.Context(), pv.Status(status), 100)
	if err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	names := a.serviceNames(r)
	d := verificationsData{Status: status, Statuses: statuses()}
	for _, v := range list {
		d.Rows = append(d.Rows, a.row(v, names))
	}
	v := a.view(w, r, s, "Recent verifications", "verifications")
	v.Data = d
	a.render.render(w, http.StatusOK, "admin_verifications", v)
}

// event is one step of a verification's history.
type event struct {
	At   time.Time
	What string
}

type verificationData struct {
	V      verificationRow
	Events []event
}

// history derives a verification's status history from its row: the store
// keeps one row per verification, with when it started, how many codes were
// sent, how many checks were made and when it last changed, not one row per
// event.
func history(v verificationRow) []event {
	ev := []event{{At: v.CreatedAt, What: "Started: the first code was sent (pending)."}}
	if v.SendCount > 1 {
		ev = append(ev, event{What: "Resent " + plural(v.SendCount-1, "time") + ": each resend sent a new code and the one before stopped working."})
	}
	if v.Attempts > 0 {
		ev = append(ev, event{What: plural(v.Attempts, "check") + " made, of at most " + strconv.Itoa(v.MaxAttempts) + "."})
	}
	switch pv.Status(v.Status) {
	case pv.StatusPending:
		ev = append(ev, event{At: v.ExpiresAt, What: "Pending: the code expires then."})
	case pv.StatusApproved:
		ev = append(ev, event{At: v.UpdatedAt, What: "Approved: the right code was checked and a proof issued."})
	case pv.StatusExpired:
		ev = append(ev, event{At: v.ExpiresAt, What: "Expired: the code lapsed unused."})
	case pv.StatusCanceled:
		ev = append(ev, event{At: v.UpdatedAt, What: "Canceled: canceled through the API, or replaced by a start with other bindings."})
	case pv.StatusMaxAttemptsReached:
		ev = append(ev, event{At: v.UpdatedAt, What: "Closed: every check attempt was used."})
	case pv.StatusFailed:
		ev = append(ev, event{At: v.UpdatedAt, What: "Failed: the message could not be delivered."})
	}
	return ev
}

func (a *admin) verification(w http.ResponseWriter, r *http.Request, s *adminSession) {
	ver, err := a.store.VerificationByID(r.Context(), r.PathValue("id"))
	if pv.ErrorCode(err) == pv.ENotFound {
		v := a.view(w, r, s, "Verification not found", "verifications")
		v.Alert = "No verification has this id."
		a.render.render(w, http.StatusNotFound, "error", v)
		return
	}
	if err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	row := a.row(ver, a.serviceNames(r))
	v := a.view(w, r, s, "Verification "+row.ID, "verifications")
	v.Data = verificationData{V: row, Events: history(row)}
	a.render.render(w, http.StatusOK, "admin_verification", v)
}

type keyRow struct {
	ID, Name, Prefix, Service, Scopes string
	// AllowedIPs lists the address ranges the key is accepted from, ""
	// for anywhere.
	AllowedIPs           string
	CreatedAt, RevokedAt time.Time
	LastUsedAt           *time.Time
	Revoked              bool
}

type keysData struct {
	Keys     []keyRow
	Services []*pv.Service
	Scopes   []string
	// Created is the key just made, shown this once.
	Created string
	// CreatedTwilio is the Twilio-compatible credentials just made, shown
	// this once.
	CreatedTwilio *verify.CompatCredentials
	// revoked is the id of a key just revoked.
	revoked string
}

func (a *admin) keysPage(w http.ResponseWriter, r *http.Request, s *adminSession, status int, v *view) {
	ctx := r.Context()
	keys, err := a.store.APIKeys(ctx)
	if err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	svcs, err := a.store.Services(ctx)
	if err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	names := map[string]string{}
	for _, svc := range svcs {
		names[svc.ID] = svc.Name
	}
	d, _ := v.Data.(keysData)
	d.Services, d.Scopes = svcs, append(slices.Clone(verify.AllScopes), verify.ScopeRiskCheckOverride)
	// Newest first.
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		ranges := make([]string, len(k.AllowedIPs))
		for i, p := range k.AllowedIPs {
			ranges[i] = p.String()
		}
		d.Keys = append(d.Keys, keyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Service: names[k.ServiceID],
			Scopes: strings.Join(k.Scopes, ", "), AllowedIPs: strings.Join(ranges, ", "), CreatedAt: k.CreatedAt,
			LastUsedAt: k.LastUsedAt, Revoked: k.RevokedAt != nil})
		if k.RevokedAt != nil {
			d.Keys[len(d.Keys)-1].RevokedAt = *k.RevokedAt
		}
		if k.ID == d.revoked && k.RevokedAt != nil {
			v.Notice = "The key “" + k.Name + "” is revoked: it stopped working at once."
		}
	}
	v.Data = d
	a.render.render(w, status, "admin_keys", v)
}

func (a *admin) keys(w http.ResponseWriter, r *http.Request, s *adminSession) {
	v := a.view(w, r, s, "API keys", "keys")
	v.Data = keysData{revoked: r.URL.Query().Get("revoked")}
	a.keysPage(w, r, s, http.StatusOK, v)
}

func (a *admin) createKey(w http.ResponseWriter, r *http.Request, s *adminSession) {
	v := a.view(w, r, s, "API keys", "keys")
	name := strings.TrimSpace(r.PostFormValue("name"))
	serviceID := r.PostFormValue("service")
	scopes := r.PostForm["scope"]
	kind := r.PostFormValue("kind")
	v.Form["name"], v.Form["service"], v.Form["kind"] = name, serviceID, kind
	v.Form["allowed_ips"] = strings.TrimSpace(r.PostFormValue("allowed_ips"))
	allowed, err := verify.ParseAllowedIPs(v.Form["allowed_ips"])
	if err != nil {
		v.Errors["allowed_ips"] = pv.ErrorMessage(err)
	}
	if name == "" {
		v.Errors["name"] = "Name the key after what will use it, such as “checkout app”."
	}
	if len(scopes) == 0 {
		v.Errors["scope"] = "Choose at least one scope."
	}
	if kind != "" && kind != "api" && kind != "twilio" {
		v.Errors["kind"] = "Choose a phoneverify API key or Twilio-compatible credentials."
	}
	if len(v.Errors) > 0 {
		a.keysPage(w, r, s, http.StatusUnprocessableEntity, v)
		return
	}
	var (
		raw   string
		creds *verify.CompatCredentials
		k     *pv.APIKey
	)
	if kind == "twilio" {
		creds, k, err = a.engine.CreateCompatKeyWithScopes(r.Context(), serviceID, name, scopes, allowed)
	} else {
		raw, k, err = a.engine.CreateAPIKeyWithIPs(r.Context(), serviceID, name, scopes, allowed)
	}
	if err != nil {
		e := pv.AsError(err)
		switch {
		case e != nil && e.Param == "name":
			v.Errors["name"] = e.Message
		case e != nil && e.Param == "scopes":
			v.Errors["scope"] = e.Message
		case e != nil && e.Param == "allowed_ips":
			v.Errors["allowed_ips"] = e.Message
		case pv.ErrorCode(err) == pv.ENotFound:
			v.Errors["service"] = "Choose a service."
		default:
			a.unavailable(w, r, s, err)
			return
		}
		a.keysPage(w, r, s, http.StatusUnprocessableEntity, v)
		return
	}
	a.log.InfoContext(r.Context(), "admin created an API key", "key_id", k.ID, "by", s.Who)
	v.Notice = "The key “" + k.Name + "” was created. Copy it now: it is shown only this once."
	v.Data = keysData{Created: raw, CreatedTwilio: creds}
	v.Form = map[string]string{}
	a.keysPage(w, r, s, http.StatusCreated, v)
}

func (a *admin) revokeKey(w http.ResponseWriter, r *http.Request, s *adminSession) {
	id := r.PathValue("id")
	err := a.engine.RevokeAPIKey(r.Context(), id)
	if pv.ErrorCode(err) == pv.ENotFound {
		v := a.view(w, r, s, "API keys", "keys")
		v.Alert = "There is no such key."
		a.keysPage(w, r, s, http.StatusNotFound, v)
		return
	}
	if err != nil {
		a.unavailable(w, r, s, err)
		return
	}
	a.log.InfoContext(r.Context(), "admin revoked an API key", "key_id", id, "by", s.Who)
	redirect(w, r, "/admin/keys?revoked="+id)
}
