package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backlog is what the outbox collector reads at scrape time;
// [store.Store.OutboxBacklog] implements it.
type Backlog interface {
	OutboxBacklog(ctx context.Context) (queued int, oldest time.Time, err error)
}

// BacklogTimeout bounds the query a scrape runs: a slow or unreachable
// database must not hang the scrape (the other metrics are still served).
const BacklogTimeout = 2 * time.Second

// RegisterOutbox adds the outbox depth and the age of its oldest queued
// message, read from b when Prometheus scrapes; now is the clock.
func (m *Metrics) RegisterOutbox(b Backlog, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	return m.reg.Register(&backlogCollector{b: b, now: now,
		depth: prometheus.NewDesc(Namespace+"_outbox_queued_messages",
			"Messages in the outbox waiting to be sent: new, being sent, or waiting for a retry.", nil, nil),
		age: prometheus.NewDesc(Namespace+"_outbox_oldest_message_age_seconds",
			"Age of the oldest queued message (0 when none is queued).", nil, nil),
		up: prometheus.NewDesc(Namespace+"_outbox_backlog_up",
			"1 when the last scrape could read the outbox backlog from the database, 0 when it could not.", nil, nil),
	})
}

type backlogCollector struct {
	b              Backlog
	now            func() time.Time
	depth, age, up *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.age
	ch <- c.up
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), BacklogTimeout)
	defer cancel()
	n, oldest, err := c.b.OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	age := 0.0
	if n > 0 && !oldest.IsZero() {
		age = max(0, c.now().Sub(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}
