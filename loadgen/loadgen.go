// Package loadgen drives running phoneverify nodes over HTTP with realistic
// verification traffic, for `phoneverify bench`.
//
// Each flow is one person verifying one phone: a start for a number no
// other flow uses, the code read at a [Receiver] (the node's webhook
// gateway posts every message there), sometimes a resend and a wrong code
// first, then the right code, then sometimes a token introspection. A
// pair is one start and its right check. Flows start at a fixed rate or as
// fast as a fixed number of concurrent callers allow, for a set duration
// and at most a set count, so a run always ends by itself.
//
// Requests go through the [client] package, as an application's would.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phoneverify/phoneverify/client"
)

// Operations measured, in the order they are reported.
const (
	OpStart      = "start"
	OpResend     = "resend"
	OpCheckWrong = "check_wrong"
	OpCheck      = "check"
	OpIntrospect = "introspect"
)

// Operations lists the measured operations in report order.
var Operations = []string{OpStart, OpResend, OpCheckWrong, OpCheck, OpIntrospect}

// Error keys that are not API codes.
const (
	// ErrTransport is a request that got no HTTP answer.
	ErrTransport = "transport"
	// ErrNoCode is a start whose message never reached the receiver.
	ErrNoCode = "code_not_delivered"
	// ErrUnexpected is an answer of the wrong kind (a wrong code accepted,
	// an inactive token).
	ErrUnexpected = "unexpected_answer"
)

// Limits that keep a run bounded whatever the flags say.
const (
	MaxDuration    = time.Hour
	MaxFlows       = 10_000_000
	MaxConcurrency = 4096
)

// Config describes one run.
type Config struct {
	// Targets are the base URLs of the nodes; flows spread over them round
	// robin, request by request (a start on one node, its check on the
	// next), as a load balancer would. Each must be a loopback address.
	Targets []string
	// APIKey is the key every request carries.
	APIKey string
	// Receiver reads the codes the nodes send.
	Receiver *Receiver
	// Rate is flows started per second; 0 starts them as fast as
	// Concurrency callers finish them.
	Rate float64
	// Concurrency bounds the flows in flight.
	Concurrency int
	// Duration is how long new flows start; flows in flight then finish.
	Duration time.Duration
	// MaxFlows bounds how many flows start (0: MaxFlows).
	MaxFlows int
	// WrongRatio, ResendRatio and IntrospectRatio are the shares of flows
	// that check a wrong code first, ask for a resend before checking, and
	// introspect the token they get.
	WrongRatio, ResendRatio, IntrospectRatio float64
	// CodeTimeout bounds the wait for a code at the receiver.
	CodeTimeout time.Duration
	// Seed picks the numbers and the mix; runs with the same seed use the
	// same numbers, so vary it between runs on one database.
	Seed uint64
	// HTTPClient sends the requests; default: keep-alive with a pool sized
	// for Concurrency and a 10-second timeout.
	HTTPClient *http.Client
}

// Result is what a run measured.
type Result struct {
	// Elapsed runs from the first flow's start to the last flow's end.
	Elapsed time.Duration
	// Flows started and Pairs completed (start + right check approved).
	Flows, Pairs int
	// Latencies holds each operation's request latencies, sorted.
	Latencies map[string][]time.Duration
	// Delivery holds, per flow, the time from the start's answer to the
	// code at the receiver (the outbox and gateway), sorted. It is not a
	// request latency and is not in All.
	Delivery []time.Duration
	// Errors counts unexpected outcomes by API error code or by one of the
	// Err* keys. An expected incorrect_code (a deliberate wrong check) is
	// not an error.
	Errors map[string]int
	// Late counts flows a fixed-rate run started late because Concurrency
	// flows were already in flight.
	Late int
}

// All returns every request's latency, sorted.
func (r *Result) All() []time.Duration {
	var all []time.Duration
	for _, op := range Operations {
		all = append(all, r.Latencies[op]...)
	}
	slices.Sort(all)
	return all
}

// ErrorCount returns the number of errors of every kind.
func (r *Result) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Requests returns the number of requests measured.
func (r *Result) Requests() int {
	n := 0
	for _, l := range r.Latencies {
		n += len(l)
	}
	return n
}

// Percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// sorted latencies, 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// CheckLoopback returns an error unless rawURL is an http(s) URL whose host
// is a loopback address (or a name that resolves only to loopback
// addresses): the bench must never load someone else's server.
func CheckLoopback(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("target %q is not an http(s) URL", rawURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("target %s is not a loopback address: bench only loads this machine (127.0.0.1, ::1, localhost)", rawURL)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("target %s: cannot resolve %s", rawURL, host)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("target %s resolves to %s, not a loopback address: bench only loads this machine", rawURL, a.IP)
		}
	}
	return nil
}

// Number returns the phone number of flow i under seed: Nepali mobile
// numbers (+9779 8x and seven digits, x one of the seven prefixes
// libphonenumber accepts), distinct for 7×10^7 flows (the stride is coprime
// with that), starting at a seed-chosen place.
func Number(seed uint64, i int) string {
	const prefixes = "0124568"
	const space = uint64(len(prefixes)) * 10_000_000
	n := (seed%space + uint64(i)*7919) % space
	return fmt.Sprintf("+97798%c%07d", prefixes[n/10_000_000], n%10_000_000)
}

// recorder collects latencies and errors from many flows.
type recorder struct {
	mu        sync.Mutex
	latencies map[string][]time.Duration
	delivery  []time.Duration
	errors    map[string]int
}

func (r *recorder) latency(op string, d time.Duration) {
	r.mu.Lock()
	r.latencies[op] = append(r.latencies[op], d)
	r.mu.Unlock()
}

func (r *recorder) deliveredIn(d time.Duration) {
	r.mu.Lock()
	r.delivery = append(r.delivery, d)
	r.mu.Unlock()
}

func (r *recorder) fail(key string) {
	r.mu.Lock()
	r.errors[key]++
	r.mu.Unlock()
}

// failErr records err under its API code, or as a transport error.
func (r *recorder) failErr(err error) {
	if e := client.AsError(err); e != nil {
		if e.Code == "" {
			r.fail("http_" + strconv.Itoa(e.StatusCode))
			return
		}
		r.fail(e.Code)
		return
	}
	r.fail(ErrTransport)
}

type runner struct {
	cfg     Config
	clients []*client.Client
	next    atomic.Uint64
	rec     *recorder
	pairs   atomic.Int64
}

// pick returns the node for the next request, round robin.
func (r *runner) pick() *client.Client {
	return r.clients[int(r.next.Add(1)-1)%len(r.clients)]
}

// Run runs the load and returns what it measured. It returns early, with
// what was measured so far, when ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(ctx); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 2 * cfg.Concurrency
		t.MaxIdleConnsPerHost = 2 * cfg.Concurrency
		hc = &http.Client{Transport: t, Timeout: 10 * time.Second}
		defer t.CloseIdleConnections()
	}
	r := &runner{cfg: cfg, rec: &recorder{latencies: map[string][]time.Duration{}, errors: map[string]int{}}}
	for _, target := range cfg.Targets {
		c, err := client.New(target, client.WithAPIKey(cfg.APIKey), client.WithHTTPClient(hc), client.WithUserAgent("phoneverify-bench"))
		if err != nil {
			return nil, err
		}
		r.clients = append(r.clients, c)
	}
	maxFlows := cfg.MaxFlows
	if maxFlows <= 0 || maxFlows > MaxFlows {
		maxFlows = MaxFlows
	}

	slots := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.Duration)
	flows, late := 0, 0
	launch := func() bool {
		select {
		case slots <- struct{}{}:
		default:
			if cfg.Rate > 0 {
				late++
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return false
			}
		}
		i := flows
		flows++
		wg.Go(func() {
			defer func() { <-slots }()
			r.flow(ctx, i)
		})
		return true
	}
loop:
	for flows < maxFlows && ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if cfg.Rate <= 0 {
			if !launch() {
				break
			}
			continue
		}
		// Start every flow that is due by now, then wait a millisecond:
		// timers are too coarse to start each of thousands per second on
		// its own tick.
		due := min(int(now.Sub(start).Seconds()*cfg.Rate)+1, maxFlows)
		for flows < due {
			if !launch() {
				break loop
			}
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
		}
	}
	wg.Wait()
	res := &Result{Elapsed: time.Since(start), Flows: flows, Pairs: int(r.pairs.Load()),
		Latencies: r.rec.latencies, Delivery: r.rec.delivery, Errors: r.rec.errors, Late: late}
	for _, l := range res.Latencies {
		slices.Sort(l)
	}
	slices.Sort(res.Delivery)
	return res, ctx.Err()
}

func (cfg *Config) validate(ctx context.Context) error {
	switch {
	case len(cfg.Targets) == 0:
		return errors.New("loadgen: no target")
	case cfg.Receiver == nil:
		return errors.New("loadgen: no receiver")
	case cfg.Rate < 0:
		return errors.New("loadgen: the rate must be ≥ 0")
	case cfg.Concurrency < 1 || cfg.Concurrency > MaxConcurrency:
		return fmt.Errorf("loadgen: concurrency must be 1 to %d", MaxConcurrency)
	case cfg.Duration <= 0 || cfg.Duration > MaxDuration:
		return fmt.Errorf("loadgen: the duration must be positive and at most %s", MaxDuration)
	}
	for _, p := range []float64{cfg.WrongRatio, cfg.ResendRatio, cfg.IntrospectRatio} {
		if p < 0 || p > 1 {
			return errors.New("loadgen: the mix ratios must be between 0 and 1")
		}
	}
	if cfg.CodeTimeout <= 0 {
		cfg.CodeTimeout = 10 * time.Second
	}
	for _, t := range cfg.Targets {
		if err := CheckLoopback(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// timed runs one request and records its latency (answered requests only,
// errors included: a fast refusal is a latency too).
func (r *runner) timed(op string, fn func() error) error {
	t0 := time.Now()
	err := fn()
	if err == nil || client.AsError(err) != nil {
		r.rec.latency(op, time.Since(t0))
	}
	return err
}

// flow is one person verifying one phone.
func (r *runner) flow(ctx context.Context, i int) {
	cfg := r.cfg
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
	wrong, resend, introspect := rng.Float64() < cfg.WrongRatio, rng.Float64() < cfg.ResendRatio, rng.Float64() < cfg.IntrospectRatio
	to := Number(cfg.Seed, i)
	subject := fmt.Sprintf("bench-%x-%d", cfg.Seed, i)

	var v *client.Verification
	err := r.timed(OpStart, func() (err error) {
		v, err = r.pick().Start(ctx, client.StartParams{To: to, Subject: subject})
		return err
	})
	if err != nil {
		r.rec.failErr(err)
		return
	}
	defer r.cfg.Receiver.Forget(v.ID)
	answered := time.Now()
	code, err := cfg.Receiver.Wait(ctx, v.ID, "", cfg.CodeTimeout)
	if err != nil {
		if ctx.Err() == nil {
			r.rec.fail(ErrNoCode)
		}
		return
	}
	r.rec.deliveredIn(time.Since(answered))

	if resend {
		err := r.timed(OpResend, func() error {
			_, err := r.pick().Start(ctx, client.StartParams{To: to, Subject: subject})
			return err
		})
		if err != nil {
			r.rec.failErr(err)
			return
		}
		if code, err = cfg.Receiver.Wait(ctx, v.ID, code, cfg.CodeTimeout); err != nil {
			if ctx.Err() == nil {
				r.rec.fail(ErrNoCode)
			}
			return
		}
	}

	if wrong {
		bad := []byte(code)
		bad[len(bad)-1] = '0' + (bad[len(bad)-1]-'0'+1)%10
		err := r.timed(OpCheckWrong, func() error {
			_, err := r.pick().Check(ctx, client.CheckParams{ID: v.ID, Code: string(bad), Subject: subject})
			return err
		})
		switch {
		case client.IsCode(err, client.CodeIncorrectCode):
		case err == nil:
			r.rec.fail(ErrUnexpected)
			return
		default:
			r.rec.failErr(err)
			return
		}
	}

	var res *client.CheckResult
	err = r.timed(OpCheck, func() (err error) {
		res, err = r.pick().Check(ctx, client.CheckParams{ID: v.ID, Code: code, Subject: subject})
		return err
	})
	if err != nil {
		r.rec.failErr(err)
		return
	}
	if res.Status != client.StatusApproved || res.Token == "" {
		r.rec.fail(ErrUnexpected)
		return
	}
	r.pairs.Add(1)

	if introspect {
		var info *client.TokenInfo
		err := r.timed(OpIntrospect, func() (err error) {
			info, err = r.pick().Introspect(ctx, res.Token)
			return err
		})
		if err != nil {
			r.rec.failErr(err)
			return
		}
		if !info.Active || info.PhoneNumber != res.To {
			r.rec.fail(ErrUnexpected)
		}
	}
}
