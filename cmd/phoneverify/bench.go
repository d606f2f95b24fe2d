package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify/gateway/webhook"
	"github.com/phoneverify/phoneverify/loadgen"
	"github.com/phoneverify/phoneverify/store"
)

// benchMaxNodes bounds --nodes: every node is a process on this machine.
const benchMaxNodes = 8

// benchFlags are the options of "phoneverify bench".
type benchFlags struct {
	targets     string
	receiver    string
	serverPIDs  string
	databaseURL string
	redisURL    string
	nodes       int
	rate        float64
	concurrency int
	duration    time.Duration
	maxPairs    int
	wrong       float64
	resend      float64
	introspect  float64
	codeTimeout time.Duration
	binary      string
	serverEnv   multiFlag
}

// multiFlag is a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const benchUsage = `phoneverify bench — drive phoneverify over HTTP on loopback with verification traffic

Each flow verifies one new number: start, read the code at a loopback webhook receiver (the node's
"webhook" gateway posts every message there), sometimes a resend and a wrong code first, the right
code, sometimes a token introspection. A pair is one start and its right check.

Without --target, bench starts its own node(s) as child processes of this binary (SQLite in a
temporary directory, or --database-url) with the webhook gateway pointed at its receiver and the
per-IP and per-country start limits off, starts the first node twice to time a start-up on an
existing database, runs the load, and reports the nodes' peak RSS and CPU time.

With --target, the node must already send through the webhook gateway to the receiver (see
--receiver), with the same secret and API key in the environment of both commands:

  export PHONEVERIFY_API_KEY=$(openssl rand -hex 24)
  export PHONEVERIFY_GATEWAY_WEBHOOK_SECRET=whsec_$(openssl rand -base64 32)
  PHONEVERIFY_GATEWAY_WEBHOOK_URL=http://127.0.0.1:8099/ PHONEVERIFY_RATE_LIMIT_IP=off PHONEVERIFY_FRAUD_MODE=off phoneverify serve &
  phoneverify bench --target http://127.0.0.1:8080 --receiver 127.0.0.1:8099 --server-pid $!

The last line is machine-readable:
  pairs_per_s=N p50_ms=N p99_ms=N errors=N server_rss_mib=N
p50_ms and p99_ms are over every request of the run (all operations); server_rss_mib is the
largest peak RSS (VmHWM) of the nodes, n/a when unknown.

Flags:
`

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var f benchFlags
	fs.StringVar(&f.targets, "target", "", "base URLs of running nodes, comma-separated (loopback only); default: start nodes")
	fs.StringVar(&f.receiver, "receiver", "", "address of the webhook receiver (default 127.0.0.1:0 for self-started nodes, 127.0.0.1:8099 with --target)")
	fs.StringVar(&f.serverPIDs, "server-pid", "", "process ids of the --target nodes, comma-separated, for their peak RSS and CPU time")
	fs.StringVar(&f.databaseURL, "database-url", "", "database of self-started nodes: postgres://… (default: SQLite in a temporary directory)")
	fs.StringVar(&f.redisURL, "redis-url", "", "Redis of self-started nodes, for the rate limiter (default: the database)")
	fs.IntVar(&f.nodes, "nodes", 1, fmt.Sprintf("self-started nodes sharing --database-url and --redis-url (1–%d; more than 1 needs PostgreSQL)", benchMaxNodes))
	fs.Float64Var(&f.rate, "rate", 0, "flows started per second; 0 = as fast as --concurrency callers go")
	fs.IntVar(&f.concurrency, "concurrency", 64, "flows in flight at most")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long new flows start (at most 1h); flows in flight then finish")
	fs.IntVar(&f.maxPairs, "max-pairs", 1_000_000, "flows started at most")
	fs.Float64Var(&f.wrong, "wrong", 0.25, "share of flows that check a wrong code first")
	fs.Float64Var(&f.resend, "resend", 0.10, "share of flows that ask for a resend before checking")
	fs.Float64Var(&f.introspect, "introspect", 0.50, "share of flows that introspect their token")
	fs.DurationVar(&f.codeTimeout, "code-timeout", 10*time.Second, "how long a flow waits for its code at the receiver")
	fs.StringVar(&f.binary, "server-binary", "", "phoneverify binary for self-started nodes (default: this one)")
	fs.Var(&f.serverEnv, "server-env", "extra KEY=VALUE for self-started nodes (repeatable), e.g. PHONEVERIFY_DB_MAX_OPEN_CONNS=16")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if f.nodes < 1 || f.nodes > benchMaxNodes {
		return fmt.Errorf("bench: --nodes must be 1 to %d", benchMaxNodes)
	}
	switch {
	case f.maxPairs < 1 || f.maxPairs > loadgen.MaxFlows:
		return fmt.Errorf("bench: --max-pairs must be 1 to %d", loadgen.MaxFlows)
	case f.duration <= 0 || f.duration > loadgen.MaxDuration:
		return fmt.Errorf("bench: the duration must be positive and at most %s", loadgen.MaxDuration)
	case f.concurrency < 1 || f.concurrency > loadgen.MaxConcurrency:
		return fmt.Errorf("bench: --concurrency must be 1 to %d", loadgen.MaxConcurrency)
	case f.rate < 0:
		return errors.New("bench: --rate must be ≥ 0")
	case f.wrong < 0 || f.wrong > 1 || f.resend < 0 || f.resend > 1 || f.introspect < 0 || f.introspect > 1:
		return errors.New("bench: --wrong, --resend and --introspect are shares between 0 and 1")
	case f.codeTimeout <= 0:
		return errors.New("bench: --code-timeout must be positive")
	}
	b := &bench{f: f, getenv: getenv, out: stdout}
	if f.targets != "" {
		return b.runTarget(ctx)
	}
	return b.runSelf(ctx)
}

type bench struct {
	f      benchFlags
	getenv func(string) string
	out    io.Writer
	// pids are the nodes' processes, when known.
	pids []int
	// startupMs is the measured start-up time, -1 when not measured.
	startupMs float64
	// pgDatabase names the self-started nodes' PostgreSQL database.
	pgDatabase string
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

// secretFromEnv reads NAME or the file NAME_FILE names.
func secretFromEnv(getenv func(string) string, name string) (string, error) {
	if v := getenv(name); v != "" {
		return v, nil
	}
	if p := getenv(name + "_FILE"); p != "" {
		raw, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(raw)), nil
	}
	return "", nil
}

// runTarget loads nodes someone else started.
func (b *bench) runTarget(ctx context.Context) error {
	if b.f.databaseURL != "" || b.f.redisURL != "" || b.f.nodes != 1 || b.f.binary != "" || len(b.f.serverEnv) > 0 {
		return errors.New("bench: --database-url, --redis-url, --nodes, --server-binary and --server-env are for self-started nodes, not --target")
	}
	targets := strings.Split(b.f.targets, ",")
	for _, t := range targets {
		if err := loadgen.CheckLoopback(ctx, t); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	key, err := secretFromEnv(b.getenv, "PHONEVERIFY_API_KEY")
	if err != nil {
		return err
	}
	whSecret, err := secretFromEnv(b.getenv, webhook.EnvSecret)
	if err != nil {
		return err
	}
	if key == "" || whSecret == "" {
		return errors.New("bench: with --target, set PHONEVERIFY_API_KEY (a key of the node) and " + webhook.EnvSecret +
			" (the node's webhook gateway secret) in the environment; see phoneverify bench -h")
	}
	for _, p := range strings.Split(b.f.serverPIDs, ",") {
		if p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return fmt.Errorf("bench: --server-pid %q is not a process id", p)
		}
		b.pids = append(b.pids, pid)
	}
	addr := b.f.receiver
	if addr == "" {
		addr = "127.0.0.1:8099"
	}
	recv, url, stop, err := startReceiver(whSecret, addr)
	if err != nil {
		return err
	}
	defer stop()
	b.printf("bench: targets %s; codes are read at %s: the node(s) must run with %s=%s and the same %s\n",
		strings.Join(targets, " "), url, webhook.EnvURL, url, webhook.EnvSecret)
	b.printf("bench: the per-IP start limit (PHONEVERIFY_RATE_LIMIT_IP) must be off on the node(s), or it throttles the load: all flows come from one address\n")
	b.startupMs = -1
	return b.load(ctx, targets, key, recv)
}

// startReceiver serves a webhook receiver on addr (loopback only).
func startReceiver(secret, addr string) (*loadgen.Receiver, string, func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, "", nil, fmt.Errorf("bench: --receiver %q must be a loopback address and port, like 127.0.0.1:8099", addr)
	}
	recv, err := loadgen.NewReceiver(secret)
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", nil, fmt.Errorf("bench: receiver: %w", err)
	}
	srv := &http.Server{Handler: recv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return recv, "http://" + ln.Addr().String() + "/", func() { _ = srv.Close() }, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runSelf starts nodes, times a restart on the existing database, and
// loads them.
func (b *bench) runSelf(ctx context.Context) error {
	bin := b.f.binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: find this binary: %w", err)
		}
		bin = exe
	}
	if b.f.receiver == "" {
		b.f.receiver = "127.0.0.1:0"
	}
	dir, err := os.MkdirTemp("", "phoneverify-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	dbURL := b.f.databaseURL
	if dbURL == "" {
		dbURL = "sqlite:" + dir + "/phoneverify.db"
	}
	_, sqlite := store.SQLitePath(dbURL)
	if sqlite && b.f.nodes > 1 {
		return errors.New("bench: --nodes above 1 needs a shared PostgreSQL database (--database-url postgres://…)")
	}
	whSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(randomHex(16)))
	recv, recvURL, stopRecv, err := startReceiver(whSecret, b.f.receiver)
	if err != nil {
		return err
	}
	defer stopRecv()
	key := "bench-" + randomHex(24)
	env := []string{
		"PATH=" + b.getenv("PATH"), "HOME=" + b.getenv("HOME"),
		"PHONEVERIFY_DATABASE_URL=" + dbURL,
		"PHONEVERIFY_API_KEY=" + key,
		webhook.EnvURL + "=" + recvURL,
		webhook.EnvSecret + "=" + whSecret,
		"PHONEVERIFY_RATE_LIMIT_IP=off",
		"PHONEVERIFY_RATE_LIMIT_COUNTRY=off",
		// Every flow's number is new and unconverted until its check: to
		// fraud protection, the load is a pumping attack on a few prefixes.
		"PHONEVERIFY_FRAUD_MODE=off",
		"PHONEVERIFY_DEMO=false",
		"PHONEVERIFY_LOG_LEVEL=warn",
	}
	// Only what is named passes from this environment: a gateway
	// configured here must not turn the bench into real text messages.
	for _, name := range []string{"PHONEVERIFY_SECRET", "PHONEVERIFY_SECRET_FILE", "GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		if v := b.getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	secretSet := b.getenv("PHONEVERIFY_SECRET") != "" || b.getenv("PHONEVERIFY_SECRET_FILE") != ""
	if !sqlite && !secretSet {
		// Nodes sharing a database must share a secret; a new one fits a
		// new database (signing keys are sealed under it).
		env = append(env, "PHONEVERIFY_SECRET="+randomHex(32))
	}
	if b.f.redisURL != "" {
		env = append(env, "PHONEVERIFY_REDIS_URL="+b.f.redisURL)
	}
	for _, kv := range b.f.serverEnv {
		if !strings.HasPrefix(kv, "PHONEVERIFY_") && !strings.HasPrefix(kv, "GO") || !strings.Contains(kv, "=") {
			return fmt.Errorf("bench: --server-env %q: want PHONEVERIFY_…=VALUE or GO…=VALUE", kv)
		}
		env = append(env, kv)
	}
	db := "SQLite in " + dir
	if !sqlite {
		db = "PostgreSQL " + redactURL(dbURL)
		if u, err := url.Parse(dbURL); err == nil {
			b.pgDatabase = strings.TrimPrefix(u.Path, "/")
		}
	}
	limiter := "database"
	if b.f.redisURL != "" {
		limiter = "Redis " + redactURL(b.f.redisURL)
	}
	b.printf("bench: starting %d node(s) of %s: %s, rate limiter in %s, webhook gateway → receiver %s\n", b.f.nodes, bin, db, limiter, recvURL)
	b.printf("bench: start limits off on the node(s): PHONEVERIFY_RATE_LIMIT_IP=off PHONEVERIFY_RATE_LIMIT_COUNTRY=off (one client address, every flow a new number; the per-number send limits and the failed-check cap stay on); PHONEVERIFY_FRAUD_MODE=off (to fraud protection the load is a pumping attack); demo off, log level warn\n")
	if !sqlite && !secretSet {
		b.printf("bench: PHONEVERIFY_SECRET is not set: the nodes get a new random one, which suits a new database only\n")
	}
	sc := loadgen.ServerConfig{Binary: bin, Dir: dir, Env: env}

	// The first start creates (or migrates) the database; the second one,
	// timed, is a start on an existing database.
	first, err := loadgen.StartServer(ctx, sc)
	if err != nil {
		return fmt.Errorf("bench: start the node: %w", err)
	}
	b.printf("bench: first start (database created or migrated): %d ms\n", first.Startup.Milliseconds())
	if err := first.Stop(); err != nil {
		return fmt.Errorf("bench: stop the first node: %w", err)
	}
	var nodes []*loadgen.Server
	defer func() {
		for _, n := range nodes {
			if err := n.Stop(); err != nil {
				b.printf("bench: %v\n", err)
			}
		}
	}()
	for i := range b.f.nodes {
		n, err := loadgen.StartServer(ctx, sc)
		if err != nil {
			return fmt.Errorf("bench: start node %d: %w", i+1, err)
		}
		nodes = append(nodes, n)
		b.pids = append(b.pids, n.Pid())
		if i == 0 {
			b.startupMs = float64(n.Startup.Microseconds()) / 1000
		}
	}
	var targets []string
	for _, n := range nodes {
		targets = append(targets, n.URL)
	}
	return b.load(ctx, targets, key, recv)
}

// cpuSnapshot is the CPU time used so far by everything the report names.
type cpuSnapshot struct {
	at     time.Time
	nodes  []time.Duration
	self   time.Duration
	byName map[string]time.Duration
	// pgBackends is the CPU time of the PostgreSQL backends serving the
	// bench's database.
	pgBackends time.Duration
	busy       time.Duration
	machine    time.Duration
}

func (b *bench) cpu() cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), byName: loadgen.CPUByCommand("postgres", "redis-server")}
	for _, pid := range b.pids {
		d, _ := loadgen.CPUTime(pid)
		s.nodes = append(s.nodes, d)
	}
	s.self, _ = loadgen.CPUTime(os.Getpid())
	if b.pgDatabase != "" {
		s.pgBackends = loadgen.CPUOfPostgresDatabase(b.pgDatabase)
	}
	s.busy, s.machine, _ = loadgen.MachineCPU()
	return s
}

// load runs the flows against targets and prints the report.
func (b *bench) load(ctx context.Context, targets []string, key string, recv *loadgen.Receiver) error {
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	cfg := loadgen.Config{
		Targets: targets, APIKey: key, Receiver: recv,
		Rate: b.f.rate, Concurrency: b.f.concurrency, Duration: b.f.duration, MaxFlows: b.f.maxPairs,
		WrongRatio: b.f.wrong, ResendRatio: b.f.resend, IntrospectRatio: b.f.introspect,
		CodeTimeout: b.f.codeTimeout, Seed: binary.LittleEndian.Uint64(seed[:]),
	}
	rate := "as fast as possible"
	if b.f.rate > 0 {
		rate = fmt.Sprintf("%g flows/s", b.f.rate)
	}
	b.printf("bench: %s over %d node(s), concurrency %d, for %s; mix: wrong code first %.0f%%, resend %.0f%%, introspect %.0f%%\n",
		rate, len(targets), b.f.concurrency, b.f.duration, 100*b.f.wrong, 100*b.f.resend, 100*b.f.introspect)
	load0 := loadgen.LoadAverage()
	before := b.cpu()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil && res == nil {
		return fmt.Errorf("bench: %w", err)
	}
	after := b.cpu()
	b.report(res, recv, before, after, load0)
	if err != nil {
		return fmt.Errorf("bench: interrupted: %w", err)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (b *bench) report(res *loadgen.Result, recv *loadgen.Receiver, before, after cpuSnapshot, load0 string) {
	secs := res.Elapsed.Seconds()
	pairsPerS := float64(res.Pairs) / secs
	b.printf("\nflows started %d, pairs completed %d in %.2fs: %.1f pairs/s, %.1f requests/s\n",
		res.Flows, res.Pairs, secs, pairsPerS, float64(res.Requests())/secs)
	if res.Late > 0 {
		b.printf("%d flows started late: --concurrency flows were in flight (the nodes did not keep up with --rate)\n", res.Late)
	}
	b.printf("%-12s %9s %9s %9s %9s %9s %9s\n", "operation", "requests", "p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms")
	row := func(name string, l []time.Duration) {
		if len(l) == 0 {
			b.printf("%-12s %9d %9s %9s %9s %9s %9s\n", name, 0, "-", "-", "-", "-", "-")
			return
		}
		b.printf("%-12s %9d %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, len(l),
			ms(loadgen.Percentile(l, 50)), ms(loadgen.Percentile(l, 90)), ms(loadgen.Percentile(l, 99)),
			ms(loadgen.Percentile(l, 99.9)), ms(l[len(l)-1]))
	}
	for _, op := range loadgen.Operations {
		row(op, res.Latencies[op])
	}
	all := res.All()
	row("all", all)
	row("(delivery)", res.Delivery)
	b.printf("(delivery: from a start's answer to its code at the receiver, through the outbox and the webhook gateway; not a request)\n")
	if len(res.Errors) == 0 {
		b.printf("errors: none\n")
	} else {
		b.printf("errors by code:")
		for code, n := range res.Errors {
			b.printf(" %s=%d", code, n)
		}
		b.printf("\n")
	}
	if _, refused := recv.Received(); refused > 0 {
		b.printf("receiver refused %d badly signed or malformed messages\n", refused)
	}

	// CPU: what saturates first.
	wall := after.at.Sub(before.at).Seconds()
	cores := func(d time.Duration) string { return fmt.Sprintf("%.2fs (%.2f cores)", d.Seconds(), d.Seconds()/wall) }
	b.printf("cpu over the run (%.1fs wall):", wall)
	for i := range after.nodes {
		if i < len(before.nodes) {
			b.printf(" node%d %s,", i+1, cores(after.nodes[i]-before.nodes[i]))
		}
	}
	b.printf(" bench %s", cores(after.self-before.self))
	if b.pgDatabase != "" {
		b.printf(", postgres backends of %s %s", b.pgDatabase, cores(after.pgBackends-before.pgBackends))
	}
	for _, name := range []string{"postgres", "redis-server"} {
		if d := after.byName[name] - before.byName[name]; d > 0 {
			b.printf(", %s (all its processes, other users' too) %s", name, cores(d))
		}
	}
	if total := after.machine - before.machine; total > 0 {
		busy := after.busy - before.busy
		b.printf("; machine busy %.2f of %d cores\n", float64(runtime.NumCPU())*busy.Seconds()/total.Seconds(), runtime.NumCPU())
	} else {
		b.printf("\n")
	}
	b.printf("load average before %s, after %s\n", load0, loadgen.LoadAverage())
	if res.Pairs > 0 {
		// CPU per pair does not depend on what else the machine runs, so
		// it is the figure to compare across loaded runs.
		var nodes time.Duration
		for i := range after.nodes {
			if i < len(before.nodes) {
				nodes += after.nodes[i] - before.nodes[i]
			}
		}
		perPair := func(d time.Duration) float64 { return ms(d) / float64(res.Pairs) }
		sum := perPair(nodes) + perPair(after.self-before.self)
		b.printf("cpu per pair (with its share of resends, wrong checks, introspections):")
		if len(after.nodes) > 0 {
			b.printf(" nodes %.2f ms,", perPair(nodes))
		}
		b.printf(" bench %.2f ms", perPair(after.self-before.self))
		if b.pgDatabase != "" {
			pg := after.pgBackends - before.pgBackends
			sum += perPair(pg)
			b.printf(", postgres backends %.2f ms", perPair(pg))
		}
		if len(after.nodes) > 0 && sum > 0 {
			b.printf("; all of %d cores for these alone would give about %.0f pairs/s (an estimate, not a measurement)", runtime.NumCPU(), float64(runtime.NumCPU())*1000/sum)
		}
		b.printf("\n")
	}

	rss := "n/a"
	var peak int64
	for i, pid := range b.pids {
		if r, err := loadgen.PeakRSS(pid); err == nil {
			b.printf("node%d (pid %d) peak RSS %.1f MiB\n", i+1, pid, float64(r)/(1<<20))
			peak = max(peak, r)
		}
	}
	if peak > 0 {
		rss = strconv.FormatFloat(float64(peak)/(1<<20), 'f', 1, 64)
	}
	if b.startupMs >= 0 {
		b.printf("startup_ms=%.1f\n", b.startupMs)
	}
	b.printf("pairs_per_s=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d server_rss_mib=%s\n",
		pairsPerS, ms(loadgen.Percentile(all, 50)), ms(loadgen.Percentile(all, 99)), res.ErrorCount(), rss)
}
