package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

type subscriptionRequest struct {
	URL   string   `json:"url"`
	Types []string `json:"types"`
}

// subscriptionJSON is the event subscription resource; Secret is only set
// in the answer to its creation.
type subscriptionJSON struct {
	ID        string    `json:"id"`
	ServiceID string    `json:"service_id"`
	URL       string    `json:"url"`
	Types     []string  `json:"types"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func subscriptionToJSON(s *pv.EventSubscription) subscriptionJSON {
	out := subscriptionJSON{ID: s.ID, ServiceID: s.ServiceID, URL: s.URL, Types: []string{}, CreatedAt: s.CreatedAt.UTC()}
	for _, t := range s.Types {
		out.Types = append(out.Types, string(t))
	}
	return out
}

func (h *Handler) createSubscription(w http.ResponseWriter, r *http.Request) {
	var req subscriptionRequest
	if err := decodeJSON(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.URL == "" {
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "url", "The url to post events to is required."))
		return
	}
	sub, secret, err := h.engine.CreateEventSubscription(r.Context(), apiKey(r.Context()).ServiceID, req.URL, req.Types)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := subscriptionToJSON(sub)
	out.Secret = secret
	w.Header().Set("Location", "/v1/event-subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	subs, err := h.engine.EventSubscriptions(r.Context(), apiKey(r.Context()).ServiceID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]subscriptionJSON, 0, len(subs))
	for _, s := range subs {
		out = append(out, subscriptionToJSON(s))
	}
	writeJSON(w, http.StatusOK, map[string]any{"event_subscriptions": out})
}

func (h *Handler) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	if err := h.engine.DeleteEventSubscription(r.Context(), apiKey(r.Context()).ServiceID, r.PathValue("id")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// eventJSON is one recorded event: its envelope's fields and the body
// subscribers received, as sent.
type eventJSON struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	VerificationID string          `json:"verification_id"`
	CreatedAt      time.Time       `json:"created_at"`
	Payload        json.RawMessage `json:"payload"`
}

// listEvents answers GET /v1/events: newest first, filtered by type,
// verification_id and since (RFC 3339), limit (1–1000, default 100) per
// page; next_cursor, when set, is passed as cursor for the next page.
func (h *Handler) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := pv.EventFilter{ServiceID: apiKey(r.Context()).ServiceID, Type: pv.EventType(q.Get("type")),
		VerificationID: q.Get("verification_id"), Limit: 100}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "since", "since must be an RFC 3339 time."))
			return
		}
		f.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "limit", "limit must be between 1 and 1000."))
			return
		}
		f.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "cursor", "cursor must be a next_cursor this endpoint returned."))
			return
		}
		f.Before = n
	}
	events, err := h.engine.Events(r.Context(), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]eventJSON, 0, len(events))
	for _, e := range events {
		out = append(out, eventJSON{ID: e.ID, Type: string(e.Type), VerificationID: e.VerificationID,
			CreatedAt: e.CreatedAt.UTC(), Payload: e.Payload})
	}
	body := map[string]any{"events": out}
	if len(events) == f.Limit {
		body["next_cursor"] = strconv.FormatInt(events[len(events)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, body)
}
