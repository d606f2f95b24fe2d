package verify

import (
	"context"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/fraud"
	"github.com/phoneverify/phoneverify/phone"
)

// FraudConfig turns on fraud protection (SMS pumping) in an engine whose
// store keeps fraud counters ([pv.FraudStore]). See package fraud for how
// it decides.
type FraudConfig struct {
	// DefaultMode is the default service's mode when its settings name
	// none (PHONEVERIFY_FRAUD_MODE); empty means block. Other services
	// default to block.
	DefaultMode pv.FraudMode
	// CacheTTL is how long settings and blocks in force are cached in
	// memory, so that a prefix under attack costs no database read per
	// refused start; default 2s, negative disables the cache.
	CacheTTL time.Duration
}

// fraudGuard is the engine's fraud protection state: its configuration
// and short-lived caches. Counters live in the store, shared by all nodes.
type fraudGuard struct {
	store    pv.FraudStore
	defMode  pv.FraudMode
	cacheTTL time.Duration
	cache    *ttlCache[pv.FraudSettings]
	blocks   *ttlCache[fraud.Verdict]
	// inUpdate: the store counts an approval's conversion in the check's
	// own transaction ([pv.Update] Conversion), which spares every
	// approval a transaction (and on PostgreSQL a commit) of its own.
	inUpdate bool
}

func newFraudGuard(cfg *FraudConfig, st pv.Store) *fraudGuard {
	fs, ok := st.(pv.FraudStore)
	if cfg == nil || !ok {
		return nil
	}
	g := &fraudGuard{store: fs, defMode: cfg.DefaultMode, cacheTTL: cfg.CacheTTL}
	if cc, ok := st.(pv.ConversionCounter); ok {
		g.inUpdate = cc.CountsConversions()
	}
	if g.defMode == "" {
		g.defMode = pv.FraudBlock
	}
	if g.cacheTTL == 0 {
		g.cacheTTL = 2 * time.Second
	}
	g.cache = newTTLCache[pv.FraudSettings]()
	g.blocks = newTTLCache[fraud.Verdict]()
	return g
}

// The risk checks a start may ask for: the native API's risk_check and
// Twilio Verify's RiskCheck take the same two values.
const (
	RiskCheckEnable  = "enable"
	RiskCheckDisable = "disable"
)

// RiskCheck decides, for a start asking for risk check value on behalf of
// key k, whether the start skips fraud protection
// ([StartRequest.SkipRiskCheck]; the rate limits and geo permissions still
// apply). "" and "enable" (the default) keep the checks; "disable" skips
// them, and only a key holding [ScopeRiskCheckOverride] may ask for it.
// Both APIs call it, so the rule is the same whichever a backend speaks.
//
// Returns EForbidden for "disable" from a key without the scope, and
// EInvalidRequest for any other value; both name param risk_check.
func RiskCheck(k *pv.APIKey, value string) (skip bool, err error) {
	switch value {
	case "", RiskCheckEnable:
		return false, nil
	case RiskCheckDisable:
		if k == nil || !HasScope(k, ScopeRiskCheckOverride) {
			return false, &pv.Error{Code: pv.EForbidden, Param: "risk_check",
				Message: "Only an API key with the " + ScopeRiskCheckOverride + " scope may disable risk checks."}
		}
		return true, nil
	default:
		return false, pv.ParamErrorf(pv.EInvalidRequest, "risk_check", `The risk check must be "enable" or "disable".`)
	}
}

// fraudStart is what a start that passed fraud protection counts once it
// has committed.
type fraudStart struct {
	serviceID string
	start     fraud.Start
}

// FraudSettings returns a service's fraud settings with every default
// filled in. Returns ENotFound if the service does not exist, and
// EUnavailable if fraud protection is not configured.
func (e *Engine) FraudSettings(ctx context.Context, serviceID string) (*pv.FraudSettings, error) {
	if e.fraud == nil {
		return nil, pv.Errorf(pv.EUnavailable, "Fraud protection is not configured on this node.")
	}
	if !validID(serviceID, "VA") {
		return nil, serviceNotFound(pv.Errorf(pv.ENotFound, "No service has this id."))
	}
	if _, err := e.store.Service(ctx, serviceID); err != nil {
		return nil, err
	}
	s, err := e.fraudSettingsUncached(ctx, serviceID)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// SaveFraudSettings validates and saves a service's fraud settings; zero
// fields take the defaults, an empty mode inherits the default mode.
func (e *Engine) SaveFraudSettings(ctx context.Context, s *pv.FraudSettings) (*pv.FraudSettings, error) {
	if e.fraud == nil {
		return nil, pv.Errorf(pv.EUnavailable, "Fraud protection is not configured on this node.")
	}
	if !validID(s.ServiceID, "VA") {
		return nil, serviceNotFound(pv.Errorf(pv.ENotFound, "No service has this id."))
	}
	if err := fraud.Validate(s); err != nil {
		return nil, err
	}
	s.UpdatedAt = e.Now()
	if err := e.fraud.store.SaveFraudSettings(ctx, s); err != nil {
		return nil, err
	}
	e.fraud.cache.forget(s.ServiceID)
	return e.FraudSettings(ctx, s.ServiceID)
}

// FraudDecisions returns the fraud decisions f selects, newest first.
func (e *Engine) FraudDecisions(ctx context.Context, f pv.FraudDecisionFilter) ([]*pv.FraudDecision, error) {
	if e.fraud == nil {
		return nil, nil
	}
	return e.fraud.store.FraudDecisions(ctx, f)
}

// FraudEnabled reports whether this engine runs fraud protection.
func (e *Engine) FraudEnabled() bool { return e.fraud != nil }

func (e *Engine) fraudSettingsUncached(ctx context.Context, serviceID string) (pv.FraudSettings, error) {
	stored, err := e.fraud.store.FraudSettings(ctx, serviceID)
	if err != nil && pv.ErrorCode(err) != pv.ENotFound {
		return pv.FraudSettings{}, err
	}
	def := pv.FraudBlock
	if serviceID == e.defaultServiceID {
		def = e.fraud.defMode
	}
	s := fraud.Resolve(stored, def)
	s.ServiceID = serviceID
	return s, nil
}

func (e *Engine) fraudSettings(ctx context.Context, serviceID string) (pv.FraudSettings, error) {
	if s, ok := e.fraud.cache.get(serviceID, time.Now()); ok {
		return s, nil
	}
	s, err := e.fraudSettingsUncached(ctx, serviceID)
	if err != nil {
		return s, err
	}
	if e.fraud.cacheTTL > 0 {
		e.fraud.cache.put(serviceID, s, time.Now().Add(e.fraud.cacheTTL))
	}
	return s, nil
}

// checkFraud judges a start before its transaction. It returns what to
// count once the start commits (nil: count nothing), or the refusal.
// Test numbers, starts whose caller may and did skip risk checks, and
// services in off mode are not judged; safe-listed numbers are judged but
// never refused.
func (e *Engine) checkFraud(ctx context.Context, svcID string, num phone.Number, req *StartRequest, isTest bool) (*fraudStart, error) {
	if e.fraud == nil || isTest || req.SkipRiskCheck {
		return nil, nil
	}
	s, err := e.fraudSettings(ctx, svcID)
	if err != nil || s.Mode == pv.FraudOff {
		return nil, err
	}
	now := e.Now()
	fs := &fraudStart{serviceID: svcID, start: fraud.Start{Prefix: fraud.Prefix(num.E164), Country: num.Region}}
	if req.ClientIP != "" {
		fs.start.IP = ipKey(req.ClientIP)
	}
	v := e.cachedBlock(svcID, fs.start, now)
	if v == nil {
		st, err := e.fraud.store.FraudState(ctx, pv.FraudQuery{
			ServiceID: svcID, Prefix: fs.start.Prefix, Country: fs.start.Country, IP: fs.start.IP,
			Since:        now.Add(-s.Window + time.Hour),
			HistorySince: now.Add(-fraud.History), Now: now,
		})
		if err != nil {
			return nil, err
		}
		v = fraud.Judge(s, st, fs.start, now)
	}
	if v == nil {
		return fs, nil
	}
	if _, err := e.SafeListed(ctx, num.E164); err == nil {
		return fs, nil
	} else if pv.ErrorCode(err) != pv.ENotFound && pv.ErrorCode(err) != pv.EUnavailable {
		return nil, err
	}
	return e.refuseFraud(ctx, s, fs, v, num, now)
}

// refuseFraud records a verdict: in monitor mode as a would-be refusal
// (the start goes on), in block mode as a block and a 403.
func (e *Engine) refuseFraud(ctx context.Context, s pv.FraudSettings, fs *fraudStart, v *fraud.Verdict, num phone.Number, now time.Time) (*fraudStart, error) {
	id, err := e.NewID("FD")
	if err != nil {
		return nil, err
	}
	d := &pv.FraudDecision{ID: id, ServiceID: fs.serviceID, Reason: v.Reason, Action: "blocked",
		Prefix: fs.start.Prefix, Country: fs.start.Country, Phone: phone.Mask(num.E164), IP: fs.start.IP,
		Unconverted: v.Unconverted, Budget: v.Budget, Until: v.Until, CreatedAt: now}
	if s.Mode == pv.FraudMonitor {
		d.Action = "monitored"
		if err := e.fraud.store.RecordFraudDecision(ctx, d); err != nil {
			return nil, err
		}
		e.observer.Refused(fs.serviceID, v.Reason+"_monitor")
		e.log.InfoContext(ctx, "fraud protection would refuse (monitor mode)", "service_id", fs.serviceID, "reason", v.Reason,
			"to", d.Phone, "prefix", d.Prefix, "country", d.Country, "unconverted", v.Unconverted, "budget", v.Budget)
		return fs, nil
	}
	if v.InForce {
		err = e.fraud.store.RecordFraudDecision(ctx, d)
	} else {
		err = e.fraud.store.BlockFraud(ctx, d, v.Scope, v.Key)
		e.log.WarnContext(ctx, "fraud protection blocked sends", "service_id", fs.serviceID, "reason", v.Reason,
			"scope", v.Scope, "prefix", d.Prefix, "country", d.Country, "to", d.Phone,
			"unconverted", v.Unconverted, "budget", v.Budget, "until", v.Until)
	}
	if err != nil {
		return nil, err
	}
	if e.fraud.cacheTTL > 0 {
		blocked := *v
		blocked.InForce = true
		e.fraud.blocks.put(fs.serviceID+" "+v.Scope+" "+v.Key, blocked, minTime(v.Until, time.Now().Add(e.fraud.cacheTTL)))
	}
	e.observer.Refused(fs.serviceID, v.Reason)
	param := "to"
	if v.Scope == pv.FraudScopeIP {
		param = ""
	}
	return nil, &pv.Error{Code: pv.EBlockedByFraud, Param: param, Message: fraud.Describe(v),
		RetryAfter: ceilSecond(v.Until.Sub(now))}
}

// cachedBlock returns a block in force that this node saw recently.
func (e *Engine) cachedBlock(serviceID string, s fraud.Start, now time.Time) *fraud.Verdict {
	for _, k := range []struct{ scope, key string }{
		{pv.FraudScopePrefix, s.Prefix}, {pv.FraudScopeCountry, s.Country}, {pv.FraudScopeIP, s.IP},
	} {
		if k.key == "" {
			continue
		}
		if v, ok := e.fraud.blocks.get(serviceID+" "+k.scope+" "+k.key, time.Now()); ok && v.Until.After(now) {
			return &v
		}
	}
	return nil
}

// countFraudSend counts a committed send; a failure is logged, not
// returned: the message is already queued.
func (e *Engine) countFraudSend(ctx context.Context, fs *fraudStart, v *pv.Verification) {
	if fs == nil {
		return
	}
	keys := []pv.FraudKey{{Scope: pv.FraudScopePrefix, Key: fs.start.Prefix}, {Scope: pv.FraudScopeCountry, Key: fs.start.Country}}
	if fs.start.Prefix == "" {
		keys = keys[1:]
	}
	if fs.start.IP != "" {
		keys = append(keys, pv.FraudKey{Scope: pv.FraudScopeIP, Key: fs.start.IP},
			pv.FraudKey{Scope: pv.FraudScopeIPCountry, Key: fs.start.IP + "|" + fs.start.Country})
	}
	if err := e.fraud.store.CountFraud(ctx, fs.serviceID, keys, pv.FraudCounts{Sends: 1}, e.Now(), v.ID, fs.start.IP); err != nil {
		e.log.WarnContext(ctx, "fraud protection: counting a send failed", "verification_id", v.ID, "error", err)
	}
}

// fraudConversion returns what an approval of v, at at, counts inside the
// check's transaction, or nil if nothing is counted there: no fraud
// protection, a test number (never counted), or a store that cannot
// ([Engine.countFraudConversion] counts after the commit then). Services in
// off mode count conversions too, so that turning protection on finds a
// history.
func (e *Engine) fraudConversion(v *pv.Verification, at time.Time) *pv.FraudConversion {
	if e.fraud == nil || !e.fraud.inUpdate {
		return nil
	}
	if _, isTest := e.testNumbers[v.To]; isTest {
		return nil
	}
	return &pv.FraudConversion{Prefix: fraud.Prefix(v.To), Country: v.Country, At: at}
}

// countFraudConversion counts an approval after it committed, where the
// store cannot count it in the check's transaction: one upsert, on the
// check's hot path; a failure is logged, not returned.
func (e *Engine) countFraudConversion(ctx context.Context, v *pv.Verification) {
	if e.fraud == nil || e.fraud.inUpdate {
		return
	}
	if _, isTest := e.testNumbers[v.To]; isTest {
		return
	}
	if err := e.fraud.store.CountConversion(ctx, v.ServiceID, v.ID, fraud.Prefix(v.To), v.Country, e.Now()); err != nil {
		e.log.WarnContext(ctx, "fraud protection: counting a conversion failed", "verification_id", v.ID, "error", err)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
