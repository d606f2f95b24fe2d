package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

// Limits on programmable rate limits.
const (
	maxUniqueNameLen  = 64
	maxDescriptionLen = 255
	maxRateLimitValue = 256
	// MaxBucketMax is the largest Max a bucket may have.
	MaxBucketMax = 1_000_000
	// MaxBucketInterval is the longest interval a bucket may meter.
	MaxBucketInterval = 7 * 24 * time.Hour
)

// RateLimits returns a service's rate limits, oldest first.
func (e *Engine) RateLimits(ctx context.Context, serviceID string) ([]*pv.RateLimit, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	return x.RateLimits(ctx, serviceID)
}

// RateLimit returns one rate limit. Returns ENotFound if none.
func (e *Engine) RateLimit(ctx context.Context, serviceID, id string) (*pv.RateLimit, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	if !validID(id, "RK") {
		return nil, pv.ParamErrorf(pv.ENotFound, "rate_limit_sid", "No rate limit has this id.")
	}
	return x.RateLimit(ctx, serviceID, id)
}

// CreateRateLimit creates a rate limit named uniqueName. Returns
// EInvalidRequest for a bad name or description and EConflict if the name
// is taken in the service.
func (e *Engine) CreateRateLimit(ctx context.Context, serviceID, uniqueName, description string) (*pv.RateLimit, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	if err := validUniqueName(uniqueName); err != nil {
		return nil, err
	}
	if err := validText("description", description, maxDescriptionLen); err != nil {
		return nil, err
	}
	id, err := e.NewID("RK")
	if err != nil {
		return nil, err
	}
	now := e.Now()
	rl := &pv.RateLimit{ID: id, ServiceID: serviceID, UniqueName: uniqueName, Description: description, CreatedAt: now, UpdatedAt: now}
	if err := x.CreateRateLimit(ctx, rl); err != nil {
		return nil, err
	}
	return rl, nil
}

// UpdateRateLimit changes a rate limit's description.
func (e *Engine) UpdateRateLimit(ctx context.Context, serviceID, id, description string) (*pv.RateLimit, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	if err := validText("description", description, maxDescriptionLen); err != nil {
		return nil, err
	}
	rl, err := e.RateLimit(ctx, serviceID, id)
	if err != nil {
		return nil, err
	}
	rl.Description, rl.UpdatedAt = description, e.Now()
	if err := x.UpdateRateLimit(ctx, rl); err != nil {
		return nil, err
	}
	return rl, nil
}

// DeleteRateLimit deletes a rate limit and its buckets.
func (e *Engine) DeleteRateLimit(ctx context.Context, serviceID, id string) error {
	x, err := e.extras()
	if err != nil {
		return err
	}
	if !validID(id, "RK") {
		return pv.ParamErrorf(pv.ENotFound, "rate_limit_sid", "No rate limit has this id.")
	}
	return x.DeleteRateLimit(ctx, serviceID, id)
}

// Buckets returns a rate limit's buckets, oldest first.
func (e *Engine) Buckets(ctx context.Context, serviceID, rateLimitID string) ([]*pv.Bucket, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	if _, err := e.RateLimit(ctx, serviceID, rateLimitID); err != nil {
		return nil, err
	}
	return x.Buckets(ctx, serviceID, rateLimitID)
}

// Bucket returns one bucket. Returns ENotFound if none.
func (e *Engine) Bucket(ctx context.Context, serviceID, rateLimitID, id string) (*pv.Bucket, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	if !validID(id, "BL") {
		return nil, pv.ParamErrorf(pv.ENotFound, "bucket_sid", "No bucket has this id.")
	}
	return x.Bucket(ctx, serviceID, rateLimitID, id)
}

// CreateBucket adds a bucket that allows max starts per value within
// interval. Returns EInvalidRequest for a bad max or interval.
func (e *Engine) CreateBucket(ctx context.Context, serviceID, rateLimitID string, max int, interval time.Duration) (*pv.Bucket, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	if err := validBucket(max, interval); err != nil {
		return nil, err
	}
	if _, err := e.RateLimit(ctx, serviceID, rateLimitID); err != nil {
		return nil, err
	}
	id, err := e.NewID("BL")
	if err != nil {
		return nil, err
	}
	now := e.Now()
	b := &pv.Bucket{ID: id, RateLimitID: rateLimitID, ServiceID: serviceID, Max: max, Interval: interval, CreatedAt: now, UpdatedAt: now}
	if err := x.CreateBucket(ctx, b); err != nil {
		return nil, err
	}
	return b, nil
}

// UpdateBucket changes a bucket's max and interval; a zero value keeps the
// current one.
func (e *Engine) UpdateBucket(ctx context.Context, serviceID, rateLimitID, id string, max int, interval time.Duration) (*pv.Bucket, error) {
	x, err := e.extras()
	if err != nil {
		return nil, err
	}
	b, err := e.Bucket(ctx, serviceID, rateLimitID, id)
	if err != nil {
		return nil, err
	}
	if max != 0 {
		b.Max = max
	}
	if interval != 0 {
		b.Interval = interval
	}
	if err := validBucket(b.Max, b.Interval); err != nil {
		return nil, err
	}
	b.UpdatedAt = e.Now()
	if err := x.UpdateBucket(ctx, b); err != nil {
		return nil, err
	}
	return b, nil
}

// DeleteBucket deletes a bucket.
func (e *Engine) DeleteBucket(ctx context.Context, serviceID, rateLimitID, id string) error {
	x, err := e.extras()
	if err != nil {
		return err
	}
	if !validID(id, "BL") {
		return pv.ParamErrorf(pv.ENotFound, "bucket_sid", "No bucket has this id.")
	}
	return x.DeleteBucket(ctx, serviceID, rateLimitID, id)
}

// hitRateLimits counts a start against the buckets of every rate limit it
// names. Returns EInvalidRequest (param rate_limits) for a name the service
// does not define, and ETooManyRequests (param rate_limits, with
// RetryAfter) when a bucket is full.
func (e *Engine) hitRateLimits(ctx context.Context, serviceID string, values map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	x, err := e.extras()
	if err != nil {
		return err
	}
	limits, err := x.RateLimits(ctx, serviceID)
	if err != nil {
		return err
	}
	byName := make(map[string]*pv.RateLimit, len(limits))
	for _, rl := range limits {
		byName[rl.UniqueName] = rl
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names) // a stable lock order across nodes
	var hits []pv.BucketHit
	for _, name := range names {
		rl, ok := byName[name]
		if !ok {
			return pv.ParamErrorf(pv.EInvalidRequest, "rate_limits", "This service has no rate limit named %q.", name)
		}
		value := values[name]
		if value == "" || len(value) > maxRateLimitValue {
			return pv.ParamErrorf(pv.EInvalidRequest, "rate_limits", "The value of rate limit %q must be 1 to %d bytes.", name, maxRateLimitValue)
		}
		buckets, err := x.Buckets(ctx, serviceID, rl.ID)
		if err != nil {
			return err
		}
		// Only a hash of the value is kept: it may be an IP address.
		sum := sha256.Sum256([]byte(rl.ID + "\x00" + value))
		key := hex.EncodeToString(sum[:16])
		for _, b := range buckets {
			hits = append(hits, pv.BucketHit{Bucket: b, Key: key})
		}
	}
	full, wait, err := x.HitBuckets(ctx, hits, e.Now())
	if err != nil {
		return err
	}
	if full != nil {
		name := ""
		for _, rl := range limits {
			if rl.ID == full.RateLimitID {
				name = rl.UniqueName
			}
		}
		return &pv.Error{Code: pv.ETooManyRequests, Param: "rate_limits", RetryAfter: ceilSecond(wait),
			Message: fmt.Sprintf("Rate limit %q allows at most %d verifications per %s for this value.", name, full.Max, full.Interval)}
	}
	return nil
}

func validUniqueName(s string) error {
	if s == "" || len(s) > maxUniqueNameLen {
		return pv.ParamErrorf(pv.EInvalidRequest, "unique_name", "A rate limit needs a unique name of 1 to %d characters.", maxUniqueNameLen)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return pv.ParamErrorf(pv.EInvalidRequest, "unique_name", "A rate limit's unique name may hold only letters, digits, '_', '-' and '.'.")
		}
	}
	return nil
}

func validBucket(max int, interval time.Duration) error {
	if max < 1 || max > MaxBucketMax {
		return pv.ParamErrorf(pv.EInvalidRequest, "max", "A bucket's max must be between 1 and %d.", MaxBucketMax)
	}
	if interval < time.Second || interval > MaxBucketInterval || interval%time.Second != 0 {
		return pv.ParamErrorf(pv.EInvalidRequest, "interval", "A bucket's interval must be a whole number of seconds between 1 and %d.", int(MaxBucketInterval/time.Second))
	}
	return nil
}
