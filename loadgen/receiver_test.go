package loadgen_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/gateway/webhook"
	"github.com/phoneverify/phoneverify/loadgen"
)

const secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func post(t *testing.T, r *loadgen.Receiver, body, sign string) int {
	t.Helper()
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	now := time.Now()
	sig, err := webhook.Sign(sign, "msg_1", now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(webhook.HeaderID, "msg_1")
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w.Code
}

func TestReceiver(t *testing.T) {
	r, err := loadgen.NewReceiver(secret)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(code string) string {
		return `{"to":"+9779812345678","body":"Your code is ` + code + `","code":"` + code + `","verification_id":"VE1","locale":"en"}`
	}
	if got := post(t, r, msg("111111"), "whsec_"+"b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci0="); got != http.StatusUnauthorized {
		t.Errorf("badly signed message: %d, want 401", got)
	}
	if got := post(t, r, `{"hello":1}`, secret); got != http.StatusBadRequest {
		t.Errorf("not a message: %d, want 400", got)
	}
	// The code may arrive before the flow waits for it.
	if got := post(t, r, msg("123456"), secret); got != http.StatusNoContent {
		t.Fatalf("message: %d, want 204", got)
	}
	code, err := r.Wait(t.Context(), "VE1", "", time.Minute)
	if err != nil || code != "123456" {
		t.Fatalf("Wait = %q, %v", code, err)
	}
	// A duplicate of the old code is skipped while waiting for a resend's.
	post(t, r, msg("123456"), secret)
	post(t, r, msg("654321"), secret)
	if code, err := r.Wait(t.Context(), "VE1", "123456", time.Minute); err != nil || code != "654321" {
		t.Fatalf("Wait after resend = %q, %v", code, err)
	}
	if _, err := r.Wait(t.Context(), "VE2", "", time.Millisecond); err == nil {
		t.Errorf("Wait for a code never sent succeeded")
	}
	if ok, refused := r.Received(); ok != 3 || refused != 2 {
		t.Errorf("Received = %d, %d; want 3, 2", ok, refused)
	}
}
