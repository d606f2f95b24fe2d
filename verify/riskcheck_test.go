package verify_test

import (
	"context"
	"slices"
	"testing"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// TestRiskCheck is the rule both APIs share for a start's risk check.
func TestRiskCheck(t *testing.T) {
	plain := &pv.APIKey{Scopes: verify.AllScopes}
	override := &pv.APIKey{Scopes: []string{verify.ScopeSend, verify.ScopeRiskCheckOverride}}
	tests := []struct {
		name, value string
		key         *pv.APIKey
		skip        bool
		code        string
	}{
		{"absent", "", plain, false, ""},
		{"enable", "enable", plain, false, ""},
		{"enable with the scope", "enable", override, false, ""},
		{"disable with the scope", "disable", override, true, ""},
		{"disable without the scope", "disable", plain, false, pv.EForbidden},
		{"disable without a key", "disable", nil, false, pv.EForbidden},
		{"other value", "off", override, false, pv.EInvalidRequest},
		{"wrong case", "Disable", override, false, pv.EInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skip, err := verify.RiskCheck(tt.key, tt.value)
			if skip != tt.skip || pv.ErrorCode(err) != tt.code {
				t.Fatalf("RiskCheck = %v, %v; want %v, %q", skip, err, tt.skip, tt.code)
			}
			if err != nil && pv.AsError(err).Param != "risk_check" {
				t.Errorf("param %q, want risk_check", pv.AsError(err).Param)
			}
		})
	}
}

// TestCompatKeyScopes: Twilio-compatible credentials may be given scopes,
// the risk check override among them; by default they hold AllScopes.
func TestCompatKeyScopes(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	_, k, err := h.e.CreateCompatKeyWithScopes(ctx, h.svc.ID, "trusted", []string{verify.ScopeSend, verify.ScopeRiskCheckOverride}, nil)
	if err != nil || !verify.HasScope(k, verify.ScopeRiskCheckOverride) || verify.HasScope(k, verify.ScopeAdmin) {
		t.Fatalf("CreateCompatKeyWithScopes = %+v, %v", k, err)
	}
	_, k, err = h.e.CreateCompatKey(ctx, h.svc.ID, "app")
	if err != nil || !slices.Equal(k.Scopes, verify.AllScopes) {
		t.Fatalf("CreateCompatKey scopes = %v, %v; want %v", k.Scopes, err, verify.AllScopes)
	}
	_, _, err = h.e.CreateCompatKeyWithScopes(ctx, h.svc.ID, "bad", []string{"root"}, nil)
	if e := wantCode(t, err, pv.EInvalidRequest); e.Param != "scopes" {
		t.Errorf("param %q, want scopes", e.Param)
	}
}
