// Package metrics exposes phoneverify's Prometheus metrics on a registry of
// its own (never the global default registry, so that an application that
// embeds phoneverify keeps its own metrics apart and tests do not share
// state).
//
// It watches without taking part: the engine tells it each committed
// decision through [phoneverify.Observer], the outbox each recorded message
// outcome, the receipts handler each delivery receipt that changed a
// message, a wrapper around each gateway the time a send took, and an HTTP
// middleware every request. The outbox backlog and the database pool are
// read when Prometheus scrapes.
//
// Every label is bounded: services (created by an administrator), ISO
// country codes, route patterns (never raw paths), status codes, gateway
// names, and fixed reason and kind labels. Phone numbers and the ids of
// verifications or messages are never labels.
package metrics

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	pv "github.com/phoneverify/phoneverify"
)

// Namespace prefixes every metric name.
const Namespace = "phoneverify"

// Metrics holds the collectors, registered on their own registry.
type Metrics struct {
	reg *prometheus.Registry
	// names lists the metrics registered here (not the collectors of the
	// runtime, the process or the database pool).
	names []string

	started   *prometheus.CounterVec
	resends   *prometheus.CounterVec
	completed *prometheus.CounterVec
	checks    *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	alerts    *prometheus.CounterVec

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	messages    *prometheus.CounterVec
	receipts    *prometheus.CounterVec
	gatewayTime *prometheus.HistogramVec
}

// New returns Metrics with every collector registered on a new registry,
// with the Go runtime and process collectors beside them.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		m.names = append(m.names, Namespace+"_"+name)
		return c
	}
	m.started = counter("verifications_started_total",
		"Verifications started (a resend of a pending one is not counted here), by service and destination country.",
		"service", "country")
	m.resends = counter("verification_resends_total",
		"Starts that resent a pending verification with a fresh code, by service and destination country.",
		"service", "country")
	m.completed = counter("verifications_completed_total",
		"Verifications that reached a final status (approved, canceled, expired, failed, max_attempts_reached), by service, destination country and status.",
		"service", "country", "status")
	m.checks = counter("verification_checks_total",
		"Checks that changed a verification, by service and result (approved, incorrect, max_attempts_reached).",
		"service", "result")
	m.refusals = counter("refusals_total",
		"Starts and checks refused by a rate limit or by fraud protection, by service and reason.",
		"service", "reason")
	m.alerts = counter("alerts_total",
		"Conditions an operator must see at once (such as an SMS budget breaker tripping), by service and kind.",
		"service", "kind")
	m.requests = counter("http_requests_total",
		"HTTP requests answered, by route pattern (\"unmatched\" for no route) and status code.",
		"route", "code")
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"})
	m.reg.MustRegister(m.latency)
	m.names = append(m.names, Namespace+"_http_request_duration_seconds")
	m.messages = counter("messages_total",
		"Outcomes recorded for outbox messages, by gateway and status: sent, retry (a failed try to be retried), failed (given up or not sent). What became of a sent message is counted in phoneverify_message_receipts_total.",
		"gateway", "status")
	m.receipts = counter("message_receipts_total",
		"Delivery receipts that moved a sent message to its final status, by gateway and status: delivered, undelivered, failed (the gateway's word after accepting it). Each sent message is counted at most once; duplicate, refused and unknown receipts are not counted.",
		"gateway", "status")
	m.gatewayTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "gateway_send_duration_seconds",
		Help:    "Time a gateway took to accept or refuse one message, by gateway and result (ok, temporary_error, permanent_error).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"gateway", "result"})
	m.reg.MustRegister(m.gatewayTime)
	m.names = append(m.names, Namespace+"_gateway_send_duration_seconds")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Names returns the names of the metrics of the engine, HTTP and delivery
// (not of the outbox backlog, the database pool, the runtime or the
// process); a labelled metric shows in the output only once it has a
// series, and dashboards may name it before.
func (m *Metrics) Names() []string { return append([]string(nil), m.names...) }

// Registry returns the registry, for an application that gathers these
// metrics with its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// RegisterDB adds the database pool's statistics (connections open, in
// use, idle; waits and their duration; connections closed and why) as the
// go_sql_* metrics of client_golang's DBStatsCollector, with db_name set to
// name.
func (m *Metrics) RegisterDB(db *sql.DB, name string) error {
	return m.reg.Register(collectors.NewDBStatsCollector(db, name))
}

// country returns an ISO 3166 alpha-2 code as given, anything else as
// "unknown", so that the label stays bounded whatever the store holds.
func country(c string) string {
	if len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' {
		return c
	}
	return "unknown"
}

// label returns s, or "unknown" for an empty label value.
func label(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

var _ pv.Observer = (*Metrics)(nil)

// Started implements [phoneverify.Observer].
func (m *Metrics) Started(v *pv.Verification, resend bool) {
	if resend {
		m.resends.WithLabelValues(label(v.ServiceID), country(v.Country)).Inc()
		return
	}
	m.started.WithLabelValues(label(v.ServiceID), country(v.Country)).Inc()
}

// Checked implements [phoneverify.Observer].
func (m *Metrics) Checked(v *pv.Verification, approved bool) {
	svc := label(v.ServiceID)
	switch {
	case approved:
		m.checks.WithLabelValues(svc, "approved").Inc()
		m.completed.WithLabelValues(svc, country(v.Country), string(pv.StatusApproved)).Inc()
	case v.Status == pv.StatusMaxAttemptsReached:
		m.checks.WithLabelValues(svc, "max_attempts_reached").Inc()
		m.completed.WithLabelValues(svc, country(v.Country), string(pv.StatusMaxAttemptsReached)).Inc()
	default:
		m.checks.WithLabelValues(svc, "incorrect").Inc()
	}
}

// Finished implements [phoneverify.Observer].
func (m *Metrics) Finished(v *pv.Verification) {
	status := string(v.Status)
	switch v.Status {
	case pv.StatusCanceled, pv.StatusExpired, pv.StatusFailed, pv.StatusApproved, pv.StatusMaxAttemptsReached:
	default:
		status = "other"
	}
	m.completed.WithLabelValues(label(v.ServiceID), country(v.Country), status).Inc()
}

// Refused implements [phoneverify.Observer].
func (m *Metrics) Refused(serviceID, reason string) {
	m.refusals.WithLabelValues(label(serviceID), label(reason)).Inc()
}

// Alert implements [phoneverify.Observer].
func (m *Metrics) Alert(serviceID, kind string) {
	m.alerts.WithLabelValues(label(serviceID), label(kind)).Inc()
}

// MessageOutcome counts one recorded outcome of an outbox message; it is
// the outbox dispatcher's observer hook.
func (m *Metrics) MessageOutcome(o pv.MessageOutcome) {
	status := string(o.Status)
	if o.Status == pv.MessageQueued {
		status = "retry"
	}
	m.messages.WithLabelValues(label(o.Gateway), status).Inc()
}

// MessageReceipt counts one delivery receipt that moved a sent message of
// gateway to its final status; it is the receipts handler's observer hook.
//
// Receipts have a counter of their own rather than more statuses on
// phoneverify_messages_total: a receipt is a later stage of a message
// already counted there as sent, so summing that counter's statuses would
// count such a message twice, and a receipt's "failed" (the gateway could
// not deliver) is not the outbox's (nothing accepted the message).
func (m *Metrics) MessageReceipt(gateway string, status pv.MessageStatus) {
	s := string(status)
	if !status.Final() {
		s = "other"
	}
	m.receipts.WithLabelValues(label(gateway), s).Inc()
}

// ObserveSend records how long a gateway took over one message and whether
// it took it.
func (m *Metrics) ObserveSend(gateway string, took time.Duration, err error) {
	m.gatewayTime.WithLabelValues(label(gateway), sendResult(err)).Observe(took.Seconds())
}

func sendResult(err error) string {
	if err == nil {
		return "ok"
	}
	if de := (*pv.DeliveryError)(nil); errors.As(err, &de) && de.Permanent {
		return "permanent_error"
	}
	return "temporary_error"
}

// Sender wraps a gateway so that every send is timed as gateway name.
func (m *Metrics) Sender(name string, s pv.Sender) pv.Sender {
	return &timedSender{m: m, name: name, next: s}
}

type timedSender struct {
	m    *Metrics
	name string
	next pv.Sender
}

func (t *timedSender) Send(ctx context.Context, msg *pv.Message) (*pv.SendResult, error) {
	start := time.Now()
	res, err := t.next.Send(ctx, msg)
	t.m.ObserveSend(t.name, time.Since(start), err)
	return res, err
}

// statusLabel renders an HTTP status code as a label value.
func statusLabel(code int) string { return strconv.Itoa(code) }
