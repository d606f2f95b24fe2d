package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
)

// outboxOf returns s as an Outbox, or fails t.
func outboxOf(t *testing.T, s phoneverify.Store) phoneverify.Outbox {
	t.Helper()
	o, ok := s.(phoneverify.Outbox)
	if !ok {
		t.Fatalf("%T does not implement phoneverify.Outbox", s)
	}
	return o
}

// newMessage returns a queued outbox message for v, due at now.
func newMessage(v *phoneverify.Verification, now time.Time) *phoneverify.OutboxMessage {
	return &phoneverify.OutboxMessage{
		ID: newID(), VerificationID: v.ID, ServiceID: v.ServiceID, To: v.To, Country: v.Country, Locale: v.Locale,
		SendCount: v.SendCount, Sealed: []byte("sealed"), Status: phoneverify.MessageQueued,
		DueAt: now, ExpiresAt: v.ExpiresAt, CreatedAt: now, UpdatedAt: now,
	}
}

// mustStartWithMessage starts a new verification of phone with its message
// and returns both.
func mustStartWithMessage(t *testing.T, s phoneverify.Store, svc *phoneverify.Service, phone string, now time.Time) (*phoneverify.Verification, *phoneverify.OutboxMessage) {
	t.Helper()
	v := newVerification(svc, phone, "", now)
	m := newMessage(v, now)
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone}
	if _, err := s.StartVerification(t.Context(), key, func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		return &phoneverify.StartResult{Save: v, Sends: []time.Time{now}, Message: m}, nil
	}); err != nil {
		t.Fatalf("StartVerification = %v", err)
	}
	return v, m
}

func mustClaim(t *testing.T, o phoneverify.Outbox, now time.Time, lease time.Duration, limit int) []*phoneverify.OutboxMessage {
	t.Helper()
	got, err := o.ClaimMessages(t.Context(), now, lease, limit)
	if err != nil {
		t.Fatalf("ClaimMessages = %v", err)
	}
	return got
}

func mustMessages(t *testing.T, s phoneverify.Store, v *phoneverify.Verification) []*phoneverify.OutboxMessage {
	t.Helper()
	got, err := s.Messages(t.Context(), v.ServiceID, v.ID)
	if err != nil {
		t.Fatalf("Messages = %v", err)
	}
	return got
}

// testOutboxStart: a start's message is written with it, or not at all.
func testOutboxStart(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "outbox", false)
	now := baseTime()
	v, m := mustStartWithMessage(t, s, svc, "+9779800000001", now)
	got := mustMessages(t, s, v)
	if len(got) != 1 || got[0].ID != m.ID || got[0].Status != phoneverify.MessageQueued || got[0].SendCount != 1 {
		t.Fatalf("Messages = %+v, want the queued message", got)
	}
	if got[0].Sealed != nil {
		t.Error("Messages returned the sealed text")
	}
	if !got[0].ExpiresAt.Equal(v.ExpiresAt) || !got[0].CreatedAt.Equal(now) {
		t.Errorf("times: expires %v created %v, want %v and %v", got[0].ExpiresAt, got[0].CreatedAt, v.ExpiresAt, now)
	}

	// A refused start writes no message; a message for another
	// verification is refused.
	v2 := newVerification(svc, "+9779800000002", "", now)
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: v2.To}
	_, err := s.StartVerification(t.Context(), key, func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
		return nil, errRefused
	})
	if err != errRefused {
		t.Fatalf("refused start = %v", err)
	}
	_, err = s.StartVerification(t.Context(), key, func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
		return &phoneverify.StartResult{Save: v2, Message: newMessage(v, now)}, nil
	})
	if err == nil {
		t.Fatal("a message for another verification was accepted")
	}
	if got := mustClaim(t, outboxOf(t, s), now, time.Minute, 10); len(got) != 1 || got[0].ID != m.ID {
		t.Errorf("claimable messages = %d, want only the first start's", len(got))
	}
}

// testOutboxClaims: claims lease, count attempts and are fenced; the oldest
// due messages come first.
func testOutboxClaims(t *testing.T, s phoneverify.Store) {
	o := outboxOf(t, s)
	svc := mustService(t, s, "claims", false)
	now := baseTime()
	_, m1 := mustStartWithMessage(t, s, svc, "+9779800000011", now)
	v2, m2 := mustStartWithMessage(t, s, svc, "+9779800000012", now.Add(time.Second))
	mustStartWithMessage(t, s, svc, "+9779800000013", now.Add(time.Hour))

	later := now.Add(2 * time.Second)
	// limit 1 takes the oldest due message first.
	got := mustClaim(t, o, later, time.Minute, 1)
	if len(got) != 1 || got[0].ID != m1.ID {
		t.Fatalf("claimed %d messages, want message 1, the oldest due", len(got))
	}
	got = append(got, mustClaim(t, o, later.Add(time.Millisecond), time.Minute, 10)...)
	if len(got) != 2 || got[1].ID != m2.ID {
		t.Fatalf("claimed %d messages, want the 2 due", len(got))
	}
	if got := mustClaim(t, o, later.Add(time.Millisecond), time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed %d leased messages, want none", len(got))
	}
	for _, m := range got {
		if m.Attempts != 1 || m.DueAt.Sub(later) < time.Minute || string(m.Sealed) != "sealed" {
			t.Errorf("claimed %+v, want attempt 1, due at the lease's end, sealed text", m)
		}
		if m.VerificationStatus != phoneverify.StatusPending || m.VerificationSendCount != 1 {
			t.Errorf("claimed with verification %s/%d, want pending/1", m.VerificationStatus, m.VerificationSendCount)
		}
	}
	c2 := got[1]

	// The lease runs out: claimed again; the first claim is fenced out.
	again := mustClaim(t, o, later.Add(time.Minute), time.Minute, 1)
	if len(again) != 1 || again[0].ID != m1.ID || again[0].Attempts != 2 {
		t.Fatalf("after the lease claimed %+v, want message 1 (oldest) on attempt 2", again)
	}
	stale := *again[0]
	stale.Attempts = 1
	err := o.FinishMessage(t.Context(), &stale, phoneverify.MessageOutcome{Status: phoneverify.MessageSent, At: later})
	wantCode(t, "FinishMessage with a stale claim", err, phoneverify.EConflict)

	// Retry: queued until RetryAt, with the error kept.
	retryAt := later.Add(10 * time.Minute)
	if err := o.FinishMessage(t.Context(), c2, phoneverify.MessageOutcome{Status: phoneverify.MessageQueued, RetryAt: retryAt,
		Gateway: "gw", Error: "gw: temporary error 503", At: later}); err != nil {
		t.Fatalf("FinishMessage(retry) = %v", err)
	}
	for _, m := range mustClaim(t, o, retryAt.Add(-time.Millisecond), time.Minute, 10) {
		if m.ID == m2.ID {
			t.Fatal("message 2 was claimed before its retry time")
		}
	}
	h := mustMessages(t, s, v2)[0]
	if h.Status != phoneverify.MessageQueued || h.Error != "gw: temporary error 503" || h.Gateway != "gw" {
		t.Errorf("after a retry: %+v", h)
	}
	c2b := mustClaim(t, o, retryAt, time.Minute, 10)
	if len(c2b) != 1 || c2b[0].ID != m2.ID {
		t.Fatalf("at the retry time claimed %d, want message 2", len(c2b))
	}
	if err := o.FinishMessage(t.Context(), c2b[0], phoneverify.MessageOutcome{Status: phoneverify.MessageSent,
		Gateway: "gw", ProviderID: "P2", At: retryAt}); err != nil {
		t.Fatalf("FinishMessage(sent) = %v", err)
	}
	h = mustMessages(t, s, v2)[0]
	if h.Status != phoneverify.MessageSent || h.ProviderID != "P2" || h.Attempts != 2 || !h.UpdatedAt.Equal(retryAt) {
		t.Errorf("after sending: %+v", h)
	}
	err = o.FinishMessage(t.Context(), c2b[0], phoneverify.MessageOutcome{Status: phoneverify.MessageFailed, At: retryAt})
	wantCode(t, "FinishMessage after sent", err, phoneverify.EConflict)
	for _, m := range mustClaim(t, o, retryAt.Add(time.Hour), time.Minute, 10) {
		if m.ID == m2.ID {
			t.Error("a sent message was claimed")
		}
	}
}

// testOutboxReceipts: receipts move a sent message forward only.
func testOutboxReceipts(t *testing.T, s phoneverify.Store) {
	o := outboxOf(t, s)
	svc := mustService(t, s, "receipts", false)
	now := baseTime()
	v, _ := mustStartWithMessage(t, s, svc, "+9779800000021", now)
	c := mustClaim(t, o, now, time.Minute, 1)
	if len(c) != 1 {
		t.Fatal("nothing to claim")
	}
	if err := o.FinishMessage(t.Context(), c[0], phoneverify.MessageOutcome{Status: phoneverify.MessageSent, Gateway: "twilio", ProviderID: "SM1", At: now}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		gateway    string
		providerID string
		status     phoneverify.MessageStatus
		want       bool
		wantStatus phoneverify.MessageStatus
	}{
		{"unknown id", "twilio", "SM2", phoneverify.MessageDelivered, false, phoneverify.MessageSent},
		{"other gateway", "vonage", "SM1", phoneverify.MessageDelivered, false, phoneverify.MessageSent},
		{"sent again", "twilio", "SM1", phoneverify.MessageSent, false, phoneverify.MessageSent},
		{"undelivered", "twilio", "SM1", phoneverify.MessageUndelivered, true, phoneverify.MessageUndelivered},
		{"final stays", "twilio", "SM1", phoneverify.MessageDelivered, false, phoneverify.MessageUndelivered},
		{"backwards", "twilio", "SM1", phoneverify.MessageQueued, false, phoneverify.MessageUndelivered},
	}
	for _, st := range steps {
		changed, err := o.UpdateMessageStatus(t.Context(), st.gateway, st.providerID, st.status, "e", now.Add(time.Second))
		if err != nil || changed != st.want {
			t.Errorf("%s: UpdateMessageStatus = %v, %v; want %v", st.name, changed, err, st.want)
		}
		if got := mustMessages(t, s, v)[0].Status; got != st.wantStatus {
			t.Errorf("%s: status %s, want %s", st.name, got, st.wantStatus)
		}
	}
}

// backlogReader is the optional method metrics read the outbox depth with.
type backlogReader interface {
	OutboxBacklog(ctx context.Context) (queued int, oldest time.Time, err error)
}

// testOutboxBacklog: the backlog counts queued messages (new, leased or
// waiting for a retry) and names the oldest one's creation; sent messages
// leave it. A store without the method skips.
func testOutboxBacklog(t *testing.T, s phoneverify.Store) {
	b, ok := s.(backlogReader)
	if !ok {
		t.Skipf("%T has no OutboxBacklog", s)
	}
	check := func(wantN int, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := b.OutboxBacklog(t.Context())
		if err != nil {
			t.Fatalf("OutboxBacklog = %v", err)
		}
		if n != wantN || !oldest.Equal(wantOldest) {
			t.Errorf("OutboxBacklog = %d, %v; want %d, %v", n, oldest, wantN, wantOldest)
		}
	}
	check(0, time.Time{})
	svc := mustService(t, s, "backlog", false)
	now := baseTime()
	mustStartWithMessage(t, s, svc, "+9779800000101", now)
	mustStartWithMessage(t, s, svc, "+9779800000102", now.Add(time.Minute))
	check(2, now)
	o := outboxOf(t, s)
	claimed := mustClaim(t, o, now.Add(2*time.Minute), time.Minute, 1)
	if len(claimed) != 1 {
		t.Fatalf("claimed %d", len(claimed))
	}
	check(2, now) // leased, still queued
	if err := o.FinishMessage(t.Context(), claimed[0], phoneverify.MessageOutcome{Status: phoneverify.MessageSent, Gateway: "test", At: now.Add(2 * time.Minute)}); err != nil {
		t.Fatalf("FinishMessage = %v", err)
	}
	check(1, now.Add(time.Minute))
}
