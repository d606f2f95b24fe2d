package twilioapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzHandler posts arbitrary form bodies and path segments through the
// Twilio-compatible API, engine and SQLite store: whatever a Twilio client
// sends, the answer is a JSON object, never a 5xx, and an error carries
// Twilio's numeric code and the HTTP status in its body.
func FuzzHandler(f *testing.F) {
	e := newEnv(f)
	sid := e.engine.DefaultServiceID()
	routes := []struct{ method, path string }{
		{"POST", "/v2/Services/" + sid + "/Verifications"},
		{"POST", "/v2/Services/" + sid + "/VerificationCheck"},
		{"GET", "/v2/Services/" + sid + "/Verifications/{}"},
		{"POST", "/v2/Services/" + sid + "/Verifications/{}"},
		{"POST", "/v2/Services/{}"},
		{"POST", "/v2/Services"},
	}
	for i, s := range []struct{ segment, body string }{
		{"", "To=%2B9779812345678&Channel=sms"},
		{"", "To=%2B9779812345678&Code=123456"},
		{"%2B9779812345678", ""},
		{"VE00000000000000000000000000000000", "Status=canceled"},
		{"", "FriendlyName=x&CodeLength=11"},
		{"", "FriendlyName=App&CodeLength=6&LookupEnabled=true"},
		{"%zz", "RateLimits=%7B%22ip%22%3A1%7D&To=%2B1"},
	} {
		f.Add(uint8(i), s.segment, []byte(s.body))
	}
	// Starts (route 0) asking for a risk check.
	for _, body := range []string{"To=%2B9779812345678&Channel=sms&RiskCheck=disable", "To=%2B9779812345679&Channel=sms&RiskCheck=enable&RiskCheck=x"} {
		f.Add(uint8(0), "", []byte(body))
	}
	f.Fuzz(func(t *testing.T, route uint8, segment string, body []byte) {
		r := routes[int(route)%len(routes)]
		req := httptest.NewRequest(r.method, strings.ReplaceAll(r.path, "{}", url.PathEscape(segment)), strings.NewReader(string(body)))
		req.SetBasicAuth(accountSID, authToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.Method, req.URL.Path, body, w.Code, w.Body)
		}
		if w.Code/100 == 3 { // the router cleaning the path (an empty or dot segment)
			if w.Header().Get("Location") == "" {
				t.Fatalf("%s %s: %d without Location", req.Method, req.URL.Path, w.Code)
			}
			return
		}
		if w.Code == 204 {
			return
		}
		var answer map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%s %s %q: %d, body is not a JSON object: %q", req.Method, req.URL.Path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			if code, _ := answer["code"].(float64); code == 0 || answer["status"] != float64(w.Code) {
				t.Fatalf("%s %s %q: %d %s: want Twilio's error body with code and status", req.Method, req.URL.Path, body, w.Code, w.Body)
			}
		}
	})
}
