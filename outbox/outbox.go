// Package outbox delivers the messages that starts commit to the durable
// outbox. Workers claim due messages, send each through a
// [phoneverify.Sender] (in the binary, the gateway router), and record the
// outcome; a failed try is retried with exponential backoff and jitter
// until the verification's lifetime runs out, when the message is given up
// and its verification turned failed.
//
// Delivery is at least once. A claim leases the message; a worker that dies
// between claim and record (a killed node, a lost database) leaves the lease
// to run out, and the message is claimed and sent again. Every outcome is
// fenced by the claim's number, so a worker whose lease ran out cannot
// overwrite what a later claim recorded.
//
// The outbox only delivers: it gives up a message whose verification was
// closed or resent before it went out, and tells the engine (a [Failer])
// when the code it carries cannot be delivered; every rule about
// verifications stays in the engine.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/phone"
)

// Failer is told when the code a message carries cannot be delivered, so
// that its verification turns failed; [verify.Engine.FailDelivery] is one.
type Failer interface {
	FailDelivery(ctx context.Context, m *pv.OutboxMessage) error
}

// Defaults used where [Config] leaves a field zero.
const (
	DefaultWorkers      = 4
	DefaultSendTimeout  = 30 * time.Second
	DefaultPollInterval = time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = time.Minute
)

// Config holds what a [Dispatcher] needs. Store, Sender, Sealer and Failer
// are required.
type Config struct {
	Store  pv.Outbox
	Sender pv.Sender
	// Sealer opens the sealed text; it must come from the secret the engine
	// sealed with.
	Sealer *otp.Sealer
	Failer Failer
	// Workers is how many messages are sent at once (default 4).
	Workers int
	// SendTimeout bounds one send (default 30s).
	SendTimeout time.Duration
	// Lease is how long a claim keeps a message from other workers; it
	// must exceed SendTimeout (default SendTimeout+30s). A message whose
	// worker died is sent again after it.
	Lease time.Duration
	// PollInterval is how often workers look for messages they were not
	// told about: other nodes' starts and retries coming due (default 1s).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry: MinBackoff
	// after the first failed try, doubling each time up to MaxBackoff, with
	// jitter over the upper half (defaults 1s and 1m). A gateway's
	// Retry-After hint is honoured when longer.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand returns jitter in [0, 1); default math/rand/v2.Float64.
	Rand func() float64
	// Logger gets a line per failed try and per message given up; numbers
	// are masked and codes never logged. Default: discard.
	Logger *slog.Logger
	// Subscribed, when set, reports whether a service has event
	// subscriptions ([verify.Engine.Subscribed]); a sent or failed message
	// of such a service records message.delivered or message.failed with
	// its outcome, in the same transaction.
	Subscribed func(ctx context.Context, serviceID string) bool
	// EventsNotify, when set, is called after an outcome was recorded with
	// its message event, to wake the workers that post events
	// (events.Dispatcher's Notify); other nodes' workers find it by polling.
	EventsNotify func()
	// Observe, if set, is told each outcome once it is recorded (a retry
	// has Status queued), for metrics. It must be cheap and must not block.
	Observe func(o pv.MessageOutcome)
}

// Dispatcher runs the outbox workers of one node.
type Dispatcher struct {
	store       pv.Outbox
	sender      pv.Sender
	sealer      *otp.Sealer
	failer      Failer
	workers     int
	sendTimeout time.Duration
	lease       time.Duration
	poll        time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
	now         func() time.Time
	rand        func() float64
	log         *slog.Logger
	subscribed  func(ctx context.Context, serviceID string) bool
	wakeEvents  func()
	observe     func(o pv.MessageOutcome)

	wake chan struct{}
}

// New returns a Dispatcher, or an error naming the missing or bad setting.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Sender == nil || cfg.Sealer == nil || cfg.Failer == nil {
		return nil, errors.New("outbox: Store, Sender, Sealer and Failer are required")
	}
	d := &Dispatcher{
		store: cfg.Store, sender: cfg.Sender, sealer: cfg.Sealer, failer: cfg.Failer,
		workers: cfg.Workers, sendTimeout: cfg.SendTimeout, lease: cfg.Lease, poll: cfg.PollInterval,
		minBackoff: cfg.MinBackoff, maxBackoff: cfg.MaxBackoff, now: cfg.Now, rand: cfg.Rand, log: cfg.Logger,
		subscribed: cfg.Subscribed, wakeEvents: cfg.EventsNotify, observe: cfg.Observe, wake: make(chan struct{}, 1),
	}
	if d.workers == 0 {
		d.workers = DefaultWorkers
	}
	if d.sendTimeout == 0 {
		d.sendTimeout = DefaultSendTimeout
	}
	if d.lease == 0 {
		d.lease = d.sendTimeout + 30*time.Second
	}
	if d.poll == 0 {
		d.poll = DefaultPollInterval
	}
	if d.minBackoff == 0 {
		d.minBackoff = DefaultMinBackoff
	}
	if d.maxBackoff == 0 {
		d.maxBackoff = DefaultMaxBackoff
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.rand == nil {
		d.rand = rand.Float64
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case d.workers < 1 || d.workers > 1000:
		return nil, fmt.Errorf("outbox: %d workers: want 1 to 1000", d.workers)
	case d.sendTimeout < 0 || d.poll < 0 || d.minBackoff < 0:
		return nil, errors.New("outbox: durations must be positive")
	case d.lease <= d.sendTimeout:
		return nil, fmt.Errorf("outbox: the lease (%s) must exceed the send timeout (%s)", d.lease, d.sendTimeout)
	case d.maxBackoff < d.minBackoff:
		return nil, errors.New("outbox: MaxBackoff must not be below MinBackoff")
	}
	return d, nil
}

// Notify wakes the workers at once: a start on this node has committed a
// message. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run claims and sends messages until ctx is done, with at most Workers
// sends at once. It looks for due messages when notified, whenever a worker
// frees up after a full claim, and every PollInterval. When ctx is done it
// stops claiming, lets the sends in flight finish (each within
// SendTimeout) and records them, then returns nil. Call it once per
// Dispatcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	busy := make(chan struct{}, d.workers)
	freed := make(chan struct{}, 1)
	poll := time.NewTicker(d.poll)
	defer poll.Stop()
	backlog := false
	for {
		free := d.workers - len(busy)
		// Under a backlog, wait for a few workers to free up so that one
		// claim serves several of them.
		if free == 0 || backlog && free < max(1, d.workers/4) {
			select {
			case <-ctx.Done():
				return nil
			case <-freed:
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		msgs, err := d.store.ClaimMessages(ctx, d.now(), d.lease, free)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.log.WarnContext(ctx, "outbox: claiming messages", "error", err)
		}
		for _, m := range msgs {
			busy <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() {
					<-busy
					select {
					case freed <- struct{}{}:
					default:
					}
					wg.Done()
				}()
				// A send in flight finishes even when ctx ends.
				d.process(context.WithoutCancel(ctx), m)
			}()
		}
		backlog = err == nil && len(msgs) == free
		if backlog {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-poll.C:
		}
	}
}

// Drain claims and processes, Workers at a time, every message due at the
// current time until none is left, and returns how many it processed.
// Retries it schedules are not due yet, so it returns; tests and tools use
// it where Run's polling is not wanted.
func (d *Dispatcher) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		msgs, err := d.store.ClaimMessages(ctx, d.now(), d.lease, d.workers)
		if err != nil {
			return total, fmt.Errorf("outbox: drain: %w", err)
		}
		if len(msgs) == 0 {
			return total, nil
		}
		var wg sync.WaitGroup
		for _, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.process(ctx, m)
			}()
		}
		wg.Wait()
		total += len(msgs)
	}
}

// process sends one claimed message and records the outcome. When it cannot
// record (the database is unreachable), it leaves the message to its lease:
// another claim sends it again.
func (d *Dispatcher) process(ctx context.Context, m *pv.OutboxMessage) {
	now := d.now()
	// The verification's state comes with the claim.
	switch {
	case m.VerificationStatus == "":
		d.finish(ctx, m, pv.MessageOutcome{Status: pv.MessageFailed, Error: "verification not found", At: now})
		return
	case m.VerificationSendCount != m.SendCount:
		d.finish(ctx, m, pv.MessageOutcome{Status: pv.MessageFailed, Error: "superseded by a newer code", At: now})
		return
	case m.VerificationStatus != pv.StatusPending:
		d.finish(ctx, m, pv.MessageOutcome{Status: pv.MessageFailed, Error: "verification " + string(m.VerificationStatus) + " before sending", At: now})
		return
	case !now.Before(m.ExpiresAt):
		d.giveUp(ctx, m, pv.MessageOutcome{Status: pv.MessageFailed, Error: "not sent within the verification's lifetime", At: now})
		return
	}
	body, code, err := d.sealer.OpenMessage(m.ID, m.Sealed)
	if err != nil {
		d.log.ErrorContext(ctx, "outbox: cannot open a sealed message (was the server secret changed?)", "message_id", m.ID)
		d.giveUp(ctx, m, pv.MessageOutcome{Status: pv.MessageFailed, Error: "sealed text cannot be opened", At: now})
		return
	}
	sendCtx, cancel := context.WithTimeout(ctx, d.sendTimeout)
	res, sendErr := d.sender.Send(sendCtx, &pv.Message{
		VerificationID: m.VerificationID, ServiceID: m.ServiceID, To: m.To, Country: m.Country,
		Body: body, Code: code, Locale: m.Locale,
	})
	cancel()
	now = d.now()
	if sendErr == nil {
		o := pv.MessageOutcome{Status: pv.MessageSent, At: now}
		if res != nil {
			o.Gateway, o.ProviderID = res.Gateway, res.ProviderID
		}
		d.finish(ctx, m, o)
		return
	}
	var de *pv.DeliveryError
	errors.As(sendErr, &de)
	o := pv.MessageOutcome{Status: pv.MessageFailed, Error: Describe(sendErr), At: now}
	if de != nil {
		o.Gateway = de.Gateway
	}
	// A bad number fails at once; a gateway's own trouble (its account,
	// an outage) may pass, so it is retried like a temporary error.
	if de != nil && de.Permanent && !de.Account {
		d.log.WarnContext(ctx, "outbox: message refused", "message_id", m.ID, "verification_id", m.VerificationID,
			"to", phone.Mask(m.To), "error", o.Error)
		d.giveUp(ctx, m, o)
		return
	}
	wait := d.backoff(m.Attempts)
	if de != nil && de.RetryAfter > wait {
		wait = de.RetryAfter
	}
	retryAt := now.Add(wait)
	if !retryAt.Before(m.ExpiresAt) {
		o.Error = "not sent within the verification's lifetime; last error: " + o.Error
		d.giveUp(ctx, m, o)
		return
	}
	d.log.InfoContext(ctx, "outbox: send failed, will retry", "message_id", m.ID, "to", phone.Mask(m.To),
		"attempt", m.Attempts, "retry_in", wait, "error", o.Error)
	o.Status, o.RetryAt = pv.MessageQueued, retryAt
	d.finish(ctx, m, o)
}

// giveUp fails the message's verification, then records the message failed.
// In that order, a crash between the two leaves the message to be claimed
// again, when it finds the verification failed and is given up for good.
func (d *Dispatcher) giveUp(ctx context.Context, m *pv.OutboxMessage, o pv.MessageOutcome) {
	if err := d.failer.FailDelivery(ctx, m); err != nil && pv.ErrorCode(err) != pv.ENotFound {
		d.log.WarnContext(ctx, "outbox: failing verification", "message_id", m.ID, "verification_id", m.VerificationID, "error", err)
		return
	}
	d.log.WarnContext(ctx, "outbox: message given up", "message_id", m.ID, "verification_id", m.VerificationID,
		"to", phone.Mask(m.To), "attempts", m.Attempts, "error", o.Error)
	d.finish(ctx, m, o)
}

func (d *Dispatcher) finish(ctx context.Context, m *pv.OutboxMessage, o pv.MessageOutcome) {
	if o.Status != pv.MessageQueued && d.subscribed != nil && d.subscribed(ctx, m.ServiceID) {
		o.Events = []*pv.Event{pv.NewMessageEvent(m, o.Status, o.Gateway, o.Error, o.At)}
	}
	err := d.store.FinishMessage(ctx, m, o)
	switch {
	case err == nil:
		if len(o.Events) > 0 && d.wakeEvents != nil {
			d.wakeEvents()
		}
		if d.observe != nil {
			d.observe(o)
		}
	case pv.ErrorCode(err) == pv.EConflict:
		// The lease ran out and another worker took over; its outcome stands.
		d.log.InfoContext(ctx, "outbox: outcome dropped, the message was claimed again", "message_id", m.ID)
	default:
		d.log.ErrorContext(ctx, "outbox: recording outcome (the message will be tried again after its lease)",
			"message_id", m.ID, "status", o.Status, "error", err)
	}
}

// backoff returns the wait after the given number of tries: MinBackoff
// doubled per earlier try, capped at MaxBackoff, the upper half jittered.
func (d *Dispatcher) backoff(tries int) time.Duration {
	b := d.maxBackoff
	if shift := tries - 1; shift < 30 {
		if x := d.minBackoff << max(shift, 0); x > 0 && x < b {
			b = x
		}
	}
	return b/2 + time.Duration(d.rand()*float64(b-b/2))
}

// Describe renders a send error as stored in a message's history and shown
// to API clients: the gateway, the kind, the provider's code and reason.
// Gateways keep codes and full numbers out of their reasons; anything that
// is not a delivery error shows as an internal error.
func Describe(err error) string {
	var de *pv.DeliveryError
	if !errors.As(err, &de) {
		return "internal error"
	}
	var b strings.Builder
	b.WriteString(de.Gateway)
	if de.Permanent {
		b.WriteString(": permanent error")
	} else {
		b.WriteString(": temporary error")
	}
	if de.Code != "" {
		b.WriteString(" " + de.Code)
	}
	if de.Reason != "" {
		b.WriteString(": " + de.Reason)
	}
	return b.String()
}
