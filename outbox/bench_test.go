package outbox_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/gateway/webhook"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/outbox"
)

// BenchmarkOutboxThroughput measures how many messages per second one
// node's workers take from the outbox to a loopback gateway (the signed
// webhook gateway against an httptest server, keep-alive connections) and
// record as sent. The messages are queued by real starts before the timer
// runs. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench OutboxThroughput -benchtime 20000x ./outbox
func BenchmarkOutboxThroughput(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			url := "sqlite:" + filepath.Join(b.TempDir(), "pv.db")
			if dialect == "postgres" {
				url = testenv.NewPostgresDatabase(b)
			}
			benchmarkThroughput(b, url, 16)
		})
	}
}

func benchmarkThroughput(b *testing.B, url string, workers int) {
	e := newEnv(b, url, nil)
	fake := newFakeGateway(b)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = workers
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	sender, err := webhook.New(webhook.Config{URL: fake.srv.URL, Secret: strings.Repeat("w", 32)}, client)
	if err != nil {
		b.Fatal(err)
	}

	// Queue b.N messages with concurrent starts.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				e.start(b, e.number())
			}
		}()
	}
	wg.Wait()

	d := e.dispatcher(b, sender, func(c *outbox.Config) { c.Workers = workers; c.PollInterval = 10 * time.Millisecond })
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	// Wait until every message is recorded: poll the row count, cheaply.
	for {
		var left int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM outbox WHERE status = 'queued'`).Scan(&left); err != nil {
			b.Fatal(err)
		}
		if left == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	<-done
	if got := fake.total(); got != b.N {
		b.Fatalf("the gateway accepted %d messages, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
