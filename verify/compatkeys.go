package verify

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strings"

	pv "github.com/phoneverify/phoneverify"
)

// CompatCredentials are what a Twilio client needs to call the
// Twilio-compatible API: an account SID and auth token, or the API key SID
// and secret (the same secret). Secret is shown only when it is created.
type CompatCredentials struct {
	AccountSID string
	APIKeySID  string
	Secret     string
}

// CreateCompatKey makes an API key a Twilio client can use: its id is an
// API key SID ("SK" and 32 hex digits), its account SID is "AC" and the same
// hex digits, and its secret is 32 hex digits (Twilio's helper libraries
// accept only letters and digits). The key holds [AllScopes]; the store
// keeps its hash.
func (e *Engine) CreateCompatKey(ctx context.Context, serviceID, name string) (*CompatCredentials, *pv.APIKey, error) {
	return e.CreateCompatKeyWithIPs(ctx, serviceID, name, nil)
}

// CreateCompatKeyWithIPs is [Engine.CreateCompatKey] for credentials
// accepted only from the address ranges allowed (none: from anywhere).
func (e *Engine) CreateCompatKeyWithIPs(ctx context.Context, serviceID, name string, allowed []netip.Prefix) (*CompatCredentials, *pv.APIKey, error) {
	return e.CreateCompatKeyWithScopes(ctx, serviceID, name, nil, allowed)
}

// CreateCompatKeyWithScopes is [Engine.CreateCompatKeyWithIPs] for
// credentials holding the given scopes (none: [AllScopes]), so that a
// Twilio client, too, can be granted [ScopeRiskCheckOverride] (RiskCheck
// "disable") or held to sending and checking. Returns EInvalidRequest
// (param scopes) for an unknown scope.
func (e *Engine) CreateCompatKeyWithScopes(ctx context.Context, serviceID, name string, scopes []string, allowed []netip.Prefix) (*CompatCredentials, *pv.APIKey, error) {
	if err := checkAllowed(allowed); err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return nil, nil, pv.ParamErrorf(pv.EInvalidRequest, "name", "An API key needs a name of at most 100 characters.")
	}
	if len(scopes) == 0 {
		scopes = AllScopes
	}
	if err := checkScopes(scopes); err != nil {
		return nil, nil, err
	}
	if _, err := e.store.Service(ctx, serviceID); err != nil {
		return nil, nil, err
	}
	var b [32]byte
	if _, err := io.ReadFull(e.random, b[:]); err != nil {
		return nil, nil, fmt.Errorf("verify: compat key: %w", err)
	}
	sidHex, secret := hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	k := &pv.APIKey{ID: "SK" + sidHex, ServiceID: serviceID, Name: name, Prefix: secret[:6],
		Hash: HashAPIKey(secret), Scopes: scopes, AllowedIPs: allowed, CreatedAt: e.Now()}
	if err := e.store.CreateAPIKey(ctx, k); err != nil {
		return nil, nil, err
	}
	return &CompatCredentials{AccountSID: "AC" + sidHex, APIKeySID: k.ID, Secret: secret}, k, nil
}

// AuthenticateCompat returns the key that HTTP Basic credentials name and
// the account SID they act as. user is the account SID or the API key SID
// of a key made by [Engine.CreateCompatKey]; pass is its secret. Returns
// EUnauthorized for anything else, or a revoked key, and EForbidden for a
// key restricted to address ranges that do not hold clientIP.
func (e *Engine) AuthenticateCompat(ctx context.Context, user, pass, clientIP string) (*pv.APIKey, string, error) {
	bad := pv.Errorf(pv.EUnauthorized, "Authenticate with your account SID (or API key SID) and auth token.")
	if len(user) != 34 || (!strings.HasPrefix(user, "AC") && !strings.HasPrefix(user, "SK")) || !validID("SK"+user[2:], "SK") {
		return nil, "", bad
	}
	if pass == "" || len(pass) > 200 {
		return nil, "", bad
	}
	k, err := e.store.APIKeyByHash(ctx, HashAPIKey(pass))
	if pv.ErrorCode(err) == pv.ENotFound {
		return nil, "", bad
	}
	if err != nil {
		return nil, "", err
	}
	if subtle.ConstantTimeCompare([]byte(k.ID), []byte("SK"+user[2:])) != 1 {
		return nil, "", bad
	}
	if err := e.accept(ctx, k, clientIP, "These credentials have been revoked."); err != nil {
		return nil, "", err
	}
	return k, "AC" + user[2:], nil
}
