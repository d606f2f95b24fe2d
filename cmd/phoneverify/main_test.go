package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const testKey = "e2e-key-0123456789abcdef"

// startNode runs a node the way the binary does, on 127.0.0.1:0 with SQLite
// in dir, and stops it when the test ends.
func startNode(t *testing.T, dir string, extra map[string]string, setup ...func(*Main)) (*Main, *syncBuffer) {
	t.Helper()
	env := map[string]string{
		"PHONEVERIFY_ADDR":         "127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "phoneverify.db"),
		"PHONEVERIFY_API_KEY":      testKey,
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, _, err := LoadConfig(envFunc(env), flag.NewFlagSet("test", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	m := NewMain(cfg, logs)
	for _, f := range setup {
		f(m)
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
	return m, logs
}

func call(t *testing.T, m *Main, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+m.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, b)
	}
	return res.StatusCode, out
}

// eventually polls cond until it holds, failing the test after 10 s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var smsLine = regexp.MustCompile(`SMS to=(\+\d+) verification=(VE[0-9a-f]+) body="[^"]*?(\d{6})"`)

// TestNodeEndToEnd drives a real node over HTTP: start, code read from the
// log gateway, check, introspect; then restarts it on the same directory and
// checks that the secret and signing keys survived.
func TestNodeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	m, logs := startNode(t, dir, map[string]string{"PHONEVERIFY_DEFAULT_REGION": "NP"})
	status, v := call(t, m, "POST", "/v1/verifications", `{"to":"9812345678","subject":"user-7","locale":"en"}`)
	if status != 201 {
		t.Fatalf("start: %d %v", status, v)
	}
	// The outbox sends after the start has answered: wait for the line.
	var match []string
	eventually(t, func() bool { match = smsLine.FindStringSubmatch(logs.String()); return match != nil })
	if match == nil || match[1] != "+9779812345678" || match[2] != v["id"] {
		t.Fatalf("no SMS line for the verification in the log:\n%s", logs.String())
	}
	code := match[3]
	status, res := call(t, m, "POST", "/v1/verifications/check", `{"id":"`+match[2]+`","code":"`+code+`","subject":"user-7"}`)
	if status != 200 || res["status"] != "approved" {
		t.Fatalf("check: %d %v", status, res)
	}
	tok := res["token"].(string)

	// Only the log gateway's line holds the full number and the code.
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, " SMS to=") {
			continue
		}
		if strings.Contains(line, "9812345678") || strings.Contains(line, code) {
			t.Errorf("log line leaks the number or the code: %s", line)
		}
	}

	secretFile := filepath.Join(dir, "phoneverify.secret")
	info, err := os.Stat(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", info.Mode().Perm())
	}
	if info, err := os.Stat(filepath.Join(dir, "phoneverify.db")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("database file: %v, %v; want mode 0600", info, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart on the same directory keeps the secret and the keys: the
	// token issued before still introspects, and the verification is there.
	m2, _ := startNode(t, dir, nil)
	status, intro := call(t, m2, "GET", "/v1/tokens/"+tok, "")
	if status != 200 || intro["phone_number"] != "+9779812345678" || intro["subject"] != "user-7" {
		t.Fatalf("introspect after restart: %d %v", status, intro)
	}
	status, got := call(t, m2, "GET", "/v1/verifications/"+match[2], "")
	if status != 200 || got["status"] != "approved" {
		t.Fatalf("verification after restart: %d %v", status, got)
	}
}

func TestTestNumbersSendNothing(t *testing.T) {
	m, logs := startNode(t, t.TempDir(), map[string]string{"PHONEVERIFY_TEST_NUMBERS": "+15005550006=424242"})
	status, v := call(t, m, "POST", "/v1/verifications", `{"to":"+15005550006"}`)
	if status != 201 {
		t.Fatalf("start: %d %v", status, v)
	}
	if strings.Contains(logs.String(), " SMS to=") {
		t.Error("a message was sent to a test number")
	}
	status, res := call(t, m, "POST", "/v1/verifications/check", `{"to":"+15005550006","code":"424242"}`)
	if status != 200 || res["status"] != "approved" {
		t.Fatalf("check: %d %v", status, res)
	}
}

// blockingSender holds each message until released, standing in for a slow
// gateway.
type blockingSender struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSender) Send(ctx context.Context, m *pv.Message) (*pv.SendResult, error) {
	b.entered <- struct{}{}
	<-b.release
	return &pv.SendResult{Gateway: "blocking"}, nil
}

// TestGracefulShutdownFinishesSends: a message being sent when shutdown
// begins is finished and recorded before Close returns, so a restart does not
// send it again.
func TestGracefulShutdownFinishesSends(t *testing.T) {
	dir := t.TempDir()
	gw := &blockingSender{entered: make(chan struct{}), release: make(chan struct{})}
	m, _ := startNode(t, dir, nil, func(m *Main) { m.Sender = gw })
	status, v := call(t, m, "POST", "/v1/verifications", `{"to":"+9779812345678"}`)
	if status != 201 {
		t.Fatalf("start: %d %v", status, v)
	}
	<-gw.entered // a worker is inside the gateway
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a send was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(gw.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	m2, _ := startNode(t, dir, nil)
	status, got := call(t, m2, "GET", "/v1/verifications/"+v["id"].(string), "")
	msgs, _ := got["messages"].([]any)
	if status != 200 || len(msgs) != 1 || msgs[0].(map[string]any)["status"] != "sent" {
		t.Fatalf("after restart: %d %v, want one message recorded as sent", status, got)
	}
}

func TestLoadConfig(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(strings.Repeat("s", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(*Config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c *Config) bool {
			return c.Addr == "127.0.0.1:8080" && c.DatabaseURL == "sqlite:phoneverify.db" && c.LogLevel == "info"
		}, ""},
		{"env", map[string]string{"PHONEVERIFY_ADDR": ":9000", "PHONEVERIFY_DEFAULT_REGION": "np"}, nil, func(c *Config) bool {
			return c.Addr == ":9000" && c.DefaultRegion == "NP"
		}, ""},
		{"flag beats env", map[string]string{"PHONEVERIFY_ADDR": ":9000"}, []string{"--addr", ":9001"}, func(c *Config) bool { return c.Addr == ":9001" }, ""},
		{"secret file", map[string]string{"PHONEVERIFY_SECRET_FILE": secretFile}, nil, func(c *Config) bool { return c.Secret == strings.Repeat("s", 40) }, ""},
		{"secret and file", map[string]string{"PHONEVERIFY_SECRET_FILE": secretFile, "PHONEVERIFY_SECRET": strings.Repeat("x", 40)}, nil, nil, "not both"},
		{"missing secret file", map[string]string{"PHONEVERIFY_SECRET_FILE": "/nonexistent/secret"}, nil, nil, "PHONEVERIFY_SECRET_FILE"},
		{"short secret", map[string]string{"PHONEVERIFY_SECRET": "short"}, nil, nil, "at least 32"},
		{"test numbers", map[string]string{"PHONEVERIFY_TEST_NUMBERS": "+15005550006=123456, +15005550007=654321"}, nil, func(c *Config) bool {
			return c.TestNumbers["+15005550006"] == "123456" && c.TestNumbers["+15005550007"] == "654321"
		}, ""},
		{"bad test numbers", map[string]string{"PHONEVERIFY_TEST_NUMBERS": "15005550006"}, nil, nil, "PHONEVERIFY_TEST_NUMBERS"},
		{"bad duration", map[string]string{"PHONEVERIFY_SHUTDOWN_TIMEOUT": "soon"}, nil, nil, "PHONEVERIFY_SHUTDOWN_TIMEOUT"},
		{"bad log format", map[string]string{"PHONEVERIFY_LOG_FORMAT": "xml"}, nil, nil, "PHONEVERIFY_LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadConfigCase(t, tt.env, tt.args, tt.wantErr)
			if c != nil && !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

// loadConfigCase loads a configuration from env and args as the binary
// does. With wantErr set it asserts an error mentioning wantErr and returns
// nil; otherwise it fails the test on any error.
func loadConfigCase(t *testing.T, env map[string]string, args []string, wantErr string) *Config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, _, err := LoadConfig(envFunc(env), fs, args)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("LoadConfig error = %v, want one mentioning %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("LoadConfig = %v", err)
	}
	return c
}

// TestPostgresNeedsSecret: without a shared secret a PostgreSQL node refuses
// to start, saying why (it fails before connecting).
func TestPostgresNeedsSecret(t *testing.T) {
	cfg, _, err := LoadConfig(envFunc(map[string]string{"PHONEVERIFY_DATABASE_URL": "postgres://nobody@127.0.0.1:1/x?connect_timeout=1"}), flag.NewFlagSet("t", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := serverSecret(cfg, nil); err == nil || !strings.Contains(err.Error(), "PHONEVERIFY_SECRET") {
		t.Fatalf("got %v, want an error naming PHONEVERIFY_SECRET", err)
	}
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	env := envFunc(map[string]string{"PHONEVERIFY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "pv.db")})
	runCmd := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, env, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	if out, _, err := runCmd("migrate"); err != nil || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	key, _, err := runCmd("apikey", "create", "--name", "ci", "--scopes", "verify:check")
	if err != nil || !strings.HasPrefix(key, "pvk_") {
		t.Fatalf("apikey create: %q %v", key, err)
	}
	list, _, err := runCmd("apikey", "list")
	if err != nil || !strings.Contains(list, "ci") || strings.Contains(list, strings.TrimSpace(key)) {
		t.Fatalf("apikey list must name the key but never show it: %q %v", list, err)
	}
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	if out, _, err := runCmd("apikey", "revoke", id); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q %v", out, err)
	}
	if out, _, err := runCmd("service", "update", "default", "--code-ttl", "45s", "--code-length", "8"); err != nil || !strings.Contains(out, "updated") {
		t.Fatalf("service update: %q %v", out, err)
	}
	if out, _, err := runCmd("service", "list"); err != nil || !strings.Contains(out, "45s") {
		t.Fatalf("service list: %q %v", out, err)
	}
	if _, _, err := runCmd("service", "update", "default", "--template", "Code {cdoe}"); err == nil {
		t.Fatal("a template with a misspelt placeholder was accepted")
	}
	if _, _, err := runCmd("service", "update", "default", "--code-length", "3"); err == nil || !strings.Contains(describe(err), "code length") {
		t.Fatalf("code length 3: %v", err)
	}
	if out, _, err := runCmd("keys", "rotate"); err != nil || !strings.Contains(out, "now active") {
		t.Fatalf("keys rotate: %q %v", out, err)
	}
	if out, _, err := runCmd("version"); err != nil || !strings.Contains(out, "phoneverify") {
		t.Fatalf("version: %q %v", out, err)
	}
	if _, _, err := runCmd("frobnicate"); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}

var updateREADME = flag.Bool("update", false, "rewrite README.md's configuration table from the settings")

// TestREADMEConfigTable keeps the README's configuration table (between the
// config markers) in step with the settings the binary reads; run with
// -update to rewrite it.
func TestREADMEConfigTable(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config:begin -->\n", "<!-- config:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q and %q markers", begin, end)
	}
	want := s[:i+len(begin)] + configTable() + s[j:]
	if s == want {
		return
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's configuration table is stale: run go test ./cmd/phoneverify -run TestREADMEConfigTable -update")
}
