// Package events delivers phoneverify's event webhooks: the events that
// verifications and messages record (see [phoneverify.EventStore]) are
// posted to each subscribed URL, signed with the Standard Webhooks scheme.
//
// Each request carries the headers webhook-id (the event id, the same on
// every try, for de-duplication), webhook-timestamp (Unix seconds) and
// webhook-signature ("v1," and the base64 HMAC-SHA256, keyed with the
// base64-decoded part of the subscription's "whsec_" secret, of
// "id.timestamp.body"). Any Standard Webhooks library verifies them.
//
// Delivery is at least once and ordered per verification and subscription:
// workers claim deliveries with a lease (so any number of nodes can run
// them), a 2xx answer ends a delivery, anything else is retried with
// exponential backoff and jitter until MaxAge, and a verification's next
// event waits until the one before is delivered or given up. A worker that
// dies mid-delivery leaves its lease to run out; the event is then posted
// again with the same webhook-id.
package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/webhook"
	"github.com/phoneverify/phoneverify/otp"
)

// Defaults used where [Config] leaves a field zero.
const (
	DefaultWorkers      = 4
	DefaultTimeout      = 10 * time.Second
	DefaultPollInterval = time.Second
	DefaultMinBackoff   = 5 * time.Second
	DefaultMaxBackoff   = time.Hour
	DefaultMaxAge       = 3 * 24 * time.Hour
)

// Config holds what a [Dispatcher] needs. Store and Sealer are required.
type Config struct {
	Store pv.EventStore
	// Sealer opens the subscriptions' sealed secrets; it must come from the
	// server secret the engine sealed them with.
	Sealer *otp.Sealer
	// Client posts the events; default: an http.Client with Timeout that
	// follows no redirect.
	Client *http.Client
	// Workers is how many deliveries are posted at once (default 4).
	Workers int
	// Timeout bounds one post (default 10s); the lease is Timeout+30s.
	Timeout time.Duration
	// PollInterval is how often workers look for due deliveries they were
	// not woken for (see [Dispatcher.Notify]): events recorded on other
	// nodes, and retries coming due (default 1s).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry: MinBackoff
	// after the first failed try, doubling up to MaxBackoff, the upper half
	// jittered (defaults 5s and 1h).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxAge is how long after its event a delivery is retried before it
	// is given up (default 3 days).
	MaxAge time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand returns jitter in [0, 1); default math/rand/v2.Float64.
	Rand func() float64
	// Logger gets a line per failed try; default: discard.
	Logger *slog.Logger
}

// Dispatcher runs the event delivery workers of one node.
type Dispatcher struct {
	cfg  Config
	wake chan struct{}
}

// New returns a Dispatcher, or an error naming the missing or bad setting.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("events: Store and Sealer are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.MaxAge, DefaultMaxAge)
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Workers < 1 || cfg.Timeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < cfg.MinBackoff {
		return nil, errors.New("events: Workers must be positive and MinBackoff at most MaxBackoff")
	}
	if cfg.Client == nil {
		// A redirect is an answer, not a delivery: the subscriber must
		// give the URL that takes events.
		cfg.Client = &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Notify wakes the workers at once, so that an event recorded on this node
// is posted without waiting for the next poll: the engine, the outbox
// workers and the receipt handler call it (verify.Config.EventsNotify and
// the like) after they commit events. Workers on other nodes find those
// events by polling, every PollInterval. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers events until ctx is done. It returns nil then.
func (d *Dispatcher) Run(ctx context.Context) error {
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	for {
		for {
			n, err := d.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.WarnContext(ctx, "events: claiming deliveries", "error", err)
			}
			// Look again after any delivery, not only after a full batch:
			// one just posted may have been holding back the next event
			// of its verification (deliveries are ordered), which no wake
			// will announce. A look that finds nothing due ends the pass.
			if n == 0 || err != nil || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-poll.C:
		}
	}
}

// RunOnce claims up to Workers due deliveries, posts them concurrently and
// records the outcomes. It returns how many it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	lease := d.cfg.Timeout + 30*time.Second
	batch, err := d.cfg.Store.ClaimEventDeliveries(ctx, d.cfg.Now(), lease, d.cfg.Workers)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, dl := range batch {
		wg.Go(func() { d.deliver(ctx, dl) })
	}
	wg.Wait()
	return len(batch), nil
}

// deliver posts one delivery and records its outcome.
func (d *Dispatcher) deliver(ctx context.Context, dl *pv.EventDelivery) {
	err := d.post(ctx, dl)
	now := d.cfg.Now()
	o := pv.DeliveryOutcome{At: now}
	switch {
	case err == nil:
		o.Delivered = true
	default:
		o.Error = err.Error()
		retryAt := now.Add(d.backoff(dl.Attempts))
		if retryAt.Sub(dl.Event.CreatedAt) > d.cfg.MaxAge {
			o.GiveUp = true
			d.cfg.Logger.WarnContext(ctx, "events: delivery given up", "event_id", dl.Event.ID,
				"subscription_id", dl.SubscriptionID, "attempts", dl.Attempts, "error", o.Error)
		} else {
			o.RetryAt = retryAt
			d.cfg.Logger.InfoContext(ctx, "events: delivery failed, will retry", "event_id", dl.Event.ID,
				"subscription_id", dl.SubscriptionID, "attempt", dl.Attempts, "retry_at", retryAt, "error", o.Error)
		}
	}
	if err := d.cfg.Store.FinishEventDelivery(ctx, dl, o); err != nil && pv.ErrorCode(err) != pv.EConflict {
		d.cfg.Logger.ErrorContext(ctx, "events: recording a delivery (it will be posted again after its lease)",
			"event_id", dl.Event.ID, "error", err)
	}
}

// post sends one signed request; any answer but 2xx is an error.
func (d *Dispatcher) post(ctx context.Context, dl *pv.EventDelivery) error {
	_, secret, err := d.cfg.Sealer.OpenMessage(dl.SubscriptionID, dl.SealedSecret)
	if err != nil {
		return errors.New("the subscription's secret cannot be opened (was the server secret changed?)")
	}
	ts := d.cfg.Now()
	sig, err := webhook.Sign(secret, dl.Event.ID, ts, dl.Event.Payload)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.URL, bytes.NewReader(dl.Event.Payload))
	if err != nil {
		return fmt.Errorf("bad url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "phoneverify-events/1")
	req.Header.Set(webhook.HeaderID, dl.Event.ID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	res, err := d.cfg.Client.Do(req)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // *url.Error repeats the URL
		}
		return fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("answered %d", res.StatusCode)
	}
	return nil
}

// backoff returns the wait after the given number of tries: MinBackoff
// doubled per earlier try, capped at MaxBackoff, the upper half jittered.
func (d *Dispatcher) backoff(tries int) time.Duration {
	b := d.cfg.MaxBackoff
	if shift := tries - 1; shift < 30 {
		if x := d.cfg.MinBackoff << max(shift, 0); x > 0 && x < b {
			b = x
		}
	}
	return b/2 + time.Duration(d.cfg.Rand()*float64(b-b/2))
}
