package phoneverify

import (
	"context"
	"time"
)

// ServiceFeatures are a service's optional behaviours beyond [Service], and
// the settings phoneverify keeps only to return them (for the
// Twilio-compatible API). A service that never saved any has the zero value.
type ServiceFeatures struct {
	ServiceID string
	// LookupEnabled adds the number's line type to verification resources.
	LookupEnabled bool
	// SkipSMSToLandlines refuses numbers that cannot receive SMS. phoneverify
	// never sends to such numbers, so the setting is kept and shown only.
	SkipSMSToLandlines bool
	// DoNotShareWarning adds a warning not to share the code to each message.
	DoNotShareWarning bool
	// CustomCodeEnabled lets a start name the code to send.
	CustomCodeEnabled bool
	// PSD2Enabled requires amount and payee on every start and puts them in
	// the message.
	PSD2Enabled bool
	// Echo holds settings accepted and returned but not acted on, keyed by
	// their Twilio form name ("TtsName", "Push.IncludeDate").
	Echo map[string]string
	// DeletedAt is when the service was deleted; a deleted service answers
	// as not found.
	DeletedAt *time.Time
}

// RateLimit is a programmable rate limit: a key a start may name (an end
// user's IP address, a session id) whose [Bucket]s meter its values.
type RateLimit struct {
	ID          string
	ServiceID   string
	UniqueName  string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Bucket allows at most Max starts per value of its rate limit within
// Interval.
type Bucket struct {
	ID          string
	RateLimitID string
	ServiceID   string
	Max         int
	Interval    time.Duration
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// BucketHit is one start metered by one bucket: Key is a hash of the value
// the start named, never the value itself.
type BucketHit struct {
	Bucket *Bucket
	Key    string
}

// SendAttempt is one code sent (or, for a test number, not sent) for a
// verification.
type SendAttempt struct {
	ID             string
	VerificationID string
	ServiceID      string
	Channel        Channel
	// Phone is the destination in E.164 and Country its ISO region.
	Phone   string
	Country string
	// Converted reports whether the verification was approved; stores fill
	// it when they read attempts.
	Converted bool
	CreatedAt time.Time
}

// AttemptFilter selects send attempts. Zero fields select everything.
type AttemptFilter struct {
	ServiceID      string
	VerificationID string
	Phone          string
	PhonePrefix    string
	Country        string
	Channel        Channel
	// Converted, when set, selects converted (true) or unconverted attempts.
	Converted *bool
	After     time.Time
	Before    time.Time
	// Limit and Offset page the result (oldest first); Limit 0 means all.
	Limit  int
	Offset int
}

// SafeListNumber is a number exempt from fraud protection.
type SafeListNumber struct {
	ID        string
	Phone     string
	CreatedAt time.Time
}

// ExtrasStore keeps what the Twilio-compatible features add to a [Store]:
// service features, programmable rate limits, send attempts and the safe
// list. The engine uses it when its Store implements it too.
//
// Every method returns an *Error with ENotFound when the named record does
// not exist, EConflict when a unique name is taken, and EUnavailable when
// the database cannot be reached.
type ExtrasStore interface {
	// ServiceFeatures returns the features of a service: the zero value (with
	// ServiceID set) if none were ever saved.
	ServiceFeatures(ctx context.Context, serviceID string) (*ServiceFeatures, error)
	// SaveServiceFeatures creates or replaces the features of f.ServiceID;
	// a service marked deleted stays deleted. Returns ENotFound if the
	// service does not exist.
	SaveServiceFeatures(ctx context.Context, f *ServiceFeatures) error
	// UpdateServiceWithFeatures saves s as [Store.UpdateService] does —
	// only if the service is unchanged since readAt — and f with it, in
	// one transaction: a change of features, or a deletion, made since
	// the read is not undone. Returns what UpdateService returns.
	UpdateServiceWithFeatures(ctx context.Context, s *Service, f *ServiceFeatures, readAt time.Time) error
	// DeleteService marks a service deleted at the given time, moves its
	// UpdatedAt on (so that an update read before it gets EConflict), and
	// revokes its API keys. Returns ENotFound if none.
	DeleteService(ctx context.Context, serviceID string, at time.Time) error

	// RateLimits returns a service's rate limits, oldest first.
	RateLimits(ctx context.Context, serviceID string) ([]*RateLimit, error)
	// RateLimit returns one rate limit. Returns ENotFound if none.
	RateLimit(ctx context.Context, serviceID, id string) (*RateLimit, error)
	// CreateRateLimit inserts rl. Returns EConflict if its unique name is
	// taken in the service.
	CreateRateLimit(ctx context.Context, rl *RateLimit) error
	// UpdateRateLimit saves rl's description. Returns ENotFound if none.
	UpdateRateLimit(ctx context.Context, rl *RateLimit) error
	// DeleteRateLimit deletes a rate limit and its buckets.
	DeleteRateLimit(ctx context.Context, serviceID, id string) error
	// Buckets returns a rate limit's buckets, oldest first.
	Buckets(ctx context.Context, serviceID, rateLimitID string) ([]*Bucket, error)
	// Bucket returns one bucket. Returns ENotFound if none.
	Bucket(ctx context.Context, serviceID, rateLimitID, id string) (*Bucket, error)
	// CreateBucket inserts b. Returns ENotFound if its rate limit is gone.
	CreateBucket(ctx context.Context, b *Bucket) error
	// UpdateBucket saves b's max and interval. Returns ENotFound if none.
	UpdateBucket(ctx context.Context, b *Bucket) error
	// DeleteBucket deletes a bucket.
	DeleteBucket(ctx context.Context, serviceID, rateLimitID, id string) error
	// HitBuckets atomically counts one start against every hit's bucket,
	// unless one of them is full at now: then it records nothing and
	// returns the full bucket and how long until it has room.
	HitBuckets(ctx context.Context, hits []BucketHit, now time.Time) (full *Bucket, wait time.Duration, err error)

	// RecordSendAttempt inserts a.
	RecordSendAttempt(ctx context.Context, a *SendAttempt) error
	// SendAttempts returns the attempts f selects, oldest first.
	SendAttempts(ctx context.Context, f AttemptFilter) ([]*SendAttempt, error)
	// SendAttempt returns one attempt. Returns ENotFound if none.
	SendAttempt(ctx context.Context, id string) (*SendAttempt, error)
	// CountSendAttempts returns how many attempts f selects (ignoring its
	// Limit and Offset) and how many of those converted.
	CountSendAttempts(ctx context.Context, f AttemptFilter) (total, converted int, err error)

	// AddSafeListNumber inserts n, or returns the entry already held for
	// n.Phone.
	AddSafeListNumber(ctx context.Context, n *SafeListNumber) (*SafeListNumber, error)
	// SafeListNumber returns the entry of a phone. Returns ENotFound if none.
	SafeListNumber(ctx context.Context, phone string) (*SafeListNumber, error)
	// RemoveSafeListNumber deletes the entry of a phone. Returns ENotFound if
	// none.
	RemoveSafeListNumber(ctx context.Context, phone string) error
}
