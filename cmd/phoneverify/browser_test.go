package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phoneverify/phoneverify/internal/testenv"
)

// These tests start a node the way the binary does (Main on 127.0.0.1:0,
// SQLite in a temporary directory, the log gateway) and drive Debian's
// Chromium, headless, through every demo flow and the dashboard, checking
// what a person sees. Each page is saved as a PNG in
// $PHONEVERIFY_TEST_ARTIFACTS (or a temporary directory).

const browserAdminPassword = "browser-test-admin-password"

// testClock is the node's clock in the browser tests: it moves only when
// told, so the 60-second code lifetime and the 30-second resend cool-down
// are crossed without waiting.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// logBuffer collects a node's standard error, where the log gateway prints
// each message.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// startWebNode starts a node with the given environment on top of the
// defaults below, and stops it when the test ends. Its standard error goes
// to logs, if not nil.
func startWebNode(t *testing.T, env map[string]string, clock *testClock, logs ...io.Writer) *Main {
	t.Helper()
	all := map[string]string{
		"PHONEVERIFY_ADDR":           "127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "phoneverify.db"),
		"PHONEVERIFY_ADMIN_PASSWORD": browserAdminPassword,
	}
	for k, v := range env {
		all[k] = v
	}
	cfg, _, err := LoadConfig(func(k string) string { return all[k] }, flag.NewFlagSet("test", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	var stderr io.Writer = io.Discard
	if len(logs) > 0 {
		stderr = logs[0]
	}
	m := NewMain(cfg, stderr)
	if clock != nil {
		m.Now = clock.Now
	}
	if err := m.Open(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return m
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	ctx  context.Context
	base string
	dir  string
	n    int
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := testenv.Chromium(t)
	// A fresh profile, removed by the cleanup below rather than by
	// t.TempDir: Chromium's helper processes may still touch it after the
	// browser closed, which must not fail the test.
	profile, err := os.MkdirTemp("", "phoneverify-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This machine's network is closed: nothing may try to reach out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	ctx, cancelAll := context.WithTimeout(tab, 4*time.Minute)
	t.Cleanup(func() {
		// Closing the first tab closes the browser; canceling the
		// allocator then waits for its process to exit.
		cancelAll()
		cancelTab()
		cancelAlloc()
		if err := os.RemoveAll(profile); err != nil {
			t.Logf("removing the Chromium profile: %v", err)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	dir := os.Getenv("PHONEVERIFY_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{ctx: ctx, base: base, dir: dir}
}

// run runs actions that stay on the page, within a bounded time.
func (b *browser) run(t *testing.T, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// load runs actions that lead to a new page (a link, a form post) and waits
// for it; it returns the page's HTTP status.
func (b *browser) load(t *testing.T, actions ...chromedp.Action) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return int(res.Status)
}

func (b *browser) open(t *testing.T, path string) int {
	t.Helper()
	return b.load(t, chromedp.Navigate(b.base+path))
}

// submit clicks a button and waits for the page that answers.
func (b *browser) submit(t *testing.T, button string) int {
	t.Helper()
	return b.load(t, chromedp.Click(button, chromedp.ByQuery))
}

// fill types into form fields, by CSS selector.
func (b *browser) fill(t *testing.T, fields ...string) {
	t.Helper()
	var actions []chromedp.Action
	for i := 0; i+1 < len(fields); i += 2 {
		actions = append(actions, chromedp.SetValue(fields[i], fields[i+1], chromedp.ByQuery))
	}
	b.run(t, actions...)
}

// text returns the visible text of the first element sel matches.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	var s string
	b.run(t, chromedp.Text(sel, &s, chromedp.ByQuery, chromedp.NodeVisible))
	return strings.Join(strings.Fields(s), " ")
}

// has reports whether sel matches anything on the page.
func (b *browser) has(t *testing.T, sel string) bool {
	t.Helper()
	var n int
	b.run(t, chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n))
	return n > 0
}

// want fails t unless the text of sel contains every one of wants.
func (b *browser) want(t *testing.T, sel string, wants ...string) {
	t.Helper()
	got := b.text(t, sel)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s reads %q; want it to contain %q", sel, got, w)
		}
	}
}

// shot saves the whole page as a PNG.
func (b *browser) shot(t *testing.T, name string) {
	t.Helper()
	var png []byte
	b.run(t, chromedp.FullScreenshot(&png, 100))
	b.n++
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// mobile switches to a phone-sized viewport (or back, with false).
func (b *browser) mobile(t *testing.T, on bool) {
	t.Helper()
	if on {
		b.run(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	} else {
		b.run(t, chromedp.EmulateViewport(1280, 900))
	}
}

var codeInMessage = regexp.MustCompile(`\b(\d{4,10})\b`)

// devCode reads the code from the development inbox panel, as a person
// trying the demo would.
func (b *browser) devCode(t *testing.T) string {
	t.Helper()
	m := codeInMessage.FindStringSubmatch(b.text(t, "#dev-sms"))
	if m == nil {
		t.Fatal("no code in the development inbox")
	}
	return m[1]
}

// wrong returns a code of the same length that is not code.
func wrong(code string) string {
	d := (code[0]-'0'+1)%10 + '0'
	return string(d) + code[1:]
}

func TestBrowserDemoAndDashboard(t *testing.T) {
	testenv.Chromium(t) // before starting a node it would not use
	clock := &testClock{now: time.Now().UTC()}
	m := startWebNode(t, nil, clock)
	b := newBrowser(t, "http://"+m.Addr())
	const phone = "+977 981-234-5678"

	step := func(name string, fn func(t *testing.T)) {
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}

	step("home", func(t *testing.T) {
		if got := b.open(t, "/demo/"); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
		b.want(t, "h1", "Three small apps built on phoneverify")
		b.want(t, ".devnote", "Development mode")
		b.shot(t, "demo-home")
	})

	step("sign-up", func(t *testing.T) {
		b.open(t, "/demo/signup")
		b.fill(t, "#username", "alice", "#password", "alice-password", "#phone", phone)
		b.shot(t, "signup-form")
		if got := b.submit(t, `form[action="/demo/signup"] button[type=submit]`); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
		b.want(t, "h1", "Confirm your phone number")
		b.want(t, "main .lead", "+97798*****78")
		b.want(t, "#dev-sms", "Your Demo sign-up code is")
		code := b.devCode(t)
		b.shot(t, "signup-code")

		b.fill(t, "#code", wrong(code))
		if got := b.submit(t, `form[action="/demo/signup/verify"] button[type=submit]`); got != http.StatusUnprocessableEntity {
			t.Errorf("wrong code: status %d, want 422", got)
		}
		b.want(t, "#code-error", "That code is not right. 4 attempts left.")
		b.shot(t, "signup-wrong-code")

		b.fill(t, "#code", code)
		b.submit(t, `form[action="/demo/signup/verify"] button[type=submit]`)
		b.want(t, ".notice", "Welcome, alice!", "+97798*****78 is verified")
		b.want(t, "h1", "Your account")
		b.want(t, ".facts", "alice", "+97798*****78", "verified")
		b.shot(t, "account")
	})

	step("second account, same phone", func(t *testing.T) {
		b.submit(t, `form[action="/demo/logout"] button`)
		b.want(t, ".notice", "You are signed out.")
		b.open(t, "/demo/signup")
		b.fill(t, "#username", "bob", "#password", "bob-password", "#phone", "+9779812345678")
		if got := b.submit(t, `form[action="/demo/signup"] button[type=submit]`); got != http.StatusUnprocessableEntity {
			t.Errorf("status %d, want 422", got)
		}
		// The API's 409 phone_in_use, in words, next to the phone field.
		b.want(t, "#phone-error", "This phone number already belongs to another account.")
		if b.has(t, "#username-error") || b.has(t, "#password-error") {
			t.Error("an error shows next to a field that is right")
		}
		var value string
		b.run(t, chromedp.Value("#username", &value, chromedp.ByQuery))
		if value != "bob" {
			t.Errorf("username field = %q after the error, want it kept", value)
		}
		b.shot(t, "signup-phone-in-use")
	})

	step("login with a code", func(t *testing.T) {
		b.open(t, "/demo/login")
		b.fill(t, "#username", "alice", "#password", "wrong-password")
		if got := b.submit(t, `form[action="/demo/login"] button[type=submit]`); got != http.StatusUnauthorized {
			t.Errorf("wrong password: status %d, want 401", got)
		}
		b.want(t, "#password-error", "The username or the password is wrong.")
		b.shot(t, "login-wrong-password")

		b.fill(t, "#password", "alice-password")
		b.submit(t, `form[action="/demo/login"] button[type=submit]`)
		b.want(t, "h1", "Enter your sign-in code")
		b.want(t, "#resend-help", "You can ask for a new code in 30 seconds, at "+clock.Now().Add(30*time.Second).Format("15:04:05")+" UTC.")
		b.want(t, "#dev-sms", "is your Demo login code", "It expires in 1 min.")
		first := b.devCode(t)
		b.shot(t, "login-code")

		// Too early for a new code: the cool-down is shown next to the button.
		if got := b.submit(t, `form[action="/demo/login/resend"] button`); got != http.StatusTooManyRequests {
			t.Errorf("early resend: status %d, want 429", got)
		}
		b.want(t, "#resend-error", "Please wait 30 seconds before asking for a new code.")
		b.shot(t, "login-resend-too-early")

		clock.Add(31 * time.Second)
		b.submit(t, `form[action="/demo/login/resend"] button`)
		b.want(t, ".notice", "A new code is on its way. The previous code no longer works.")
		second := b.devCode(t)
		if second == first {
			t.Fatalf("the resent code equals the first one (%s)", first)
		}
		b.fill(t, "#code", first)
		b.submit(t, `form[action="/demo/login/verify"] button[type=submit]`)
		b.want(t, "#code-error", "That code is not right.")

		b.fill(t, "#code", second)
		b.submit(t, `form[action="/demo/login/verify"] button[type=submit]`)
		b.want(t, ".notice", "You are signed in as alice.")
		b.want(t, "h1", "Your account")
		b.shot(t, "login-signed-in")
	})

	step("login code expires after 60 seconds", func(t *testing.T) {
		b.submit(t, `form[action="/demo/logout"] button`)
		b.open(t, "/demo/login")
		b.fill(t, "#username", "alice", "#password", "alice-password")
		b.submit(t, `form[action="/demo/login"] button[type=submit]`)
		code := b.devCode(t)
		clock.Add(61 * time.Second)
		b.fill(t, "#code", code)
		b.submit(t, `form[action="/demo/login/verify"] button[type=submit]`)
		b.want(t, "#code-error", "This code has expired. Ask for a new one.")
		b.shot(t, "login-code-expired")

		b.submit(t, `form[action="/demo/login/resend"] button`)
		b.fill(t, "#code", b.devCode(t))
		b.submit(t, `form[action="/demo/login/verify"] button[type=submit]`)
		b.want(t, ".notice", "You are signed in as alice.")
	})

	step("order confirmed with a PIN bound to its amount", func(t *testing.T) {
		b.open(t, "/demo/shop")
		b.fill(t, "#amount", "49.90")
		b.shot(t, "shop")
		b.submit(t, `form[action="/demo/shop/orders"] button[type=submit]`)
		b.want(t, "h1", "Order #1001")
		b.want(t, "#order-amount", "EUR 49.90")
		b.shot(t, "order")

		b.submit(t, `form[action$="/pin"] button`)
		b.want(t, ".notice", "A PIN to confirm EUR 49.90 to Himalayan Tea Co. was sent to +97798*****78.")
		b.want(t, "#dev-sms", "your PIN to confirm your Demo shop order")
		pin := b.devCode(t)
		b.shot(t, "order-pin")

		// The order changes after the PIN was sent: that PIN no longer
		// confirms it.
		b.run(t, chromedp.Click("details.edit summary", chromedp.ByQuery))
		b.fill(t, "details.edit #amount", "99.00")
		b.submit(t, `form[action$="/edit"] button`)
		b.want(t, "#order-amount", "EUR 99.00")
		b.fill(t, "#pin", pin)
		if got := b.submit(t, `form[action$="/confirm"] button`); got != http.StatusUnprocessableEntity {
			t.Errorf("PIN for another amount: status %d, want 422", got)
		}
		b.want(t, "#pin-error", "This PIN was sent to confirm EUR 49.90 to Himalayan Tea Co., but the order is now EUR 99.00 to Himalayan Tea Co.: get a new PIN for this order.")
		b.shot(t, "order-pin-other-amount")

		b.submit(t, `form[action$="/pin"] button`)
		newPIN := b.devCode(t)
		b.fill(t, "#pin", newPIN)
		b.submit(t, `form[action$="/confirm"] button`)
		b.want(t, ".notice", "Order 1001 is confirmed: EUR 99.00 to Himalayan Tea Co.")
		if got := b.text(t, ".notice"); strings.HasSuffix(got, "..") {
			t.Errorf("notice %q ends with two full stops", got)
		}
		b.want(t, ".facts", "confirmed")
		b.shot(t, "order-confirmed")
	})

	step("mobile layout", func(t *testing.T) {
		b.mobile(t, true)
		defer b.mobile(t, false)
		b.open(t, "/demo/signup")
		var width int
		b.run(t, chromedp.Evaluate(`document.documentElement.scrollWidth`, &width))
		if width > 390 {
			t.Errorf("the sign-up page is %d px wide on a 390 px screen: it scrolls sideways", width)
		}
		b.shot(t, "mobile-signup")
	})

	step("dashboard sign-in", func(t *testing.T) {
		if got := b.open(t, "/admin/"); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
		b.want(t, "h1", "Sign in to the dashboard")
		b.fill(t, "#secret", "not the password")
		if got := b.submit(t, `form[action="/admin/login"] button`); got != http.StatusUnauthorized {
			t.Errorf("wrong password: status %d, want 401", got)
		}
		b.want(t, "#secret-error", "The password or API key is not right.")
		b.shot(t, "admin-login-wrong")
		b.fill(t, "#secret", browserAdminPassword)
		b.submit(t, `form[action="/admin/login"] button`)
		b.want(t, "h1", "Overview")
	})

	step("dashboard overview", func(t *testing.T) {
		// Approved so far: alice's sign-up, her two sign-ins and the order.
		if got := b.text(t, "#stat-approved"); got != "4" {
			t.Errorf("approved = %q, want 4", got)
		}
		b.want(t, ".stats", "started", "approved", "conversion")
		if !b.has(t, "svg.chart rect.bar-approved") {
			t.Error("the chart has no approved bar")
		}
		b.want(t, "#h-conversion + p", "Overall:")
		b.want(t, "main", "Per country", "NP", "Demo sign-up", "Demo login", "Demo shop",
			"does not record which gateway", "No fraud decisions.", "log")
		b.shot(t, "admin-overview")
		b.mobile(t, true)
		b.open(t, "/admin/")
		b.shot(t, "mobile-admin-overview")
		b.mobile(t, false)
	})

	step("dashboard verifications", func(t *testing.T) {
		b.open(t, "/admin/verifications")
		b.want(t, "#verifications", "+97798*****78", "approved", "expired")
		if body := b.text(t, "main"); strings.Contains(body, "9812345678") {
			t.Error("the list shows a full phone number")
		}
		b.shot(t, "admin-verifications")
		b.submit(t, "#verifications tbody a")
		b.want(t, "h1", "Verification VE")
		b.want(t, ".timeline", "Started: the first code was sent")
		b.want(t, ".facts", "+97798*****78")
		b.shot(t, "admin-verification")
	})

	step("dashboard API keys", func(t *testing.T) {
		b.open(t, "/admin/keys")
		b.want(t, "#keys", "Demo sign-up (the demo's own key)")
		b.fill(t, "#name", "checkout app")
		if got := b.submit(t, `form[action="/admin/keys"] button[type=submit]`); got != http.StatusCreated {
			t.Errorf("create: status %d, want 201", got)
		}
		key := b.text(t, "#new-key")
		if !strings.HasPrefix(key, "pvk_") {
			t.Fatalf("new key reads %q", key)
		}
		b.want(t, ".notice", "shown only this once")
		b.shot(t, "admin-key-created")
		// The key works on the API, until it is revoked.
		if got := apiStatus(t, m, key); got != http.StatusOK {
			t.Errorf("new key on the API: %d, want 200", got)
		}
		b.submit(t, `button[aria-label="Revoke the key checkout app"]`)
		b.want(t, ".notice", "The key “checkout app” is revoked")
		b.shot(t, "admin-key-revoked")
		if got := apiStatus(t, m, key); got != http.StatusUnauthorized {
			t.Errorf("revoked key on the API: %d, want 401", got)
		}
	})
}

// apiStatus calls an authenticated API endpoint with key.
func apiStatus(t *testing.T, m *Main, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+m.Addr()+"/v1/subjects/nobody", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusNotFound { // a valid key, an unknown subject
		return http.StatusOK
	}
	return res.StatusCode
}

var loggedCode = regexp.MustCompile(`SMS to=\+\d+ verification=VE[0-9a-f]+ body="[^"]*?(\d{6})`)

// TestWebSwitches: the demo is on by default with SQLite and off with
// PostgreSQL, PHONEVERIFY_DEMO overrides both, and only a development node
// (SQLite and the log gateway) shows codes on the demo's pages.
func TestWebSwitches(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		postgres bool
		wantDemo int
		wantDev  bool
	}{
		{"SQLite, by default", nil, false, http.StatusOK, true},
		{"SQLite, demo off", map[string]string{"PHONEVERIFY_DEMO": "false"}, false, http.StatusNotFound, false},
		{"PostgreSQL, by default", nil, true, http.StatusNotFound, false},
		{"PostgreSQL, demo on", map[string]string{"PHONEVERIFY_DEMO": "true"}, true, http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.postgres {
				env["PHONEVERIFY_DATABASE_URL"] = testenv.NewPostgresDatabase(t)
				env["PHONEVERIFY_SECRET"] = strings.Repeat("p", 40)
			}
			logs := &logBuffer{}
			m := startWebNode(t, env, nil, logs)
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}
			get := func(path string) (int, string) {
				t.Helper()
				res, err := client.Get("http://" + m.Addr() + path)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			if status, _ := get("/admin/login"); status != http.StatusOK {
				t.Errorf("GET /admin/login = %d, want 200 whatever the demo", status)
			}
			status, _ := get("/demo/")
			if status != tt.wantDemo {
				t.Fatalf("GET /demo/ = %d, want %d", status, tt.wantDemo)
			}
			if status != http.StatusOK {
				return
			}
			_, form := get("/demo/signup")
			token := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(form)
			if token == nil {
				t.Fatal("no CSRF token on the sign-up form")
			}
			res, err := client.PostForm("http://"+m.Addr()+"/demo/signup", url.Values{"csrf_token": {token[1]},
				"username": {"carol"}, "password": {"carol-password"}, "phone": {"+14155552671"}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			_, page := get("/demo/signup/verify")
			if !strings.Contains(page, "Confirm your phone number") {
				t.Fatalf("no code page after signing up:\n%s", page)
			}
			// The outbox sends after the start: wait for the log line.
			var code []string
			eventually(t, func() bool { code = loggedCode.FindStringSubmatch(logs.String()); return code != nil })
			if code == nil {
				t.Fatalf("no SMS in the log:\n%s", logs.String())
			}
			if got := strings.Contains(page, "Development inbox"); got != tt.wantDev {
				t.Errorf("development inbox shown = %v, want %v", got, tt.wantDev)
			}
			if got := strings.Contains(page, code[1]); got != tt.wantDev {
				t.Errorf("code shown on the page = %v, want %v", got, tt.wantDev)
			}
		})
	}
}
