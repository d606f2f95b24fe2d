// Package log is the development gateway: it writes each message to a writer
// (standard error by default) instead of sending it. It stands in for the
// phone, so it is the one place where a full number and a code are printed.
package log

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

// Sender prints messages, one line each.
type Sender struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns a Sender writing to w.
func New(w io.Writer) *Sender { return &Sender{w: w, now: time.Now} }

// Name returns "log".
func (s *Sender) Name() string { return "log" }

// Send writes "SMS to=+E164 verification=VE… body=\"…\"" on one line; the body
// is quoted so a multi-line message stays on one line.
func (s *Sender) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	line := fmt.Sprintf("%s SMS to=%s verification=%s body=%s\n",
		s.now().UTC().Format(time.RFC3339), m.To, m.VerificationID, strconv.Quote(m.Body))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.w, line); err != nil {
		return nil, &pv.DeliveryError{Gateway: "log", Reason: "write failed", Err: err}
	}
	return &pv.SendResult{Gateway: "log"}, nil
}
