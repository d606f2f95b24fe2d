package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phoneverify/phoneverify/gateway/webhook"
)

// ErrCodeTimeout is returned by [Receiver.Wait] when no (new) code arrived
// in time: the node did not deliver the message.
var ErrCodeTimeout = errors.New("loadgen: no code arrived in time")

// Receiver stands in for the phones: it is the endpoint the node's
// `webhook` gateway posts each message to (PHONEVERIFY_GATEWAY_WEBHOOK_URL),
// checks the Standard Webhooks signature, and hands the code to the flow
// waiting for it. Codes are keyed by verification id, since a resend keeps
// the id and sends a new code.
type Receiver struct {
	secret string
	now    func() time.Time

	mu    sync.Mutex
	boxes map[string]chan string

	received atomic.Int64
	refused  atomic.Int64
}

// NewReceiver returns a receiver that accepts messages signed with secret
// (the node's PHONEVERIFY_GATEWAY_WEBHOOK_SECRET).
func NewReceiver(secret string) (*Receiver, error) {
	if _, err := webhook.Key(secret); err != nil {
		return nil, err
	}
	return &Receiver{secret: secret, now: time.Now, boxes: map[string]chan string{}}, nil
}

// box returns the mailbox of a verification, creating it: a code may arrive
// before the start's answer does.
func (r *Receiver) box(id string) chan string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.boxes[id]
	if !ok {
		// Room for a resend's code and an at-least-once duplicate or two.
		b = make(chan string, 8)
		r.boxes[id] = b
	}
	return b
}

// ServeHTTP takes one message from the webhook gateway.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 64<<10))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(r.secret, req.Header, body, r.now(), 0); err != nil {
		r.refused.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m struct {
		VerificationID string `json:"verification_id"`
		Code           string `json:"code"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.VerificationID == "" || m.Code == "" {
		r.refused.Add(1)
		http.Error(w, "not a phoneverify message", http.StatusBadRequest)
		return
	}
	r.received.Add(1)
	select {
	case r.box(m.VerificationID) <- m.Code:
	default: // a flood of duplicates: the flow has what it needs
	}
	w.WriteHeader(http.StatusNoContent)
}

// Wait returns the next code sent for verification id that differs from
// not (the code before a resend; "" for the first code), waiting at most
// timeout.
func (r *Receiver) Wait(ctx context.Context, id, not string, timeout time.Duration) (string, error) {
	b := r.box(id)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case code := <-b:
			if code != not {
				return code, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%w (verification %s)", ErrCodeTimeout, id)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// Forget drops a finished verification's mailbox.
func (r *Receiver) Forget(id string) {
	r.mu.Lock()
	delete(r.boxes, id)
	r.mu.Unlock()
}

// Received returns how many signed messages arrived, and how many requests
// were refused (bad signature or body).
func (r *Receiver) Received() (ok, refused int64) { return r.received.Load(), r.refused.Load() }
