package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/clientip"
	"github.com/phoneverify/phoneverify/gateway/router"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// Config is the whole configuration of one node, loaded once from the
// environment and flags and passed down; nothing reads the environment later.
type Config struct {
	Addr            string
	DatabaseURL     string
	Secret          string
	APIKey          string
	DefaultRegion   string
	TestNumbers     map[string]string
	AppName         string
	Issuer          string
	LogLevel        string
	LogFormat       string
	DBMaxOpenConns  int
	ShutdownTimeout time.Duration
	ExpireInterval  time.Duration

	// CompatAccountSID and CompatAuthToken are bootstrap credentials of the
	// Twilio-compatible API (development and tests).
	CompatAccountSID string
	CompatAuthToken  string
	// PublicURL is where providers reach this service (delivery receipts).
	PublicURL        string
	Routes           string
	OutboxWorkers    int
	CircuitThreshold int
	CircuitCooldown  time.Duration
	// VonageSignatureSecret, when set, is required on Vonage receipts.
	VonageSignatureSecret string
	VonageSignatureMethod string
	// Gateways holds every enabled gateway, read from the
	// PHONEVERIFY_GATEWAY_* variables by the gateway packages.
	Gateways GatewayConfigs
	// StartupTimeout is how long a starting node waits for its database
	// and Redis to answer.
	StartupTimeout time.Duration
	RedisURL       string
	RedisPoolSize  int
	// RateLimitIP and RateLimitCountry limit starts per client address and
	// per destination country; a zero Limit is off.
	RateLimitIP      pv.Limit
	RateLimitCountry pv.Limit
	// The other server-wide default limits; every service follows them
	// unless it sets its own (phoneverify service update --per-ip …).
	RateLimitNumberDay    pv.Limit
	RateLimitSubject      pv.Limit
	RateLimitFailedChecks pv.Limit
	SMSBudgetHour         pv.Limit
	SMSBudgetDay          pv.Limit
	// TrustedProxies lists the proxies whose X-Forwarded-For names the
	// client (comma-separated CIDRs).
	TrustedProxies *clientip.Resolver
	// Demo serves the demo apps under /demo/: nil means on with SQLite
	// (development) and off with PostgreSQL (production).
	Demo *bool
	// AdminPassword signs in to the dashboard under /admin/.
	AdminPassword string
	// EventsURL and EventsSecret subscribe one URL to every event of the
	// default service.
	EventsURL    string
	EventsSecret string
	// FraudMode is the default service's fraud protection mode.
	FraudMode pv.FraudMode
	// Retention is how long verification records are kept; 0 keeps them.
	Retention time.Duration
	// MetricsAddr is where /metrics is served: "" on the main listener,
	// "off" nowhere, else a listener of its own.
	MetricsAddr string
	// ConfigFile is the configuration file read (PHONEVERIFY_CONFIG or
	// --config), "" for none.
	ConfigFile string
	// Sources says where each setting's value came from, in the order of
	// the settings table, for "phoneverify config check".
	Sources []Source
}

// setting is one configuration entry: its environment variable, its flag
// (the variable name without the prefix, lower case with dashes), default and
// help. Secrets may also be given as NAME_FILE.
type setting struct {
	env    string
	def    string
	help   string
	secret bool
	set    func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
		{env: EnvConfig, help: "configuration file of KEY=VALUE lines (the variables below); flags and the environment override it",
			set: func(c *Config, v string) error { return nil }},
		{env: "PHONEVERIFY_ADDR", def: "127.0.0.1:8080", help: "address the HTTP API listens on",
			set: func(c *Config, v string) error { c.Addr = v; return nil }},
		{env: "PHONEVERIFY_DATABASE_URL", def: "sqlite:phoneverify.db", help: "sqlite:PATH, sqlite:///ABS/PATH or postgres://…",
			set: func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
		{env: "PHONEVERIFY_SECRET", secret: true, help: "server secret (≥32 characters) keying code hashes and sealing signing keys; on SQLite created beside the database when unset, required on PostgreSQL",
			set: func(c *Config, v string) error { c.Secret = v; return nil }},
		{env: "PHONEVERIFY_API_KEY", secret: true, help: "bootstrap API key for the default service (development and tests); never stored",
			set: func(c *Config, v string) error { c.APIKey = v; return nil }},
		{env: "PHONEVERIFY_COMPAT_ACCOUNT_SID", help: "bootstrap account SID (AC + 32 hex) of the Twilio-compatible API under /v2/ (development and tests); never stored",
			set: func(c *Config, v string) error { c.CompatAccountSID = v; return nil }},
		{env: "PHONEVERIFY_COMPAT_AUTH_TOKEN", secret: true, help: "bootstrap auth token (letters and digits) that goes with PHONEVERIFY_COMPAT_ACCOUNT_SID; never stored",
			set: func(c *Config, v string) error { c.CompatAuthToken = v; return nil }},
		{env: "PHONEVERIFY_DEFAULT_REGION", help: "ISO country for numbers written without a country code, e.g. NP",
			set: func(c *Config, v string) error { c.DefaultRegion = strings.ToUpper(v); return nil }},
		{env: "PHONEVERIFY_TEST_NUMBERS", help: "test numbers with fixed codes that are never sent: +15005550006=123456,…",
			set: func(c *Config, v string) error {
				m, err := parseTestNumbers(v)
				c.TestNumbers = m
				return err
			}},
		{env: "PHONEVERIFY_APP_NAME", def: "phoneverify", help: "name of the default service when it is first created ({app} in messages)",
			set: func(c *Config, v string) error { c.AppName = v; return nil }},
		{env: "PHONEVERIFY_ISSUER", def: "phoneverify", help: "iss claim of issued tokens",
			set: func(c *Config, v string) error { c.Issuer = v; return nil }},
		{env: "PHONEVERIFY_LOG_LEVEL", def: "info", help: "debug, info, warn or error",
			set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{env: "PHONEVERIFY_LOG_FORMAT", def: "json", help: "json (one object a line, for log collectors) or text (key=value, for reading)",
			set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
		{env: "PHONEVERIFY_DB_MAX_OPEN_CONNS", def: "0", help: "database pool size (0 = driver-appropriate default)",
			set: func(c *Config, v string) (err error) { c.DBMaxOpenConns, err = strconv.Atoi(v); return err }},
		{env: "PHONEVERIFY_STARTUP_TIMEOUT", def: "60s", help: "how long a starting node retries, with backoff, a database or Redis that does not answer before it gives up",
			set: func(c *Config, v string) (err error) { c.StartupTimeout, err = time.ParseDuration(v); return err }},
		{env: "PHONEVERIFY_REDIS_URL", secret: true, help: "redis://[user:password@]host:port/db for rate limits shared by every node; unset keeps them in the database",
			set: func(c *Config, v string) error { c.RedisURL = v; return nil }},
		{env: "PHONEVERIFY_REDIS_POOL_SIZE", def: "0", help: "Redis connection pool size (0 = 10 per CPU)",
			set: func(c *Config, v string) (err error) { c.RedisPoolSize, err = strconv.Atoi(v); return err }},
		{env: "PHONEVERIFY_RATE_LIMIT_IP", def: "30/10m", help: "starts allowed per client IP address (IPv6: per /64) and service, as N/DURATION, or off",
			set: func(c *Config, v string) (err error) { c.RateLimitIP, err = pv.ParseLimit(v); return err }},
		{env: "PHONEVERIFY_RATE_LIMIT_COUNTRY", def: "off", help: "starts allowed per destination country and service, as N/DURATION (e.g. 1000/1h), or off",
			set: func(c *Config, v string) (err error) { c.RateLimitCountry, err = pv.ParseLimit(v); return err }},
		{env: "PHONEVERIFY_RATE_LIMIT_NUMBER_DAY", def: "10/24h", help: "codes sent to one number per service over a long window, beside each service's send window (default 5 per 10m), as N/DURATION, or off",
			set: func(c *Config, v string) (err error) { c.RateLimitNumberDay, err = pv.ParseLimit(v); return err }},
		{env: "PHONEVERIFY_RATE_LIMIT_SUBJECT", def: "off", help: "starts allowed per subject and service, as N/DURATION (e.g. 10/1h), or off",
			set: func(c *Config, v string) (err error) { c.RateLimitSubject, err = pv.ParseLimit(v); return err }},
		{env: "PHONEVERIFY_RATE_LIMIT_FAILED_CHECKS", def: "10/1h", help: "codes compared per number and service across all its verifications (a brute-force cap; see Security model), as N/DURATION, or off",
			set: func(c *Config, v string) (err error) { c.RateLimitFailedChecks, err = pv.ParseLimit(v); return err }},
		{env: "PHONEVERIFY_SMS_BUDGET_HOUR", def: "off", help: "SMS each service may send per hour before its breaker trips (starts refused with 429, ALERT logged), as a count, or off",
			set: func(c *Config, v string) (err error) { c.SMSBudgetHour, err = parseBudget(v, time.Hour); return err }},
		{env: "PHONEVERIFY_SMS_BUDGET_DAY", def: "off", help: "SMS each service may send per day before its breaker trips, as a count, or off",
			set: func(c *Config, v string) (err error) { c.SMSBudgetDay, err = parseBudget(v, 24*time.Hour); return err }},
		{env: "PHONEVERIFY_TRUSTED_PROXIES", help: "comma-separated CIDRs of the proxies whose X-Forwarded-For names the client (walked right to left, skipping them); unset, the connection's address is the client",
			set: func(c *Config, v string) (err error) { c.TrustedProxies, err = clientip.Parse(v); return err }},
		{env: "PHONEVERIFY_SHUTDOWN_TIMEOUT", def: "15s", help: "how long shutdown waits for requests in flight",
			set: func(c *Config, v string) (err error) { c.ShutdownTimeout, err = time.ParseDuration(v); return err }},
		{env: "PHONEVERIFY_EXPIRE_INTERVAL", def: "30s", help: "how often lapsed verifications are recorded as expired, signing keys reloaded (a rotation reaches every node) and spent rate-limit rows swept",
			set: func(c *Config, v string) (err error) { c.ExpireInterval, err = time.ParseDuration(v); return err }},
		{env: "PHONEVERIFY_PUBLIC_URL", help: "public base URL of this service, e.g. https://verify.example.com; Twilio status callbacks go to its /v1/receipts/twilio, and with https the pages' cookies are Secure even behind a proxy that terminates TLS",
			set: func(c *Config, v string) error { c.PublicURL = strings.TrimRight(v, "/"); return nil }},
		{env: "PHONEVERIFY_ROUTES", help: "gateways per destination, in failover order: +977=sparrow;NP=sparrow;*=twilio,vonage (default: every enabled gateway)",
			set: func(c *Config, v string) error { c.Routes = v; return nil }},
		{env: "PHONEVERIFY_OUTBOX_WORKERS", def: "64", help: "messages each node sends at once; each waits for its gateway's answer, so with a gateway answering in 200 ms, 64 send about 320 messages a second",
			set: func(c *Config, v string) (err error) { c.OutboxWorkers, err = strconv.Atoi(v); return err }},
		{env: "PHONEVERIFY_CIRCUIT_THRESHOLD", def: "3", help: "consecutive failures after which a gateway is skipped for the cooldown",
			set: func(c *Config, v string) (err error) { c.CircuitThreshold, err = strconv.Atoi(v); return err }},
		{env: "PHONEVERIFY_CIRCUIT_COOLDOWN", def: "30s", help: "how long a failing gateway is skipped before one probe message",
			set: func(c *Config, v string) (err error) { c.CircuitCooldown, err = time.ParseDuration(v); return err }},
		{env: "PHONEVERIFY_GATEWAY_VONAGE_SIGNATURE_SECRET", secret: true, help: "signature secret of the Vonage account; when set, unsigned or badly signed delivery receipts are refused",
			set: func(c *Config, v string) error { c.VonageSignatureSecret = v; return nil }},
		{env: "PHONEVERIFY_GATEWAY_VONAGE_SIGNATURE_METHOD", def: "md5hash", help: "Vonage signature method: md5hash, md5, sha1, sha256 or sha512",
			set: func(c *Config, v string) error { c.VonageSignatureMethod = strings.ToLower(v); return nil }},
		{env: "PHONEVERIFY_DEMO", help: "serve the demo apps under /demo/: true or false; unset, on with SQLite (development, where code pages show the log gateway's message) and off with PostgreSQL",
			set: func(c *Config, v string) error { return setOptionalBool(&c.Demo, v) }},
		{env: "PHONEVERIFY_METRICS_ADDR", help: "where Prometheus metrics are served: unset, at /metrics on PHONEVERIFY_ADDR; an address such as 127.0.0.1:9090, at /metrics on a listener of its own (and not on the main one); off, nowhere",
			set: func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
		{env: "PHONEVERIFY_ADMIN_PASSWORD", secret: true, help: "password of the dashboard under /admin/ (at least 12 characters); API keys with the admin scope sign in too",
			set: func(c *Config, v string) error { c.AdminPassword = v; return nil }},
		{env: "PHONEVERIFY_EVENTS_URL", help: "URL subscribed to every event of the default service (signed Standard Webhooks posts); needs PHONEVERIFY_EVENTS_SECRET",
			set: func(c *Config, v string) error { c.EventsURL = v; return nil }},
		{env: "PHONEVERIFY_EVENTS_SECRET", secret: true, help: "signing secret of PHONEVERIFY_EVENTS_URL: whsec_ and the base64 of 24–64 random bytes (try: echo whsec_$(openssl rand -base64 32))",
			set: func(c *Config, v string) error { c.EventsSecret = v; return nil }},
		{env: "PHONEVERIFY_FRAUD_MODE", def: "block", help: "fraud protection (SMS pumping) of the default service: off, monitor (record only) or block; other services default to block, and GET/PUT /v1/services/{id}/fraud changes any service",
			set: func(c *Config, v string) error { c.FraudMode = pv.FraudMode(strings.ToLower(v)); return nil }},
		{env: "PHONEVERIFY_RETENTION", def: "720h", help: "how long verification records (with their messages and send attempts), fraud decisions and events are kept before the hourly purge deletes them; 0 keeps them forever. Conversion counts per prefix and country are kept",
			set: func(c *Config, v string) (err error) { c.Retention, err = time.ParseDuration(v); return err }},
	}
}

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "PHONEVERIFY_")), "_", "-")
}

// Source is where one setting's effective value came from, as "phoneverify
// config check" prints it.
type Source struct {
	// Name is the environment variable.
	Name string
	// Value is the effective value; "***" for a secret that is set.
	Value string
	// From is "flag --NAME", "environment", "file PATH:LINE", "default" or
	// "unset", with the _FILE variable named when a secret came from a file.
	From string
}

// LoadConfig reads the settings, each from the first place that gives it:
// a flag in args, the environment (getenv), the configuration file named by
// --config or PHONEVERIFY_CONFIG, the default. A secret and its NAME_FILE
// form count as one setting, so a secret in the environment overrides the
// file's NAME_FILE and the other way round. It returns the remaining
// arguments.
func LoadConfig(getenv func(string) string, fs *flag.FlagSet, args []string) (*Config, []string, error) {
	all := settings()
	flags := make(map[string]*string, len(all))
	for _, s := range all {
		if s.secret {
			continue // a flag would show the secret to anyone running ps
		}
		flags[s.env] = fs.String(flagName(s.env), "", s.help+" ("+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	c := &Config{ConfigFile: *flags[EnvConfig]}
	configFrom := "flag --" + flagName(EnvConfig)
	if c.ConfigFile == "" {
		c.ConfigFile, configFrom = getenv(EnvConfig), "environment"
	}
	var file *configFile
	if c.ConfigFile != "" {
		var err error
		if file, err = readConfigFile(c.ConfigFile); err != nil {
			return nil, nil, err
		}
		if err := file.check(knownKeys(all)); err != nil {
			return nil, nil, err
		}
	}
	layered := layeredGetenv(getenv, file)
	var errs []error
	for _, s := range all {
		if s.env == EnvConfig {
			src := Source{Name: s.env, Value: c.ConfigFile, From: configFrom}
			if c.ConfigFile == "" {
				src.From = "unset"
			}
			c.Sources = append(c.Sources, src)
			continue
		}
		v, err := lookup(layered, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		src := Source{Name: s.env, From: origin(getenv, file, s.env, s.secret)}
		if f, ok := flags[s.env]; ok && *f != "" {
			v, src.From = *f, "flag --"+flagName(s.env)
		}
		if v == "" {
			v, src.From = s.def, "default"
			if v == "" {
				src.From = "unset"
			}
		}
		src.Value = redactURL(v)
		if s.secret && v != "" {
			src.Value = "***"
		}
		c.Sources = append(c.Sources, src)
		if err := s.set(c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
		}
	}
	gateways, err := loadGateways(layered)
	if err != nil {
		errs = append(errs, err)
	}
	c.Gateways = gateways
	settingsEnd := len(c.Sources)
	inTable := make(map[string]bool, len(all))
	for _, s := range all {
		inTable[s.env], inTable[s.env+fileSuffix] = true, true
	}
	for name, secret := range gatewayKeys() {
		if v := layered(name); v != "" && !inTable[name] {
			v = redactURL(v)
			if secret {
				v = "***"
			}
			c.Sources = append(c.Sources, Source{Name: name, Value: v, From: origin(getenv, file, name, false)})
		}
	}
	slices.SortStableFunc(c.Sources[settingsEnd:], func(a, b Source) int { return strings.Compare(a.Name, b.Name) })
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return c, fs.Args(), c.validate()
}

// redactURL hides the password of a URL (postgres://user:pass@host/db);
// any other value is returned as it is.
func redactURL(v string) string {
	if !strings.Contains(v, "://") {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	if _, ok := u.User.Password(); !ok {
		return v
	}
	return u.Redacted()
}

// layeredGetenv returns the environment over the file: a variable set in
// the environment wins, and a secret given either way in the environment
// (NAME or NAME_FILE) hides both forms in the file.
func layeredGetenv(getenv func(string) string, file *configFile) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		if file == nil {
			return ""
		}
		if base, ok := strings.CutSuffix(k, fileSuffix); ok && getenv(base) != "" {
			return ""
		}
		if getenv(k+fileSuffix) != "" {
			return ""
		}
		return file.values[k]
	}
}

const fileSuffix = "_FILE"

// origin says where the variable name (and, for a secret, name_FILE) is
// set: "environment", "file PATH:LINE", or "" when neither sets it.
func origin(getenv func(string) string, file *configFile, name string, secret bool) string {
	for _, k := range []string{name, name + fileSuffix} {
		if k != name && !secret {
			break
		}
		suffix := ""
		if k != name {
			suffix = " (" + k + ")"
		}
		if getenv(k) != "" {
			return "environment" + suffix
		}
	}
	if file == nil {
		return ""
	}
	for _, k := range []string{name, name + fileSuffix} {
		if k != name && !secret {
			break
		}
		suffix := ""
		if k != name {
			suffix = " (" + k + ")"
		}
		if file.values[k] != "" {
			return "file " + file.where(k) + suffix
		}
	}
	return ""
}

// knownKeys returns every variable a configuration file may set, each
// with whether it holds a secret inline.
func knownKeys(all []setting) map[string]bool {
	known := map[string]bool{}
	for _, s := range all {
		known[s.env] = s.secret
		if s.secret {
			known[s.env+fileSuffix] = false
		}
	}
	for name, secret := range gatewayKeys() {
		if _, ok := known[name]; !ok {
			known[name] = secret
		}
	}
	return known
}

// gatewayKeys returns every PHONEVERIFY_GATEWAY_* variable the gateway
// packages read, found by asking them to read an empty environment; a
// variable they also read as NAME_FILE is a secret (and NAME_FILE is not).
func gatewayKeys() map[string]bool {
	asked := map[string]bool{}
	_, _ = loadGateways(func(k string) string { asked[k] = true; return "" })
	keys := map[string]bool{}
	for k := range asked {
		keys[k] = asked[k+fileSuffix]
	}
	return keys
}

// lookup returns NAME, or the contents of the file NAME_FILE for secrets.
func lookup(getenv func(string) string, s setting) (string, error) {
	v := getenv(s.env)
	if !s.secret {
		return v, nil
	}
	path := getenv(s.env + "_FILE")
	if path == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("set %s or %s_FILE, not both", s.env, s.env)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", s.env, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (c *Config) validate() error {
	switch {
	case c.Secret != "" && len(c.Secret) < 32:
		return errors.New("PHONEVERIFY_SECRET must be at least 32 characters (try: openssl rand -hex 32)")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return errors.New("PHONEVERIFY_LOG_FORMAT must be text or json")
	case c.ShutdownTimeout <= 0 || c.ExpireInterval <= 0 || c.StartupTimeout <= 0:
		return errors.New("PHONEVERIFY_SHUTDOWN_TIMEOUT, PHONEVERIFY_EXPIRE_INTERVAL and PHONEVERIFY_STARTUP_TIMEOUT must be positive durations")
	case c.DBMaxOpenConns < 0:
		return errors.New("PHONEVERIFY_DB_MAX_OPEN_CONNS must not be negative")
	case c.AdminPassword != "" && len(c.AdminPassword) < 12:
		return errors.New("PHONEVERIFY_ADMIN_PASSWORD must be at least 12 characters")
	case c.RedisPoolSize < 0:
		return errors.New("PHONEVERIFY_REDIS_POOL_SIZE must not be negative")
	case c.OutboxWorkers < 1 || c.OutboxWorkers > 1000:
		return errors.New("PHONEVERIFY_OUTBOX_WORKERS must be between 1 and 1000")
	case c.CircuitThreshold < 1 || c.CircuitCooldown <= 0:
		return errors.New("PHONEVERIFY_CIRCUIT_THRESHOLD must be at least 1 and PHONEVERIFY_CIRCUIT_COOLDOWN a positive duration")
	case !c.FraudMode.Valid():
		return errors.New("PHONEVERIFY_FRAUD_MODE must be off, monitor or block")
	case c.Retention < 0 || c.Retention > 0 && c.Retention < time.Hour:
		return errors.New("PHONEVERIFY_RETENTION must be 0 (keep forever) or at least 1h")
	case c.VonageSignatureSecret != "" && c.Gateways.Vonage == nil:
		return errors.New("PHONEVERIFY_GATEWAY_VONAGE_SIGNATURE_SECRET is set but the Vonage gateway is not enabled")
	}
	if err := store.CheckURL(c.DatabaseURL); err != nil {
		return fmt.Errorf("PHONEVERIFY_DATABASE_URL: %w", err)
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			return errors.New("PHONEVERIFY_REDIS_URL must be a redis://, rediss:// or unix:// URL")
		}
	}
	if c.MetricsAddr != "" && c.MetricsAddr != "off" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("PHONEVERIFY_METRICS_ADDR must be host:port or off: %w", err)
		}
	}
	if _, err := router.ParseRoutes(c.Routes); err != nil {
		return fmt.Errorf("PHONEVERIFY_ROUTES: %w", err)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return errors.New("PHONEVERIFY_PUBLIC_URL must be an absolute http or https URL without a query")
		}
	}
	switch c.VonageSignatureMethod {
	case "md5hash", "md5", "sha1", "sha256", "sha512":
	default:
		return errors.New("PHONEVERIFY_GATEWAY_VONAGE_SIGNATURE_METHOD must be md5hash, md5, sha1, sha256 or sha512")
	}
	if (c.EventsURL == "") != (c.EventsSecret == "") {
		return errors.New("set both PHONEVERIFY_EVENTS_URL and PHONEVERIFY_EVENTS_SECRET, or neither")
	}
	if c.EventsURL != "" {
		u, err := url.Parse(c.EventsURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("PHONEVERIFY_EVENTS_URL must be an absolute http or https URL")
		}
		if verify.ValidateEventSecret(c.EventsSecret) != nil {
			return errors.New("PHONEVERIFY_EVENTS_SECRET must be whsec_ and the base64 of 24 to 64 bytes")
		}
	}
	if err := validCompat(c.CompatAccountSID, c.CompatAuthToken); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errors.New("PHONEVERIFY_LOG_LEVEL must be debug, info, warn or error")
	}
	return nil
}

// parseBudget reads an SMS budget: a count, "N/WINDOW" with the budget's
// own window, or off.
func parseBudget(v string, window time.Duration) (pv.Limit, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if n == 0 {
			return pv.Limit{}, nil
		}
		l := pv.Limit{Max: n, Window: window}
		return l, l.Validate()
	}
	l, err := pv.ParseLimit(v)
	if err == nil && !l.Off() && l.Window != window {
		return pv.Limit{}, fmt.Errorf("this budget counts per %s", window)
	}
	return l, err
}

// setOptionalBool sets *dst from "true" or "false" (any form
// strconv.ParseBool takes), or to nil for "".
func setOptionalBool(dst **bool, v string) error {
	if v == "" {
		*dst = nil
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", v)
	}
	*dst = &b
	return nil
}

func parseTestNumbers(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		num, code, ok := strings.Cut(item, "=")
		num, code = strings.TrimSpace(num), strings.TrimSpace(code)
		if !ok || !strings.HasPrefix(num, "+") || len(num) < 8 || code == "" {
			return nil, fmt.Errorf("entry %d: want +E164=CODE", len(m)+1)
		}
		m[num] = code
	}
	return m, nil
}

// configTable renders the settings as the README's Markdown table.
func configTable() string {
	all := settings()
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, s := range all {
		def := s.def
		if def == "" {
			def = "—"
		}
		name, flag := "`"+s.env+"`", "`--"+flagName(s.env)+"`"
		if s.secret {
			name += " or `" + s.env + "_FILE`"
			flag = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | `%s` | %s |\n", name, flag, def, s.help)
	}
	return b.String()
}

// validCompat checks the Twilio-compatible bootstrap credentials: both or
// neither, an account SID of AC and 32 hex digits, and a token of letters
// and digits (Twilio's helper libraries refuse anything else).
func validCompat(sid, token string) error {
	switch {
	case sid == "" && token == "":
		return nil
	case sid == "" || token == "":
		return errors.New("set both PHONEVERIFY_COMPAT_ACCOUNT_SID and PHONEVERIFY_COMPAT_AUTH_TOKEN, or neither")
	case len(sid) != 34 || !strings.HasPrefix(sid, "AC") || strings.Trim(strings.ToLower(sid[2:]), "0123456789abcdef") != "":
		return errors.New("PHONEVERIFY_COMPAT_ACCOUNT_SID must be AC followed by 32 hex digits")
	case len(token) < 16 || strings.Trim(strings.ToLower(token), "0123456789abcdefghijklmnopqrstuvwxyz") != "":
		return errors.New("PHONEVERIFY_COMPAT_AUTH_TOKEN must be at least 16 letters and digits")
	}
	return nil
}

// startLimits returns the server-wide default limits the engine applies to
// every service that sets none of its own.
func (c *Config) startLimits() verify.StartLimits {
	return verify.StartLimits{
		PerIP: c.RateLimitIP, PerCountry: c.RateLimitCountry, PerNumberDay: c.RateLimitNumberDay,
		PerSubject: c.RateLimitSubject, FailedChecks: c.RateLimitFailedChecks,
		BudgetHour: c.SMSBudgetHour, BudgetDay: c.SMSBudgetDay,
	}
}
