package main

import (
	"context"
	"fmt"
	"io"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/fraud"
	"github.com/phoneverify/phoneverify/store"
)

// purgeInterval is how often a serving node runs the purge. Every node
// runs it; the purge is idempotent, so nodes running it together only
// repeat each other's deletes.
const purgeInterval = time.Hour

// purge deletes what is older than the retention: verifications (with
// their messages and send attempts), fraud decisions and events (with their
// deliveries); past the longest
// fraud window it deletes per-address counters and folds hourly prefix and
// country counters into daily ones, so fraud protection keeps the
// conversion history it learns from.
func purge(ctx context.Context, st *store.Store, now time.Time, retention time.Duration) (*pv.PurgeResult, error) {
	return st.Purge(ctx, now.Add(-retention), now.Add(-fraud.MaxWindow-24*time.Hour))
}

func describePurge(r *pv.PurgeResult, cutoff time.Time) string {
	return fmt.Sprintf("purged records last updated before %s: %d verifications, %d messages, %d send attempts, "+
		"%d fraud decisions, %d events, %d per-address fraud counters; rolled %d hourly fraud counters into daily ones (kept)",
		cutoff.UTC().Format(time.RFC3339), r.Verifications, r.Messages, r.Attempts, r.Decisions, r.Events, r.IPCounters,
		r.CountersRolledUp)
}

// runPurge is "phoneverify purge": one purge, then a line saying what it
// deleted.
func runPurge(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := LoadConfig(getenv, newFlagSet("purge", stderr), args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("purge: unexpected arguments %q", rest)
	}
	if cfg.Retention == 0 {
		return fmt.Errorf("purge: PHONEVERIFY_RETENTION is 0: records are kept forever")
	}
	st, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	res, err := purge(ctx, st, now, cfg.Retention)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, describePurge(res, now.Add(-cfg.Retention)))
	return nil
}

// purgeLoop runs the purge at start and then every purgeInterval, unless
// the retention is 0.
func (m *Main) purgeLoop(ctx context.Context) {
	defer m.wg.Done()
	if m.cfg.Retention == 0 {
		return
	}
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		now := m.Now()
		res, err := purge(ctx, m.Store, now, m.cfg.Retention)
		switch {
		case err != nil && ctx.Err() == nil:
			m.log.Warn("purge failed", "error", err)
		case err == nil && (res.Verifications > 0 || res.Decisions > 0 || res.Events > 0 || res.IPCounters > 0):
			m.log.Info(describePurge(res, now.Add(-m.cfg.Retention)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
