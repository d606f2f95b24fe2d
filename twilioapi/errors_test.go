package twilioapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

func TestErrorFor(t *testing.T) {
	zero, some := 0, 2
	tests := []struct {
		name         string
		err          error
		status, code int
		says         string
	}{
		{"invalid parameter", pv.ParamErrorf(pv.EInvalidRequest, "locale", "bad locale"), 400, 60200, "Invalid parameter `Locale`: bad locale"},
		{"invalid phone number", pv.ParamErrorf(pv.EInvalidPhoneNumber, "to", "too short"), 400, 60200, "`To`"},
		{"no target", errNoTarget, 400, 60221, "No target"},
		{"wrapped no target", fmt.Errorf("x: %w", errNoTarget), 400, 60221, "No target"},
		{"channel", pv.ParamErrorf(pv.EInvalidRequest, "channel", "call"), 400, 60223, "channel disabled"},
		{"landline", pv.ParamErrorf(pv.EUnsupportedNumberType, "to", "fixed line"), 400, 60205, "landline"},
		{"geo", pv.Errorf(pv.ECountryNotAllowed, "no"), 403, 60605, "geo"},
		{"fraud", pv.Errorf(pv.EBlockedByFraud, "no"), 403, 60410, "fraud"},
		{"unauthorized", pv.Errorf(pv.EUnauthorized, "who"), 401, 20003, "Authentication"},
		{"forbidden", pv.Errorf(pv.EForbidden, "scope"), 403, 20403, "scope"},
		{"not found", pv.Errorf(pv.ENotFound, "gone"), 404, 20404, "gone"},
		{"approved", pv.Errorf(pv.EAlreadyApproved, "already approved"), 404, 20404, "approved"},
		{"expired", pv.Errorf(pv.EVerificationExpired, "expired"), 404, 20404, "expired"},
		{"exhausted", pv.Errorf(pv.EMaxAttemptsReached, "no attempts"), 404, 20404, "attempts"},
		{"canceled", pv.Errorf(pv.EVerificationCanceled, "canceled"), 404, 20404, "canceled"},
		{"last wrong code", &pv.Error{Code: pv.EIncorrectCode, Message: "wrong", AttemptsRemaining: &zero}, 429, 60202, "Max check attempts"},
		{"wrong code", &pv.Error{Code: pv.EIncorrectCode, Param: "code", Message: "wrong", AttemptsRemaining: &some}, 400, 60200, "`Code`"},
		{"last wrong payee", &pv.Error{Code: pv.EForbidden, Param: "payee", Message: "payee", AttemptsRemaining: &zero}, 429, 60202, "Max check attempts"},
		{"send limit", &pv.Error{Code: pv.ETooManyRequests, Param: "to", Message: "5 per 10m", RetryAfter: time.Minute}, 429, 60203, "Max send attempts"},
		{"rate limit", &pv.Error{Code: pv.ETooManyRequests, Param: "rate_limits", Message: "ip"}, 429, 20429, "Too many requests"},
		{"concurrent", pv.Errorf(pv.EConflict, "busy"), 429, 60212, "concurrent"},
		{"duplicate name", pv.ParamErrorf(pv.EConflict, "unique_name", "taken"), 400, 60200, "`UniqueName`"},
		{"method", pv.Errorf(pv.EMethodNotAllowed, "GET"), 405, 20004, "Method not allowed"},
		{"media type", pv.Errorf(pv.EUnsupportedMediaType, "form"), 415, 20415, "form"},
		{"too large", pv.Errorf(pv.ERequestTooLarge, "big"), 413, 20413, "big"},
		{"gateway", pv.Errorf(pv.EGatewayUnavailable, "later"), 503, 20503, "later"},
		{"database", pv.Errorf(pv.EUnavailable, "db"), 503, 20503, "db"},
		{"internal", errors.New("secret detail"), 500, 20500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, msg := ErrorFor(tt.err)
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %d, want %d %d", status, code, tt.status, tt.code)
			}
			if !strings.Contains(msg, tt.says) {
				t.Errorf("message %q does not say %q", msg, tt.says)
			}
			if strings.Contains(msg, "secret detail") {
				t.Errorf("message %q leaks an internal error", msg)
			}
			if http.StatusText(status) == "" {
				t.Errorf("status %d is not an HTTP status", status)
			}
		})
	}
}
