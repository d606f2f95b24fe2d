// Package router is a [phoneverify.Sender] that picks the gateways for each
// message by the destination's country and fails over between them.
//
// Routes map a calling-code prefix ("+977") or an ISO region ("NP") to an
// ordered list of gateways, with "*" as the default:
//
//	+977=sparrow;NP=sparrow;*=twilio,vonage
//
// The longest matching prefix wins, then the region, then "*"; without a
// "*" route every gateway, in the order given to [New], is the default.
//
// For each message the router tries the route's gateways in order. A
// permanent error about the message (a bad number) ends the send at once,
// since another gateway would refuse it too. A temporary error, or a
// failure of the gateway's own account (bad credentials), moves on to the
// next gateway. A circuit breaker per gateway counts consecutive failures:
// after Threshold of them the gateway is skipped for Cooldown, then one
// probe message is let through (half-open); its success closes the breaker
// and traffic returns, its failure opens it again.
package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/phone"
)

// Name is the gateway name of errors that no single gateway caused.
const Name = "router"

// Defaults used where [Config] leaves a field zero.
const (
	DefaultThreshold = 3
	DefaultCooldown  = 30 * time.Second
	// DefaultGatewayTimeout is one gateway's share of a send: a third of
	// the outbox's 30 s, so that a gateway that hangs leaves time for the
	// next ones of the route within the same send.
	DefaultGatewayTimeout = 10 * time.Second
)

// Gateway is one enabled gateway.
type Gateway struct {
	Name   string
	Sender pv.Sender
}

// Route sends the numbers it matches to Gateways, in order. Exactly one of
// Prefix (a calling-code prefix such as "+977"), Region (an ISO code such
// as "NP") and Default is set.
type Route struct {
	Prefix   string
	Region   string
	Default  bool
	Gateways []string
}

// ParseRoutes reads routes written as PHONEVERIFY_ROUTES takes them:
// entries separated by ";", each "KEY=gw1,gw2" where KEY is "+digits", a
// two-letter region or "*". An empty string gives no routes.
func ParseRoutes(s string) ([]Route, error) {
	var routes []Route
	seen := map[string]bool{}
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, list, ok := strings.Cut(entry, "=")
		key = strings.ToUpper(strings.TrimSpace(key))
		if !ok || key == "" {
			return nil, fmt.Errorf("route %q: want KEY=gateway[,gateway…]", entry)
		}
		var r Route
		switch {
		case key == "*":
			r.Default = true
		case strings.HasPrefix(key, "+"):
			if len(key) < 2 || len(key) > 8 || strings.Trim(key[1:], "0123456789") != "" || key[1] == '0' {
				return nil, fmt.Errorf("route %q: a prefix is + and the first digits of E.164 numbers", key)
			}
			r.Prefix = key
		default:
			if !phone.ValidRegion(key) {
				return nil, fmt.Errorf("route %q: not a calling-code prefix (+977), an ISO region (NP) or *", key)
			}
			r.Region = key
		}
		if seen[key] {
			return nil, fmt.Errorf("route %q is given twice", key)
		}
		seen[key] = true
		for _, g := range strings.Split(list, ",") {
			g = strings.ToLower(strings.TrimSpace(g))
			if g == "" {
				continue
			}
			if slices.Contains(r.Gateways, g) {
				return nil, fmt.Errorf("route %q names gateway %q twice", key, g)
			}
			r.Gateways = append(r.Gateways, g)
		}
		if len(r.Gateways) == 0 {
			return nil, fmt.Errorf("route %q names no gateway", key)
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// Config holds what a Router needs. Gateways is required.
type Config struct {
	// Gateways are the enabled gateways; their order is the default route
	// when Routes has no "*".
	Gateways []Gateway
	Routes   []Route
	// Threshold is how many consecutive failures open a gateway's breaker
	// (default 3).
	Threshold int
	// Cooldown is how long an open breaker skips its gateway before a
	// probe (default 30s).
	Cooldown time.Duration
	// GatewayTimeout bounds each gateway's attempt at a message (default
	// DefaultGatewayTimeout). A gateway that does not answer within it
	// counts as failed and the next gateway of the route is tried, within
	// the caller's own deadline. Such a gateway may still deliver its copy
	// late: failover after a timeout can send a code twice (at least once).
	GatewayTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Router sends each message through the gateways of its route. It is safe
// for concurrent use.
type Router struct {
	gateways map[string]*gateway
	prefixes []Route // longest prefix first
	regions  map[string][]*gateway
	fallback []*gateway
	routes   map[string][]*gateway // prefix → gateways
	cooldown time.Duration
	thresh   int
	timeout  time.Duration
	now      func() time.Time
}

type gateway struct {
	name   string
	sender pv.Sender

	mu        sync.Mutex
	failures  int
	open      bool
	openUntil time.Time
	probing   bool
}

var _ pv.Sender = (*Router)(nil)

// New returns a Router. It fails, naming the route, when a route names a
// gateway that is not among cfg.Gateways.
func New(cfg Config) (*Router, error) {
	if len(cfg.Gateways) == 0 {
		return nil, errors.New("router: no gateway")
	}
	r := &Router{
		gateways: map[string]*gateway{}, regions: map[string][]*gateway{}, routes: map[string][]*gateway{},
		cooldown: cfg.Cooldown, thresh: cfg.Threshold, timeout: cfg.GatewayTimeout, now: cfg.Now,
	}
	if r.timeout <= 0 {
		r.timeout = DefaultGatewayTimeout
	}
	if r.cooldown <= 0 {
		r.cooldown = DefaultCooldown
	}
	if r.thresh <= 0 {
		r.thresh = DefaultThreshold
	}
	if r.now == nil {
		r.now = time.Now
	}
	var names []string
	for _, g := range cfg.Gateways {
		name := strings.ToLower(g.Name)
		if name == "" || g.Sender == nil {
			return nil, errors.New("router: a gateway needs a name and a sender")
		}
		if r.gateways[name] != nil {
			return nil, fmt.Errorf("router: gateway %q is given twice", name)
		}
		gw := &gateway{name: name, sender: g.Sender}
		r.gateways[name] = gw
		r.fallback = append(r.fallback, gw)
		names = append(names, name)
	}
	for _, rt := range cfg.Routes {
		var list []*gateway
		for _, name := range rt.Gateways {
			gw := r.gateways[strings.ToLower(name)]
			if gw == nil {
				key := rt.Prefix + rt.Region
				if rt.Default {
					key = "*"
				}
				return nil, fmt.Errorf("router: route %s names gateway %q, which is not enabled (enabled: %s)",
					key, name, strings.Join(names, ", "))
			}
			list = append(list, gw)
		}
		switch {
		case rt.Default:
			r.fallback = list
		case rt.Prefix != "":
			r.prefixes = append(r.prefixes, rt)
			r.routes[rt.Prefix] = list
		default:
			r.regions[strings.ToUpper(rt.Region)] = list
		}
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].Prefix) > len(r.prefixes[j].Prefix) })
	return r, nil
}

// Route returns the names of the gateways a message to the E.164 number to
// in region (may be empty) would try, in order.
func (r *Router) Route(to, region string) []string {
	var names []string
	for _, g := range r.pick(to, region) {
		names = append(names, g.name)
	}
	return names
}

func (r *Router) pick(to, region string) []*gateway {
	for _, rt := range r.prefixes {
		if strings.HasPrefix(to, rt.Prefix) {
			return r.routes[rt.Prefix]
		}
	}
	if len(r.regions) > 0 {
		if region == "" {
			if n, err := phone.Parse(to, ""); err == nil {
				region = n.Region
			}
		}
		if list, ok := r.regions[strings.ToUpper(region)]; ok {
			return list
		}
	}
	return r.fallback
}

// Send tries the gateways of m's route in order and returns the first
// acceptance. It returns at once the permanent error of a gateway that
// refused the message itself. When every gateway failed or was skipped by
// its breaker, it returns a temporary *phoneverify.DeliveryError (gateway
// "router") listing why, with RetryAfter set when only open breakers stood
// in the way.
func (r *Router) Send(ctx context.Context, m *pv.Message) (*pv.SendResult, error) {
	candidates := r.pick(m.To, m.Country)
	var (
		reasons   []string
		last      *pv.DeliveryError
		tried     int
		reopenMin time.Duration
	)
	for _, g := range candidates {
		now := r.now()
		if wait, ok := g.allow(now, r.cooldown); !ok {
			reasons = append(reasons, g.name+": circuit open")
			if reopenMin == 0 || wait < reopenMin {
				reopenMin = wait
			}
			continue
		}
		tried++
		gctx, cancel := context.WithTimeout(ctx, r.timeout)
		res, err := g.sender.Send(gctx, m)
		cancel()
		if err == nil {
			g.success()
			if res == nil {
				res = &pv.SendResult{}
			}
			if res.Gateway == "" {
				res.Gateway = g.name
			}
			return res, nil
		}
		var de *pv.DeliveryError
		if !errors.As(err, &de) {
			de = &pv.DeliveryError{Gateway: g.name, Reason: "unexpected error", Err: err}
		}
		if de.Permanent && !de.Account {
			// The gateway answered: it is up, and the message is at fault.
			g.success()
			return nil, de
		}
		g.failure(r.now(), r.thresh, r.cooldown)
		last = de
		reasons = append(reasons, describe(de))
		if ctx.Err() != nil {
			break
		}
	}
	if tried == 1 && len(candidates) == 1 && last != nil {
		return nil, last
	}
	e := &pv.DeliveryError{Gateway: Name, Reason: "no gateway took the message: " + strings.Join(reasons, "; ")}
	if last != nil {
		e.Err = last
		e.RetryAfter = last.RetryAfter
	} else {
		e.RetryAfter = reopenMin
	}
	return nil, e
}

func describe(de *pv.DeliveryError) string {
	s := de.Gateway
	if de.Code != "" {
		s += " " + de.Code
	}
	if de.Reason != "" {
		s += " " + de.Reason
	}
	return s
}

// allow reports whether a message may go to g now; when not, it also
// returns how long until a probe may.
func (g *gateway) allow(now time.Time, cooldown time.Duration) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !g.open:
		return 0, true
	case now.Before(g.openUntil):
		return g.openUntil.Sub(now), false
	case g.probing:
		// One probe at a time; the others wait for its outcome.
		return cooldown, false
	}
	g.probing = true
	return 0, true
}

func (g *gateway) success() {
	g.mu.Lock()
	g.failures, g.open, g.probing = 0, false, false
	g.mu.Unlock()
}

func (g *gateway) failure(now time.Time, threshold int, cooldown time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures++
	if g.probing || g.failures >= threshold {
		g.open, g.probing, g.openUntil = true, false, now.Add(cooldown)
	}
}

// State describes one gateway's breaker, for status pages and tests.
type State struct {
	Gateway string
	// Open is true while the gateway is skipped (or waits for its probe).
	Open     bool
	Failures int
}

// States returns the breaker of every gateway, sorted by name.
func (r *Router) States() []State {
	var out []State
	for _, g := range r.gatewaysInOrder() {
		g.mu.Lock()
		out = append(out, State{Gateway: g.name, Open: g.open, Failures: g.failures})
		g.mu.Unlock()
	}
	return out
}

func (r *Router) gatewaysInOrder() []*gateway {
	names := make([]string, 0, len(r.gateways))
	for n := range r.gateways {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*gateway, 0, len(names))
	for _, n := range names {
		out = append(out, r.gateways[n])
	}
	return out
}
