package verify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/verify"
)

// recordingObserver keeps what the engine told it.
type recordingObserver struct {
	pv.NopObserver
	mu       sync.Mutex
	started  []bool
	checked  []bool
	finished []pv.Status
	refused  []string
}

func (o *recordingObserver) Started(_ *pv.Verification, resend bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, resend)
}

func (o *recordingObserver) Checked(_ *pv.Verification, approved bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checked = append(o.checked, approved)
}

func (o *recordingObserver) Finished(v *pv.Verification) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished = append(o.finished, v.Status)
}

func (o *recordingObserver) Refused(_, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused = append(o.refused, reason)
}

var _ pv.Observer = (*recordingObserver)(nil)

func TestObserverSeesDecisions(t *testing.T) {
	obs := &recordingObserver{}
	h := newHarness(t, func(s *pv.Service) { s.MaxSends = 2; s.MaxAttempts = 2 },
		func(c *verify.Config, _ *testenv.Clock) { c.Observer = obs })
	ctx := context.Background()

	h.start(t, verify.StartRequest{To: nepal})
	h.start(t, verify.StartRequest{To: nepal}) // resend
	_, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: nepal})
	wantCode(t, err, pv.ETooManyRequests)
	code := h.last(t).Code
	_, err = h.check(verify.CheckRequest{To: nepal, Code: wrong(code)})
	wantCode(t, err, pv.EIncorrectCode)
	if _, err := h.check(verify.CheckRequest{To: nepal, Code: code}); err != nil {
		t.Fatal(err)
	}
	v := h.start(t, verify.StartRequest{To: nepal2})
	if _, err := h.e.Cancel(ctx, h.svc.ID, v.ID); err != nil {
		t.Fatal(err)
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if got, want := fmt.Sprint(obs.started), "[false true false]"; got != want {
		t.Errorf("started(resend) = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(obs.checked), "[false true]"; got != want {
		t.Errorf("checked(approved) = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(obs.refused), "[per_number]"; got != want {
		t.Errorf("refused = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(obs.finished), "[canceled]"; got != want {
		t.Errorf("finished = %s, want %s", got, want)
	}
}
