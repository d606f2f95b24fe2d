package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/phoneverify/phoneverify/httpapi"
)

// fuzzRoutes are the requests FuzzHandler sends, the fuzzed segment in
// place of {}.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/verifications"},
	{"POST", "/v1/verifications/check"},
	{"GET", "/v1/verifications/{}"},
	{"POST", "/v1/verifications/{}/cancel"},
	{"GET", "/v1/tokens/{}"},
	{"GET", "/v1/subjects/{}"},
}

// FuzzHandler sends arbitrary bodies and path segments through the whole
// JSON API, engine and SQLite store: whatever a client sends, the answer is
// JSON, never a 5xx, and an error's status is the one its stable code
// stands for.
func FuzzHandler(f *testing.F) {
	e := newEnv(f, nil)
	for i, s := range []struct{ segment, body string }{
		{"", `{"to":"+9779812345678"}`},
		{"", `{"to":"+9779812345678","code":"123456"}`},
		{"VE00000000000000000000000000000000", ""},
		{"VE0", `{}`},
		{"eyJhbGciOiJFZERTQSJ9.e30.AA", ""},
		{"user-1", ""},
		{"%00", `{"to":"9812345678","subject":"s","amount":"1.00 EUR","payee":"p","locale":"es","channel":"sms"}`},
		{"..", `{"id":"VE1","code":"1"}`},
	} {
		f.Add(uint8(i), s.segment, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, segment string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(r.method, strings.ReplaceAll(r.path, "{}", url.PathEscape(segment)), strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
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
		var answer struct {
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%s %s %q: %d, body is not JSON: %q", req.Method, req.URL.Path, body, w.Code, w.Body)
		}
		if answer.Error != nil && httpapi.StatusOf(answer.Error.Code) != w.Code {
			t.Fatalf("%s %s %q: %d with code %q, which stands for %d", req.Method, req.URL.Path, body, w.Code,
				answer.Error.Code, httpapi.StatusOf(answer.Error.Code))
		}
	})
}

// FuzzServiceLimits puts arbitrary bodies to a service's limits: whatever
// they hold, the answer is the limits as saved or a 4xx naming a stable
// code, and a refused body leaves the limits as they were.
func FuzzServiceLimits(f *testing.F) {
	e := newEnv(f, nil)
	for _, body := range []string{
		`{"per_ip":"1/1h","budget_day":null,"deny_countries":["np"]}`,
		`{"per_subject":"0/1s","allow_countries":["ZZ"]}`,
		`{"budget_hour":"9223372036854775807/1h","failed_checks":"off"}`,
		`{"per_country":"5/9999999999999h"}`,
		`{}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		put := httptest.NewRequest("PUT", "/v1/services/default/limits", strings.NewReader(string(body)))
		put.Header.Set("Authorization", "Bearer "+apiKey)
		put.Header.Set("Content-Type", "application/json")
		before := e.do(t, "GET", "/v1/services/default/limits", "")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, put)
		switch {
		case w.Code == 200:
		case w.Code >= 400 && w.Code < 500:
			var answer struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || httpapi.StatusOf(answer.Error.Code) != w.Code {
				t.Fatalf("PUT %q: %d %s", body, w.Code, w.Body)
			}
			if after := e.do(t, "GET", "/v1/services/default/limits", ""); after.raw != before.raw {
				t.Fatalf("PUT %q was refused (%d) but changed the limits:\n%s\nto\n%s", body, w.Code, before.raw, after.raw)
			}
		default:
			t.Fatalf("PUT %q: %d %s", body, w.Code, w.Body)
		}
	})
}
