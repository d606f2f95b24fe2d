package httpapi

import (
	"net/http"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

type startRequest struct {
	To      string `json:"to"`
	Channel string `json:"channel"`
	Locale  string `json:"locale"`
	Subject string `json:"subject"`
	AppHash string `json:"app_hash"`
	Amount  string `json:"amount"`
	Payee   string `json:"payee"`
	// RiskCheck "disable" skips fraud protection; it needs a key with the
	// risk_check:override scope.
	RiskCheck string `json:"risk_check"`
}

type checkRequest struct {
	ID      string `json:"id"`
	To      string `json:"to"`
	Code    string `json:"code"`
	Subject string `json:"subject"`
	Amount  string `json:"amount"`
	Payee   string `json:"payee"`
}

// verificationJSON is the verification resource. It never carries the code
// or its hash.
type verificationJSON struct {
	ID                string    `json:"id"`
	ServiceID         string    `json:"service_id"`
	To                string    `json:"to"`
	Channel           string    `json:"channel"`
	Status            string    `json:"status"`
	Subject           string    `json:"subject,omitempty"`
	Amount            string    `json:"amount,omitempty"`
	Payee             string    `json:"payee,omitempty"`
	Locale            string    `json:"locale,omitempty"`
	SendCount         int       `json:"send_count"`
	Attempts          int       `json:"attempts"`
	AttemptsRemaining int       `json:"attempts_remaining"`
	ExpiresAt         time.Time `json:"expires_at"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

func toJSON(v *pv.Verification) verificationJSON {
	return verificationJSON{
		ID: v.ID, ServiceID: v.ServiceID, To: v.To, Channel: string(v.Channel), Status: string(v.Status),
		Subject: v.Subject, Amount: v.Amount, Payee: v.Payee, Locale: v.Locale,
		SendCount: v.SendCount, Attempts: v.Attempts, AttemptsRemaining: v.AttemptsRemaining(),
		ExpiresAt: v.ExpiresAt.UTC(), CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(),
	}
}

func (h *Handler) startVerification(w http.ResponseWriter, r *http.Request) {
	var req startRequest
	if err := decodeJSON(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	skipRisk, err := verify.RiskCheck(apiKey(r.Context()), req.RiskCheck)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	v, err := h.engine.Start(r.Context(), verify.StartRequest{
		ServiceID: apiKey(r.Context()).ServiceID, To: req.To, Channel: req.Channel, Locale: req.Locale,
		Subject: req.Subject, AppHash: req.AppHash, Amount: req.Amount, Payee: req.Payee,
		ClientIP: h.clientIP(r), SkipRiskCheck: skipRisk,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/verifications/"+v.ID)
	writeJSON(w, http.StatusCreated, toJSON(v))
}

// messageJSON is one entry of a verification's message history. It never
// carries the text or the code.
type messageJSON struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Gateway    string    `json:"gateway,omitempty"`
	ProviderID string    `json:"provider_id,omitempty"`
	Error      string    `json:"error,omitempty"`
	Attempts   int       `json:"attempts"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

type verificationDetailJSON struct {
	verificationJSON
	Messages []messageJSON `json:"messages"`
}

func (h *Handler) getVerification(w http.ResponseWriter, r *http.Request) {
	serviceID := apiKey(r.Context()).ServiceID
	v, err := h.engine.Get(r.Context(), serviceID, r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	msgs, err := h.engine.Messages(r.Context(), serviceID, v.ID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := verificationDetailJSON{verificationJSON: toJSON(v), Messages: make([]messageJSON, 0, len(msgs))}
	for _, m := range msgs {
		out.Messages = append(out.Messages, messageJSON{ID: m.ID, Status: string(m.Status), Gateway: m.Gateway,
			ProviderID: m.ProviderID, Error: m.Error, Attempts: m.Attempts,
			CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) cancelVerification(w http.ResponseWriter, r *http.Request) {
	v, err := h.engine.Cancel(r.Context(), apiKey(r.Context()).ServiceID, r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(v))
}

type checkResponse struct {
	verificationJSON
	Token          string    `json:"token"`
	TokenExpiresAt time.Time `json:"token_expires_at"`
}

func (h *Handler) checkVerification(w http.ResponseWriter, r *http.Request) {
	var req checkRequest
	if err := decodeJSON(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.engine.Check(r.Context(), verify.CheckRequest{
		ServiceID: apiKey(r.Context()).ServiceID, ID: req.ID, To: req.To, Code: req.Code,
		Subject: req.Subject, Amount: req.Amount, Payee: req.Payee,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, checkResponse{verificationJSON: toJSON(res.Verification), Token: res.Token, TokenExpiresAt: res.TokenExpiresAt.UTC()})
}

type tokenJSON struct {
	Active         bool      `json:"active"`
	PhoneNumber    string    `json:"phone_number"`
	Subject        string    `json:"subject,omitempty"`
	VerificationID string    `json:"verification_id"`
	ServiceID      string    `json:"service_id"`
	Amount         string    `json:"amount,omitempty"`
	Payee          string    `json:"payee,omitempty"`
	VerifiedAt     time.Time `json:"verified_at"`
	IssuedAt       time.Time `json:"issued_at"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func (h *Handler) introspectToken(w http.ResponseWriter, r *http.Request) {
	c, err := h.engine.Introspect(r.Context(), apiKey(r.Context()).ServiceID, r.PathValue("token"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenJSON{Active: true, PhoneNumber: c.PhoneNumber, Subject: c.Subject,
		VerificationID: c.VerificationID, ServiceID: c.ServiceID, Amount: c.Amount, Payee: c.Payee,
		VerifiedAt: c.IssuedAt, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt})
}

type subjectJSON struct {
	Subject        string    `json:"subject"`
	PhoneNumber    string    `json:"phone_number"`
	VerificationID string    `json:"verification_id"`
	VerifiedAt     time.Time `json:"verified_at"`
}

func (h *Handler) getSubject(w http.ResponseWriter, r *http.Request) {
	p, err := h.engine.VerifiedPhone(r.Context(), apiKey(r.Context()).ServiceID, r.PathValue("subject"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, subjectJSON{Subject: p.Subject, PhoneNumber: p.Phone, VerificationID: p.VerificationID, VerifiedAt: p.VerifiedAt.UTC()})
}
