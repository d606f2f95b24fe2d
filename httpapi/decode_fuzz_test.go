package httpapi

import (
	"testing"

	pv "github.com/phoneverify/phoneverify"
)

// FuzzDecodeBody: any body either decodes or yields a client error with a
// stable code — never a panic, never an internal error.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"to":"+9779812345678"}`, `{"id":"VE1","code":"123456"}`, `{`, `[]`, `null`, `{"to":1}`, `{"x":1}`, `{} {}`, "\xff", `{"to":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var start startRequest
		if err := decodeBody(body, &start); err != nil {
			if code := pv.ErrorCode(err); code != pv.EInvalidRequest {
				t.Fatalf("start body %q: code %q", body, code)
			}
		}
		var check checkRequest
		if err := decodeBody(body, &check); err != nil {
			if code := pv.ErrorCode(err); code != pv.EInvalidRequest {
				t.Fatalf("check body %q: code %q", body, code)
			}
		}
	})
}
