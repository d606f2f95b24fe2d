package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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

	// Demo serves the demo apps under /demo/: nil means on with SQLite
	// (development) and off with PostgreSQL (production).
	Demo *bool
	// AdminPassword signs in to the dashboard under /admin/.
	AdminPassword string
	// PublicURL is the node's public base URL; with https, cookies are
	// Secure even behind a proxy that terminates TLS.
	PublicURL string
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
		{env: "PHONEVERIFY_ADDR", def: "127.0.0.1:8080", help: "address the HTTP API listens on",
			set: func(c *Config, v string) error { c.Addr = v; return nil }},
		{env: "PHONEVERIFY_DATABASE_URL", def: "sqlite:phoneverify.db", help: "sqlite:PATH, sqlite:///ABS/PATH or postgres://…",
			set: func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
		{env: "PHONEVERIFY_SECRET", secret: true, help: "server secret (≥32 characters) keying code hashes and sealing signing keys; on SQLite created beside the database when unset, required on PostgreSQL",
			set: func(c *Config, v string) error { c.Secret = v; return nil }},
		{env: "PHONEVERIFY_API_KEY", secret: true, help: "bootstrap API key for the default service (development and tests); never stored",
			set: func(c *Config, v string) error { c.APIKey = v; return nil }},
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
		{env: "PHONEVERIFY_LOG_FORMAT", def: "text", help: "text or json",
			set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
		{env: "PHONEVERIFY_DB_MAX_OPEN_CONNS", def: "0", help: "database pool size (0 = driver-appropriate default)",
			set: func(c *Config, v string) (err error) { c.DBMaxOpenConns, err = strconv.Atoi(v); return err }},
		{env: "PHONEVERIFY_SHUTDOWN_TIMEOUT", def: "15s", help: "how long shutdown waits for requests in flight",
			set: func(c *Config, v string) (err error) { c.ShutdownTimeout, err = time.ParseDuration(v); return err }},
		{env: "PHONEVERIFY_EXPIRE_INTERVAL", def: "30s", help: "how often lapsed verifications are recorded as expired",
			set: func(c *Config, v string) (err error) { c.ExpireInterval, err = time.ParseDuration(v); return err }},
		{env: "PHONEVERIFY_DEMO", help: "serve the demo apps under /demo/: true or false; unset, on with SQLite (development, where code pages show the log gateway's message) and off with PostgreSQL",
			set: func(c *Config, v string) error { return setOptionalBool(&c.Demo, v) }},
		{env: "PHONEVERIFY_ADMIN_PASSWORD", secret: true, help: "password of the dashboard under /admin/ (at least 12 characters); API keys with the admin scope sign in too",
			set: func(c *Config, v string) error { c.AdminPassword = v; return nil }},
		{env: "PHONEVERIFY_PUBLIC_URL", help: "public base URL of this node, e.g. https://verify.example.com; with https, the pages' cookies are Secure even behind a proxy that terminates TLS",
			set: func(c *Config, v string) error { c.PublicURL = strings.TrimRight(v, "/"); return nil }},
	}
}

func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "PHONEVERIFY_")), "_", "-")
}

// LoadConfig reads settings from getenv, then from flags in args (a flag
// overrides its variable). It returns the remaining arguments.
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
	c := &Config{}
	var errs []error
	for _, s := range all {
		v, err := lookup(getenv, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f, ok := flags[s.env]; ok && *f != "" {
			v = *f
		}
		if v == "" {
			v = s.def
		}
		if err := s.set(c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return c, fs.Args(), c.validate()
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
	case c.ShutdownTimeout <= 0 || c.ExpireInterval <= 0:
		return errors.New("PHONEVERIFY_SHUTDOWN_TIMEOUT and PHONEVERIFY_EXPIRE_INTERVAL must be positive durations")
	case c.DBMaxOpenConns < 0:
		return errors.New("PHONEVERIFY_DB_MAX_OPEN_CONNS must not be negative")
	case c.AdminPassword != "" && len(c.AdminPassword) < 12:
		return errors.New("PHONEVERIFY_ADMIN_PASSWORD must be at least 12 characters")
	case c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "https://") && !strings.HasPrefix(c.PublicURL, "http://"):
		return errors.New("PHONEVERIFY_PUBLIC_URL must start with https:// or http://")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errors.New("PHONEVERIFY_LOG_LEVEL must be debug, info, warn or error")
	}
	return nil
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
