package phoneverify

import (
	"context"
	"time"
)

// Store persists services, verifications, the verified-phone registry, API
// keys and signing keys. Implementations make each method atomic; the rules
// that decide what to write live in the engine and reach the store as the
// decide/apply callbacks, which run inside the store's transaction. A store
// may call a callback more than once (after a write conflict, with fresh
// state); only the last call's result is written, so callbacks must set every
// variable they report through on each call.
//
// Every method returns an *Error with ENotFound when the named record does not
// exist and EUnavailable when the database cannot be reached; any other error
// is internal.
type Store interface {
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error

	// DefaultService returns the service marked as default.
	// Returns ENotFound if there is none yet.
	DefaultService(ctx context.Context) (*Service, error)
	// Service returns the service with the given id. Returns ENotFound if none.
	Service(ctx context.Context, id string) (*Service, error)
	// Services returns every service, oldest first.
	Services(ctx context.Context) ([]*Service, error)
	// CreateService inserts s; s.ID must be set. Returns EConflict if a
	// default service already exists and s.IsDefault is set.
	CreateService(ctx context.Context, s *Service) error
	// UpdateService saves every setting of s, provided the service is
	// unchanged since it was read: its stored UpdatedAt must still be
	// readAt, the UpdatedAt of that read. Without that check, a change
	// written from an older read would undo a concurrent one (say, of the
	// limits). It stores s.UpdatedAt, or readAt plus a millisecond if that
	// is not later, so every change moves UpdatedAt on, and sets
	// s.UpdatedAt to what it stored. Returns ENotFound if there is no such
	// service, and EConflict, writing nothing, if it changed since readAt or
	// if s.IsDefault is set while another service is the default.
	UpdateService(ctx context.Context, s *Service, readAt time.Time) error

	// Verification returns the verification with the given id in the given
	// service. Returns ENotFound if none.
	Verification(ctx context.Context, serviceID, id string) (*Verification, error)

	// StartVerification serialises every start for (serviceID, phone): it
	// reads the number's StartState, calls decide, and writes the
	// StartResult atomically, as if no other start for the number ran in
	// between. A store may lock the number first, or read without a lock
	// and write only if the number is unchanged, calling decide again on a
	// fresh read otherwise: decide may run more than once, and only its last
	// run counts. If decide returns an error nothing is written and that
	// error is returned. It returns result.Save as saved.
	StartVerification(ctx context.Context, key NumberKey, decide func(*StartState) (*StartResult, error)) (*Verification, error)

	// UpdateVerification reads one verification (by id, or the newest one
	// for a phone number), calls apply with it, and saves what apply asks
	// for atomically: what is saved is apply's answer to the verification
	// exactly as it stood when saved. A store may lock the verification
	// first, or read it without a lock and save only if it is unchanged,
	// calling apply again on a fresh read otherwise: apply may run more
	// than once, and only its last run counts, so it must not carry state
	// from one run to the next. If apply returns an error nothing is
	// written. Returns ENotFound if the reference matches no verification.
	UpdateVerification(ctx context.Context, ref VerificationRef, apply func(*Verification) (*Update, error)) (*Verification, error)

	// Messages returns the outbox messages of a verification, oldest first,
	// without their sealed text. An unknown verification has none.
	Messages(ctx context.Context, serviceID, verificationID string) ([]*OutboxMessage, error)

	// ExpireVerifications marks every pending verification whose code expired
	// at or before now as expired and returns how many it marked. A store
	// that is also an [EventStore] records verification.expired for each,
	// in the same transaction, when its service has a subscription.
	ExpireVerifications(ctx context.Context, now time.Time) (int, error)

	// VerifiedPhone returns the registry entry of a subject.
	// Returns ENotFound if the subject has no verified phone.
	VerifiedPhone(ctx context.Context, serviceID, subject string) (*VerifiedPhone, error)

	// CreateAPIKey inserts k; k.ID and k.Hash must be set.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key with the given hash, revoked or not.
	// Returns ENotFound if none.
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	// APIKeys returns every key, oldest first.
	APIKeys(ctx context.Context) ([]*APIKey, error)
	// RevokeAPIKey marks the key revoked at the given time.
	// Returns ENotFound if none.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
	// TouchAPIKey records that the key was used at at, unless its
	// LastUsedAt is after staleBefore already, so that many requests and
	// nodes write it at most once per interval. An unknown key is no error.
	TouchAPIKey(ctx context.Context, id string, at, staleBefore time.Time) error

	// SigningKeys returns every signing key, oldest first.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// EnsureSigningKey inserts k only if the store holds no signing key yet,
	// atomically even across nodes, and returns every key.
	EnsureSigningKey(ctx context.Context, k *SigningKey) ([]*SigningKey, error)
	// AddSigningKey inserts k and marks every earlier unretired key retired at
	// k.CreatedAt.
	AddSigningKey(ctx context.Context, k *SigningKey) error

	// Close releases the store's connections.
	Close() error
}

// NumberKey names the number a start is for, and the subject it names.
type NumberKey struct {
	ServiceID string
	Phone     string
	Subject   string
}

// StartState is what the store knows about one number in one service, read
// under the lock that serialises starts for that number.
type StartState struct {
	// Latest is the newest verification for the number in the service, in any
	// status, or nil if there has never been one.
	Latest *Verification
	// Sends are the times of earlier sends to the number, oldest first, as
	// saved by the last StartResult.
	Sends []time.Time
	// SubjectPhone is the registry entry of key.Subject, if it has one.
	SubjectPhone *VerifiedPhone
	// PhoneSubjects are the subjects whose verified phone is key.Phone.
	PhoneSubjects []string
}

// StartResult is what a start writes.
type StartResult struct {
	// Close, when set, is Latest with a new final status to save (for
	// example canceled when a new verification replaces it).
	Close *Verification
	// Save is the verification to insert (a new ID) or update (Latest's ID,
	// a resend).
	Save *Verification
	// Sends replaces the number's send history.
	Sends []time.Time
	// Message, when set, is inserted into the outbox in the same
	// transaction, so that a committed start always has its message queued.
	// It must be for Save.
	Message *OutboxMessage
	// Attempt, when set, records this send (Twilio's send_code_attempts)
	// in the same transaction.
	Attempt *SendAttempt
	// Events, when set, are recorded in the same transaction (see
	// [EventStore]); a store may take a slower path to write them.
	Events []*Event
}

// VerificationRef names a verification by ID, or by phone number as the
// newest verification for that number in the service.
type VerificationRef struct {
	ServiceID string
	ID        string
	Phone     string
}

// Update is what UpdateVerification writes after apply has run.
type Update struct {
	// Save writes the verification as apply left it.
	Save bool
	// Register, when set, records the subject's verified phone (replacing the
	// subject's previous entry).
	Register *VerifiedPhone
	// Events, when set, are recorded in the same transaction (see
	// [EventStore]).
	Events []*Event
	// Conversion, when set, counts the approval apply made as a fraud
	// protection conversion in the same transaction as the save, so that
	// it is counted exactly once however many times apply runs, and
	// without a transaction of its own. Only a store whose
	// [ConversionCounter.CountsConversions] reports true counts it; the
	// engine calls [FraudStore.CountConversion] after the commit
	// otherwise.
	Conversion *FraudConversion
}
