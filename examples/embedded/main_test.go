package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects the log gateway's lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var codeLine = regexp.MustCompile(`verification=(VE[0-9a-f]+) body="[^"]*?(\d{6})"`)

// TestEmbedded runs the example app and verifies a phone through the API
// mounted under /verify/, while the app's own page keeps working.
func TestEmbedded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sms := &syncBuffer{}
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, "127.0.0.1:0", t.TempDir(), sms, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatal(err)
	}
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return res.StatusCode, out
	}

	status, v := call("POST", "/verify/v1/verifications", `{"to":"+14155552671"}`)
	if status != http.StatusCreated {
		t.Fatalf("start: %d %v", status, v)
	}
	var code string
	deadline := time.Now().Add(10 * time.Second)
	for code == "" && time.Now().Before(deadline) {
		if m := codeLine.FindStringSubmatch(sms.String()); m != nil && m[1] == v["id"] {
			code = m[2]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code == "" {
		t.Fatalf("no SMS written: %q", sms.String())
	}
	status, res := call("POST", "/verify/v1/verifications/check", `{"id":"`+v["id"].(string)+`","code":"`+code+`"}`)
	if status != http.StatusOK || res["status"] != "approved" || res["token"] == "" {
		t.Fatalf("check: %d %v", status, res)
	}
	if status, _ := call("GET", "/verify/openapi.json", ""); status != http.StatusOK {
		t.Errorf("openapi.json under /verify/: %d", status)
	}
	res2, err := http.Get("http://" + addr + "/")
	if err != nil || res2.StatusCode != http.StatusOK {
		t.Fatalf("the app's page: %v %v", res2, err)
	}
	res2.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
}
