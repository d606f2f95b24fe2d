package verify

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/message"
)

// Scopes an API key may hold.
const (
	ScopeSend              = "verify:send"
	ScopeCheck             = "verify:check"
	ScopeAdmin             = "admin"
	ScopeRiskCheckOverride = "risk_check:override"
)

// AllScopes are granted to keys created without an explicit list and to the
// bootstrap key. ScopeRiskCheckOverride is not among them: turning fraud
// checks off for a request must be granted on purpose.
var AllScopes = []string{ScopeSend, ScopeCheck, ScopeAdmin}

const apiKeyPrefix = "pvk_"

// HashAPIKey returns the stored form of an API key. Keys carry 192 random
// bits, so a fast hash is enough: there is nothing to brute-force.
func HashAPIKey(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// CreateAPIKey makes a new key for a service and returns it in clear, the
// only time it is ever shown; the store keeps its hash.
func (e *Engine) CreateAPIKey(ctx context.Context, serviceID, name string, scopes []string) (string, *pv.APIKey, error) {
	return e.CreateAPIKeyWithIPs(ctx, serviceID, name, scopes, nil)
}

// MaxAllowedIPs caps the address ranges one API key may be restricted to.
const MaxAllowedIPs = 100

// CreateAPIKeyWithIPs is [Engine.CreateAPIKey] for a key accepted only from
// the address ranges allowed (none: from anywhere).
func (e *Engine) CreateAPIKeyWithIPs(ctx context.Context, serviceID, name string, scopes []string, allowed []netip.Prefix) (string, *pv.APIKey, error) {
	if err := checkAllowed(allowed); err != nil {
		return "", nil, err
	}
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return "", nil, pv.ParamErrorf(pv.EInvalidRequest, "name", "An API key needs a name of at most 100 characters.")
	}
	if _, err := e.store.Service(ctx, serviceID); err != nil {
		return "", nil, err
	}
	if len(scopes) == 0 {
		scopes = AllScopes
	}
	if err := checkScopes(scopes); err != nil {
		return "", nil, err
	}
	var secret [24]byte
	if _, err := io.ReadFull(e.random, secret[:]); err != nil {
		return "", nil, fmt.Errorf("verify: api key: %w", err)
	}
	raw := apiKeyPrefix + hex.EncodeToString(secret[:])
	id, err := e.NewID("KY")
	if err != nil {
		return "", nil, err
	}
	k := &pv.APIKey{ID: id, ServiceID: serviceID, Name: name, Prefix: raw[:len(apiKeyPrefix)+6],
		Hash: HashAPIKey(raw), Scopes: scopes, AllowedIPs: allowed, CreatedAt: e.Now()}
	if err := e.store.CreateAPIKey(ctx, k); err != nil {
		return "", nil, err
	}
	return raw, k, nil
}

// checkAllowed validates a key's address ranges, masking each in place.
func checkAllowed(allowed []netip.Prefix) error {
	if len(allowed) > MaxAllowedIPs {
		return pv.ParamErrorf(pv.EInvalidRequest, "allowed_ips", "An API key may list at most %d address ranges.", MaxAllowedIPs)
	}
	for i, p := range allowed {
		if !p.IsValid() {
			return pv.ParamErrorf(pv.EInvalidRequest, "allowed_ips", "Address range %d is not valid.", i+1)
		}
		allowed[i] = p.Masked()
	}
	return nil
}

// checkScopes returns EInvalidRequest (param scopes) naming the first
// unknown scope.
func checkScopes(scopes []string) error {
	for _, s := range scopes {
		if !validScope(s) {
			return pv.ParamErrorf(pv.EInvalidRequest, "scopes", "Unknown scope %q; known scopes: %s.", s, strings.Join(append(slices.Clone(AllScopes), ScopeRiskCheckOverride), ", "))
		}
	}
	return nil
}

func validScope(s string) bool {
	if s == ScopeRiskCheckOverride {
		return true
	}
	for _, a := range AllScopes {
		if s == a {
			return true
		}
	}
	return s == ScopeRiskCheckOverride
}

// ParseAllowedIPs reads a comma-separated list of CIDRs or bare addresses
// (a bare address is its own /32 or /128), as the CLI and the dashboard
// take them. Returns EInvalidRequest (param allowed_ips) for a bad entry.
func ParseAllowedIPs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parsePrefix(item)
		if err != nil {
			return nil, pv.ParamErrorf(pv.EInvalidRequest, "allowed_ips", "%q is not an IP address or CIDR range such as 203.0.113.0/24.", item)
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is how many prefix bits an IPv4-mapped IPv6 prefix loses when
// written as IPv4.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// KeyAllows reports whether k may be used from clientIP: always for a key
// with no address ranges, else only from an address inside one.
func KeyAllows(k *pv.APIKey, clientIP string) bool {
	if len(k.AllowedIPs) == 0 {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSpace(clientIP))
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range k.AllowedIPs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// accept finishes authenticating a stored key: revoked keys fail, a key
// restricted to address ranges fails from elsewhere (EForbidden), and the
// key's last use is recorded at most once per [pv.APIKeyTouchInterval]. The
// key is read from the store on every request (there is no cache), so a
// revocation on any node takes effect on every node at once.
func (e *Engine) accept(ctx context.Context, k *pv.APIKey, clientIP, revokedMsg string) error {
	if k.RevokedAt != nil {
		return pv.Errorf(pv.EUnauthorized, "%s", revokedMsg)
	}
	if !KeyAllows(k, clientIP) {
		e.log.WarnContext(ctx, "API key refused from an address outside its ranges", "key_id", k.ID, "client_ip", clientIP)
		return pv.Errorf(pv.EForbidden, "This API key may not be used from this address.")
	}
	now := e.Now()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= pv.APIKeyTouchInterval {
		// A failed write loses one last-used time, not the request.
		if err := e.store.TouchAPIKey(ctx, k.ID, now, now.Add(-pv.APIKeyTouchInterval)); err != nil {
			e.log.WarnContext(ctx, "could not record an API key's last use", "key_id", k.ID, "error", err)
		} else {
			k.LastUsedAt = &now
		}
	}
	return nil
}

// Authenticate returns the key a request from clientIP presented.
// Returns EUnauthorized for a missing, unknown or revoked key and EForbidden
// for a key restricted to address ranges that do not hold clientIP.
func (e *Engine) Authenticate(ctx context.Context, raw, clientIP string) (*pv.APIKey, error) {
	if raw == "" {
		return nil, pv.Errorf(pv.EUnauthorized, "Send an API key as Authorization: Bearer <key>.")
	}
	if e.bootstrapKey != "" && subtle.ConstantTimeCompare([]byte(raw), []byte(e.bootstrapKey)) == 1 {
		return &pv.APIKey{ID: "bootstrap", Name: "PHONEVERIFY_API_KEY", ServiceID: e.defaultServiceID, Scopes: AllScopes}, nil
	}
	if len(raw) > 200 {
		return nil, pv.Errorf(pv.EUnauthorized, "The API key is not valid.")
	}
	k, err := e.store.APIKeyByHash(ctx, HashAPIKey(raw))
	if pv.ErrorCode(err) == pv.ENotFound {
		return nil, pv.Errorf(pv.EUnauthorized, "The API key is not valid.")
	}
	if err != nil {
		return nil, err
	}
	if err := e.accept(ctx, k, clientIP, "The API key has been revoked."); err != nil {
		return nil, err
	}
	return k, nil
}

// HasScope reports whether k grants scope.
func HasScope(k *pv.APIKey, scope string) bool {
	for _, s := range k.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// RevokeAPIKey revokes a key at once. Returns ENotFound if none.
func (e *Engine) RevokeAPIKey(ctx context.Context, id string) error {
	return e.store.RevokeAPIKey(ctx, id, e.Now())
}

// EnsureDefaultService returns the default service, creating it from seed if
// the store has none yet. The engine remembers its id for the bootstrap key.
func (e *Engine) EnsureDefaultService(ctx context.Context, seed *pv.Service) (*pv.Service, error) {
	svc, err := e.store.DefaultService(ctx)
	if pv.ErrorCode(err) == pv.ENotFound {
		s := *seed
		s.IsDefault = true
		if s.ID == "" {
			if s.ID, err = e.NewID("VA"); err != nil {
				return nil, err
			}
		}
		if err := ValidateService(&s); err != nil {
			return nil, err
		}
		s.CreatedAt, s.UpdatedAt = e.Now(), e.Now()
		err = e.store.CreateService(ctx, &s)
		if pv.ErrorCode(err) == pv.EConflict { // another node made it first
			svc, err = e.store.DefaultService(ctx)
		} else if err == nil {
			svc = &s
		}
	}
	if err != nil {
		return nil, fmt.Errorf("verify: default service: %w", err)
	}
	e.defaultServiceID = svc.ID
	return svc, nil
}

// DefaultServiceID returns the id EnsureDefaultService found or made.
func (e *Engine) DefaultServiceID() string { return e.defaultServiceID }

// ValidateService checks every setting of s, including that its message
// template renders and that its country lists name known countries
// ([ValidateLimits]), so a typo fails when the service is saved rather than
// when a code is sent.
func ValidateService(s *pv.Service) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Template != "" {
		if err := message.CheckTemplate(s.Template); err != nil {
			return &pv.Error{Code: pv.EInvalidRequest, Param: "template", Message: err.Error(), Err: err}
		}
	}
	return ValidateLimits(&s.Limits)
}
