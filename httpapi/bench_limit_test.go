package httpapi_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/ratelimit/redislimit"
	"github.com/phoneverify/phoneverify/verify"
)

// BenchmarkStartRateLimited measures starts on PostgreSQL with the per-IP
// limit on, each from its own client address, through the SQL limiter (the
// default without Redis) and the Redis limiter: the price of the limit.
func BenchmarkStartRateLimited(b *testing.B) {
	limit := pv.Limit{Max: 30, Window: 10 * time.Minute}
	b.Run("Postgres/SQLLimiter", func(b *testing.B) {
		url := testenv.NewPostgresDatabase(b)
		e := newEnv(b, nil, func(c *envConfig) {
			c.dbURL, c.parallelism, c.sqlLimiter = url, benchParallelismPostgres, true
			c.engine = func(v *verify.Config) { v.StartLimits.PerIP = limit }
		})
		benchStartFromManyIPs(b, e)
	})
	b.Run("Postgres/RedisLimiter", func(b *testing.B) {
		url := testenv.NewPostgresDatabase(b)
		rdb, err := redislimit.NewClient(testenv.RedisURL(b), redislimit.ClientOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rdb.Close() })
		prefix := fmt.Sprintf("phoneverify:bench:%d:", time.Now().UnixNano())
		b.Cleanup(func() { cleanRedis(b, rdb, prefix) })
		e := newEnv(b, nil, func(c *envConfig) {
			c.dbURL, c.parallelism = url, benchParallelismPostgres
			c.engine = func(v *verify.Config) {
				v.Limiter = redislimit.New(rdb, redislimit.Options{Prefix: prefix})
				v.StartLimits.PerIP = limit
			}
		})
		benchStartFromManyIPs(b, e)
	})
}

func cleanRedis(b *testing.B, rdb *redis.Client, prefix string) {
	iter := rdb.Scan(b.Context(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(b.Context()) {
		rdb.Del(b.Context(), iter.Val())
	}
}

var benchIP atomic.Uint32

func benchStartFromManyIPs(b *testing.B, e *env) {
	b.ReportAllocs()
	b.SetParallelism(e.parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := benchIP.Add(1)
			req := httptest.NewRequest("POST", "/v1/verifications", strings.NewReader(`{"to":"`+nextNumber()+`"}`))
			req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:4000", byte(n>>16), byte(n>>8), byte(n))
			req.Header.Set("Authorization", "Bearer "+apiKey)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			if w.Code != 201 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			_, _ = io.Copy(io.Discard, w.Body)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "starts/s")
}
