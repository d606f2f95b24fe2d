package verify

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

// EventSecretPrefix starts every event signing secret: "whsec_" and the
// base64 of the key, the form Standard Webhooks libraries take.
const EventSecretPrefix = "whsec_"

// subscriptionCacheTTL bounds how long a node keeps believing a service has
// (or has not) event subscriptions. A subscription created or deleted
// through this node's engine takes effect on it at once; one made on
// another node takes effect here within the TTL.
const subscriptionCacheTTL = 2 * time.Second

// Subscribed reports whether a service has event subscriptions, from a
// short-lived cache, so that a service without any pays nothing for events.
// A store error counts as subscribed: recording an event too many is
// cheaper than losing one.
func (e *Engine) Subscribed(ctx context.Context, serviceID string) bool {
	if e.events == nil {
		return false
	}
	now := e.cacheClock()
	if ok, hit := e.subscribed.get(serviceID, now); hit {
		return ok
	}
	e.mu.Lock()
	gen := e.subscribedGen
	e.mu.Unlock()
	has, err := e.events.HasEventSubscriptions(ctx, serviceID)
	if err != nil {
		return true
	}
	// A subscription created or deleted here while the store was read
	// makes the answer stale: it is returned, not cached.
	e.mu.Lock()
	if e.subscribedGen == gen {
		e.subscribed.put(serviceID, has, now.Add(subscriptionCacheTTL))
	}
	e.mu.Unlock()
	return has
}

// updateVerification is the store's UpdateVerification that records, when
// the service has subscriptions, the event of each status change apply
// makes, in the same transaction, and then wakes the event workers.
func (e *Engine) updateVerification(ctx context.Context, ref pv.VerificationRef, apply func(*pv.Verification) (*pv.Update, error)) (*pv.Verification, error) {
	return e.updateVerificationVia(ctx, e.store.UpdateVerification, ref, apply)
}

// updateFunc is the signature of [pv.Store.UpdateVerification].
type updateFunc func(ctx context.Context, ref pv.VerificationRef, apply func(*pv.Verification) (*pv.Update, error)) (*pv.Verification, error)

// updateVerificationVia is updateVerification through update, the store's
// UpdateVerification or one that does more in its transaction.
func (e *Engine) updateVerificationVia(ctx context.Context, update updateFunc, ref pv.VerificationRef, apply func(*pv.Verification) (*pv.Update, error)) (*pv.Verification, error) {
	if !e.Subscribed(ctx, ref.ServiceID) {
		return update(ctx, ref, apply)
	}
	recorded := false
	v, err := update(ctx, ref, func(v *pv.Verification) (*pv.Update, error) {
		recorded = false // a store may run apply again after a conflict
		before := v.Status
		u, err := apply(v)
		if err != nil || u == nil || !u.Save || v.Status == before {
			return u, err
		}
		u.Events = append(u.Events, pv.NewVerificationEvent(v, v.UpdatedAt))
		recorded = true
		return u, nil
	})
	if err == nil && recorded {
		e.eventsNotify()
	}
	return v, err
}

// startEvents returns the events a start's result fires: the closed
// verification's, then pending for the one saved (again on a resend).
func startEvents(res *pv.StartResult, now time.Time) []*pv.Event {
	var out []*pv.Event
	if res.Close != nil {
		out = append(out, pv.NewVerificationEvent(res.Close, now))
	}
	return append(out, pv.NewVerificationEvent(res.Save, now))
}

// CreateEventSubscription subscribes rawURL to the given event types of a
// service (every type when types is empty) and returns the subscription
// with its signing secret, which is shown only this once: the store keeps
// it sealed. Returns EInvalidRequest naming url or types, ENotFound if the
// service does not exist.
func (e *Engine) CreateEventSubscription(ctx context.Context, serviceID, rawURL string, types []string) (*pv.EventSubscription, string, error) {
	secret, err := e.newEventSecret()
	if err != nil {
		return nil, "", err
	}
	sub, err := e.subscribe(ctx, serviceID, rawURL, types, secret)
	if err != nil {
		return nil, "", err
	}
	return sub, secret, nil
}

// EnsureEventSubscription makes sure rawURL is subscribed to every event of
// a service with the given secret (PHONEVERIFY_EVENTS_URL and
// PHONEVERIFY_EVENTS_SECRET): an existing subscription of the URL with
// that secret and every type is kept, any other of that URL replaced.
func (e *Engine) EnsureEventSubscription(ctx context.Context, serviceID, rawURL, secret string) (*pv.EventSubscription, error) {
	if err := ValidateEventSecret(secret); err != nil {
		return nil, err
	}
	if e.events == nil {
		return nil, pv.Errorf(pv.EInvalidRequest, "This store does not keep event subscriptions.")
	}
	subs, err := e.events.EventSubscriptions(ctx, serviceID)
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if s.URL != rawURL {
			continue
		}
		_, old, err := e.sealer.OpenMessage(s.ID, s.SealedSecret)
		if err == nil && subtle.ConstantTimeCompare([]byte(old), []byte(secret)) == 1 && len(s.Types) == len(pv.EventTypes) {
			return s, nil
		}
		if err := e.DeleteEventSubscription(ctx, serviceID, s.ID); err != nil {
			return nil, err
		}
	}
	return e.subscribe(ctx, serviceID, rawURL, nil, secret)
}

func (e *Engine) subscribe(ctx context.Context, serviceID, rawURL string, types []string, secret string) (*pv.EventSubscription, error) {
	if e.events == nil {
		return nil, pv.Errorf(pv.EInvalidRequest, "This store does not keep event subscriptions.")
	}
	if err := validateEventURL(rawURL); err != nil {
		return nil, err
	}
	want, err := parseEventTypes(types)
	if err != nil {
		return nil, err
	}
	id, err := e.NewID("ES")
	if err != nil {
		return nil, err
	}
	// The secret rides in the sealer's code slot, bound to the
	// subscription's id.
	sealed, err := e.sealer.SealMessage(id, "", secret)
	if err != nil {
		return nil, err
	}
	sub := &pv.EventSubscription{ID: id, ServiceID: serviceID, URL: rawURL, Types: want, SealedSecret: sealed,
		CreatedAt: e.Now().Truncate(time.Millisecond)}
	if err := e.events.CreateEventSubscription(ctx, sub); err != nil {
		return nil, err
	}
	e.forgetSubscribed(serviceID)
	return sub, nil
}

// EventSubscriptions lists a service's subscriptions (without secrets).
func (e *Engine) EventSubscriptions(ctx context.Context, serviceID string) ([]*pv.EventSubscription, error) {
	if e.events == nil {
		return nil, nil
	}
	return e.events.EventSubscriptions(ctx, serviceID)
}

// DeleteEventSubscription ends a subscription; its pending deliveries are
// dropped. Returns ENotFound if the service has no such subscription.
func (e *Engine) DeleteEventSubscription(ctx context.Context, serviceID, id string) error {
	if e.events == nil || !validID(id, "ES") {
		return pv.ParamErrorf(pv.ENotFound, "id", "No event subscription has this id.")
	}
	if err := e.events.DeleteEventSubscription(ctx, serviceID, id); err != nil {
		if pv.ErrorCode(err) == pv.ENotFound {
			return pv.ParamErrorf(pv.ENotFound, "id", "No event subscription has this id.")
		}
		return err
	}
	e.forgetSubscribed(serviceID)
	return nil
}

// Events lists a service's recorded events, newest first, for replay.
func (e *Engine) Events(ctx context.Context, f pv.EventFilter) ([]*pv.Event, error) {
	if f.Type != "" && !f.Type.Valid() {
		return nil, pv.ParamErrorf(pv.EInvalidRequest, "type", "Unknown event type %q.", f.Type)
	}
	if e.events == nil {
		return nil, nil
	}
	return e.events.Events(ctx, f)
}

// forgetSubscribed drops the cached answer of Subscribed for a service
// whose subscriptions changed through this engine, so that the change
// takes effect on this node at once.
func (e *Engine) forgetSubscribed(serviceID string) {
	e.mu.Lock()
	e.subscribedGen++
	e.subscribed.forget(serviceID)
	e.mu.Unlock()
}

func (e *Engine) newEventSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return EventSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// ValidateEventSecret checks a signing secret: "whsec_" and the base64 of
// 24 to 64 bytes, as the Standard Webhooks specification recommends.
func ValidateEventSecret(secret string) error {
	b64, ok := strings.CutPrefix(secret, EventSecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		return pv.ParamErrorf(pv.EInvalidRequest, "secret", "An event secret is whsec_ and the base64 of 24 to 64 random bytes.")
	}
	return nil
}

func validateEventURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > 2048 || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return pv.ParamErrorf(pv.EInvalidRequest, "url", "The url must be an absolute http or https URL without credentials, at most 2048 bytes.")
	}
	return nil
}

func parseEventTypes(types []string) ([]pv.EventType, error) {
	if len(types) == 0 {
		return append([]pv.EventType(nil), pv.EventTypes...), nil
	}
	seen := map[pv.EventType]bool{}
	var out []pv.EventType
	for _, t := range types {
		et := pv.EventType(t)
		if !et.Valid() {
			return nil, pv.ParamErrorf(pv.EInvalidRequest, "types", "Unknown event type %q.", t)
		}
		if !seen[et] {
			seen[et] = true
			out = append(out, et)
		}
	}
	return out, nil
}
