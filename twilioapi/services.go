package twilioapi

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// serviceJSON is Twilio's Service resource.
type serviceJSON struct {
	Sid                            string            `json:"sid"`
	AccountSid                     string            `json:"account_sid"`
	FriendlyName                   string            `json:"friendly_name"`
	CodeLength                     int               `json:"code_length"`
	LookupEnabled                  bool              `json:"lookup_enabled"`
	Psd2Enabled                    bool              `json:"psd2_enabled"`
	SkipSmsToLandlines             bool              `json:"skip_sms_to_landlines"`
	DtmfInputRequired              bool              `json:"dtmf_input_required"`
	TtsName                        *string           `json:"tts_name"`
	DoNotShareWarningEnabled       bool              `json:"do_not_share_warning_enabled"`
	CustomCodeEnabled              bool              `json:"custom_code_enabled"`
	Push                           map[string]any    `json:"push"`
	Totp                           map[string]any    `json:"totp"`
	DefaultTemplateSid             *string           `json:"default_template_sid"`
	Whatsapp                       map[string]any    `json:"whatsapp"`
	Passkeys                       map[string]any    `json:"passkeys"`
	VerifyEventSubscriptionEnabled bool              `json:"verify_event_subscription_enabled"`
	DateCreated                    string            `json:"date_created"`
	DateUpdated                    string            `json:"date_updated"`
	URL                            string            `json:"url"`
	Links                          map[string]string `json:"links"`
}

// echoKind is the type of a setting phoneverify keeps and returns only.
type echoKind int

const (
	echoString echoKind = iota
	echoBool
	echoInt
)

// echoSettings lists the Service parameters phoneverify accepts and returns
// without acting on them (phoneverify delivers SMS only), by form name.
func echoSettings() map[string]echoKind {
	return map[string]echoKind{
		"DtmfInputRequired": echoBool, "TtsName": echoString, "DefaultTemplateSid": echoString,
		"VerifyEventSubscriptionEnabled": echoBool,
		"Push.IncludeDate":               echoBool, "Push.ApnCredentialSid": echoString, "Push.FcmCredentialSid": echoString,
		"Totp.Issuer": echoString, "Totp.TimeStep": echoInt, "Totp.CodeLength": echoInt, "Totp.Skew": echoInt,
		"Whatsapp.MsgServiceSid": echoString, "Whatsapp.From": echoString,
		"Passkeys.RelyingParty.Id": echoString, "Passkeys.RelyingParty.Name": echoString,
		"Passkeys.RelyingParty.Origins": echoString, "Passkeys.AuthenticatorAttachment": echoString,
		"Passkeys.DiscoverableCredentials": echoString, "Passkeys.UserVerification": echoString,
	}
}

// snake turns a Twilio name ("IncludeDate", "RelyingParty") into JSON's
// ("include_date", "relying_party").
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// echoGroup returns the nested object of one group of echoed settings
// ("Push"), with null for each setting never given.
func echoGroup(group string, echo map[string]string) map[string]any {
	out := map[string]any{}
	for name, kind := range echoSettings() {
		rest, ok := strings.CutPrefix(name, group+".")
		if !ok {
			continue
		}
		parts := strings.Split(rest, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			sub, _ := m[snake(p)].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				m[snake(p)] = sub
			}
			m = sub
		}
		m[snake(parts[len(parts)-1])] = echoValue(echo, name, kind)
	}
	return out
}

func echoValue(echo map[string]string, name string, kind echoKind) any {
	s, ok := echo[name]
	if !ok {
		return nil
	}
	switch kind {
	case echoBool:
		b, _ := strconv.ParseBool(s)
		return b
	case echoInt:
		n, _ := strconv.Atoi(s)
		return n
	}
	return s
}

func (h *Handler) serviceResource(r *http.Request, svc *pv.Service, f *pv.ServiceFeatures) serviceJSON {
	u := baseURL(r) + "/v2/Services/" + svc.ID
	echoBoolean := func(name string) bool { b, _ := echoValue(f.Echo, name, echoBool).(bool); return b }
	echoStr := func(name string) *string { s, _ := echoValue(f.Echo, name, echoString).(string); return strOrNil(s) }
	return serviceJSON{
		Sid: svc.ID, AccountSid: callerOf(r.Context()).accountSID, FriendlyName: svc.Name, CodeLength: svc.CodeLength,
		LookupEnabled: f.LookupEnabled, Psd2Enabled: f.PSD2Enabled, SkipSmsToLandlines: f.SkipSMSToLandlines,
		DtmfInputRequired: echoBoolean("DtmfInputRequired"), TtsName: echoStr("TtsName"),
		DoNotShareWarningEnabled: f.DoNotShareWarning, CustomCodeEnabled: f.CustomCodeEnabled,
		Push: echoGroup("Push", f.Echo), Totp: echoGroup("Totp", f.Echo), DefaultTemplateSid: echoStr("DefaultTemplateSid"),
		Whatsapp: echoGroup("Whatsapp", f.Echo), Passkeys: echoGroup("Passkeys", f.Echo),
		VerifyEventSubscriptionEnabled: echoBoolean("VerifyEventSubscriptionEnabled"),
		DateCreated:                    date(svc.CreatedAt), DateUpdated: date(svc.UpdatedAt), URL: u,
		Links: map[string]string{
			"verification_checks":      u + "/VerificationCheck",
			"verifications":            u + "/Verifications",
			"rate_limits":              u + "/RateLimits",
			"access_tokens":            u + "/AccessTokens",
			"entities":                 u + "/Entities",
			"messaging_configurations": u + "/MessagingConfigurations",
			"webhooks":                 u + "/Webhooks",
		},
	}
}

// applyServiceForm copies the parameters a request gives into svc and f.
func applyServiceForm(fm *form, svc *pv.Service, f *pv.ServiceFeatures) {
	if fm.has("FriendlyName") {
		svc.Name = fm.str("FriendlyName")
	}
	if n := fm.integer("CodeLength"); n != nil {
		svc.CodeLength = *n
	}
	for name, dst := range map[string]*bool{
		"LookupEnabled": &f.LookupEnabled, "SkipSmsToLandlines": &f.SkipSMSToLandlines, "Psd2Enabled": &f.PSD2Enabled,
		"DoNotShareWarningEnabled": &f.DoNotShareWarning, "CustomCodeEnabled": &f.CustomCodeEnabled,
	} {
		if b := fm.boolean(name); b != nil {
			*dst = *b
		}
	}
	for name, kind := range echoSettings() {
		if !fm.has(name) {
			continue
		}
		switch kind {
		case echoBool:
			if b := fm.boolean(name); b != nil {
				setEcho(f, name, strconv.FormatBool(*b))
			}
		case echoInt:
			if n := fm.integer(name); n != nil {
				setEcho(f, name, strconv.Itoa(*n))
			}
		default:
			setEcho(f, name, fm.str(name))
		}
	}
}

func setEcho(f *pv.ServiceFeatures, name, value string) {
	if f.Echo == nil {
		f.Echo = map[string]string{}
	}
	f.Echo[name] = value
}

func (h *Handler) createService(w http.ResponseWriter, r *http.Request) {
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(fm.str("FriendlyName")) == "" {
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "FriendlyName", "A service needs a FriendlyName."))
		return
	}
	svc, f := pv.NewService(""), &pv.ServiceFeatures{}
	applyServiceForm(fm, svc, f)
	if err := fm.err; err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := verify.ValidateFeatures(f); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.engine.CreateService(r.Context(), svc, f); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.serviceResource(r, svc, f))
}

func (h *Handler) fetchService(w http.ResponseWriter, r *http.Request) {
	svc, f, err := h.service(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.serviceResource(r, svc, f))
}

// updateService changes the settings the form names and keeps the others as
// they are when it writes, a concurrent change of the service included
// ([verify.Engine.ChangeService]).
func (h *Handler) updateService(w http.ResponseWriter, r *http.Request) {
	if _, _, err := h.service(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	svc, f, err := h.engine.ChangeService(r.Context(), r.PathValue("ServiceSid"), func(svc *pv.Service, f *pv.ServiceFeatures) error {
		applyServiceForm(fm, svc, f)
		if fm.err != nil {
			return fm.err
		}
		return verify.ValidateFeatures(f)
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.serviceResource(r, svc, f))
}

func (h *Handler) deleteService(w http.ResponseWriter, r *http.Request) {
	if _, _, err := h.service(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.engine.DeleteService(r.Context(), r.PathValue("ServiceSid")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) listServices(w http.ResponseWriter, r *http.Request) {
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	p := newPager(r, fm)
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	svcs, feats, err := h.engine.Services(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	c := callerOf(r.Context())
	out := []serviceJSON{}
	var visible []int
	for i, s := range svcs {
		if s.ID == c.key.ServiceID || verify.HasScope(c.key, verify.ScopeAdmin) {
			visible = append(visible, i)
		}
	}
	lo, hi := p.window(len(visible))
	for _, i := range visible[lo:hi] {
		out = append(out, h.serviceResource(r, svcs[i], feats[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out, "meta": p.meta("services", hi < len(visible))})
}
