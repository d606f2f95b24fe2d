package phoneverify

import (
	"context"
	"time"
)

// FraudMode says what fraud protection does for a service.
type FraudMode string

// Fraud protection modes.
const (
	// FraudOff turns fraud protection off: nothing is counted as a
	// refusal, nothing is recorded.
	FraudOff FraudMode = "off"
	// FraudMonitor records (and reports to the Observer) every start fraud
	// protection would refuse, and refuses none: for trying the settings on
	// real traffic first.
	FraudMonitor FraudMode = "monitor"
	// FraudBlock refuses starts fraud protection flags with 403
	// blocked_by_fraud_protection; the default.
	FraudBlock FraudMode = "block"
)

// Valid reports whether m is one of the known modes.
func (m FraudMode) Valid() bool {
	return m == FraudOff || m == FraudMonitor || m == FraudBlock
}

// Fraud decision reasons: what tripped. They are the stable labels the
// decisions endpoint returns and the Observer receives (with "_monitor"
// appended in monitor mode).
const (
	// FraudReasonPrefix: too many unconverted sends to one number prefix.
	FraudReasonPrefix = "fraud_prefix"
	// FraudReasonCountry: too many unconverted sends to one country.
	FraudReasonCountry = "fraud_country"
	// FraudReasonIP: one client address asked for codes to many countries
	// and converted none.
	FraudReasonIP = "fraud_ip"
)

// FraudSettings tune fraud protection for one service. A zero number takes
// the engine's default, so a service that never set anything gets sane
// budgets.
type FraudSettings struct {
	ServiceID string
	// Mode is off, monitor or block; empty inherits the engine's default
	// for the service (PHONEVERIFY_FRAUD_MODE for the default service,
	// block for the others).
	Mode FraudMode
	// PrefixFloor is the smallest budget of unconverted sends per number
	// prefix within Window, whatever the prefix's history: the allowance
	// of a new service or a new destination.
	PrefixFloor int
	// CountryFloor is the same per destination country.
	CountryFloor int
	// BudgetRatio scales a prefix's (or country's) conversions into its
	// budget of unconverted sends: with 1, sends may stay unconverted as
	// long as at least half of them convert.
	BudgetRatio float64
	// Window is the rolling window over which unconverted sends are
	// counted (whole hours).
	Window time.Duration
	// Cooldown is how long a tripped prefix, country or address is refused
	// before it is judged again.
	Cooldown time.Duration
	// IPCountries is how many countries one client address may ask codes
	// for within Window without a single conversion.
	IPCountries int
	UpdatedAt   time.Time
}

// FraudKey names what a fraud counter counts.
type FraudKey struct {
	// Scope is "prefix", "country", "ip" or "ipc" (an address and a
	// country, "ADDR|CC").
	Scope string
	Key   string
}

// Fraud counter scopes.
const (
	FraudScopePrefix    = "prefix"
	FraudScopeCountry   = "country"
	FraudScopeIP        = "ip"
	FraudScopeIPCountry = "ipc"
)

// FraudCounts are the sends and conversions counted for one key.
type FraudCounts struct {
	Sends       int64
	Conversions int64
}

// Unconverted returns the sends that did not (yet) convert.
func (c FraudCounts) Unconverted() int64 {
	if c.Sends < c.Conversions {
		return 0
	}
	return c.Sends - c.Conversions
}

// FraudQuery asks for the counters a start is judged on.
type FraudQuery struct {
	ServiceID string
	Prefix    string
	Country   string
	// IP is the client address key (IPv4, or an IPv6 /64); empty skips
	// the address counters.
	IP string
	// Since starts the rolling window; HistorySince the longer history
	// that budgets learn from.
	Since, HistorySince time.Time
	// Now: blocks that end after it are returned.
	Now time.Time
}

// FraudState is what the store knows about one start's prefix, country and
// client address.
type FraudState struct {
	// Prefix and Country count within the window.
	Prefix, Country FraudCounts
	// PrefixHistory and CountryHistory count conversions over the
	// history (Sends included for reports).
	PrefixHistory, CountryHistory FraudCounts
	// IPCountries is how many countries other than this start's the
	// address asked codes for within the window; IPConversions how many of
	// its verifications converted within it.
	IPCountries   int
	IPConversions int64
	// Blocks are the blocks in force at Now on the prefix, country or
	// address, by scope.
	Blocks map[string]time.Time
}

// FraudDecision is one start that fraud protection refused (or, in monitor
// mode, would have refused). It holds no full phone number.
type FraudDecision struct {
	ID        string
	ServiceID string
	// Reason is one of the FraudReason* labels.
	Reason string
	// Action is "blocked" or "monitored".
	Action string
	// Prefix and Country are the destination's; Phone is masked.
	Prefix  string
	Country string
	Phone   string
	IP      string
	// Unconverted and Budget are the figures the decision was made on.
	Unconverted int64
	Budget      int64
	// Until is when the block ends.
	Until     time.Time
	CreatedAt time.Time
}

// FraudDecisionFilter selects decisions; zero fields select everything.
type FraudDecisionFilter struct {
	ServiceID string
	Reason    string
	Action    string
	Country   string
	Prefix    string
	After     time.Time
	Before    time.Time
	// Limit caps the answer; BeforeID pages backwards (newest first):
	// only decisions older than the one with this id.
	Limit    int
	BeforeID string
}

// PurgeResult counts what a purge deleted or rolled up.
type PurgeResult struct {
	Verifications int64
	Messages      int64
	Attempts      int64
	Decisions     int64
	// Events is how many recorded events were deleted, each with its
	// deliveries (pending ones included): they carry verification data.
	Events int64
	// CountersRolledUp is how many hourly fraud counter rows were folded
	// into daily ones; IPCounters how many per-address rows were deleted.
	CountersRolledUp int64
	IPCounters       int64
}

// FraudConversion is an approval to count for fraud protection ([Update]
// Conversion): one conversion for the number's prefix and country, and one
// for the client address its verification was started from, if one was
// recorded — what [FraudStore.CountConversion] counts.
type FraudConversion struct {
	Prefix  string
	Country string
	// At picks the hourly bucket.
	At time.Time
}

// ConversionCounter is implemented by a store that can count an approval's
// conversion inside [Store.UpdateVerification] ([Update] Conversion).
type ConversionCounter interface {
	// CountsConversions reports whether UpdateVerification counts
	// Update.Conversion. When it is false the store ignores the field.
	CountsConversions() bool
}

// FraudStore keeps fraud protection's settings, counters, blocks and
// decisions, shared by every node. Counters are only ever changed by atomic
// increments in the database.
//
// Every method returns an *Error with EUnavailable when the database cannot
// be reached.
type FraudStore interface {
	// FraudSettings returns a service's settings. Returns ENotFound if the
	// service never saved any.
	FraudSettings(ctx context.Context, serviceID string) (*FraudSettings, error)
	// SaveFraudSettings inserts or replaces a service's settings.
	SaveFraudSettings(ctx context.Context, s *FraudSettings) error
	// FraudState reads the counters and blocks a start is judged on.
	FraudState(ctx context.Context, q FraudQuery) (*FraudState, error)
	// CountFraud adds delta to the counters of keys in the hourly bucket
	// that holds at, in one atomic upsert. When verificationID and ip are
	// set, it also remembers the address the verification was started
	// from, so that its conversion is counted for that address.
	CountFraud(ctx context.Context, serviceID string, keys []FraudKey, delta FraudCounts, at time.Time, verificationID, ip string) error
	// CountConversion adds one conversion to the prefix and country
	// counters, and to the address the verification was started from.
	CountConversion(ctx context.Context, serviceID, verificationID, prefix, country string, at time.Time) error
	// BlockFraud records a block (scope and key) until the given time and
	// the decision that made it, in one transaction. A block already in
	// force is extended, never shortened.
	BlockFraud(ctx context.Context, d *FraudDecision, scope, key string) error
	// RecordFraudDecision records a decision alone (a refusal under a
	// block in force, or a monitored one).
	RecordFraudDecision(ctx context.Context, d *FraudDecision) error
	// FraudDecisions returns the decisions f selects, newest first.
	FraudDecisions(ctx context.Context, f FraudDecisionFilter) ([]*FraudDecision, error)
	// Purge deletes verifications (with their messages and send attempts)
	// that were last updated before cutoff and are no longer pending, and
	// fraud decisions and events (with their deliveries) older than cutoff. Older than rollupBefore (which
	// must be past every fraud window), it deletes the per-address
	// counters and folds the hourly prefix and country counters into daily
	// rows, so the conversion history fraud protection learns from
	// survives the records it came from.
	Purge(ctx context.Context, cutoff, rollupBefore time.Time) (*PurgeResult, error)
}
