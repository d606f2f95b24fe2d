package twilioapi

import (
	"net/http"
	"strconv"
	"strings"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// attemptJSON is Twilio's Verification Attempt resource.
type attemptJSON struct {
	Sid              string         `json:"sid"`
	AccountSid       string         `json:"account_sid"`
	ServiceSid       string         `json:"service_sid"`
	VerificationSid  string         `json:"verification_sid"`
	DateCreated      string         `json:"date_created"`
	DateUpdated      string         `json:"date_updated"`
	ConversionStatus string         `json:"conversion_status"`
	Channel          string         `json:"channel"`
	Price            any            `json:"price"`
	ChannelData      map[string]any `json:"channel_data"`
	URL              string         `json:"url"`
}

// summaryJSON is Twilio's Verification Attempts Summary resource.
type summaryJSON struct {
	TotalAttempts            int    `json:"total_attempts"`
	TotalConverted           int    `json:"total_converted"`
	TotalUnconverted         int    `json:"total_unconverted"`
	ConversionRatePercentage string `json:"conversion_rate_percentage"`
	URL                      string `json:"url"`
}

// safeListJSON is Twilio's SafeList resource.
type safeListJSON struct {
	Sid         string `json:"sid"`
	PhoneNumber string `json:"phone_number"`
	URL         string `json:"url"`
}

func (h *Handler) attemptResource(r *http.Request, a *pv.SendAttempt) attemptJSON {
	status := "unconverted"
	if a.Converted {
		status = "converted"
	}
	return attemptJSON{Sid: a.ID, AccountSid: callerOf(r.Context()).accountSID, ServiceSid: a.ServiceID,
		VerificationSid: a.VerificationID, DateCreated: date(a.CreatedAt), DateUpdated: date(a.CreatedAt),
		ConversionStatus: status, Channel: string(a.Channel), Price: nil,
		ChannelData: map[string]any{"to": a.Phone, "country": a.Country},
		URL:         baseURL(r) + "/v2/Attempts/" + a.ID}
}

// attemptFilter reads the filters Attempts and Attempts/Summary share, and
// limits a caller without the admin scope to its own service: for another
// service it reports that nothing can match.
func attemptFilter(r *http.Request, fm *form) (f pv.AttemptFilter, matchesNothing bool) {
	f = pv.AttemptFilter{
		ServiceID: fm.str("VerifyServiceSid"), Country: fm.str("Country"),
		Channel: pv.Channel(strings.ToLower(fm.str("Channel"))),
		After:   fm.time("DateCreatedAfter"), Before: fm.time("DateCreatedBefore"),
	}
	c := callerOf(r.Context())
	if !verify.HasScope(c.key, verify.ScopeAdmin) {
		if f.ServiceID != "" && f.ServiceID != c.key.ServiceID {
			return f, true
		}
		f.ServiceID = c.key.ServiceID
	}
	return f, false
}

func (h *Handler) listAttempts(w http.ResponseWriter, r *http.Request) {
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	p := newPager(r, fm)
	f, none := attemptFilter(r, fm)
	f.VerificationID = fm.str("VerificationSid")
	f.Phone = fm.str("ChannelData.To")
	switch s := strings.ToLower(fm.str("Status")); s {
	case "":
	case "converted", "unconverted":
		conv := s == "converted"
		f.Converted = &conv
	default:
		fm.fail("Status", "must be converted or unconverted")
	}
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	f.Limit, f.Offset = p.size+1, p.offset()
	var list []*pv.SendAttempt
	if !none {
		list, err = h.engine.SendAttempts(r.Context(), f)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	more := len(list) > p.size
	if more {
		list = list[:p.size]
	}
	out := []attemptJSON{}
	for _, a := range list {
		out = append(out, h.attemptResource(r, a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"attempts": out, "meta": p.meta("attempts", more)})
}

func (h *Handler) fetchAttempt(w http.ResponseWriter, r *http.Request) {
	a, err := h.engine.SendAttempt(r.Context(), r.PathValue("Sid"))
	if err == nil {
		c := callerOf(r.Context())
		if a.ServiceID != c.key.ServiceID && !verify.HasScope(c.key, verify.ScopeAdmin) {
			err = pv.Errorf(pv.ENotFound, "No attempt has this id.")
		}
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.attemptResource(r, a))
}

func (h *Handler) attemptsSummary(w http.ResponseWriter, r *http.Request) {
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f, none := attemptFilter(r, fm)
	f.PhonePrefix = fm.str("DestinationPrefix")
	if fm.err != nil {
		h.writeError(w, r, fm.err)
		return
	}
	var total, converted int
	if !none {
		total, converted, err = h.engine.AttemptsSummary(r.Context(), f)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	rate := 0.0
	if total > 0 {
		rate = float64(converted) * 100 / float64(total)
	}
	writeJSON(w, http.StatusOK, summaryJSON{TotalAttempts: total, TotalConverted: converted, TotalUnconverted: total - converted,
		ConversionRatePercentage: strconv.FormatFloat(rate, 'f', -1, 64), URL: baseURL(r) + "/v2/Attempts/Summary"})
}

func (h *Handler) safeListResource(r *http.Request, n *pv.SafeListNumber) safeListJSON {
	return safeListJSON{Sid: n.ID, PhoneNumber: n.Phone, URL: baseURL(r) + "/v2/SafeList/Numbers/" + n.Phone}
}

func (h *Handler) createSafeList(w http.ResponseWriter, r *http.Request) {
	fm, err := readForm(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if fm.str("PhoneNumber") == "" {
		h.writeError(w, r, pv.ParamErrorf(pv.EInvalidRequest, "PhoneNumber", "The PhoneNumber is required."))
		return
	}
	n, err := h.engine.AddToSafeList(r.Context(), fm.str("PhoneNumber"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h.safeListResource(r, n))
}

func (h *Handler) fetchSafeList(w http.ResponseWriter, r *http.Request) {
	n, err := h.engine.SafeListed(r.Context(), r.PathValue("PhoneNumber"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.safeListResource(r, n))
}

func (h *Handler) deleteSafeList(w http.ResponseWriter, r *http.Request) {
	if err := h.engine.RemoveFromSafeList(r.Context(), r.PathValue("PhoneNumber")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
