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

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
	"github.com/phoneverify/phoneverify/web"
)

// Main is one running node: the store, the engine and the HTTP server wired
// together. Tests start it on 127.0.0.1:0 exactly as the binary does.
type Main struct {
	cfg    *Config
	stderr io.Writer
	log    *slog.Logger

	Store  *store.Store
	Keys   *token.Keyring
	Engine *verify.Engine
	// Sender is the gateway the engine uses; tests may set it before Open.
	Sender pv.Sender
	// Now is the clock; tests may set it before Open.
	Now func() time.Time

	ln     net.Listener
	server *http.Server
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// NewMain returns a node for cfg that logs to stderr.
func NewMain(cfg *Config, stderr io.Writer) *Main {
	return &Main{cfg: cfg, stderr: stderr, log: newLogger(cfg, stderr), Now: time.Now}
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens and migrates the database, retrying while it is
// unreachable so that a node started before its database comes up waits
// for it instead of exiting.
func openStore(ctx context.Context, cfg *Config, log *slog.Logger) (*store.Store, error) {
	var last error
	for attempt := 0; ; attempt++ {
		st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: cfg.DBMaxOpenConns})
		if err == nil {
			if err = st.Migrate(ctx); err == nil {
				return st, nil
			}
			st.Close()
		}
		if pv.ErrorCode(err) != pv.EUnavailable || attempt >= 30 {
			if last != nil && pv.ErrorCode(err) == pv.EUnavailable {
				return nil, fmt.Errorf("database still unreachable after %d attempts: %w", attempt+1, err)
			}
			return nil, fmt.Errorf("open database: %w", err)
		}
		last = err
		log.Warn("database unreachable, retrying", "attempt", attempt+1, "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
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
	var inbox *web.Inbox
	if m.Sender == nil {
		m.Sender, inbox = m.defaultSender()
	}
	m.Engine, err = verify.New(verify.Config{
		Store: st, Sender: m.Sender, Hasher: hasher, Keys: m.Keys,
		DefaultRegion: m.cfg.DefaultRegion, TestNumbers: m.cfg.TestNumbers,
		BootstrapKey: m.cfg.APIKey, Now: m.Now, Logger: m.log,
	})
	if err != nil {
		return err
	}
	if _, err := m.Engine.EnsureDefaultService(ctx, pv.NewService(m.cfg.AppName)); err != nil {
		return err
	}
	api := httpapi.New(httpapi.Config{
		Engine: m.Engine,
		JWKS:   func() ([]byte, error) { return m.Keys.JWKS(m.Now()) },
		Ready:  st.Ping,
		Logger: m.log,
	})
	m.ln, err = net.Listen("tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.cfg.Addr, err)
	}
	// The web pages share the listener: /admin/ and /demo/ are theirs.
	root := http.NewServeMux()
	root.Handle("/", api)
	if err := m.mountWeb(ctx, root, secret, inbox); err != nil {
		return err
	}
	m.server = &http.Server{
		Handler:           root,
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
	if m.cfg.APIKey != "" && len(m.cfg.APIKey) < 16 {
		m.log.Warn("PHONEVERIFY_API_KEY is short; use it only for development")
	}
	m.log.Info("phoneverify ready", "addr", m.ln.Addr().String(), "database", st.Dialect(), "version", version)
	return nil
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

// expireLoop records lapsed verifications as expired, so reports and the
// database agree with what the API already shows.
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
		}
	}
}

// Close stops serving (letting requests in flight finish within the
// shutdown timeout), stops background work and closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ShutdownTimeout)
		errs = append(errs, m.server.Shutdown(ctx))
		cancel()
	} else if m.ln != nil {
		errs = append(errs, m.ln.Close())
	}
	if m.stop != nil {
		m.stop()
		m.wg.Wait()
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}
