package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/client"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
)

const apiKey = "client-test-key-0123456789"

// phones stands in for the phones: it keeps the last code sent to each
// number. Reading it first drains the outbox, as a node's workers would.
type phones struct {
	drain func()
	mu    sync.Mutex
	codes map[string]string
}

func (p *phones) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[m.To] = m.Code
	return &pv.SendResult{Gateway: "phones"}, nil
}

func (p *phones) code(to string) string {
	p.drain()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.codes[to]
}

// server is a real native API (the httpapi handler on a real store) behind
// a loopback HTTP server.
type server struct {
	url    string
	phones *phones
	// ready is what /readyz reports; tests may replace it.
	mu    sync.Mutex
	ready func(ctx context.Context) error
}

func newServer(tb testing.TB, dbURL string) *server {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	secret := bytes.Repeat([]byte("s"), 32)
	hasher, _ := otp.NewHasher(secret)
	sealer, _ := otp.NewSealer(secret)
	keys, err := token.NewKeyring(ctx, st, secret, time.Now(), token.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	e, err := verify.New(verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys, BootstrapKey: apiKey})
	if err != nil {
		tb.Fatal(err)
	}
	p := &phones{codes: map[string]string{}}
	d, err := outbox.New(outbox.Config{Store: st, Sender: p, Sealer: sealer, Failer: e})
	if err != nil {
		tb.Fatal(err)
	}
	p.drain = func() {
		if _, err := d.Drain(context.Background()); err != nil {
			tb.Errorf("drain the outbox: %v", err)
		}
	}
	if _, err := e.EnsureDefaultService(ctx, pv.NewService("Example")); err != nil {
		tb.Fatal(err)
	}
	s := &server{phones: p, ready: st.Ping}
	h := httpapi.New(httpapi.Config{
		Engine: e,
		JWKS:   func() ([]byte, error) { return keys.JWKS(time.Now()) },
		Ready: func(ctx context.Context) error {
			s.mu.Lock()
			f := s.ready
			s.mu.Unlock()
			return f(ctx)
		},
	})
	hs := httptest.NewServer(h)
	tb.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

func (s *server) setReady(f func(ctx context.Context) error) {
	s.mu.Lock()
	s.ready = f
	s.mu.Unlock()
}

// forEachStore runs test against SQLite and PostgreSQL.
func forEachStore(t *testing.T, test func(t *testing.T, s *server)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "pv.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, newServer(t, testenv.NewPostgresDatabase(t)))
	})
}

func mustClient(tb testing.TB, base string, opts ...client.Option) *client.Client {
	tb.Helper()
	c, err := client.New(base, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestEveryMethod(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *server) {
		ctx := t.Context()
		c := mustClient(t, s.url, client.WithAPIKey(apiKey), client.WithUserAgent("client-test"))
		const to = "+9779812345678"

		v, err := c.Start(ctx, client.StartParams{To: "+977 981-234-5678", Subject: "user-42"})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		if v.ID == "" || v.To != to || v.Status != client.StatusPending || v.Subject != "user-42" ||
			v.SendCount != 1 || v.AttemptsRemaining != 5 || v.ExpiresAt.IsZero() || v.Channel != "sms" {
			t.Fatalf("Start = %+v", v)
		}
		code := s.phones.code(to)

		d, err := c.Get(ctx, v.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if d.ID != v.ID || len(d.Messages) != 1 || d.Messages[0].Status != "sent" || d.Messages[0].Gateway != "phones" {
			t.Fatalf("Get = %+v", d)
		}

		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		_, err = c.Check(ctx, client.CheckParams{ID: v.ID, Code: wrong, Subject: "user-42"})
		e := client.AsError(err)
		if !client.IsCode(err, client.CodeIncorrectCode) || e.StatusCode != 400 || e.AttemptsRemaining == nil ||
			*e.AttemptsRemaining != 4 || e.RequestID == "" || e.Message == "" {
			t.Fatalf("Check(wrong) = %#v", err)
		}

		res, err := c.Check(ctx, client.CheckParams{To: to, Code: code, Subject: "user-42"})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if res.Status != client.StatusApproved || res.Token == "" || res.TokenExpiresAt.IsZero() || res.ID != v.ID {
			t.Fatalf("Check = %+v", res)
		}

		info, err := c.Introspect(ctx, res.Token)
		if err != nil {
			t.Fatalf("Introspect: %v", err)
		}
		if !info.Active || info.PhoneNumber != to || info.Subject != "user-42" || info.VerificationID != v.ID || info.ExpiresAt.IsZero() {
			t.Fatalf("Introspect = %+v", info)
		}

		sp, err := c.Subject(ctx, "user-42")
		if err != nil {
			t.Fatalf("Subject: %v", err)
		}
		if sp.PhoneNumber != to || sp.VerificationID != v.ID || sp.VerifiedAt.IsZero() {
			t.Fatalf("Subject = %+v", sp)
		}

		jwks, err := c.JWKS(ctx)
		if err != nil {
			t.Fatalf("JWKS: %v", err)
		}
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) == 0 || set.Keys[0]["kty"] != "OKP" {
			t.Fatalf("JWKS = %s (%v)", jwks, err)
		}

		other, err := c.Start(ctx, client.StartParams{To: "+9779812345679", Amount: "10.00", Payee: "Shop"})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		canceled, err := c.Cancel(ctx, other.ID)
		if err != nil || canceled.Status != client.StatusCanceled || canceled.Amount != "10.00" || canceled.Payee != "Shop" {
			t.Fatalf("Cancel = %+v, %v", canceled, err)
		}

		if err := c.Healthz(ctx); err != nil {
			t.Errorf("Healthz: %v", err)
		}
		if err := c.Readyz(ctx); err != nil {
			t.Errorf("Readyz: %v", err)
		}
	})
}

func TestErrorMapping(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *server) {
		ctx := t.Context()
		c := mustClient(t, s.url, client.WithAPIKey(apiKey))
		v, err := c.Start(ctx, client.StartParams{To: "+9779812345670", Subject: "user-1"})
		if err != nil {
			t.Fatal(err)
		}
		code := s.phones.code(v.To)
		tests := []struct {
			name       string
			call       func() error
			status     int
			code       string
			param      string
			retryAfter bool
		}{
			{"no key", func() error { _, err := mustClient(t, s.url).Get(ctx, v.ID); return err }, 401, client.CodeUnauthorized, "", false},
			{"unknown key", func() error {
				_, err := mustClient(t, s.url, client.WithAPIKey("nope-nope-nope-nope")).Get(ctx, v.ID)
				return err
			}, 401, client.CodeUnauthorized, "", false},
			{"bad number", func() error { _, err := c.Start(ctx, client.StartParams{To: "12"}); return err }, 400, client.CodeInvalidPhoneNumber, "to", false},
			{"code with letters", func() error { _, err := c.Check(ctx, client.CheckParams{ID: v.ID, Code: "12ab56"}); return err }, 400, client.CodeInvalidRequest, "code", false},
			{"unknown verification", func() error { _, err := c.Get(ctx, "VE00000000000000000000000000000000"); return err }, 404, client.CodeNotFound, "id", false},
			{"another subject", func() error {
				_, err := c.Check(ctx, client.CheckParams{ID: v.ID, Code: code, Subject: "user-2"})
				return err
			}, 403, client.CodeForbidden, "subject", false},
			{"forged token", func() error { _, err := c.Introspect(ctx, "eyJ.forged.token"); return err }, 401, client.CodeInvalidToken, "", false},
			{"no such subject", func() error { _, err := c.Subject(ctx, "nobody"); return err }, 404, client.CodeNotFound, "subject", false},
			{"send limit", func() error {
				var err error
				for i := 0; i < 6 && err == nil; i++ { // the 6th send in 10 minutes is refused
					_, err = c.Start(ctx, client.StartParams{To: "+9779812345671"})
				}
				return err
			}, 429, client.CodeTooManyRequests, "to", true},
			{"cancel twice", func() error {
				w, err := c.Start(ctx, client.StartParams{To: "+9779812345672"})
				if err != nil {
					return err
				}
				if _, err := c.Cancel(ctx, w.ID); err != nil {
					return err
				}
				_, err = c.Cancel(ctx, w.ID)
				return err
			}, 409, client.CodeVerificationCanceled, "", false},
			{"not ready", func() error {
				s.setReady(func(context.Context) error { return pv.Errorf(pv.EUnavailable, "Redis is unreachable.") })
				defer s.setReady(func(context.Context) error { return nil })
				return c.Readyz(ctx)
			}, 503, client.CodeUnavailable, "", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				e := client.AsError(err)
				if e == nil {
					t.Fatalf("got %v, want an *client.Error", err)
				}
				if e.StatusCode != tt.status || e.Code != tt.code || !client.IsCode(err, tt.code) || e.Param != tt.param || e.Message == "" {
					t.Errorf("got %#v, want %d %s param %q", e, tt.status, tt.code, tt.param)
				}
				if e.Code != client.CodeUnavailable && e.RequestID == "" {
					t.Errorf("no request id in %#v", e)
				}
				if (e.RetryAfter > 0) != tt.retryAfter {
					t.Errorf("RetryAfter = %v, want set: %v", e.RetryAfter, tt.retryAfter)
				}
			})
		}
	})
}

func TestNonAPIError(t *testing.T) {
	// A proxy in front of the node may answer with its own page.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer hs.Close()
	err := mustClient(t, hs.URL).Healthz(t.Context())
	e := client.AsError(err)
	if e == nil || e.StatusCode != 502 || e.Code != "" || e.RetryAfter != 7*time.Second || client.IsCode(err, "") == false {
		t.Fatalf("got %#v", err)
	}
}

func TestRetry(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "pv.db"))
	ctx := t.Context()
	tests := []struct {
		name      string
		retries   int
		maxWait   time.Duration
		failures  int
		wantErr   string
		wantWaits []time.Duration
	}{
		{"no retries by default", 0, 0, 1, client.CodeUnavailable, nil},
		{"recovers", 3, 2 * time.Second, 2, "", []time.Duration{time.Second, time.Second}},
		{"gives up", 1, 2 * time.Second, 5, client.CodeUnavailable, []time.Duration{time.Second}},
		{"wait too long", 3, 500 * time.Millisecond, 1, client.CodeUnavailable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			left := tt.failures
			s.setReady(func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				if left > 0 {
					left--
					return pv.Errorf(pv.EUnavailable, "The database is unreachable.")
				}
				return nil
			})
			defer s.setReady(func(context.Context) error { return nil })
			c := mustClient(t, s.url, client.WithRetry(tt.retries, tt.maxWait))
			var waits []time.Duration
			client.SetSleep(c, func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil })
			err := c.Readyz(ctx)
			if got := client.AsError(err); (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && (got == nil || got.Code != tt.wantErr)) {
				t.Errorf("Readyz = %v, want %q", err, tt.wantErr)
			}
			if len(waits) != len(tt.wantWaits) {
				t.Fatalf("waits %v, want %v", waits, tt.wantWaits)
			}
			for i := range waits {
				if waits[i] != tt.wantWaits[i] {
					t.Errorf("waits %v, want %v", waits, tt.wantWaits)
				}
			}
		})
	}
	// A 429 whose Retry-After is beyond maxWait is returned at once.
	c := mustClient(t, s.url, client.WithAPIKey(apiKey), client.WithRetry(3, time.Second))
	client.SetSleep(c, func(context.Context, time.Duration) error { return errors.New("must not wait") })
	var err error
	for i := 0; i < 6 && err == nil; i++ {
		_, err = c.Start(ctx, client.StartParams{To: "+9779812345673"})
	}
	if !client.IsCode(err, client.CodeTooManyRequests) {
		t.Fatalf("6th start = %v, want too_many_requests", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		base string
		opts []client.Option
		ok   bool
	}{
		{"http", "http://127.0.0.1:8080", nil, true},
		{"https with prefix", "https://verify.example.com/pv/", nil, true},
		{"no scheme", "127.0.0.1:8080", nil, false},
		{"ftp", "ftp://example.com", nil, false},
		{"key with newline", "http://127.0.0.1", []client.Option{client.WithAPIKey("a\nb")}, false},
		{"nil http client", "http://127.0.0.1", []client.Option{client.WithHTTPClient(nil)}, false},
		{"negative retries", "http://127.0.0.1", []client.Option{client.WithRetry(-1, 0)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.New(tt.base, tt.opts...)
			if (err == nil) != tt.ok {
				t.Errorf("New(%q) error = %v, want ok %v", tt.base, err, tt.ok)
			}
		})
	}
}

// TestServiceLimits reads and replaces the default service's limits on a
// real node, and sees a denied country refused.
func TestServiceLimits(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *server) {
		ctx := t.Context()
		c := mustClient(t, s.url, client.WithAPIKey(apiKey))
		l, err := c.ServiceLimits(ctx, "default")
		if err != nil {
			t.Fatalf("ServiceLimits: %v", err)
		}
		if l.ServiceID == "" || l.PerIP != client.LimitDefault || l.Effective.PerIP != client.LimitOff ||
			len(l.AllowCountries) != 0 || len(l.DenyCountries) != 0 || l.UpdatedAt.IsZero() {
			t.Fatalf("ServiceLimits = %+v", l)
		}

		set, err := c.SetServiceLimits(ctx, l.ServiceID, client.ServiceLimitsParams{
			Limits:        client.Limits{PerNumberDay: "10/24h", PerSubject: client.LimitOff, BudgetHour: "500/1h"},
			DenyCountries: []string{"np"},
		})
		if err != nil {
			t.Fatalf("SetServiceLimits: %v", err)
		}
		want := client.Limits{PerNumberDay: "10/24h0m0s", PerIP: client.LimitDefault, PerSubject: client.LimitOff,
			PerCountry: client.LimitDefault, BudgetHour: "500/1h0m0s", BudgetDay: client.LimitDefault, FailedChecks: client.LimitDefault}
		if set.Limits != want || set.Effective.PerNumberDay != "10/24h0m0s" || set.Effective.BudgetDay != client.LimitOff ||
			len(set.DenyCountries) != 1 || set.DenyCountries[0] != "NP" {
			t.Fatalf("SetServiceLimits = %+v", set)
		}
		if again, err := c.ServiceLimits(ctx, "default"); err != nil || again.Limits != want || !again.UpdatedAt.Equal(set.UpdatedAt) {
			t.Errorf("ServiceLimits after SetServiceLimits = %+v, %v", again, err)
		}
		_, err = c.Start(ctx, client.StartParams{To: "+9779812345678"})
		if e := client.AsError(err); !client.IsCode(err, client.CodeCountryNotAllowed) || e.StatusCode != 403 {
			t.Errorf("Start to a denied country = %v", err)
		}

		for _, tt := range []struct {
			name   string
			id     string
			p      client.ServiceLimitsParams
			status int
			code   string
			param  string
		}{
			{"bad limit", "default", client.ServiceLimitsParams{Limits: client.Limits{PerIP: "often"}}, 400, client.CodeInvalidRequest, "per_ip"},
			{"budget window", "default", client.ServiceLimitsParams{Limits: client.Limits{BudgetDay: "10/1h"}}, 400, client.CodeInvalidRequest, "budget_day"},
			{"unknown country", "default", client.ServiceLimitsParams{AllowCountries: []string{"UK"}}, 400, client.CodeInvalidRequest, "allow_countries"},
			{"unknown service", "VA00000000000000000000000000000000", client.ServiceLimitsParams{}, 404, client.CodeNotFound, "id"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := c.SetServiceLimits(ctx, tt.id, tt.p)
				if e := client.AsError(err); e == nil || e.StatusCode != tt.status || e.Code != tt.code || e.Param != tt.param {
					t.Errorf("SetServiceLimits = %#v, want %d %s param %s", err, tt.status, tt.code, tt.param)
				}
			})
		}
		if again, err := c.ServiceLimits(ctx, "default"); err != nil || again.Limits != want {
			t.Errorf("limits after refused changes = %+v, %v", again, err)
		}

		cleared, err := c.SetServiceLimits(ctx, "default", client.ServiceLimitsParams{})
		if err != nil || cleared.PerNumberDay != client.LimitDefault || len(cleared.DenyCountries) != 0 {
			t.Fatalf("SetServiceLimits(zero) = %+v, %v", cleared, err)
		}
	})
}
