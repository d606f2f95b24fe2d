package phoneverify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// EventType names what happened. The names are part of the API contract:
// subscribers match on them.
type EventType string

// Event types. Verification events fire when a verification enters the
// status they name (pending again on every resend); message events fire when
// a gateway accepted a message or a receipt confirmed it (delivered), or
// when delivery was given up or a receipt reported a failure (failed).
const (
	EventVerificationPending            EventType = "verification.pending"
	EventVerificationApproved           EventType = "verification.approved"
	EventVerificationCanceled           EventType = "verification.canceled"
	EventVerificationExpired            EventType = "verification.expired"
	EventVerificationMaxAttemptsReached EventType = "verification.max_attempts_reached"
	EventVerificationFailed             EventType = "verification.failed"
	EventMessageDelivered               EventType = "message.delivered"
	EventMessageFailed                  EventType = "message.failed"
)

// EventTypes lists every event type, in a stable order.
var EventTypes = []EventType{
	EventVerificationPending, EventVerificationApproved, EventVerificationCanceled, EventVerificationExpired,
	EventVerificationMaxAttemptsReached, EventVerificationFailed, EventMessageDelivered, EventMessageFailed,
}

// Valid reports whether t is one of the Event* types.
func (t EventType) Valid() bool {
	for _, k := range EventTypes {
		if t == k {
			return true
		}
	}
	return false
}

// VerificationEventType returns the event a verification entering status s
// fires.
func VerificationEventType(s Status) EventType { return EventType("verification." + string(s)) }

// Event is one thing that happened to a verification, recorded in the
// transaction of the change that caused it, so that a committed change
// always has its event.
type Event struct {
	// Seq orders events; the store assigns it.
	Seq int64
	// ID is the event's id ("EV" and 32 hex digits); it is the
	// webhook-id of every delivery of the event.
	ID             string
	Type           EventType
	ServiceID      string
	VerificationID string
	// Payload is the JSON body delivered to subscribers (see
	// [NewVerificationEvent]); it never holds a code.
	Payload   json.RawMessage
	CreatedAt time.Time
}

// NewEventID returns a fresh event id from crypto/rand.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "EV" + hex.EncodeToString(b[:])
}

// eventBody is the envelope every delivery carries, as the Standard
// Webhooks specification suggests: type, timestamp and data.
type eventBody struct {
	ID        string    `json:"id"`
	Type      EventType `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// VerificationEventData is the data of a verification event. It carries
// the full number: the subscriber is the app that started the verification
// and already holds it. It never carries the code nor a proof.
type VerificationEventData struct {
	ID                string    `json:"id"`
	ServiceID         string    `json:"service_id"`
	To                string    `json:"to"`
	Country           string    `json:"country,omitempty"`
	Channel           Channel   `json:"channel"`
	Status            Status    `json:"status"`
	Subject           string    `json:"subject,omitempty"`
	SendCount         int       `json:"send_count"`
	Attempts          int       `json:"attempts"`
	AttemptsRemaining int       `json:"attempts_remaining"`
	ExpiresAt         time.Time `json:"expires_at"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// MessageEventData is the data of a message event.
type MessageEventData struct {
	ID             string        `json:"id"`
	VerificationID string        `json:"verification_id"`
	ServiceID      string        `json:"service_id"`
	To             string        `json:"to"`
	Status         MessageStatus `json:"status"`
	Gateway        string        `json:"gateway,omitempty"`
	Error          string        `json:"error,omitempty"`
	SendCount      int           `json:"send_count"`
	UpdatedAt      time.Time     `json:"updated_at"`
}

// NewVerificationEvent returns the event v fires on entering its status.
func NewVerificationEvent(v *Verification, at time.Time) *Event {
	ch := v.Channel
	if ch == "" {
		ch = ChannelSMS
	}
	data := VerificationEventData{
		ID: v.ID, ServiceID: v.ServiceID, To: v.To, Country: v.Country, Channel: ch, Status: v.Status,
		Subject: v.Subject, SendCount: v.SendCount, Attempts: v.Attempts, AttemptsRemaining: v.AttemptsRemaining(),
		ExpiresAt: v.ExpiresAt.UTC(), CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC(),
	}
	return newEvent(VerificationEventType(v.Status), v.ServiceID, v.ID, data, at)
}

// NewMessageEvent returns the event of message m reaching status (sent
// fires message.delivered, failed and undelivered fire message.failed).
func NewMessageEvent(m *OutboxMessage, status MessageStatus, gateway, errText string, at time.Time) *Event {
	typ := EventMessageFailed
	if status == MessageSent || status == MessageDelivered {
		typ = EventMessageDelivered
	}
	data := MessageEventData{
		ID: m.ID, VerificationID: m.VerificationID, ServiceID: m.ServiceID, To: m.To, Status: status,
		Gateway: gateway, Error: errText, SendCount: m.SendCount, UpdatedAt: at.UTC(),
	}
	return newEvent(typ, m.ServiceID, m.VerificationID, data, at)
}

func newEvent(typ EventType, serviceID, verificationID string, data any, at time.Time) *Event {
	id := NewEventID()
	at = at.UTC().Truncate(time.Millisecond)
	body, err := json.Marshal(eventBody{ID: id, Type: typ, Timestamp: at, Data: data})
	if err != nil {
		panic("phoneverify: event payload: " + err.Error()) // plain structs always marshal
	}
	return &Event{ID: id, Type: typ, ServiceID: serviceID, VerificationID: verificationID, Payload: body, CreatedAt: at}
}

// EventSubscription subscribes one URL to some event types of one service.
// Its signing secret is kept sealed under the server secret, because the
// server needs it to sign each delivery.
type EventSubscription struct {
	// ID is "ES" and 32 hex digits.
	ID        string
	ServiceID string
	URL       string
	Types     []EventType
	// SealedSecret is the "whsec_…" secret, sealed (see otp.Sealer).
	SealedSecret []byte
	CreatedAt    time.Time
}

// EventFilter selects events for [EventStore.Events]: newest first, after
// the cursor Before (a Seq; 0 = from the newest).
type EventFilter struct {
	ServiceID      string
	Type           EventType
	VerificationID string
	Since          time.Time
	Before         int64
	Limit          int
}

// EventDelivery is one event to post to one subscription, as a worker
// claims it.
type EventDelivery struct {
	SubscriptionID string
	URL            string
	SealedSecret   []byte
	Event          *Event
	// Attempts counts the claims; it fences the claim's outcome.
	Attempts  int
	CreatedAt time.Time
}

// DeliveryOutcome is what a worker records after posting a delivery.
type DeliveryOutcome struct {
	// Delivered ends the delivery; otherwise it is retried at RetryAt, or
	// given up when GiveUp is set.
	Delivered bool
	GiveUp    bool
	RetryAt   time.Time
	Error     string
	At        time.Time
}

// EventStore keeps event subscriptions, the events that state changes
// record ([StartResult.Events], [Update.Events]) and their deliveries.
type EventStore interface {
	// CreateEventSubscription inserts sub. Returns ENotFound if its
	// service does not exist.
	CreateEventSubscription(ctx context.Context, sub *EventSubscription) error
	// EventSubscriptions returns a service's subscriptions, oldest first.
	EventSubscriptions(ctx context.Context, serviceID string) ([]*EventSubscription, error)
	// DeleteEventSubscription removes a subscription and its pending
	// deliveries. Returns ENotFound if none.
	DeleteEventSubscription(ctx context.Context, serviceID, id string) error
	// HasEventSubscriptions reports whether a service has any subscription.
	HasEventSubscriptions(ctx context.Context, serviceID string) (bool, error)
	// Events lists recorded events, newest first.
	Events(ctx context.Context, f EventFilter) ([]*Event, error)
	// ClaimEventDeliveries takes up to limit pending deliveries due at now
	// and leases them until now+lease. A delivery is only claimed once every
	// earlier event of the same verification to the same subscription is
	// delivered or given up, so subscribers see a verification's events in
	// order.
	ClaimEventDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*EventDelivery, error)
	// FinishEventDelivery records the outcome of claim d.Attempts. Returns
	// EConflict, writing nothing, if the claim is no longer the latest.
	FinishEventDelivery(ctx context.Context, d *EventDelivery, o DeliveryOutcome) error
}
