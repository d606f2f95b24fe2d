// Package verify is the verification engine: start, resend, check, cancel and
// expire. Every rule of verification lives here, once; stores only make the
// engine's decisions atomic, and adapters (HTTP APIs, CLI) only translate.
//
// An [Engine] is built from a store (package store), a server secret
// (otp.NewHasher, otp.NewSealer) and a token.Keyring; see [Config]. It is
// used directly by Go programs ([Engine.Start], [Engine.Check],
// [Engine.Cancel], …) and by the HTTP APIs. Messages are not sent by the
// engine: a start commits its message to the durable outbox, which the
// outbox package's workers deliver through a [phoneverify.Sender]. Package
// server wires all of it for programs that embed phoneverify.
//
// Errors are [phoneverify.Error] values with stable codes (invalid_request,
// incorrect_code, …): match on [phoneverify.ErrorCode].
package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/message"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/phone"
	"github.com/phoneverify/phoneverify/token"
)

// Config holds what an Engine needs. Store, Sealer, Hasher and Keys are
// required; the rest have defaults.
type Config struct {
	Store pv.Store
	// Sealer encrypts each message's text and code for the outbox; make it
	// from the same server secret as Hasher (otp.NewSealer).
	Sealer *otp.Sealer
	Hasher *otp.Hasher
	Keys   *token.Keyring
	// Notify, when set, is called after a start has committed a message to
	// the outbox, to wake the workers that deliver it (outbox.Dispatcher's
	// Notify). Workers on other nodes find it by polling.
	Notify func()
	// EventsNotify, when set, is called after a change on this node has
	// committed events (a start, check, approval, cancel or failure, an
	// expiry sweep), to wake the workers that post them
	// (events.Dispatcher's Notify). Event workers on other nodes find them
	// by polling.
	EventsNotify func()
	// DefaultRegion lets national numbers (no country code) parse, e.g. "NP".
	DefaultRegion string
	// TestNumbers maps E.164 numbers to fixed codes; nothing is sent to them.
	TestNumbers map[string]string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Random is the source of codes and ids; default crypto/rand.
	Random io.Reader
	// Logger receives one line per start and per decisive check; numbers are
	// masked and codes never logged. Default: discard.
	Logger *slog.Logger
	// BootstrapKey, when set, is an API key for the default service that is
	// never stored (PHONEVERIFY_API_KEY, for development and tests).
	BootstrapKey string
	// ServiceCacheTTL is how long service settings are cached in memory;
	// default 2s, negative disables the cache.
	ServiceCacheTTL time.Duration
	// Limiter, when set, enforces StartLimits on every start, before the
	// start's transaction. The per-number send limit (Service.MaxSends)
	// does not need it: it lives in the store's row for the number.
	Limiter pv.Limiter
	// StartLimits are the limits Limiter enforces; a zero Limit is off.
	StartLimits StartLimits
	// Observer is told each committed decision and each refusal (metrics);
	// default: nothing.
	Observer pv.Observer
	// Events keeps event subscriptions and records events; default: Store,
	// if it is also a [pv.EventStore]. Without one no event is recorded.
	Events pv.EventStore
	// Fraud, when set and the store is a [pv.FraudStore], turns on fraud
	// protection (SMS pumping); nil leaves it off.
	Fraud *FraudConfig
}

// StartLimits are the server-wide default limits, each keyed by what it
// protects, per service. A service's own [pv.ServiceLimits] replaces any of
// them; a zero Limit is off.
type StartLimits struct {
	// PerIP limits the starts from one client address: an IPv4 address,
	// or the /64 of an IPv6 address (one subscriber's usual allocation,
	// which its holder can rotate through freely).
	PerIP pv.Limit
	// PerCountry limits the starts for numbers of one country, a guard
	// against SMS pumping to expensive destinations.
	PerCountry pv.Limit
	// PerNumberDay limits the codes sent to one number over a long window
	// (e.g. 10/24h), beside the service's short SendWindow. It is kept in
	// the number's row with the send window, so it costs no limiter call.
	PerNumberDay pv.Limit
	// PerSubject limits the starts that name one subject.
	PerSubject pv.Limit
	// BudgetHour and BudgetDay are each service's SMS budget; reaching one
	// trips the service's breaker (see [Engine.Start]).
	BudgetHour pv.Limit
	BudgetDay  pv.Limit
	// FailedChecks limits the codes compared for one number across all its
	// verifications (see [Engine.Check]).
	FailedChecks pv.Limit
}

// Engine runs verifications.
type Engine struct {
	store         pv.Store
	sealer        *otp.Sealer
	notify        func()
	eventsNotify  func()
	hasher        *otp.Hasher
	keys          *token.Keyring
	defaultRegion string
	testNumbers   map[string]string
	now           func() time.Time
	random        io.Reader
	log           *slog.Logger

	bootstrapKey     string
	defaultServiceID string

	limiter pv.Limiter
	// slots takes the failed-check cap's slot inside the check's own
	// transaction, when the limiter keeps its counters in the store's
	// database and that is cheaper; nil otherwise.
	slots    pv.SlotUpdater
	limits   StartLimits
	observer pv.Observer
	// breakers holds, per service and budget, until when this node knows
	// the budget is spent (it refuses without asking the limiter) and when
	// it last raised the alert.
	breakerMu sync.Mutex
	breakers  map[string]breaker
	events    pv.EventStore
	fraud     *fraudGuard

	cacheTTL     time.Duration
	mu           sync.Mutex
	services     map[string]cachedService
	featureCache map[string]cachedFeatures
	// serviceGen (under mu) counts [Engine.ForgetService] calls, so that
	// a service or its features read from the store across a change made
	// through this engine is returned but not cached: otherwise a start
	// that read the old settings just before the change could put them
	// back in the cache for the rest of cacheTTL.
	serviceGen uint64
	// subscribed caches [Engine.Subscribed]; subscribedGen (under mu)
	// counts the changes made through this engine, so that an answer
	// read across one is not cached. The cache runs on cacheClock, the
	// wall clock (tests replace it), not on the engine's clock, which
	// tests freeze or move by days.
	subscribed    *ttlCache[bool]
	subscribedGen uint64
	cacheClock    func() time.Time
}

type cachedFeatures struct {
	f       *pv.ServiceFeatures
	expires time.Time
}

type cachedService struct {
	svc     *pv.Service
	expires time.Time
}

// New returns an Engine, or an error naming the missing or bad setting.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Hasher == nil || cfg.Keys == nil {
		return nil, errors.New("verify: Store, Sealer, Hasher and Keys are required")
	}
	if cfg.DefaultRegion != "" && !phone.ValidRegion(cfg.DefaultRegion) {
		return nil, fmt.Errorf("verify: default region %q is not a known ISO country code", cfg.DefaultRegion)
	}
	e := &Engine{
		store:         cfg.Store,
		sealer:        cfg.Sealer,
		notify:        cfg.Notify,
		eventsNotify:  cfg.EventsNotify,
		hasher:        cfg.Hasher,
		keys:          cfg.Keys,
		defaultRegion: strings.ToUpper(cfg.DefaultRegion),
		testNumbers:   map[string]string{},
		now:           cfg.Now,
		random:        cfg.Random,
		log:           cfg.Logger,
		cacheTTL:      cfg.ServiceCacheTTL,
		bootstrapKey:  cfg.BootstrapKey,
		services:      map[string]cachedService{},
		featureCache:  map[string]cachedFeatures{},
		limiter:       cfg.Limiter,
		limits:        cfg.StartLimits,
		observer:      cfg.Observer,
		breakers:      map[string]breaker{},
		events:        cfg.Events,
		subscribed:    newTTLCache[bool](),
		cacheClock:    time.Now,
		fraud:         newFraudGuard(cfg.Fraud, cfg.Store),
	}
	if e.events == nil {
		e.events, _ = cfg.Store.(pv.EventStore)
	}
	if su, ok := cfg.Limiter.(pv.SlotUpdater); ok && su.SlotsInUpdate(cfg.Store) {
		e.slots = su
	}
	for _, l := range cfg.StartLimits.named() {
		if l.limit.Off() {
			continue
		}
		if err := l.limit.Validate(); err != nil {
			return nil, fmt.Errorf("verify: %s limit: %w", l.name, err)
		}
		if cfg.Limiter == nil && l.name != "per_number_day" {
			return nil, fmt.Errorf("verify: the %s limit needs a Limiter", l.name)
		}
	}
	if l := cfg.StartLimits; (!l.BudgetHour.Off() && l.BudgetHour.Window != time.Hour) || (!l.BudgetDay.Off() && l.BudgetDay.Window != 24*time.Hour) {
		return nil, errors.New("verify: the SMS budgets count per 1h and per 24h")
	}
	for num, code := range cfg.TestNumbers {
		if !strings.HasPrefix(num, "+") || !otp.ValidFormat(code, len(code)) || len(code) < pv.MinCodeLength || len(code) > pv.MaxCodeLength {
			return nil, fmt.Errorf("verify: test number %s: want +E.164=CODE with a %d–%d digit code", phone.Mask(num), pv.MinCodeLength, pv.MaxCodeLength)
		}
		e.testNumbers[num] = code
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.random == nil {
		e.random = rand.Reader
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.notify == nil {
		e.notify = func() {}
	}
	if e.eventsNotify == nil {
		e.eventsNotify = func() {}
	}
	if e.observer == nil {
		e.observer = pv.NopObserver{}
	}
	if e.cacheTTL == 0 {
		e.cacheTTL = 2 * time.Second
	}
	return e, nil
}

// Now returns the engine's current time.
func (e *Engine) Now() time.Time { return e.now().UTC() }

// NewID returns a Twilio-style id: prefix, then 32 hex digits — 48 bits of the
// engine's clock in milliseconds, then 80 random bits. Ids made later sort
// later, so that inserting a verification, its message and its send
// attempt appends to the right edge of each B-tree index instead of
// dirtying a random page of each: on SQLite every dirty page is a WAL frame
// written at commit, and random ids made a start write several more. The
// random part keeps ids unguessable; they are not secrets either way (a
// check needs the code and an API key).
func (e *Engine) NewID(prefix string) (string, error) {
	var b [16]byte
	ms := uint64(e.now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := io.ReadFull(e.random, b[6:]); err != nil {
		return "", fmt.Errorf("verify: new id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// Service returns a service's settings, from a short-lived cache.
// Returns ENotFound if there is no such service.
func (e *Engine) Service(ctx context.Context, id string) (*pv.Service, error) {
	now := time.Now()
	var gen uint64
	if e.cacheTTL > 0 {
		e.mu.Lock()
		c, ok := e.services[id]
		gen = e.serviceGen
		e.mu.Unlock()
		if ok && now.Before(c.expires) {
			return c.svc, nil
		}
	}
	svc, err := e.store.Service(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.cacheTTL > 0 {
		e.mu.Lock()
		if e.serviceGen == gen {
			e.services[id] = cachedService{svc: svc, expires: now.Add(e.cacheTTL)}
		}
		e.mu.Unlock()
	}
	return svc, nil
}

// ForgetService drops a service from the cache after its settings changed,
// and keeps reads that were in flight across the change out of it.
func (e *Engine) ForgetService(id string) {
	e.mu.Lock()
	delete(e.services, id)
	delete(e.featureCache, id)
	e.serviceGen++
	e.mu.Unlock()
}

// StartRequest asks for a code to be sent.
type StartRequest struct {
	ServiceID string
	To        string
	Channel   string
	Locale    string
	Subject   string
	AppHash   string
	Amount    string
	Payee     string
	// CustomCode, when set, is the code to send instead of a random one;
	// the service must allow custom codes (see [pv.ServiceFeatures]).
	CustomCode string
	// AppName, when set, replaces the service's name in the message.
	AppName string
	// RateLimits names programmable rate limits (by unique name) and the
	// value each meters for this start, such as an end user's IP address.
	RateLimits map[string]string
	// ClientIP is the address of the client that asked, for the per-IP
	// limit; empty skips that limit (library use with no client).
	ClientIP string
	// SkipRiskCheck skips fraud protection (not the rate limits) for this
	// start: risk_check "disable", which the caller must only honour for a
	// key holding [ScopeRiskCheckOverride] ([RiskCheck] decides).
	SkipRiskCheck bool
}

// Number parses raw into E.164 and checks that it can receive SMS.
// Returns EInvalidPhoneNumber or EUnsupportedNumberType naming param.
func (e *Engine) Number(raw, param string) (phone.Number, error) {
	if num, ok := e.testNumber(raw); ok {
		return num, nil
	}
	n, err := phone.Parse(raw, e.defaultRegion)
	if err != nil {
		msg := "The phone number is not valid."
		if errors.Is(err, phone.ErrInvalid) {
			msg = err.Error()
		}
		return phone.Number{}, &pv.Error{Code: pv.EInvalidPhoneNumber, Param: param, Message: msg, Err: err}
	}
	if !n.CanReceiveSMS() {
		return phone.Number{}, pv.ParamErrorf(pv.EUnsupportedNumberType, param,
			"The number is a %s number, which cannot receive SMS.", strings.ReplaceAll(string(n.Type), "_", " "))
	}
	return n, nil
}

// testNumber recognises a configured test number written in E.164 (spaces
// and dashes allowed), without the validity checks real numbers get.
func (e *Engine) testNumber(raw string) (phone.Number, bool) {
	if len(e.testNumbers) == 0 || !strings.HasPrefix(strings.TrimSpace(raw), "+") {
		return phone.Number{}, false
	}
	var b strings.Builder
	b.WriteByte('+')
	for _, r := range raw {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	e164 := b.String()
	if _, ok := e.testNumbers[e164]; !ok {
		return phone.Number{}, false
	}
	n, err := phone.Parse(e164, "")
	if err != nil {
		n = phone.Number{E164: e164, Type: phone.Type("test")}
	}
	n.E164 = e164
	return n, true
}

// Start sends a code to req.To. If the number has a pending verification with
// the same subject, amount and payee, it is resent: a new code, the old one
// dead, send_count+1. A pending verification with other bindings is
// canceled and replaced.
//
// The message is not sent here: it is committed to the outbox in the same
// transaction as the verification, and the outbox's workers deliver it. A
// message that cannot be delivered turns the verification failed (see
// [Engine.FailDelivery]). Test numbers get no message at all.
func (e *Engine) Start(ctx context.Context, req StartRequest) (*pv.Verification, error) {
	svc, err := e.Service(ctx, req.ServiceID)
	if err != nil {
		return nil, err
	}
	if err := validateStart(&req); err != nil {
		return nil, err
	}
	num, err := e.Number(req.To, "to")
	if err != nil {
		return nil, err
	}
	testCode, isTest := e.testNumbers[num.E164]
	// Geo permissions come before anything is counted or queued.
	if !isTest && !svc.Limits.CountryAllowed(num.Region) {
		e.observer.Refused(svc.ID, "geo")
		e.log.InfoContext(ctx, "start refused: country not allowed", "service_id", svc.ID, "to", phone.Mask(num.E164), "country", num.Region)
		return nil, pv.ParamErrorf(pv.ECountryNotAllowed, "to", "This service does not send codes to numbers in this country (%s).", num.Region)
	}
	ext, err := e.prepareStart(ctx, svc, &req)
	if err != nil {
		return nil, err
	}
	limits := e.effectiveLimits(svc)
	// Outside the transaction: a limiter round trip must not hold the
	// number's lock (nor, on SQLite, the single writer).
	if err := e.checkStartLimits(ctx, svc.ID, limits, req, num.Region, isTest); err != nil {
		return nil, err
	}
	fs, err := e.checkFraud(ctx, svc.ID, num, &req, isTest)
	if err != nil {
		return nil, err
	}

	now := e.Now()
	subscribed := e.Subscribed(ctx, svc.ID)
	key := pv.NumberKey{ServiceID: svc.ID, Phone: num.E164, Subject: req.Subject}
	var resent bool
	v, err := e.store.StartVerification(ctx, key, func(st *pv.StartState) (*pv.StartResult, error) {
		resent = false // a store may run decide again after a conflict
		if err := checkRegistry(svc, req.Subject, num.E164, st); err != nil {
			return nil, err
		}
		// The number's row keeps the sends of the longer of its two
		// windows; both limits are decided here, under its lock.
		keep := svc.SendWindow
		if day := limits.PerNumberDay; !day.Off() && day.Window > keep {
			keep = day.Window
		}
		kept := sendsWithin(st.Sends, now, keep)
		for _, l := range []struct {
			reason string
			limit  pv.Limit
		}{{"per_number", pv.Limit{Max: svc.MaxSends, Window: svc.SendWindow}}, {"per_number_day", limits.PerNumberDay}} {
			if l.limit.Off() {
				continue
			}
			recent := sendsWithin(kept, now, l.limit.Window)
			if len(recent) >= l.limit.Max {
				wait := recent[len(recent)-l.limit.Max].Add(l.limit.Window).Sub(now)
				e.observer.Refused(svc.ID, l.reason)
				return nil, &pv.Error{Code: pv.ETooManyRequests, Param: "to", RetryAfter: ceilSecond(wait),
					Message: fmt.Sprintf("Too many codes were sent to this number: at most %d per %s.", l.limit.Max, l.limit.Window)}
			}
		}
		res := &pv.StartResult{Sends: append(kept, now)}
		latest := st.Latest
		resend := latest != nil && latest.StatusAt(now) == pv.StatusPending &&
			latest.Subject == req.Subject && latest.Amount == req.Amount && latest.Payee == req.Payee
		resent = resend
		if latest != nil && !resend && latest.Status == pv.StatusPending {
			closed := *latest
			closed.Status = pv.StatusCanceled
			if latest.StatusAt(now) == pv.StatusExpired {
				closed.Status = pv.StatusExpired
			}
			closed.UpdatedAt = now
			res.Close = &closed
		}
		var next pv.Verification
		if resend {
			next = *latest
			next.SendCount++
			if req.Locale != "" {
				next.Locale = req.Locale
			}
		} else {
			id, err := e.NewID("VE")
			if err != nil {
				return nil, err
			}
			next = pv.Verification{
				ID: id, ServiceID: svc.ID, To: num.E164, Country: num.Region, Channel: pv.ChannelSMS,
				Status: pv.StatusPending, Subject: req.Subject, Amount: req.Amount, Payee: req.Payee,
				Locale: req.Locale, SendCount: 1, MaxAttempts: svc.MaxAttempts, CreatedAt: now,
			}
		}
		var code string
		if isTest {
			code = testCode
		} else if req.CustomCode != "" {
			code = req.CustomCode
		} else {
			code, err = otp.GenerateDifferent(e.random, svc.CodeLength, func(c string) bool {
				return latest != nil && e.hasher.Equal(latest.ID, c, latest.CodeHash)
			})
			if err != nil {
				return nil, err
			}
		}
		body, err := message.Render(message.Params{
			Template: svc.Template, App: ext.appName, Code: code, TTL: svc.CodeTTL,
			Locale: next.Locale, Region: num.Region, AppHash: req.AppHash, WebOTPDomain: svc.WebOTPDomain,
			Amount: ext.amount, Payee: ext.payee, DoNotShareWarning: ext.warning,
		})
		if err != nil {
			return nil, fmt.Errorf("verify: render message: %w", err)
		}
		next.CodeHash = e.hasher.Hash(next.ID, code)
		next.ExpiresAt = now.Add(svc.CodeTTL)
		next.UpdatedAt = now
		res.Save = &next
		if !isTest {
			if res.Message, err = e.newMessage(&next, body, code, now); err != nil {
				return nil, err
			}
		}
		if res.Attempt, err = e.sendAttempt(&next); err != nil {
			return nil, err
		}
		if subscribed {
			res.Events = startEvents(res, now)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "verification started", "verification_id", v.ID, "service_id", v.ServiceID,
		"to", phone.Mask(v.To), "country", v.Country, "send_count", v.SendCount, "test_number", isTest)
	e.observer.Started(v, resent)
	e.countFraudSend(ctx, fs, v)
	if !isTest {
		e.notify()
	}
	if subscribed {
		e.eventsNotify()
	}
	return v, nil
}

// newMessage makes the outbox message that carries code to v, its text and
// code sealed.
func (e *Engine) newMessage(v *pv.Verification, body, code string, now time.Time) (*pv.OutboxMessage, error) {
	id, err := e.NewID("MS")
	if err != nil {
		return nil, err
	}
	sealed, err := e.sealer.SealMessage(id, body, code)
	if err != nil {
		return nil, fmt.Errorf("verify: seal message: %w", err)
	}
	return &pv.OutboxMessage{
		ID: id, VerificationID: v.ID, ServiceID: v.ServiceID, To: v.To, Country: v.Country, Locale: v.Locale,
		SendCount: v.SendCount, Sealed: sealed, Status: pv.MessageQueued,
		DueAt: now, ExpiresAt: v.ExpiresAt, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// FailDelivery records that the code m carried could not be delivered: the
// verification turns failed, so no live code is left that nobody received.
// Only the code m carried is failed: if a resend has replaced it since, or
// the verification is no longer pending, nothing changes. Returns ENotFound
// if the verification does not exist.
func (e *Engine) FailDelivery(ctx context.Context, m *pv.OutboxMessage) error {
	now := e.Now()
	failed := false
	_, err := e.updateVerification(ctx, pv.VerificationRef{ServiceID: m.ServiceID, ID: m.VerificationID},
		func(cur *pv.Verification) (*pv.Update, error) {
			if cur.Status != pv.StatusPending || cur.SendCount != m.SendCount {
				return &pv.Update{}, nil
			}
			cur.Status = pv.StatusFailed
			cur.UpdatedAt = now
			failed = true
			return &pv.Update{Save: true}, nil
		})
	if err != nil || !failed {
		return err
	}
	e.log.WarnContext(ctx, "verification failed: message not delivered", "verification_id", m.VerificationID,
		"message_id", m.ID, "to", phone.Mask(m.To))
	e.observer.Finished(&pv.Verification{ID: m.VerificationID, ServiceID: m.ServiceID, To: m.To,
		Country: m.Country, Status: pv.StatusFailed, UpdatedAt: now})
	return nil
}

// ipKey returns what the per-IP limit counts for a client address: the
// address itself for IPv4, its /64 for IPv6, and the raw text for anything
// that does not parse (the caller's hook decides what an address is).
func ipKey(raw string) string {
	raw = strings.TrimSpace(raw)
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return raw
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.Prefix(64)
	return p.String()
}

func checkRegistry(svc *pv.Service, subject, e164 string, st *pv.StartState) error {
	if subject == "" {
		return nil
	}
	if svc.RejectAlreadyVerified && st.SubjectPhone != nil && st.SubjectPhone.Phone == e164 {
		return pv.ParamErrorf(pv.EAlreadyVerified, "to", "This subject has already verified this phone number.")
	}
	if svc.OneSubjectPerPhone {
		for _, s := range st.PhoneSubjects {
			if s != subject {
				return pv.ParamErrorf(pv.EPhoneInUse, "to", "This phone number is already verified by another subject.")
			}
		}
	}
	return nil
}

func sendsWithin(sends []time.Time, now time.Time, window time.Duration) []time.Time {
	cutoff := now.Add(-window)
	out := make([]time.Time, 0, len(sends)+1)
	for _, t := range sends {
		if t.After(cutoff) {
			out = append(out, t)
		}
	}
	return out
}

func ceilSecond(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

const (
	maxSubjectLen = 128
	maxAmountLen  = 64
	maxPayeeLen   = 128
)

func validateStart(r *StartRequest) error {
	if strings.TrimSpace(r.To) == "" {
		return pv.ParamErrorf(pv.EInvalidRequest, "to", "The phone number to verify is required.")
	}
	switch strings.ToLower(r.Channel) {
	case "", string(pv.ChannelSMS):
		r.Channel = string(pv.ChannelSMS)
	default:
		return pv.ParamErrorf(pv.EInvalidRequest, "channel", "Only the sms channel is supported.")
	}
	if r.Locale != "" && !message.ValidLocale(r.Locale) {
		return pv.ParamErrorf(pv.EInvalidRequest, "locale", "The locale must be a language tag such as en or pt-BR.")
	}
	if r.AppHash != "" && !message.ValidAppHash(r.AppHash) {
		return pv.ParamErrorf(pv.EInvalidRequest, "app_hash", "The app hash must be the 11-character Android SMS Retriever hash.")
	}
	return validateBindings(r.Subject, r.Amount, r.Payee)
}

func validateBindings(subject, amount, payee string) error {
	if err := validText("subject", subject, maxSubjectLen); err != nil {
		return err
	}
	if err := validText("amount", amount, maxAmountLen); err != nil {
		return err
	}
	return validText("payee", payee, maxPayeeLen)
}

func validText(param, s string, max int) error {
	if len(s) > max {
		return pv.ParamErrorf(pv.EInvalidRequest, param, "The %s may be at most %d bytes.", param, max)
	}
	if !utf8.ValidString(s) {
		return pv.ParamErrorf(pv.EInvalidRequest, param, "The %s must be valid UTF-8.", param)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return pv.ParamErrorf(pv.EInvalidRequest, param, "The %s must not contain control characters.", param)
		}
	}
	return nil
}
