package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

const (
	testSecret = "test-secret-0123456789abcdef0123456789"
	testAPIKey = "test-api-key-0123456789"
)

// mustConfig loads a Config from env (and the defaults), as the binary
// would.
func mustConfig(tb testing.TB, env map[string]string) *Config {
	tb.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, _, err := LoadConfig(func(k string) string { return env[k] }, fs, nil)
	if err != nil {
		tb.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

// inbox keeps the last code sent to each number, standing in for phones.
type inbox struct {
	mu    sync.Mutex
	codes map[string]string
}

func (i *inbox) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.codes[m.To] = m.Code
	return &pv.SendResult{Gateway: "inbox"}, nil
}

// code returns the code sent to a number, waiting for the outbox's workers
// to deliver it (through a cut and restore, if one happens meanwhile: a
// message whose outcome could not be recorded during the cut is retried
// after its lease, send timeout + 30 s). It returns "" after 2 min: a
// message that never arrives is a lost message.
func (i *inbox) code(to string) string {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		i.mu.Lock()
		c := i.codes[to]
		i.mu.Unlock()
		if c != "" || time.Now().After(deadline) {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startMain opens and serves a node for cfg in this process, closed in
// tb.Cleanup.
func startMain(tb testing.TB, cfg *Config, sender pv.Sender) *Main {
	tb.Helper()
	m := NewMain(cfg, &lockedBuffer{})
	m.Sender = sender
	if err := m.Open(tb.Context()); err != nil {
		m.Close()
		tb.Fatalf("Open: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return m
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// apiResponse is a decoded JSON answer.
type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r apiResponse) str(name string) string { s, _ := r.body[name].(string); return s }

func (r apiResponse) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// call sends one request to a node at addr with the API key. A transport
// error is a failed test: a node must always answer.
func callAPI(tb testing.TB, client *http.Client, addr, method, path, body string) apiResponse {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := apiResponse{status: res.StatusCode, header: res.Header, raw: string(b)}
	if err := json.Unmarshal(b, &r.body); err != nil {
		tb.Fatalf("%s %s: body is not JSON: %q", method, path, b)
	}
	return r
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, timeout)
		}
		select {
		case <-tb.Context().Done():
			tb.Fatal(tb.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
