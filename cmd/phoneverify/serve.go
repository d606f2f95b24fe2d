package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/events"
	"github.com/phoneverify/phoneverify/gateway/vonage"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/logging"
	"github.com/phoneverify/phoneverify/metrics"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/ratelimit/redislimit"
	"github.com/phoneverify/phoneverify/ratelimit/sqllimit"
	"github.com/phoneverify/phoneverify/receipts"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/twilioapi"
	"github.com/phoneverify/phoneverify/verify"
	"github.com/phoneverify/phoneverify/web"
)

// Main is one running node: the store, the engine and the HTTP server wired
// together. Tests start it on 127.0.0.1:0 exactly as the binary does.
type Main struct {
	cfg    *Config
	stderr io.Writer
	log    *slog.Logger

	Store *store.Store
	// Redis is the client of the Redis limiter; nil without
	// PHONEVERIFY_REDIS_URL.
	Redis  *redis.Client
	Keys   *token.Keyring
	Engine *verify.Engine
	// Sender is what the outbox workers send through: by default the router
	// over every enabled gateway; tests may set it before Open.
	Sender pv.Sender
	// Outbox runs the workers that deliver messages.
	Outbox *outbox.Dispatcher
	// Events runs the workers that post event webhooks.
	Events *events.Dispatcher
	// eventsPoll is how often the event workers look for events they were
	// not woken for (default events.DefaultPollInterval); tests may set it
	// before Open.
	eventsPoll time.Duration
	// Now is the clock; tests may set it before Open.
	Now func() time.Time
	// Metrics counts what the node does, served at /metrics (or on
	// PHONEVERIFY_METRICS_ADDR).
	Metrics *metrics.Metrics

	ln     net.Listener
	server *http.Server
	// metricsLn and metricsServer serve /metrics on PHONEVERIFY_METRICS_ADDR.
	metricsLn     net.Listener
	metricsServer *http.Server
	stop          context.CancelFunc
	wg            sync.WaitGroup
	gateways      *gatewaySet
	// stopOutbox ends the outbox and event workers' claiming; outboxDone
	// closes once the sends in flight are finished and recorded.
	stopOutbox context.CancelFunc
	outboxDone chan struct{}
	// sweepLimits deletes spent rate-limit rows (SQL limiter only).
	sweepLimits func(ctx context.Context) (int, error)
}

// NewMain returns a node for cfg that logs to stderr.
func NewMain(cfg *Config, stderr io.Writer) *Main {
	return &Main{cfg: cfg, stderr: stderr, log: newLogger(cfg, stderr), Now: time.Now}
}

// newLogger returns the node's logger: PHONEVERIFY_LOG_FORMAT and
// PHONEVERIFY_LOG_LEVEL (validated with the configuration), with the
// request id of the request being served on every line.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	l, err := logging.New(w, cfg.LogFormat, cfg.LogLevel)
	if err != nil { // a Config built without LoadConfig
		l, _ = logging.New(w, logging.FormatJSON, "info")
	}
	return l
}

// Backoff between attempts to reach the database or Redis at start.
const (
	firstRetryDelay = 250 * time.Millisecond
	maxRetryDelay   = 5 * time.Second
)

// retryUnavailable calls fn until it succeeds, fails for a reason other than
// EUnavailable, or timeout passes, sleeping between attempts with
// exponential backoff (250ms doubling up to 5s) and logging each retry. A
// node started before its database or Redis comes up so waits for it,
// bounded, instead of exiting at once or hanging forever.
func retryUnavailable(ctx context.Context, log *slog.Logger, what string, timeout time.Duration, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	delay := firstRetryDelay
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || pv.ErrorCode(err) != pv.EUnavailable {
			return err
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("%s still unreachable after %d attempts over %s (PHONEVERIFY_STARTUP_TIMEOUT): %w", what, attempt, timeout, err)
		}
		log.Warn(what+" unreachable, retrying", "attempt", attempt, "retry_in", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// openStore opens and migrates the database, retrying while it is
// unreachable (see retryUnavailable).
func openStore(ctx context.Context, cfg *Config, log *slog.Logger) (*store.Store, error) {
	var st *store.Store
	err := retryUnavailable(ctx, log, "database", cfg.StartupTimeout, func(ctx context.Context) error {
		s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: cfg.DBMaxOpenConns})
		if err != nil {
			return err
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return err
		}
		st = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// openLimiter returns the start limiter: Redis when PHONEVERIFY_REDIS_URL is
// set (waiting for it like for the database), else counters in the store's
// database. Either way every node sharing the backend shares the limits.
func (m *Main) openLimiter(ctx context.Context) (pv.Limiter, error) {
	if m.cfg.RedisURL == "" {
		l := sqllimit.NewOnStore(m.Store, sqllimit.Options{Now: m.Now})
		m.sweepLimits = l.Sweep
		return l, nil
	}
	rdb, err := redislimit.NewClient(m.cfg.RedisURL, redislimit.ClientOptions{PoolSize: m.cfg.RedisPoolSize})
	if err != nil {
		return nil, err
	}
	m.Redis = rdb
	err = retryUnavailable(ctx, m.log, "Redis", m.cfg.StartupTimeout, func(ctx context.Context) error {
		return redislimit.Ping(ctx, rdb)
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Redis: %w", err)
	}
	// Redis's clock, not m.Now: nodes agree even when their clocks drift.
	return redislimit.New(rdb, redislimit.Options{}), nil
}

// ready reports whether the node can serve: the database answers and, when
// configured, Redis does.
func (m *Main) ready(ctx context.Context) error {
	if err := m.Store.Ping(ctx); err != nil {
		return err
	}
	if m.Redis != nil {
		return redislimit.Ping(ctx, m.Redis)
	}
	return nil
}

// serverSecret returns the configured secret, or on SQLite the one kept in
// phoneverify.secret beside the database, created on first start.
func serverSecret(cfg *Config, st *store.Store) ([]byte, error) {
	if cfg.Secret != "" {
		return []byte(cfg.Secret), nil
	}
	path, ok := store.SQLitePath(cfg.DatabaseURL)
	if !ok {
		return nil, errors.New("PHONEVERIFY_SECRET (or PHONEVERIFY_SECRET_FILE) is required with PostgreSQL: every node must hold the same secret")
	}
	file := filepath.Join(filepath.Dir(path), "phoneverify.secret")
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, err
		}
		secret := hex.EncodeToString(raw[:])
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // created concurrently
			return serverSecret(cfg, st)
		}
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", file, err)
		}
		if _, err := f.WriteString(secret + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", file, err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return []byte(secret), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 32 {
		return nil, fmt.Errorf("%s holds fewer than 32 characters", file)
	}
	return []byte(secret), nil
}

// Open connects to the database, migrates it, loads keys, builds the engine
// and starts listening (but not yet serving).
func (m *Main) Open(ctx context.Context) error {
	st, err := openStore(ctx, m.cfg, m.log)
	if err != nil {
		return err
	}
	m.Store = st
	m.Metrics = metrics.New()
	if err := m.Metrics.RegisterDB(st.DB(), "primary"); err != nil {
		return err
	}
	if st.ReadDB() != st.DB() {
		if err := m.Metrics.RegisterDB(st.ReadDB(), "reader"); err != nil {
			return err
		}
	}
	if err := m.Metrics.RegisterOutbox(st, m.Now); err != nil {
		return err
	}
	secret, err := serverSecret(m.cfg, st)
	if err != nil {
		return err
	}
	hasher, err := otp.NewHasher(secret)
	if err != nil {
		return err
	}
	m.Keys, err = token.NewKeyring(ctx, st, secret, m.Now(), token.Options{Issuer: m.cfg.Issuer})
	if err != nil {
		return err
	}
	sealer, err := otp.NewSealer(secret)
	if err != nil {
		return err
	}
	var inbox *web.Inbox
	if m.Sender == nil {
		if m.gateways, err = buildGateways(m.cfg, m.stderr); err != nil {
			return err
		}
		for i, g := range m.gateways.gateways {
			m.gateways.gateways[i].Sender = m.Metrics.Sender(g.Name, g.Sender)
		}
		r, err := newRouter(m.cfg, m.gateways)
		if err != nil {
			return err
		}
		m.Sender = r
		for _, g := range m.gateways.gateways {
			m.log.Info("gateway enabled", "gateway", g.Name)
		}
		m.Sender, inbox = m.withDevInbox(r)
	}
	// The engine wakes the workers after each start; they exist once the
	// engine does, before anything can start a verification.
	var d *outbox.Dispatcher
	limiter, err := m.openLimiter(ctx)
	if err != nil {
		return err
	}
	// The engine, the outbox workers and the receipts wake the event
	// workers when they record events on this node.
	if m.Events, err = events.New(events.Config{Store: st, Sealer: sealer, Now: m.Now, Logger: m.log,
		PollInterval: m.eventsPoll}); err != nil {
		return err
	}
	m.Engine, err = verify.New(verify.Config{
		Store: st, Sealer: sealer, Hasher: hasher, Keys: m.Keys,
		Notify:        func() { d.Notify() },
		EventsNotify:  m.Events.Notify,
		DefaultRegion: m.cfg.DefaultRegion, TestNumbers: m.cfg.TestNumbers,
		BootstrapKey: m.cfg.APIKey, Now: m.Now, Logger: m.log,
		Limiter:     limiter,
		Observer:    m.Metrics,
		StartLimits: m.cfg.startLimits(),
		Fraud:       &verify.FraudConfig{DefaultMode: m.cfg.FraudMode},
	})
	if err != nil {
		return err
	}
	d, err = outbox.New(outbox.Config{
		Store: st, Sender: m.Sender, Sealer: sealer, Failer: m.Engine,
		Workers: m.cfg.OutboxWorkers, Now: m.Now, Logger: m.log, Subscribed: m.Engine.Subscribed,
		EventsNotify: m.Events.Notify, Observe: m.Metrics.MessageOutcome,
	})
	if err != nil {
		return err
	}
	m.Outbox = d
	def, err := m.Engine.EnsureDefaultService(ctx, pv.NewService(m.cfg.AppName))
	if err != nil {
		return err
	}
	if m.cfg.EventsURL != "" {
		if _, err := m.Engine.EnsureEventSubscription(ctx, def.ID, m.cfg.EventsURL, m.cfg.EventsSecret); err != nil {
			return fmt.Errorf("PHONEVERIFY_EVENTS_URL: %w", err)
		}
	}
	rc := receipts.Config{Store: st, Vonage: m.cfg.Gateways.Vonage != nil,
		VonageSignatureSecret: m.cfg.VonageSignatureSecret, VonageSignatureMethod: vonage.SignatureMethod(m.cfg.VonageSignatureMethod),
		EventsNotify: m.Events.Notify, Observe: m.Metrics.MessageReceipt, Now: m.Now, Logger: m.log}
	if tw := m.cfg.Gateways.Twilio; tw != nil && twilioCallbackURL(m.cfg) != "" {
		rc.TwilioAuthToken, rc.TwilioURL = tw.AuthToken, twilioCallbackURL(m.cfg)
	}
	rh, err := receipts.New(rc)
	if err != nil {
		return err
	}
	routes := map[string]httpapi.RouteFunc{}
	for pattern, fn := range rh.Routes() {
		routes[pattern] = fn
	}
	api := httpapi.New(httpapi.Config{
		Engine:   m.Engine,
		JWKS:     func() ([]byte, error) { return m.Keys.JWKS(m.Now()) },
		Ready:    m.ready,
		Logger:   m.log,
		Routes:   routes,
		ClientIP: m.cfg.TrustedProxies.ClientIP,
	})
	// The Twilio-compatible API shares the listener: /v2/ is Twilio's.
	root := http.NewServeMux()
	root.Handle("/", api)
	root.Handle("/v2/", twilioapi.New(twilioapi.Config{
		Engine: m.Engine, AccountSID: m.cfg.CompatAccountSID, AuthToken: m.cfg.CompatAuthToken, Logger: m.log,
		ClientIP: m.cfg.TrustedProxies.ClientIP,
	}))
	m.ln, err = net.Listen("tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.cfg.Addr, err)
	}
	// The web pages share the listener: /admin/ and /demo/ are theirs.
	if err := m.mountWeb(ctx, root, secret, inbox); err != nil {
		return err
	}
	if err := m.serveMetrics(root); err != nil {
		return err
	}
	m.server = &http.Server{
		Handler:           m.instrument(root),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	bg, stop := context.WithCancel(context.Background())
	m.stop = stop
	m.wg.Add(1)
	go m.expireLoop(bg)
	m.wg.Add(1)
	go m.purgeLoop(bg)
	obCtx, stopOutbox := context.WithCancel(context.Background())
	m.stopOutbox, m.outboxDone = stopOutbox, make(chan struct{})
	go func() {
		defer close(m.outboxDone)
		var wg sync.WaitGroup
		wg.Go(func() { _ = m.Events.Run(obCtx) })
		_ = d.Run(obCtx)
		wg.Wait()
	}()
	if m.cfg.APIKey != "" && len(m.cfg.APIKey) < 16 {
		m.log.Warn("PHONEVERIFY_API_KEY is short; use it only for development")
	}
	limits := "database"
	if m.Redis != nil {
		limits = "redis"
	}
	m.log.Info("phoneverify ready", "addr", m.ln.Addr().String(), "database", st.Dialect(), "rate_limits", limits,
		"rate_limit_ip", m.cfg.RateLimitIP.String(), "rate_limit_country", m.cfg.RateLimitCountry.String(),
		"rate_limit_number_day", m.cfg.RateLimitNumberDay.String(), "rate_limit_subject", m.cfg.RateLimitSubject.String(),
		"rate_limit_failed_checks", m.cfg.RateLimitFailedChecks.String(), "sms_budget_hour", m.cfg.SMSBudgetHour.String(),
		"sms_budget_day", m.cfg.SMSBudgetDay.String(), "trusted_proxies", len(m.cfg.TrustedProxies.Trusted()),
		"outbox_workers", m.cfg.OutboxWorkers, "fraud_mode", m.cfg.FraudMode, "retention", m.cfg.Retention.String(), "version", version)
	return nil
}

// instrument wraps the node's handler: a request id for every request
// (logged on each line logged while serving it, see package logging), its
// count and latency by route pattern, and one log line when it is
// answered, naming the route pattern (a raw path can hold a token).
func (m *Main) instrument(root *http.ServeMux) http.Handler {
	return logging.Middleware(m.Metrics.Middleware(metrics.MuxRoute(root), root,
		func(r *http.Request, pattern string, code int, took time.Duration) {
			m.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method),
				slog.String("route", pattern), slog.Int("status", code),
				slog.Float64("duration_ms", float64(took.Microseconds())/1000))
		}))
}

// serveMetrics serves /metrics: on the main listener (root) by default, on
// a listener of its own when PHONEVERIFY_METRICS_ADDR is an address (then
// not on the main one), nowhere when it is "off".
func (m *Main) serveMetrics(root *http.ServeMux) error {
	switch m.cfg.MetricsAddr {
	case "":
		root.Handle("GET /metrics", m.Metrics.Handler())
		return nil
	case "off":
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (PHONEVERIFY_METRICS_ADDR): %w", m.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Metrics.Handler())
	m.metricsLn = ln
	m.metricsServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := m.metricsServer.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics listener stopped", "error", err)
		}
	}()
	return nil
}

// MetricsAddr returns the address of the metrics listener, or "" when
// /metrics is on the main listener or off.
func (m *Main) MetricsAddr() string {
	if m.metricsLn == nil {
		return ""
	}
	return m.metricsLn.Addr().String()
}

// Addr returns the address the node listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Serve serves HTTP until Close; it returns nil after a clean shutdown.
func (m *Main) Serve() error {
	if err := m.server.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// expireLoop does the node's periodic upkeep every PHONEVERIFY_EXPIRE_INTERVAL:
// it records lapsed verifications as expired, so reports and the database
// agree with what the API already shows, reloads the signing keys, and
// sweeps spent rate-limit rows.
func (m *Main) expireLoop(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.ExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := m.Engine.ExpireDue(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("expiring verifications", "error", err)
			} else if n > 0 {
				m.log.Debug("verifications expired", "count", n)
			}
			// Another node (or "phoneverify keys rotate") may have rotated
			// the signing key: pick it up, so that every node signs with
			// the same key and publishes the same JWKS within an interval.
			if err := m.Keys.Reload(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("reloading signing keys", "error", err)
			}
			if m.sweepLimits == nil {
				continue
			}
			if n, err := m.sweepLimits(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("sweeping rate limits", "error", err)
			} else if n > 0 {
				m.log.Debug("rate-limit rows swept", "count", n)
			}
		}
	}
}

// Close stops serving (letting requests in flight finish within the
// shutdown timeout), stops the outbox workers (letting the sends in flight
// finish and be recorded), stops background work and closes the gateways
// and the database. Messages still queued stay in the outbox for the next
// start or another node.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ShutdownTimeout)
		errs = append(errs, m.server.Shutdown(ctx))
		cancel()
	} else if m.ln != nil {
		errs = append(errs, m.ln.Close())
	}
	if m.metricsServer != nil {
		errs = append(errs, m.metricsServer.Close())
	}
	if m.stopOutbox != nil {
		m.stopOutbox()
		<-m.outboxDone
	}
	if m.gateways != nil {
		errs = append(errs, m.gateways.close())
	}
	if m.stop != nil {
		m.stop()
		m.wg.Wait()
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	if m.Redis != nil {
		errs = append(errs, m.Redis.Close())
	}
	return errors.Join(errs...)
}
