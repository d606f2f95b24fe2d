package phoneverify

import (
	"context"
	"time"
)

// MessageStatus is where one message stands in delivery.
type MessageStatus string

// Message statuses. A message is queued in the outbox until a gateway
// accepts it (sent) or delivery is given up (failed); delivery receipts
// then move a sent message to delivered, undelivered or failed.
const (
	MessageQueued      MessageStatus = "queued"
	MessageSent        MessageStatus = "sent"
	MessageDelivered   MessageStatus = "delivered"
	MessageUndelivered MessageStatus = "undelivered"
	MessageFailed      MessageStatus = "failed"
)

// Final reports whether no receipt can change s any more.
func (s MessageStatus) Final() bool {
	return s == MessageDelivered || s == MessageUndelivered || s == MessageFailed
}

// Valid reports whether s is one of the Message* statuses.
func (s MessageStatus) Valid() bool {
	return s == MessageQueued || s == MessageSent || s.Final()
}

// OutboxMessage is one message of the durable outbox: the text a start
// committed together with its verification, and what became of it. The text
// and the code are kept only in Sealed, encrypted, and only until the
// message is sent or given up.
type OutboxMessage struct {
	// ID is the message's id ("MS" and 32 hex digits).
	ID             string
	VerificationID string
	ServiceID      string
	// To is the destination in E.164; Country its ISO region, if known.
	To      string
	Country string
	Locale  string
	// SendCount is the verification's send_count when this message was
	// made: a later resend supersedes it.
	SendCount int
	// Sealed holds the body and the code, encrypted (see otp.Sealer); it is
	// nil once the message is sent or given up, and never read back by
	// [Store.Messages].
	Sealed []byte
	Status MessageStatus
	// Gateway and ProviderID name the gateway that accepted the message and
	// its id there, which delivery receipts carry.
	Gateway    string
	ProviderID string
	// Error is the last failure, safe to show an operator: no code, no full
	// number.
	Error string
	// Attempts counts the claims of the message; it also fences a claim, so
	// that a worker whose lease ran out cannot overwrite a later outcome.
	Attempts int
	// DueAt is when the message may next be claimed: at first its creation,
	// after a claim the end of the claim's lease, after a failed try the
	// time of the retry.
	DueAt time.Time
	// ExpiresAt is the verification's expiry when the message was made; a
	// message not sent by then is given up.
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time

	// VerificationStatus and VerificationSendCount are the stored status
	// and send_count of the message's verification when
	// [Outbox.ClaimMessages] took the message, so that a worker can tell a
	// dead code without reading the verification; other reads leave them
	// zero.
	VerificationStatus    Status
	VerificationSendCount int
}

// MessageOutcome is what a worker records after trying a claimed message.
type MessageOutcome struct {
	// Status is MessageQueued to try again at RetryAt, MessageSent when a
	// gateway accepted the message, or MessageFailed when it is given up.
	// Sent and failed wipe the sealed text.
	Status  MessageStatus
	RetryAt time.Time
	Gateway string
	// ProviderID is the gateway's id of an accepted message.
	ProviderID string
	Error      string
	At         time.Time
	// Events, when set, are recorded with the outcome, in the same
	// transaction, if the outcome is recorded (see [EventStore]).
	Events []*Event
}

// Outbox is the durable queue of messages that workers deliver. Messages
// enter it through [StartResult.Message], in the transaction of their start.
type Outbox interface {
	// ClaimMessages takes up to limit queued messages due at now, oldest
	// first, counts an attempt on each and leases them until now+lease:
	// until then no other call claims them; after it (the worker died) they
	// are due again. Concurrent callers, on any node, never claim the same
	// message while its lease runs. Each message comes with its
	// verification's status and send_count.
	ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*OutboxMessage, error)

	// FinishMessage records the outcome of the claim m.Attempts of m.
	// Returns EConflict, writing nothing, if that claim is no longer the
	// message's latest (its lease ran out and another worker claimed it) or
	// the message is no longer queued.
	FinishMessage(ctx context.Context, m *OutboxMessage, o MessageOutcome) error

	// UpdateMessageStatus applies a delivery receipt to the message a
	// gateway knows by providerID: a sent message moves to a final status.
	// It reports whether a message changed; a receipt for an unknown
	// message, a repeated one or one that would move a status backwards
	// changes nothing.
	UpdateMessageStatus(ctx context.Context, gateway, providerID string, status MessageStatus, errText string, at time.Time) (bool, error)
}
