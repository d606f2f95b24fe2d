package gw

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
)

func TestDigits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+9779812345678", "9779812345678", true},
		{"+15005550006", "15005550006", true},
		{"15005550006", "", false},
		{"+0123456789", "", false},
		{"+123456", "", false},
		{"+1234567890123456", "", false},
		{"+1 500 555 0006", "", false},
	}
	for _, tt := range tests {
		got, ok := Digits(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Digits(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	m := &phoneverify.Message{To: "+9779812345678", Code: "482913"}
	tests := []struct {
		name, in, want string
	}{
		{"e164", "The 'To' number +9779812345678 is not valid", "The 'To' number +97798******78 is not valid"},
		{"digits", "bad msisdn 9779812345678", "bad msisdn 97798******78"},
		{"national", "receiver 9812345678 invalid", "receiver 98123***78 invalid"},
		{"code", "body 'Your code is 482913' rejected", "body 'Your code is [code]' rejected"},
		{"other long number", "account 123456789012 suspended", "account 12345*****12 suspended"},
		{"short numbers kept", "error 21211 (status 400)", "error 21211 (status 400)"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in, m); got != tt.want {
			t.Errorf("%s: Redact(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
	if got := Redact(strings.Repeat("x", 1000), nil); len(got) > maxReason+len("…") {
		t.Errorf("Redact did not cap the length: %d", len(got))
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"+9779812345678": "+97798******78",
		"15005550006":    "15005****06",
		"1234567":        "12***67",
		"123456":         "123456",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"absurd", "99999999", 0},
		{"date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		if got := RetryAfter(h, now); got != tt.want {
			t.Errorf("%s: RetryAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	secretURL := "https://hooks.example.com/sms?token=hunter2"
	tests := []struct {
		name       string
		err        error
		wantReason string
		wantIs     error
	}{
		{"deadline", &url.Error{Op: "Post", URL: secretURL, Err: context.DeadlineExceeded}, "timeout", context.DeadlineExceeded},
		{"canceled", &url.Error{Op: "Post", URL: secretURL, Err: context.Canceled}, "canceled", context.Canceled},
		{"refused", &url.Error{Op: "Post", URL: secretURL, Err: errors.New("dial tcp: connection refused")}, "connection error", nil},
		{"wrapped deadline", fmt.Errorf("binding: %w", context.DeadlineExceeded), "timeout", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		e := TransportError("x", tt.err)
		if e.Permanent || e.Reason != tt.wantReason {
			t.Errorf("%s: got %+v", tt.name, e)
		}
		if tt.wantIs != nil && !errors.Is(e, tt.wantIs) {
			t.Errorf("%s: %v does not wrap %v", tt.name, e, tt.wantIs)
		}
		if strings.Contains(e.Error(), "hunter2") {
			t.Errorf("%s: error %q contains the URL", tt.name, e)
		}
	}
}

func TestStatusError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status        int
		wantPermanent bool
	}{
		{400, true}, {401, true}, {403, true}, {404, true}, {410, true}, {422, true},
		{408, false}, {425, false}, {429, false}, {500, false}, {502, false}, {503, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set("Retry-After", "3")
		e := StatusError("x", &Response{Status: tt.status, Header: h}, "", "")
		if e.Permanent != tt.wantPermanent || e.Code != fmt.Sprint(tt.status) || e.RetryAfter != 3*time.Second {
			t.Errorf("%d: got %+v", tt.status, e)
		}
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	if got, err := BaseURL("https://api.twilio.com/"); err != nil || got != "https://api.twilio.com" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range []string{"api.twilio.com", "ftp://x", "https://x?y=1", "::"} {
		if _, err := BaseURL(bad); err == nil {
			t.Errorf("BaseURL(%q) accepted", bad)
		}
	}
}
