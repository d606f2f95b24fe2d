package twilioapi

import (
	"net/http"
	"strings"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// verificationJSON is Twilio's Verification resource.
type verificationJSON struct {
	Sid              string        `json:"sid"`
	ServiceSid       string        `json:"service_sid"`
	AccountSid       string        `json:"account_sid"`
	To               string        `json:"to"`
	Channel          string        `json:"channel"`
	Status           string        `json:"status"`
	Valid            bool          `json:"valid"`
	Lookup           any           `json:"lookup"`
	Amount           *string       `json:"amount"`
	Payee            *string       `json:"payee"`
	SendCodeAttempts []sendAttempt `json:"send_code_attempts"`
	DateCreated      string        `json:"date_created"`
	DateUpdated      string        `json:"date_updated"`
	Sna              any           `json:"sna"`
	URL              string        `json:"url"`
}

type sendAttempt struct {
	AttemptSid string `json:"attempt_sid"`
	Channel    string `json:"channel"`
	Time       string `json:"time"`
}

// checkJSON is Twilio's VerificationCheck resource.
type checkJSON struct {
	Sid                   string  `json:"sid"`
	ServiceSid            string  `json:"service_sid"`
	AccountSid            string  `json:"account_sid"`
	To                    string  `json:"to"`
	Channel               string  `json:"channel"`
	Status                string  `json:"status"`
	Valid                 bool    `json:"valid"`
	Amount                *string `json:"amount"`
	Payee                 *string `json:"payee"`
	DateCreated           string  `json:"date_created"`
	DateUpdated           string  `json:"date_updated"`
	SnaAttemptsErrorCodes any     `json:"sna_attempts_error_codes"`
}

// carrierType returns Twilio Lookup's carrier type for a line type.
func carrierType(t string) any {
	switch t {
	case "mobile", "fixed_line_or_mobile":
		return "mobile"
	case "fixed_line":
		return "landline"
	case "voip":
		return "voip"
	case "":
		return nil
	}
	return t
}

func (h *Handler) verificationResource(r *http.Request, v *pv.Verification, f *pv.ServiceFeatures) (verificationJSON, error) {
	attempts, err := h.engine.SendAttemptsOf(r.Context(), v.ID)
	if err != nil {
		return verificationJSON{}, err
	}
	out := verificationJSON{
		Sid: v.ID, ServiceSid: v.ServiceID, AccountSid: callerOf(r.Context()).accountSID, To: v.To,
		Channel: string(v.Channel), Status: string(v.Status), Valid: v.Status == pv.StatusApproved,
		Lookup: map[string]any{}, Amount: strOrNil(v.Amount), Payee: strOrNil(v.Payee),
		SendCodeAttempts: []sendAttempt{}, DateCreated: date(v.CreatedAt), DateUpdated: date(v.UpdatedAt),
		URL: baseURL(r) + "/v2/Services/" + v.ServiceID + "/Verifications/" + v.ID,
	}
	if f.LookupEnabled {
		out.Lookup = map[string]any{"carrier": map[string]any{
			"error_code": nil, "name": nil, "mobile_country_code": nil, "mobile_network_code": nil,
			"type": carrierType(h.engine.LookupType(v.To)),
		}}
	}
	for _, a := range attempts {
		out.SendCodeAttempts = append(out.SendCodeAttempts, sendAttempt{AttemptSid: a.ID, Channel: string(a.Channel), Time: date(a.CreatedAt)})
	}
	return out, nil
}

func (h *Handler) checkResource(r *http.Request, v *pv.Verification) checkJSON {
	return checkJSON{
		Sid: v.ID, ServiceSid: v.ServiceID, AccountSid: callerOf(r.Context()).accountSID, To: v.To,
		Channel: string(v.Channel), Status: string(v.Status), Valid: v.Status == pv.StatusApproved,
		Amount: strOrNil(v.Amount), Payee: strOrNil(v.Payee), DateCreated: date(v.CreatedAt), DateUpdated: date(v.UpdatedAt),
	}
}

// undeliverable are the channels Twilio knows that phoneverify cannot
// deliver: a start on one is refused as a disabled channel (60223).
func undeliverable(ch string) bool {
	switch ch {
	case "call", "voice", "email", "whatsapp", "sna", "auto", "rbm", "push", "totp":
		return true
	}
	return false
}

func (h *Handler) createVerification(w http.ResponseWriter, r *http.Request) {
	svc, f, err := h.service(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	req := verify.StartRequest{
		ServiceID: svc.ID, To: fm.str("To"), Locale: fm.str("Locale"), AppHash: fm.str("AppHash"),
		Amount: fm.str("Amount"), Payee: fm.str("Payee"), CustomCode: fm.str("CustomCode"),
		AppName: fm.str("CustomFriendlyName"), RateLimits: fm.object("RateLimits"),
	}
	fm.json("Tags")
	fm.json("ChannelConfiguration")
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	if strings.TrimSpace(req.To) == "" {
		h.writeError(w, r, errNoTarget)
		return
	}
	switch ch := strings.ToLower(strings.TrimSpace(fm.str("Channel"))); {
	case ch == "sms":
		req.Channel = ch
	case ch == "":
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "Channel", "The Channel is required; phoneverify delivers sms."))
		return
	case undeliverable(ch):
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "channel", "phoneverify delivers codes by SMS only; the %s channel is disabled.", ch))
		return
	default:
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "Channel", "Unknown channel; phoneverify delivers sms."))
		return
	}
	// RiskCheck "disable" skips fraud protection, as the native API's
	// risk_check does and under the same rule: the credentials' key must
	// hold the risk_check:override scope.
	if req.SkipRiskCheck, err = verify.RiskCheck(callerOf(r.Context()).key, fm.str("RiskCheck")); err != nil {
		h.writeError(w, r, err)
		return
	}
	if !f.PSD2Enabled && (req.Amount != "" || req.Payee != "") {
		param := "Amount"
		if req.Amount == "" {
			param = "Payee"
		}
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, param, "Amount and Payee need a service with Psd2Enabled."))
		return
	}
	v, err := h.engine.Start(r.Context(), req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeVerification(w, r, http.StatusCreated, v, f)
}

func (h *Handler) writeVerification(w http.ResponseWriter, r *http.Request, status int, v *pv.Verification, f *pv.ServiceFeatures) {
	res, err := h.verificationResource(r, v, f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, status, res)
}

// verification returns the verification a path names by VE SID or by the
// number it was sent to.
func (h *Handler) verification(r *http.Request, serviceID string) (*pv.Verification, error) {
	sid := r.PathValue("Sid")
	if strings.HasPrefix(sid, "VE") {
		return h.engine.Get(r.Context(), serviceID, sid)
	}
	return h.engine.Latest(r.Context(), serviceID, sid)
}

func (h *Handler) fetchVerification(w http.ResponseWriter, r *http.Request) {
	svc, f, err := h.service(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	v, err := h.verification(r, svc.ID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeVerification(w, r, http.StatusOK, v, f)
}

func (h *Handler) updateVerification(w http.ResponseWriter, r *http.Request) {
	svc, f, err := h.service(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status := fm.str("Status")
	if status != "canceled" && status != "approved" {
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "Status", "Status must be canceled or approved."))
		return
	}
	v, err := h.verification(r, svc.ID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if status == "canceled" {
		v, err = h.engine.Cancel(r.Context(), svc.ID, v.ID)
	} else {
		v, err = h.engine.Approve(r.Context(), svc.ID, v.ID)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeVerification(w, r, http.StatusOK, v, f)
}

func (h *Handler) checkVerification(w http.ResponseWriter, r *http.Request) {
	svc, _, err := h.service(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	req := verify.CheckRequest{ServiceID: svc.ID, ID: fm.str("VerificationSid"), Code: fm.str("Code"),
		Amount: fm.str("Amount"), Payee: fm.str("Payee")}
	if req.ID == "" {
		req.To = fm.str("To")
	}
	switch {
	case req.ID == "" && strings.TrimSpace(req.To) == "":
		h.writeError(w, r, errNoTarget)
		return
	case req.Code == "":
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "Code", "The Code is required."))
		return
	}
	res, err := h.engine.Check(r.Context(), req)
	if err == nil {
		writeJSON(w, http.StatusOK, h.checkResource(r, res.Verification))
		return
	}
	// A wrong code (or amount and payee other than those sent) leaves the
	// verification pending: Twilio answers 200 with valid false.
	if e := pv.AsError(err); e != nil && (e.Code == pv.EIncorrectCode || e.Code == pv.EForbidden && e.Param != "subject") &&
		e.AttemptsRemaining != nil && *e.AttemptsRemaining > 0 {
		var v *pv.Verification
		if req.ID != "" {
			v, err = h.engine.Get(r.Context(), svc.ID, req.ID)
		} else {
			v, err = h.engine.Latest(r.Context(), svc.ID, req.To)
		}
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, h.checkResource(r, v))
		return
	}
	h.writeError(w, r, err)
}
