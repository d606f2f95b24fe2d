// Package verify is the verification engine: start, resend, check, cancel and
// expire. Every rule of verification lives here, once; stores only make the
// engine's decisions atomic, and adapters (HTTP APIs, CLI) only translate.
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
}

// StartLimits are the limits on starts, each keyed by what it protects, per
// service.
type StartLimits struct {
	// PerIP limits the starts from one client address: an IPv4 address,
	// or the /64 of an IPv6 address (one subscriber's usual allocation,
	// which its holder can rotate through freely).
	PerIP pv.Limit
	// PerCountry limits the starts for numbers of one country, a guard
	// against SMS pumping to expensive destinations.
	PerCountry pv.Limit
}

// Engine runs verifications.
type Engine struct {
	store         pv.Store
	sealer        *otp.Sealer
	notify        func()
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
	limits  StartLimits

	cacheTTL     time.Duration
	mu           sync.Mutex
	services     map[string]cachedService
	featureCache map[string]cachedFeatures
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
	}
	for _, l := range []struct {
		name  string
		limit pv.Limit
	}{{"per-IP", cfg.StartLimits.PerIP}, {"per-country", cfg.StartLimits.PerCountry}} {
		if l.limit.Off() {
			continue
		}
		if err := l.limit.Validate(); err != nil {
			return nil, fmt.Errorf("verify: %s start limit: %w", l.name, err)
		}
		if cfg.Limiter == nil {
			return nil, fmt.Errorf("verify: a %s start limit needs a Limiter", l.name)
		}
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
	if e.cacheTTL == 0 {
		e.cacheTTL = 2 * time.Second
	}
	return e, nil
}

// Now returns the engine's current time.
func (e *Engine) Now() time.Time { return e.now().UTC() }

// NewID returns a Twilio-style id: a two-letter prefix and 32 hex digits.
func (e *Engine) NewID(prefix string) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(e.random, b[:]); err != nil {
		return "", fmt.Errorf("verify: new id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// Service returns a service's settings, from a short-lived cache.
// Returns ENotFound if there is no such service.
func (e *Engine) Service(ctx context.Context, id string) (*pv.Service, error) {
	now := time.Now()
	if e.cacheTTL > 0 {
		e.mu.Lock()
		c, ok := e.services[id]
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
		e.services[id] = cachedService{svc: svc, expires: now.Add(e.cacheTTL)}
		e.mu.Unlock()
	}
	return svc, nil
}

// ForgetService drops a service from the cache after its settings changed.
func (e *Engine) ForgetService(id string) {
	e.mu.Lock()
	delete(e.services, id)
	delete(e.featureCache, id)
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
	ext, err := e.prepareStart(ctx, svc, &req)
	if err != nil {
		return nil, err
	}
	testCode, isTest := e.testNumbers[num.E164]
	// Outside the transaction: a limiter round trip must not hold the
	// number's lock (nor, on SQLite, the single writer).
	if err := e.checkStartLimits(ctx, svc.ID, req.ClientIP, num.Region); err != nil {
		return nil, err
	}

	now := e.Now()
	key := pv.NumberKey{ServiceID: svc.ID, Phone: num.E164, Subject: req.Subject}
	v, err := e.store.StartVerification(ctx, key, func(st *pv.StartState) (*pv.StartResult, error) {
		if err := checkRegistry(svc, req.Subject, num.E164, st); err != nil {
			return nil, err
		}
		recent := sendsWithin(st.Sends, now, svc.SendWindow)
		if len(recent) >= svc.MaxSends {
			wait := recent[len(recent)-svc.MaxSends].Add(svc.SendWindow).Sub(now)
			return nil, &pv.Error{Code: pv.ETooManyRequests, Param: "to", RetryAfter: ceilSecond(wait),
				Message: fmt.Sprintf("Too many codes were sent to this number: at most %d per %s.", svc.MaxSends, svc.SendWindow)}
		}
		res := &pv.StartResult{Sends: append(recent, now)}
		latest := st.Latest
		resend := latest != nil && latest.StatusAt(now) == pv.StatusPending &&
			latest.Subject == req.Subject && latest.Amount == req.Amount && latest.Payee == req.Payee
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
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "verification started", "verification_id", v.ID, "service_id", v.ServiceID,
		"to", phone.Mask(v.To), "country", v.Country, "send_count", v.SendCount, "test_number", isTest)
	if !isTest {
		e.notify()
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
	_, err := e.store.UpdateVerification(ctx, pv.VerificationRef{ServiceID: m.ServiceID, ID: m.VerificationID},
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
	return nil
}

// checkStartLimits applies the per-IP and per-country limits. A limiter that
// cannot be reached refuses the start (EUnavailable): sends cost money, so
// an outage must not lift the limits.
func (e *Engine) checkStartLimits(ctx context.Context, serviceID, clientIP, country string) error {
	if e.limiter == nil {
		return nil
	}
	checks := []struct {
		kind, value string
		limit       pv.Limit
		msg         string
	}{
		{"ip", ipKey(clientIP), e.limits.PerIP, "Too many verifications were started from this IP address"},
		{"country", country, e.limits.PerCountry, "Too many verifications were started for numbers in this country"},
	}
	for _, c := range checks {
		if c.limit.Off() || c.value == "" {
			continue
		}
		d, err := e.limiter.Allow(ctx, "start:"+c.kind+":"+serviceID+":"+c.value, c.limit)
		if err != nil {
			if pv.ErrorCode(err) == pv.EUnavailable {
				e.log.WarnContext(ctx, "rate limiter unavailable; start refused", "limit", c.kind, "error", err)
			}
			return err
		}
		if !d.Allowed {
			e.log.InfoContext(ctx, "start rate-limited", "service_id", serviceID, "limit", c.kind, "retry_after", d.RetryAfter)
			return &pv.Error{Code: pv.ETooManyRequests, RetryAfter: ceilSecond(d.RetryAfter),
				Message: fmt.Sprintf("%s (%s limit: at most %d per %s).", c.msg, c.kind, c.limit.Max, c.limit.Window)}
		}
	}
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
