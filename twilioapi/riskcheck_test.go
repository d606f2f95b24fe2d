package twilioapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/twilioapi"
	"github.com/phoneverify/phoneverify/verify"
)

// basicAuth returns the Authorization header of HTTP Basic credentials.
func basicAuth(user, pass string) string {
	req := httptest.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// TestRiskCheck: Twilio Verify's RiskCheck on a start is honoured as the
// native API's risk_check is. With fraud protection blocking a pumped
// prefix, "disable" gets a code through only for credentials holding the
// risk_check:override scope (403 20403 otherwise), "enable" or no value
// leave the start to fraud protection (403 60410), and any other value is
// 400 60200 naming RiskCheck.
func TestRiskCheck(t *testing.T) {
	e := newEnv(t, func(c *verify.Config) { c.Fraud = &verify.FraudConfig{DefaultMode: pv.FraudBlock} })
	sid := e.engine.DefaultServiceID()
	start := func(auth, to, riskCheck string) response {
		t.Helper()
		body := "Channel=sms&To=" + strings.ReplaceAll(to, "+", "%2B")
		if riskCheck != "" {
			body += "&RiskCheck=" + riskCheck
		}
		var headers []string
		if auth != "" {
			headers = []string{"Authorization", auth}
		}
		return e.do(t, "POST", "/v2/Services/"+sid+"/Verifications", body, headers...)
	}
	// Pump one prefix until fraud protection blocks it: 20 codes, then
	// refusals.
	for i := range 20 {
		if r := start("", fmt.Sprintf("+998901%06d", i), ""); r.status != 201 {
			t.Fatalf("pump start %d: %d %s", i, r.status, r.raw)
		}
	}
	creds, _, err := e.engine.CreateCompatKeyWithScopes(context.Background(), sid, "trusted backend",
		[]string{verify.ScopeSend, verify.ScopeCheck, verify.ScopeRiskCheckOverride}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plainCreds, _, err := e.engine.CreateCompatKey(context.Background(), sid, "app")
	if err != nil {
		t.Fatal(err)
	}
	override := basicAuth(creds.AccountSID, creds.Secret)
	plain := basicAuth(plainCreds.APIKeySID, plainCreds.Secret)

	tests := []struct {
		name, auth, riskCheck string
		status                int
		code                  float64
	}{
		{"no RiskCheck: blocked", plain, "", 403, twilioapi.CodeFraudBlocked},
		{"enable: blocked", plain, "enable", 403, twilioapi.CodeFraudBlocked},
		{"disable without the scope", plain, "disable", 403, twilioapi.CodeForbidden},
		{"disable with the bootstrap credentials", "", "disable", 403, twilioapi.CodeForbidden},
		{"other value", override, "off", 400, twilioapi.CodeInvalidParameter},
		{"other case", override, "Disable", 400, twilioapi.CodeInvalidParameter},
		{"enable with the scope: still checked", override, "enable", 403, twilioapi.CodeFraudBlocked},
		{"disable with the scope", override, "disable", 201, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(tt.auth, fmt.Sprintf("+998901%06d", 900000+i), tt.riskCheck)
			if r.status != tt.status || r.code() != tt.code {
				t.Fatalf("%d %s, want %d code %v", r.status, r.raw, tt.status, tt.code)
			}
			if r.status >= 400 && r.body["status"] != float64(r.status) {
				t.Errorf("Twilio error body without its status: %s", r.raw)
			}
			if tt.code == twilioapi.CodeInvalidParameter && !strings.Contains(r.str("message"), "RiskCheck") {
				t.Errorf("message %q does not name RiskCheck", r.str("message"))
			}
			if tt.code == twilioapi.CodeForbidden && !strings.Contains(r.str("message"), verify.ScopeRiskCheckOverride) {
				t.Errorf("message %q does not name the scope", r.str("message"))
			}
			if tt.status == 201 && (r.str("status") != "pending" || !strings.HasPrefix(r.str("sid"), "VE")) {
				t.Errorf("start with the risk checks off: %s", r.raw)
			}
		})
	}
}
