package verify

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/message"
)

// Scopes an API key may hold.
const (
	ScopeSend  = "verify:send"
	ScopeCheck = "verify:check"
	ScopeAdmin = "admin"
)

// AllScopes are granted to keys created without an explicit list and to the
// bootstrap key.
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
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return "", nil, pv.ParamErrorf(pv.EInvalidRequest, "name", "An API key needs a name of at most 100 characters.")
	}
	if _, err := e.store.Service(ctx, serviceID); err != nil {
		return "", nil, err
	}
	if len(scopes) == 0 {
		scopes = AllScopes
	}
	for _, s := range scopes {
		if !validScope(s) {
			return "", nil, pv.ParamErrorf(pv.EInvalidRequest, "scopes", "Unknown scope %q; known scopes: %s.", s, strings.Join(AllScopes, ", "))
		}
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
		Hash: HashAPIKey(raw), Scopes: scopes, CreatedAt: e.Now()}
	if err := e.store.CreateAPIKey(ctx, k); err != nil {
		return "", nil, err
	}
	return raw, k, nil
}

func validScope(s string) bool {
	for _, a := range AllScopes {
		if s == a {
			return true
		}
	}
	return false
}

// Authenticate returns the key a request presented.
// Returns EUnauthorized for a missing, unknown or revoked key.
func (e *Engine) Authenticate(ctx context.Context, raw string) (*pv.APIKey, error) {
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
	if k.RevokedAt != nil {
		return nil, pv.Errorf(pv.EUnauthorized, "The API key has been revoked.")
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
// template renders, so a typo fails when the service is saved rather than
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
	return nil
}
