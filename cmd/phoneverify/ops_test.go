package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/internal/testenv"
)

const (
	opsWebhookSecret = "webhook-secret-0123456789abcdef"
	opsCompatSID     = "AC0123456789abcdef0123456789abcdef"
	opsCompatToken   = "compattoken0123456789abcdef"
)

// fakeGateway is an operator's webhook endpoint on loopback: it keeps the
// code sent to each number, and answers 503 while failing is set.
type fakeGateway struct {
	srv     *httptest.Server
	failing atomic.Bool
	mu      sync.Mutex
	codes   map[string][]string
}

func newFakeGateway(t *testing.T) *fakeGateway {
	g := &fakeGateway{codes: map[string][]string{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.failing.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var m struct{ To, Code string }
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.codes[m.To] = append(g.codes[m.To], m.Code)
		g.mu.Unlock()
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// code waits for the n-th message (from 1) to a number and returns its code.
func (g *fakeGateway) code(t *testing.T, to string, n int) string {
	t.Helper()
	var c string
	waitFor(t, "message "+to, 10*time.Second, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.codes[to]) >= n {
			c = g.codes[to][n-1]
		}
		return c != ""
	})
	return c
}

func (g *fakeGateway) env() map[string]string {
	return map[string]string{
		"PHONEVERIFY_GATEWAY_WEBHOOK_URL":    g.srv.URL + "/sms",
		"PHONEVERIFY_GATEWAY_WEBHOOK_SECRET": opsWebhookSecret,
	}
}

// scrape reads a node's /metrics in the Prometheus text format.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", res.StatusCode, err)
	}
	return string(b)
}

// sample returns the value of the series written exactly as series
// ("name{a=\"x\",b=\"y\"}", labels in the order Prometheus writes them,
// alphabetical), or "" when it is absent.
func sample(text, series string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestMetricsEndToEnd runs known traffic through a real node (SQLite, the
// webhook gateway against a loopback endpoint), scrapes /metrics, checks
// the output with promtool and the values of the series the traffic moved,
// and checks that the dashboard and alert rules in deploy/ only name
// metrics the node exports.
func TestMetricsEndToEnd(t *testing.T) {
	promtool := testenv.Promtool(t)
	gw := newFakeGateway(t)
	env := gw.env()
	env["PHONEVERIFY_RATE_LIMIT_IP"] = "4/10m"
	m, _ := startNode(t, t.TempDir(), env)

	const a, b = "+14155552671", "+14155552672"
	st, va := call(t, m, "POST", "/v1/verifications", `{"to":"`+a+`"}`)
	if st != http.StatusCreated {
		t.Fatalf("start: %d %v", st, va)
	}
	svc := va["service_id"].(string)
	code := gw.code(t, a, 1)
	if st, _ := call(t, m, "POST", "/v1/verifications/check", `{"to":"`+a+`","code":"`+wrongCode(code)+`"}`); st != http.StatusBadRequest {
		t.Fatalf("wrong code: %d", st)
	}
	if st, _ := call(t, m, "POST", "/v1/verifications/check", `{"to":"`+a+`","code":"`+code+`"}`); st != http.StatusOK {
		t.Fatalf("right code: %d", st)
	}
	st, vb := call(t, m, "POST", "/v1/verifications", `{"to":"`+b+`"}`)
	if st != http.StatusCreated {
		t.Fatalf("start b: %d", st)
	}
	gw.code(t, b, 1)
	if st, _ := call(t, m, "POST", "/v1/verifications", `{"to":"`+b+`"}`); st != http.StatusCreated {
		t.Fatalf("resend b: %d", st)
	}
	gw.code(t, b, 2)
	if st, _ := call(t, m, "POST", "/v1/verifications/"+vb["id"].(string)+"/cancel", ``); st != http.StatusOK {
		t.Fatalf("cancel b: %d", st)
	}
	if st, _ := call(t, m, "GET", "/v1/no-such-thing/42", ``); st != http.StatusNotFound {
		t.Fatalf("unknown path: %d", st)
	}
	// Pages are counted under their own route pattern, not under the
	// /admin/ or /demo/ they are mounted at, nor under their path.
	const pageID = "VE00000000000000000000000000000042"
	pages := map[string]string{ // path → route pattern
		"/admin/login":                   "GET /admin/login",
		"/admin/verifications/" + pageID: "GET /admin/verifications/{id}",
		"/demo/signup":                   "GET /demo/signup",
	}
	pageCodes := map[string]int{}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, route := range pages {
		res, err := noRedirect.Get("http://" + m.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 400 {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		pageCodes[route] = res.StatusCode
	}
	// The fourth start from this address is allowed, the fifth refused.
	gw.failing.Store(true)
	if st, _ := call(t, m, "POST", "/v1/verifications", `{"to":"+14155552673"}`); st != http.StatusCreated {
		t.Fatalf("start c: %d", st)
	}
	if st, _ := call(t, m, "POST", "/v1/verifications", `{"to":"+14155552674"}`); st != http.StatusTooManyRequests {
		t.Fatalf("fifth start: %d, want 429", st)
	}

	var text string
	waitFor(t, "the failed send counted", 10*time.Second, func() bool {
		text = scrape(t, m.Addr())
		return sample(text, `phoneverify_messages_total{gateway="webhook",status="retry"}`) != ""
	})
	l := func(kv ...string) string { // labels as Prometheus writes them
		var parts []string
		for i := 0; i < len(kv); i += 2 {
			parts = append(parts, kv[i]+`="`+kv[i+1]+`"`)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	want := map[string]string{
		"phoneverify_verifications_started_total" + l("country", "US", "service", svc):                         "3",
		"phoneverify_verification_resends_total" + l("country", "US", "service", svc):                          "1",
		"phoneverify_verifications_completed_total" + l("country", "US", "service", svc, "status", "approved"): "1",
		"phoneverify_verifications_completed_total" + l("country", "US", "service", svc, "status", "canceled"): "1",
		"phoneverify_verification_checks_total" + l("result", "incorrect", "service", svc):                     "1",
		"phoneverify_verification_checks_total" + l("result", "approved", "service", svc):                      "1",
		"phoneverify_refusals_total" + l("reason", "per_ip", "service", svc):                                   "1",
		"phoneverify_http_requests_total" + l("code", "201", "route", "POST /v1/verifications"):                "4",
		"phoneverify_http_requests_total" + l("code", "429", "route", "POST /v1/verifications"):                "1",
		"phoneverify_http_requests_total" + l("code", "400", "route", "POST /v1/verifications/check"):          "1",
		"phoneverify_http_requests_total" + l("code", "200", "route", "POST /v1/verifications/{id}/cancel"):    "1",
		"phoneverify_http_requests_total" + l("code", "404", "route", "unmatched"):                             "1",
		"phoneverify_http_request_duration_seconds_count" + l("route", "POST /v1/verifications/check"):         "2",
		"phoneverify_messages_total" + l("gateway", "webhook", "status", "sent"):                               "3",
		"phoneverify_gateway_send_duration_seconds_count" + l("gateway", "webhook", "result", "ok"):            "3",
		"phoneverify_outbox_queued_messages":                                                                   "1",
		"phoneverify_outbox_backlog_up":                                                                        "1",
		"go_sql_max_open_connections" + l("db_name", "primary"):                                                "1",
	}
	for route, code := range pageCodes {
		want["phoneverify_http_requests_total"+l("code", strconv.Itoa(code), "route", route)] = "1"
	}
	for series, v := range want {
		if got := sample(text, series); got != v {
			t.Errorf("%s = %q, want %q", series, got, v)
		}
	}
	if got := grepLines(text, `route="/admin/"`) + grepLines(text, `route="/demo/"`); got != "" {
		t.Errorf("pages counted under their section's prefix:\n%s", got)
	}
	if got := sample(text, "phoneverify_gateway_send_duration_seconds_count"+l("gateway", "webhook", "result", "temporary_error")); got == "" || got == "0" {
		t.Errorf("the failed send was not timed:\n%s", grepLines(text, "gateway_send"))
	}
	if sample(text, "go_sql_open_connections"+l("db_name", "reader")) == "" {
		t.Errorf("no statistics of the SQLite reader pool")
	}
	for _, leak := range []string{a, b, code, "/v1/no-such-thing", vb["id"].(string), pageID} {
		if strings.Contains(text, leak) {
			t.Errorf("the metrics carry %q: labels must stay bounded", leak)
		}
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// Every phoneverify_* metric the dashboard and the alert rules use
	// is one the node exports.
	exported := map[string]bool{}
	for _, name := range m.Metrics.Names() {
		exported[name] = true
	}
	for _, line := range strings.Split(text, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			exported[name] = true
		}
	}
	used := regexp.MustCompile(`\b(phoneverify_[a-z_]+|go_sql_[a-z_]+)`)
	for _, f := range []string{"../../deploy/grafana-dashboard.json", "../../deploy/prometheus-alerts.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range used.FindAllString(string(b), -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if n, ok := strings.CutSuffix(name, suffix); ok && exported[n] {
					base = n
				}
			}
			if !exported[base] && !strings.HasPrefix(name, "phoneverify:") {
				t.Errorf("%s uses %s, which the node does not export", filepath.Base(f), name)
			}
		}
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricsListener: PHONEVERIFY_METRICS_ADDR moves /metrics to a
// listener of its own, off the main one; "off" serves it nowhere.
func TestMetricsListener(t *testing.T) {
	m, _ := startNode(t, t.TempDir(), map[string]string{"PHONEVERIFY_METRICS_ADDR": "127.0.0.1:0"})
	if m.MetricsAddr() == "" {
		t.Fatal("no metrics listener")
	}
	if text := scrape(t, m.MetricsAddr()); !strings.Contains(text, "phoneverify_outbox_backlog_up 1") {
		t.Errorf("metrics listener serves:\n%s", text)
	}
	if st, _ := call(t, m, "GET", "/metrics", ""); st != http.StatusNotFound {
		t.Errorf("GET /metrics on the main listener: %d, want 404", st)
	}
	off, _ := startNode(t, t.TempDir(), map[string]string{"PHONEVERIFY_METRICS_ADDR": "off"})
	if st, _ := call(t, off, "GET", "/metrics", ""); st != http.StatusNotFound || off.MetricsAddr() != "" {
		t.Errorf("metrics off: GET /metrics answers %d", st)
	}
}

// TestAlertRules checks deploy/prometheus-alerts.yml with promtool and that
// the Grafana dashboard is JSON with panels.
func TestAlertRules(t *testing.T) {
	promtool := testenv.Promtool(t)
	out, err := exec.Command(promtool, "check", "rules", "../../deploy/prometheus-alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	for _, alert := range []string{"PhoneverifyOutboxBacklog", "PhoneverifyConversionDrop", "PhoneverifyGatewayErrors"} {
		if b, _ := os.ReadFile("../../deploy/prometheus-alerts.yml"); !bytes.Contains(b, []byte("alert: "+alert)) {
			t.Errorf("no alert %s", alert)
		}
	}
	b, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) < 5 {
		t.Fatalf("dashboard %q has %d panels", dash.Title, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without an expression", p.Title)
			}
		}
	}
}

// TestLogsKeepSecrets runs real traffic through a node that logs JSON at
// debug level — starts, checks with a wrong and the right code, a token
// look-up, Twilio-compatible calls, a failed gateway — and checks that the
// captured output never holds a full number, a code, the API key, the
// proof, or any configured secret, and that every line is JSON and every
// request line carries the request id its response named.
func TestLogsKeepSecrets(t *testing.T) {
	gw := newFakeGateway(t)
	env := gw.env()
	env["PHONEVERIFY_LOG_LEVEL"] = "debug"
	env["PHONEVERIFY_SECRET"] = testSecret
	env["PHONEVERIFY_COMPAT_ACCOUNT_SID"] = opsCompatSID
	env["PHONEVERIFY_COMPAT_AUTH_TOKEN"] = opsCompatToken
	env["PHONEVERIFY_ADMIN_PASSWORD"] = "admin-password-0123"
	m, logs := startNode(t, t.TempDir(), env)

	const a, b = "+14155552681", "+14155552682"
	var secrets []string
	st, v := call(t, m, "POST", "/v1/verifications", `{"to":"`+a+`","subject":"user-1"}`)
	if st != http.StatusCreated {
		t.Fatalf("start: %d", st)
	}
	code := gw.code(t, a, 1)
	call(t, m, "POST", "/v1/verifications/check", `{"to":"`+a+`","code":"`+wrongCode(code)+`","subject":"user-1"}`)
	st, ok := call(t, m, "POST", "/v1/verifications/check", `{"id":"`+v["id"].(string)+`","code":"`+code+`","subject":"user-1"}`)
	if st != http.StatusOK {
		t.Fatalf("check: %d", st)
	}
	tok := ok["token"].(string)
	call(t, m, "GET", "/v1/tokens/"+tok, "")
	call(t, m, "GET", "/v1/tokens/"+tok+"x", "")
	secrets = append(secrets, a, strings.TrimPrefix(a, "+"), code, tok)

	// The Twilio-compatible API.
	twilio := func(method, path string, form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest(method, "http://"+m.Addr()+path, strings.NewReader(form.Encode()))
		req.SetBasicAuth(opsCompatSID, opsCompatToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	st, list := twilio("GET", "/v2/Services", nil)
	if st != http.StatusOK {
		t.Fatalf("twilio list services: %d %v", st, list)
	}
	sid := list["services"].([]any)[0].(map[string]any)["sid"].(string)
	if st, out := twilio("POST", "/v2/Services/"+sid+"/Verifications", url.Values{"To": {b}, "Channel": {"sms"}}); st != http.StatusCreated {
		t.Fatalf("twilio start: %d %v", st, out)
	}
	codeB := gw.code(t, b, 1)
	twilio("POST", "/v2/Services/"+sid+"/VerificationCheck", url.Values{"To": {b}, "Code": {wrongCode(codeB)}})
	if st, out := twilio("POST", "/v2/Services/"+sid+"/VerificationCheck", url.Values{"To": {b}, "Code": {codeB}}); st != http.StatusOK || out["status"] != "approved" {
		t.Fatalf("twilio check: %d %v", st, out)
	}
	secrets = append(secrets, b, strings.TrimPrefix(b, "+"), codeB)

	// A gateway that fails: its error is logged, the number masked.
	gw.failing.Store(true)
	const c = "+14155552683"
	if st, _ := call(t, m, "POST", "/v1/verifications", `{"to":"`+c+`"}`); st != http.StatusCreated {
		t.Fatalf("start c: %d", st)
	}
	waitFor(t, "the failed send logged", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "send failed")
	})
	secrets = append(secrets, c, strings.TrimPrefix(c, "+"), testKey, testSecret, opsCompatToken, opsWebhookSecret, "admin-password-0123")

	// Requests ids: a line per request, with the id the response gave.
	req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/v1/verifications/VEnope", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("X-Request-Id", "trace-me-42")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("X-Request-Id"); got != "trace-me-42" {
		t.Errorf("X-Request-Id = %q", got)
	}

	// Close the node so that every line is written, then read them.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the logs hold %q", s)
		}
	}
	var requestLines, traced int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		if rec["msg"] != "request" {
			continue
		}
		requestLines++
		id, _ := rec["request_id"].(string)
		if id == "" {
			t.Errorf("a request line without request_id: %s", line)
		}
		if id == "trace-me-42" {
			traced++
			if rec["route"] != "GET /v1/verifications/{id}" || rec["status"] != float64(404) {
				t.Errorf("request line: %s", line)
			}
		}
		if r, _ := rec["route"].(string); strings.Contains(r, "VE") || strings.Contains(r, "eyJ") {
			t.Errorf("a request line names a raw path: %s", line)
		}
	}
	if requestLines < 10 || traced != 1 {
		t.Errorf("%d request lines, %d with the caller's id; logs:\n%s", requestLines, traced, out)
	}
}

// TestRequestIDOnEveryLine: a line logged inside a request (here, the
// engine's line for a refused check) carries the request's id.
func TestRequestIDOnEveryLine(t *testing.T) {
	m, logs := startNode(t, t.TempDir(), map[string]string{"PHONEVERIFY_LOG_LEVEL": "debug"})
	call(t, m, "POST", "/v1/verifications", `{"to":"+14155552691"}`)
	req, _ := http.NewRequest("POST", "http://"+m.Addr()+"/v1/verifications/check", strings.NewReader(`{"to":"+14155552691","code":"000000"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "check-7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var msgs []string
	waitFor(t, "the request line", 5*time.Second, func() bool {
		msgs = msgs[:0]
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["request_id"] == "check-7" {
				msgs = append(msgs, rec["msg"].(string))
			}
		}
		return slices.Contains(msgs, "request")
	})
	if len(msgs) < 2 {
		t.Errorf("lines with the request id: %q, want the engine's and the request's", msgs)
	}
}

// TestConfigFile: one precedence, flags > environment > file > defaults,
// secrets in the file only when it is private, unknown keys refused.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(strings.Repeat("f", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := write("base.env", `# phoneverify
PHONEVERIFY_ADDR=0.0.0.0:9000
export PHONEVERIFY_APP_NAME="Acme shop"
PHONEVERIFY_OUTBOX_WORKERS = 3
PHONEVERIFY_LOG_LEVEL='warn'
PHONEVERIFY_SECRET_FILE=`+secretFile+`
PHONEVERIFY_GATEWAY_WEBHOOK_URL=http://127.0.0.1:1/sms
PHONEVERIFY_GATEWAY_WEBHOOK_SECRET=`+opsWebhookSecret+`
`, 0o600)
	public := write("public.env", "PHONEVERIFY_ADDR=:9000\nPHONEVERIFY_ADMIN_PASSWORD=admin-password-0123\n", 0o644)
	publicFile := write("public-file.env", "PHONEVERIFY_SECRET_FILE="+secretFile+"\n", 0o644)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(*Config) bool
		wantErr string
	}{
		{"file over defaults", map[string]string{"PHONEVERIFY_CONFIG": base}, nil, func(c *Config) bool {
			return c.Addr == "0.0.0.0:9000" && c.AppName == "Acme shop" && c.OutboxWorkers == 3 && c.LogLevel == "warn" &&
				c.Secret == strings.Repeat("f", 40) && c.Gateways.Webhook != nil && c.Issuer == "phoneverify"
		}, ""},
		{"environment over file", map[string]string{"PHONEVERIFY_CONFIG": base, "PHONEVERIFY_ADDR": ":9100", "PHONEVERIFY_SECRET": strings.Repeat("e", 40)}, nil, func(c *Config) bool {
			return c.Addr == ":9100" && c.AppName == "Acme shop" && c.Secret == strings.Repeat("e", 40)
		}, ""},
		{"flag over environment and file", map[string]string{"PHONEVERIFY_ADDR": ":9100"}, []string{"--config", base, "--addr", ":9200"}, func(c *Config) bool {
			return c.Addr == ":9200" && c.ConfigFile == base && c.OutboxWorkers == 3
		}, ""},
		{"no file", map[string]string{"PHONEVERIFY_CONFIG": filepath.Join(dir, "nope.env")}, nil, nil, "config file"},
		{"unknown key", map[string]string{"PHONEVERIFY_CONFIG": write("typo.env", "PHONEVERIFY_ADRR=:1\n", 0o600)}, nil, nil, "typo.env:1: unknown setting PHONEVERIFY_ADRR"},
		{"not KEY=VALUE", map[string]string{"PHONEVERIFY_CONFIG": write("bad.env", "\nPHONEVERIFY_ADDR\n", 0o600)}, nil, nil, "bad.env:2: want KEY=VALUE"},
		{"twice", map[string]string{"PHONEVERIFY_CONFIG": write("twice.env", "PHONEVERIFY_ADDR=:1\nPHONEVERIFY_ADDR=:2\n", 0o600)}, nil, nil, "already set on line 1"},
		{"bad duration in file", map[string]string{"PHONEVERIFY_CONFIG": write("dur.env", "PHONEVERIFY_SHUTDOWN_TIMEOUT=15\n", 0o600)}, nil, nil, "PHONEVERIFY_SHUTDOWN_TIMEOUT"},
		{"inline secret in a readable file", map[string]string{"PHONEVERIFY_CONFIG": public}, nil, nil, "chmod 600"},
		{"secret file path in a readable file", map[string]string{"PHONEVERIFY_CONFIG": publicFile}, nil, func(c *Config) bool {
			return c.Secret == strings.Repeat("f", 40)
		}, ""},
		{"gateway secret in a readable file", map[string]string{"PHONEVERIFY_CONFIG": write("gw.env", "PHONEVERIFY_GATEWAY_WEBHOOK_URL=http://x/\nPHONEVERIFY_GATEWAY_WEBHOOK_SECRET="+opsWebhookSecret+"\n", 0o640)}, nil, nil, "PHONEVERIFY_GATEWAY_WEBHOOK_SECRET is a secret"},
		{"config in the file", map[string]string{"PHONEVERIFY_CONFIG": write("self.env", "PHONEVERIFY_CONFIG=/etc/x\n", 0o600)}, nil, nil, "cannot be set in the config file"},
		{"unreadable secret file", map[string]string{"PHONEVERIFY_CONFIG": write("nosecret.env", "PHONEVERIFY_SECRET_FILE=/nonexistent/secret\n", 0o600)}, nil, nil, "PHONEVERIFY_SECRET_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadConfigCase(t, tt.env, tt.args, tt.wantErr)
			if c != nil && !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

// TestConfigCheck runs "phoneverify config check" as a user would: the
// effective configuration with each value's source and secrets hidden, or
// a non-zero exit listing what is wrong.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "phoneverify.env")
	if err := os.WriteFile(file, []byte("PHONEVERIFY_ADDR=0.0.0.0:9000\nPHONEVERIFY_SECRET="+testSecret+"\nPHONEVERIFY_OUTBOX_WORKERS=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string // lines of the output, by regexp
		wantErr []string
	}{
		{"sources", map[string]string{"PHONEVERIFY_CONFIG": file, "PHONEVERIFY_OUTBOX_WORKERS": "5",
			"PHONEVERIFY_DATABASE_URL": "postgres://pv:hunter2@db:5432/pv", "PHONEVERIFY_API_KEY": testKey},
			[]string{"--log-level", "debug"}, []string{
				`(?m)^PHONEVERIFY_CONFIG=\S+phoneverify.env +# environment$`,
				`(?m)^PHONEVERIFY_ADDR=0\.0\.0\.0:9000 +# file \S+phoneverify.env:1$`,
				`(?m)^PHONEVERIFY_SECRET=\*\*\* +# file \S+phoneverify.env:2$`,
				`(?m)^PHONEVERIFY_OUTBOX_WORKERS=5 +# environment$`,
				`(?m)^PHONEVERIFY_LOG_LEVEL=debug +# flag --log-level$`,
				`(?m)^PHONEVERIFY_API_KEY=\*\*\* +# environment$`,
				`(?m)^PHONEVERIFY_DATABASE_URL=postgres://pv:xxxxx@db:5432/pv +# environment$`,
				`(?m)^PHONEVERIFY_ISSUER=phoneverify +# default$`,
				`(?m)^PHONEVERIFY_REDIS_URL= +# unset$`,
				`(?m)^configuration OK$`,
			}, nil},
		{"errors", map[string]string{"PHONEVERIFY_EXPIRE_INTERVAL": "often"}, nil, nil,
			[]string{"invalid configuration", "PHONEVERIFY_EXPIRE_INTERVAL"}},
		{"bad URL", map[string]string{"PHONEVERIFY_DATABASE_URL": "mysql://db/pv"}, nil, nil,
			[]string{"PHONEVERIFY_DATABASE_URL", "unsupported database URL scheme"}},
		{"bad Redis URL", map[string]string{"PHONEVERIFY_REDIS_URL": "localhost:6379"}, nil, nil,
			[]string{"PHONEVERIFY_REDIS_URL"}},
		{"unreadable secret file", map[string]string{"PHONEVERIFY_ADMIN_PASSWORD_FILE": filepath.Join(dir, "missing")}, nil, nil,
			[]string{"PHONEVERIFY_ADMIN_PASSWORD_FILE", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"config", "check"}, tt.args...), envFunc(tt.env), &stdout, &stderr)
			out := stdout.String()
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; output:\n%s", out)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output does not match %s:\n%s", w, out)
				}
			}
			for _, s := range []string{testSecret, testKey, "hunter2"} {
				if strings.Contains(out, s) {
					t.Errorf("config check prints the secret %q", s)
				}
			}
		})
	}
}
