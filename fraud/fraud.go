// Package fraud is the SMS-pumping detector: pure decisions over counts of
// sends and conversions, with no storage of its own. The engine (verify)
// reads the counts from a [phoneverify.FraudStore], asks [Judge] and records
// what it decides.
//
// The model follows Authgear's published design: a prefix (or a country)
// may hold a budget of unconverted sends, sends that no approved check
// followed, within a rolling window. The budget grows with the conversions
// the prefix has shown, in the window and over a longer history, so busy
// destinations with real users get room while a range that never converts
// is cut off after a small, fixed number of messages (the floor).
package fraud

import (
	"math"
	"strconv"
	"time"

	"github.com/nyaruka/phonenumbers"

	pv "github.com/phoneverify/phoneverify"
)

// Defaults for the settings a service leaves zero.
const (
	DefaultPrefixFloor  = 20
	DefaultCountryFloor = 100
	DefaultBudgetRatio  = 1.0
	DefaultWindow       = 24 * time.Hour
	DefaultCooldown     = time.Hour
	DefaultIPCountries  = 5
	// History is how far back conversions count towards a budget.
	History = 30 * 24 * time.Hour
	// MaxWindow caps a service's window, so hourly counters older than
	// it can be rolled up into daily ones.
	MaxWindow = 7 * 24 * time.Hour
	// PrefixDigits is how many national digits after the calling code
	// make a prefix: +998 90 1… → "+998901".
	PrefixDigits = 3
)

// Resolve returns s with every zero field set to its default and the mode
// set to def when s names none. s may be nil.
func Resolve(s *pv.FraudSettings, def pv.FraudMode) pv.FraudSettings {
	var r pv.FraudSettings
	if s != nil {
		r = *s
	}
	if r.Mode == "" {
		r.Mode = def
	}
	if r.Mode == "" {
		r.Mode = pv.FraudBlock
	}
	if r.PrefixFloor == 0 {
		r.PrefixFloor = DefaultPrefixFloor
	}
	if r.CountryFloor == 0 {
		r.CountryFloor = DefaultCountryFloor
	}
	if r.BudgetRatio == 0 {
		r.BudgetRatio = DefaultBudgetRatio
	}
	if r.Window == 0 {
		r.Window = DefaultWindow
	}
	if r.Cooldown == 0 {
		r.Cooldown = DefaultCooldown
	}
	if r.IPCountries == 0 {
		r.IPCountries = DefaultIPCountries
	}
	return r
}

// Validate checks settings a client sent; zero fields mean "default".
// Returns EInvalidRequest naming the field at fault.
func Validate(s *pv.FraudSettings) error {
	switch {
	case s.Mode != "" && !s.Mode.Valid():
		return pv.ParamErrorf(pv.EInvalidRequest, "mode", "The mode must be off, monitor or block.")
	case s.PrefixFloor < 0 || s.PrefixFloor > 1_000_000:
		return pv.ParamErrorf(pv.EInvalidRequest, "prefix_floor", "The prefix floor must be between 1 and 1000000.")
	case s.CountryFloor < 0 || s.CountryFloor > 10_000_000:
		return pv.ParamErrorf(pv.EInvalidRequest, "country_floor", "The country floor must be between 1 and 10000000.")
	case s.BudgetRatio < 0 || s.BudgetRatio > 100 || math.IsNaN(s.BudgetRatio):
		return pv.ParamErrorf(pv.EInvalidRequest, "budget_ratio", "The budget ratio must be between 0 and 100.")
	case s.Window < 0 || s.Window%time.Hour != 0 || s.Window > MaxWindow:
		return pv.ParamErrorf(pv.EInvalidRequest, "window", "The window must be whole hours, at most %s.", MaxWindow)
	case s.Cooldown < 0 || s.Cooldown > MaxWindow:
		return pv.ParamErrorf(pv.EInvalidRequest, "cooldown", "The cool-down must be between 1s and %s.", MaxWindow)
	case s.IPCountries < 0 || s.IPCountries > 300:
		return pv.ParamErrorf(pv.EInvalidRequest, "ip_countries", "The countries per address must be between 1 and 300.")
	}
	return nil
}

// Prefix returns the number prefix an E.164 number is counted under: its
// calling code and the first [PrefixDigits] national digits. It returns ""
// for input that is not E.164 with a known calling code.
func Prefix(e164 string) string {
	if len(e164) < 2 || e164[0] != '+' {
		return ""
	}
	digits := e164[1:]
	codes := phonenumbers.GetSupportedCallingCodes()
	code := 0
	for i := 0; i < 3 && i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return ""
		}
		code = code*10 + int(c-'0')
		if codes[code] {
			end := min(len(digits), i+1+PrefixDigits)
			return "+" + digits[:end]
		}
	}
	return ""
}

// Budget returns how many unconverted sends a prefix or country may hold
// within the window: ratio times its conversions (in the window, or the
// history's average per window, whichever is larger), and never less than
// floor.
func Budget(floor int, ratio float64, window, history pv.FraudCounts, windowLen time.Duration) int64 {
	perWindow := float64(history.Conversions) * float64(windowLen) / float64(History)
	conv := math.Max(float64(window.Conversions), perWindow)
	b := int64(math.Ceil(ratio * conv))
	return max(b, int64(floor))
}

// Verdict is why a start is refused.
type Verdict struct {
	// Reason is a pv.FraudReason* label; Scope and Key name what is
	// blocked (a prefix, a country or an address).
	Reason, Scope, Key string
	// Unconverted and Budget are the figures that tripped.
	Unconverted, Budget int64
	// Until is when the block ends: an existing block's end when InForce,
	// else now plus the cool-down.
	Until   time.Time
	InForce bool
}

// Start is what Judge knows of one start.
type Start struct {
	Prefix, Country, IP string
}

// Judge decides whether a start to st's prefix and country, from its
// client address, may send: nil if it may, else why not. The send being
// judged is counted as unconverted: with no conversions, exactly the floor
// of sends pass.
func Judge(s pv.FraudSettings, st *pv.FraudState, start Start, now time.Time) *Verdict {
	for _, b := range []struct{ scope, key, reason string }{
		{pv.FraudScopePrefix, start.Prefix, pv.FraudReasonPrefix},
		{pv.FraudScopeCountry, start.Country, pv.FraudReasonCountry},
		{pv.FraudScopeIP, start.IP, pv.FraudReasonIP},
	} {
		if until, ok := st.Blocks[b.scope]; ok && b.key != "" && until.After(now) {
			return &Verdict{Reason: b.reason, Scope: b.scope, Key: b.key, Until: until, InForce: true}
		}
	}
	until := now.Add(s.Cooldown)
	if start.Prefix != "" {
		budget := Budget(s.PrefixFloor, s.BudgetRatio, st.Prefix, st.PrefixHistory, s.Window)
		if u := st.Prefix.Unconverted() + 1; u > budget {
			return &Verdict{Reason: pv.FraudReasonPrefix, Scope: pv.FraudScopePrefix, Key: start.Prefix,
				Unconverted: u - 1, Budget: budget, Until: until}
		}
	}
	if start.Country != "" {
		budget := Budget(s.CountryFloor, s.BudgetRatio, st.Country, st.CountryHistory, s.Window)
		if u := st.Country.Unconverted() + 1; u > budget {
			return &Verdict{Reason: pv.FraudReasonCountry, Scope: pv.FraudScopeCountry, Key: start.Country,
				Unconverted: u - 1, Budget: budget, Until: until}
		}
	}
	if start.IP != "" && st.IPConversions == 0 && st.IPCountries+1 > s.IPCountries {
		return &Verdict{Reason: pv.FraudReasonIP, Scope: pv.FraudScopeIP, Key: start.IP,
			Unconverted: int64(st.IPCountries + 1), Budget: int64(s.IPCountries), Until: until}
	}
	return nil
}

// Describe returns a short sentence for a verdict, safe for an API client.
func Describe(v *Verdict) string {
	switch v.Scope {
	case pv.FraudScopePrefix:
		return "Codes to numbers in this range are paused by fraud protection: too many were sent without being verified."
	case pv.FraudScopeCountry:
		return "Codes to numbers in this country are paused by fraud protection: too many were sent without being verified."
	default:
		return "Codes requested from this address are paused by fraud protection: it asked for codes to " +
			strconv.Itoa(int(v.Budget)) + " or more countries without verifying any."
	}
}
