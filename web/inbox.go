package web

import (
	"context"
	"sync"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

// inboxSize bounds how many verifications the inbox remembers.
const inboxSize = 1000

// Inbox is a development stand-in for the phone: a [pv.Sender] that passes
// every message on to the gateway it wraps (the log gateway in development)
// and remembers the last one sent for each verification, so that the demo's
// code pages can show it and the flows work without a phone.
//
// Only wire it in development, in front of a gateway that delivers nothing:
// whoever can reach the demo pages can read what it remembers.
type Inbox struct {
	next pv.Sender
	now  func() time.Time

	mu      sync.Mutex
	byID    map[string]*inboxEntry
	order   []string // verification ids, oldest first
	changed chan struct{}
}

type inboxEntry struct {
	to, body string
	sentAt   time.Time
	// count is how many messages were sent for the verification.
	count int
}

// NewInbox returns an inbox in front of next; now is the clock that dates
// the messages (nil: time.Now).
func NewInbox(next pv.Sender, now func() time.Time) *Inbox {
	if now == nil {
		now = time.Now
	}
	return &Inbox{next: next, now: now, byID: map[string]*inboxEntry{}, changed: make(chan struct{})}
}

// Send hands m to the wrapped gateway and, once it accepted it, remembers it.
func (i *Inbox) Send(ctx context.Context, m *pv.Message) (*pv.SendResult, error) {
	res, err := i.next.Send(ctx, m)
	if err != nil {
		return res, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	e, ok := i.byID[m.VerificationID]
	if !ok {
		e = &inboxEntry{}
		i.byID[m.VerificationID] = e
		i.order = append(i.order, m.VerificationID)
		if len(i.order) > inboxSize {
			delete(i.byID, i.order[0])
			i.order = i.order[1:]
		}
	}
	e.to, e.body, e.sentAt = m.To, m.Body, i.now()
	e.count++
	close(i.changed)
	i.changed = make(chan struct{})
	return res, nil
}

// Last returns the last message sent for a verification once at least count
// were sent, waiting until ctx ends for it (messages may be sent after the
// API answered). ok is false if none came.
func (i *Inbox) Last(ctx context.Context, verificationID string, count int) (m devMessage, ok bool) {
	for {
		i.mu.Lock()
		e, found := i.byID[verificationID]
		changed := i.changed
		if found && e.count >= count {
			m = devMessage{To: e.to, Body: e.body, SentAt: e.sentAt}
			i.mu.Unlock()
			return m, true
		}
		i.mu.Unlock()
		select {
		case <-ctx.Done():
			return devMessage{Missing: true}, false
		case <-changed:
		}
	}
}
