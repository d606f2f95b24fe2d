package twilioapi

import (
	"net/http"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

// rateLimitJSON is Twilio's Rate Limit resource.
type rateLimitJSON struct {
	Sid         string            `json:"sid"`
	ServiceSid  string            `json:"service_sid"`
	AccountSid  string            `json:"account_sid"`
	UniqueName  string            `json:"unique_name"`
	Description *string           `json:"description"`
	DateCreated string            `json:"date_created"`
	DateUpdated string            `json:"date_updated"`
	URL         string            `json:"url"`
	Links       map[string]string `json:"links"`
}

// bucketJSON is Twilio's Bucket resource; Interval is in seconds.
type bucketJSON struct {
	Sid          string `json:"sid"`
	RateLimitSid string `json:"rate_limit_sid"`
	ServiceSid   string `json:"service_sid"`
	AccountSid   string `json:"account_sid"`
	Max          int    `json:"max"`
	Interval     int    `json:"interval"`
	DateCreated  string `json:"date_created"`
	DateUpdated  string `json:"date_updated"`
	URL          string `json:"url"`
}

func (h *Handler) rateLimitResource(r *http.Request, rl *pv.RateLimit) rateLimitJSON {
	u := baseURL(r) + "/v2/Services/" + rl.ServiceID + "/RateLimits/" + rl.ID
	return rateLimitJSON{Sid: rl.ID, ServiceSid: rl.ServiceID, AccountSid: callerOf(r.Context()).accountSID,
		UniqueName: rl.UniqueName, Description: strOrNil(rl.Description), DateCreated: date(rl.CreatedAt),
		DateUpdated: date(rl.UpdatedAt), URL: u, Links: map[string]string{"buckets": u + "/Buckets"}}
}

func (h *Handler) bucketResource(r *http.Request, b *pv.Bucket) bucketJSON {
	return bucketJSON{Sid: b.ID, RateLimitSid: b.RateLimitID, ServiceSid: b.ServiceID, AccountSid: callerOf(r.Context()).accountSID,
		Max: b.Max, Interval: int(b.Interval / time.Second), DateCreated: date(b.CreatedAt), DateUpdated: date(b.UpdatedAt),
		URL: baseURL(r) + "/v2/Services/" + b.ServiceID + "/RateLimits/" + b.RateLimitID + "/Buckets/" + b.ID}
}

// serviceAndForm resolves the path's service and reads the parameters.
func (h *Handler) serviceAndForm(w http.ResponseWriter, r *http.Request) (*pv.Service, *form, bool) {
	svc, _, err := h.service(r)
	if err != nil {
		h.writeError(w, r, err)
		return nil, nil, false
	}
	fm, err := readForm(w, r)
	if err == nil {
		err = fm.err
	}
	if err != nil {
		h.writeError(w, r, err)
		return nil, nil, false
	}
	return svc, fm, true
}

func (h *Handler) createRateLimit(w http.ResponseWriter, r *http.Request) {
	svc, fm, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	rl, err := h.engine.CreateRateLimit(r.Context(), svc.ID, fm.str("UniqueName"), fm.str("Description"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.rateLimitResource(r, rl))
}

func (h *Handler) listRateLimits(w http.ResponseWriter, r *http.Request) {
	svc, fm, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	p := newPager(r, fm)
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	all, err := h.engine.RateLimits(r.Context(), svc.ID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	lo, hi := p.window(len(all))
	out := []rateLimitJSON{}
	for _, rl := range all[lo:hi] {
		out = append(out, h.rateLimitResource(r, rl))
	}
	writeJSON(w, http.StatusOK, map[string]any{"rate_limits": out, "meta": p.meta("rate_limits", hi < len(all))})
}

func (h *Handler) fetchRateLimit(w http.ResponseWriter, r *http.Request) {
	svc, _, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	rl, err := h.engine.RateLimit(r.Context(), svc.ID, r.PathValue("Sid"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.rateLimitResource(r, rl))
}

func (h *Handler) updateRateLimit(w http.ResponseWriter, r *http.Request) {
	svc, fm, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	rl, err := h.engine.UpdateRateLimit(r.Context(), svc.ID, r.PathValue("Sid"), fm.str("Description"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.rateLimitResource(r, rl))
}

func (h *Handler) deleteRateLimit(w http.ResponseWriter, r *http.Request) {
	svc, _, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	if err := h.engine.DeleteRateLimit(r.Context(), svc.ID, r.PathValue("Sid")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bucketForm reads Max and Interval (seconds); required says whether both
// must be given.
func bucketForm(fm *form, required bool) (int, time.Duration) {
	max, interval := fm.integer("Max"), fm.integer("Interval")
	if required && max == nil {
		fm.fail("Max", "is required")
	}
	if required && interval == nil {
		fm.fail("Interval", "is required")
	}
	var m int
	var d time.Duration
	if max != nil {
		m = *max
		if m < 1 {
			fm.fail("Max", "must be at least 1")
		}
	}
	if interval != nil {
		d = time.Duration(*interval) * time.Second
		if *interval < 1 {
			fm.fail("Interval", "must be at least 1 second")
		}
	}
	return m, d
}

func (h *Handler) createBucket(w http.ResponseWriter, r *http.Request) {
	svc, fm, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	max, interval := bucketForm(fm, true)
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	b, err := h.engine.CreateBucket(r.Context(), svc.ID, r.PathValue("RateLimitSid"), max, interval)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.bucketResource(r, b))
}

func (h *Handler) listBuckets(w http.ResponseWriter, r *http.Request) {
	svc, fm, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	p := newPager(r, fm)
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	all, err := h.engine.Buckets(r.Context(), svc.ID, r.PathValue("RateLimitSid"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	lo, hi := p.window(len(all))
	out := []bucketJSON{}
	for _, b := range all[lo:hi] {
		out = append(out, h.bucketResource(r, b))
	}
	writeJSON(w, http.StatusOK, map[string]any{"buckets": out, "meta": p.meta("buckets", hi < len(all))})
}

func (h *Handler) fetchBucket(w http.ResponseWriter, r *http.Request) {
	svc, _, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	b, err := h.engine.Bucket(r.Context(), svc.ID, r.PathValue("RateLimitSid"), r.PathValue("Sid"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.bucketResource(r, b))
}

func (h *Handler) updateBucket(w http.ResponseWriter, r *http.Request) {
	svc, fm, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	max, interval := bucketForm(fm, false)
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	b, err := h.engine.UpdateBucket(r.Context(), svc.ID, r.PathValue("RateLimitSid"), r.PathValue("Sid"), max, interval)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.bucketResource(r, b))
}

func (h *Handler) deleteBucket(w http.ResponseWriter, r *http.Request) {
	svc, _, ok := h.serviceAndForm(w, r)
	if !ok {
		return
	}
	if err := h.engine.DeleteBucket(r.Context(), svc.ID, r.PathValue("RateLimitSid"), r.PathValue("Sid")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
