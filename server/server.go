// Package server runs phoneverify inside another Go program: it wires a
// store, a message sender and options into the engine ([verify.Engine]),
// the outbox and event workers, and the native JSON API as an
// [http.Handler] that the program mounts on its own mux.
//
// The phoneverify binary adds what a stand-alone service needs on top
// (configuration from the environment, the Twilio-compatible API, web pages,
// gateways from settings, a listener); an embedding program does that part
// its own way. A minimal embedding:
//
//	st, _ := store.Open(ctx, "sqlite:verify.db", store.Options{})
//	_ = st.Migrate(ctx)
//	srv, _ := server.New(ctx, server.Config{Store: st, Secret: secret, Sender: log.New(os.Stderr)})
//	go srv.Run(ctx) // delivers messages and events until ctx ends
//	mux.Handle("/verify/", http.StripPrefix("/verify", srv.Handler))
//
// See examples/embedded for a runnable program.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/events"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
)

// Store is everything the server keeps: verifications and keys, the
// message outbox, events and signing keys. [store.Store] (SQLite or
// PostgreSQL) is one; it must be migrated before [New].
type Store interface {
	pv.Store
	pv.Outbox
	pv.EventStore
}

// Config holds what [New] needs. Store, Secret and Sender are required.
type Config struct {
	Store Store
	// Secret (at least 32 bytes) keys the code hashes and seals signing
	// keys, queued messages and event secrets. Keep it: a new one makes
	// issued proofs and queued messages unusable. Every node sharing a
	// database must hold the same.
	Secret []byte
	// Sender delivers the messages: a gateway (gateway/twilio, …), a
	// gateway/router over several, or gateway/log in development.
	Sender pv.Sender
	// ServiceName names the default service when it is first created
	// ({app} in messages); default "phoneverify".
	ServiceName string
	// APIKey, when set, is a bootstrap API key (all scopes) of the default
	// service that is never stored; create real ones with
	// [verify.Engine.CreateAPIKey].
	APIKey string
	// Issuer is the iss claim of proofs; default "phoneverify".
	Issuer string
	// DefaultRegion lets national numbers parse, e.g. "NP".
	DefaultRegion string
	// TestNumbers maps E.164 numbers to fixed codes; nothing is sent to them.
	TestNumbers map[string]string
	// Limiter and StartLimits limit starts per client IP and country; see
	// [verify.Config].
	Limiter     pv.Limiter
	StartLimits verify.StartLimits
	// OutboxWorkers is how many messages are sent at once (default 4).
	OutboxWorkers int
	// ExpireInterval is how often lapsed verifications are recorded as
	// expired and signing keys reloaded (default 30s).
	ExpireInterval time.Duration
	// ClientIP names a request's client for the per-IP limit; see
	// [httpapi.Config]. Default: the connection's address.
	ClientIP func(r *http.Request) string
	// Logger gets the engine's, workers' and API's lines; default: discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server is phoneverify wired for embedding.
type Server struct {
	// Engine runs verifications directly, without HTTP.
	Engine *verify.Engine
	// Keys signs and verifies proofs; Keys.JWKS publishes its public keys.
	Keys *token.Keyring
	// Handler serves the native API (see httpapi), /openapi.json and
	// /.well-known/jwks.json included.
	Handler http.Handler
	// DefaultService is the service API keys and the bootstrap key act in.
	DefaultService *pv.Service
	// Outbox and Events are the workers [Server.Run] runs. The engine wakes
	// them after it queues a message or records events, and the outbox
	// wakes Events after it records a message event, so that this node
	// does not wait for their poll.
	Outbox *outbox.Dispatcher
	Events *events.Dispatcher

	store          Store
	log            *slog.Logger
	expireInterval time.Duration
}

// New wires a Server. It creates the default service and the first signing
// key if the store has none.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Sender == nil {
		return nil, errors.New("server: Store and Sender are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "phoneverify"
	}
	if cfg.ExpireInterval <= 0 {
		cfg.ExpireInterval = 30 * time.Second
	}
	hasher, err := otp.NewHasher(cfg.Secret)
	if err != nil {
		return nil, err
	}
	sealer, err := otp.NewSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	keys, err := token.NewKeyring(ctx, cfg.Store, cfg.Secret, cfg.Now(), token.Options{Issuer: cfg.Issuer})
	if err != nil {
		return nil, err
	}
	s := &Server{Keys: keys, store: cfg.Store, log: cfg.Logger, expireInterval: cfg.ExpireInterval}
	s.Events, err = events.New(events.Config{Store: cfg.Store, Sealer: sealer, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	s.Engine, err = verify.New(verify.Config{
		Store: cfg.Store, Sealer: sealer, Hasher: hasher, Keys: keys,
		Notify:        func() { s.Outbox.Notify() },
		EventsNotify:  func() { s.Events.Notify() },
		DefaultRegion: cfg.DefaultRegion, TestNumbers: cfg.TestNumbers, BootstrapKey: cfg.APIKey,
		Now: cfg.Now, Logger: cfg.Logger, Limiter: cfg.Limiter, StartLimits: cfg.StartLimits,
	})
	if err != nil {
		return nil, err
	}
	s.Outbox, err = outbox.New(outbox.Config{Store: cfg.Store, Sender: cfg.Sender, Sealer: sealer, Failer: s.Engine,
		Workers: cfg.OutboxWorkers, Now: cfg.Now, Logger: cfg.Logger, Subscribed: s.Engine.Subscribed,
		EventsNotify: func() { s.Events.Notify() }})
	if err != nil {
		return nil, err
	}
	if s.DefaultService, err = s.Engine.EnsureDefaultService(ctx, pv.NewService(cfg.ServiceName)); err != nil {
		return nil, err
	}
	s.Handler = httpapi.New(httpapi.Config{
		Engine: s.Engine, JWKS: func() ([]byte, error) { return keys.JWKS(cfg.Now()) },
		Ready: cfg.Store.Ping, Logger: cfg.Logger, ClientIP: cfg.ClientIP,
	})
	return s, nil
}

// Run delivers messages and events and does the periodic upkeep (expiry,
// signing-key reload) until ctx ends; it then waits for the sends in
// flight to be recorded and returns nil. Messages and events still queued
// stay in the store for the next Run or another node.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Outbox.Run(ctx) })
	wg.Go(func() { _ = s.Events.Run(ctx) })
	wg.Go(func() {
		t := time.NewTicker(s.expireInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := s.Engine.ExpireDue(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("expiring verifications", "error", err)
				}
				if err := s.Keys.Reload(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("reloading signing keys", "error", err)
				}
			}
		}
	})
	wg.Wait()
	return nil
}
