package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

func TestConfigAbuseLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(c *Config) string
		wantErr string
	}{
		{
			name: "defaults",
			check: func(c *Config) string {
				l := c.startLimits()
				if l.PerNumberDay != (pv.Limit{Max: 10, Window: 24 * time.Hour}) || l.FailedChecks != (pv.Limit{Max: 10, Window: time.Hour}) ||
					!l.PerSubject.Off() || !l.BudgetHour.Off() || !l.BudgetDay.Off() || len(c.TrustedProxies.Trusted()) != 0 {
					return "defaults differ"
				}
				return ""
			},
		},
		{
			name: "set",
			env: map[string]string{"PHONEVERIFY_RATE_LIMIT_NUMBER_DAY": "off", "PHONEVERIFY_RATE_LIMIT_SUBJECT": "5/1h",
				"PHONEVERIFY_RATE_LIMIT_FAILED_CHECKS": "20/1h", "PHONEVERIFY_SMS_BUDGET_HOUR": "500",
				"PHONEVERIFY_SMS_BUDGET_DAY": "5000/24h", "PHONEVERIFY_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8"},
			check: func(c *Config) string {
				l := c.startLimits()
				if !l.PerNumberDay.Off() || l.PerSubject != (pv.Limit{Max: 5, Window: time.Hour}) || l.FailedChecks.Max != 20 ||
					l.BudgetHour != (pv.Limit{Max: 500, Window: time.Hour}) || l.BudgetDay != (pv.Limit{Max: 5000, Window: 24 * time.Hour}) ||
					len(c.TrustedProxies.Trusted()) != 2 {
					return "settings not taken"
				}
				return ""
			},
		},
		{name: "budget with another window", env: map[string]string{"PHONEVERIFY_SMS_BUDGET_HOUR": "500/24h"}, wantErr: "PHONEVERIFY_SMS_BUDGET_HOUR"},
		{name: "bad proxy", env: map[string]string{"PHONEVERIFY_TRUSTED_PROXIES": "10.0.0.0/40"}, wantErr: "PHONEVERIFY_TRUSTED_PROXIES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadConfigCase(t, tt.env, nil, tt.wantErr)
			if c == nil {
				return
			}
			if msg := tt.check(c); msg != "" {
				t.Errorf("%s: %+v", msg, c)
			}
		})
	}
}

// TestCLILimitsAndKeys: service limits and geo lists set through the CLI
// are shown by service list; keys take --allowed-ips, and apikey list
// shows the ranges and the last use.
func TestCLILimitsAndKeys(t *testing.T) {
	dir := t.TempDir()
	env := envFunc(map[string]string{"PHONEVERIFY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "pv.db")})
	runCmd := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, env, &out, &errOut)
		return out.String(), err
	}
	steps := []struct {
		args    []string
		want    string // in the output, or in the error when wantErr
		wantErr bool
	}{
		{args: []string{"service", "update", "default", "--per-ip", "off", "--per-number-day", "3/24h", "--budget-hour", "500",
			"--failed-checks", "5/1h", "--deny-countries", "cu, kp"}, want: "updated"},
		{args: []string{"service", "list"}, want: "per_number_day=3/24h0m0s per_ip=off budget_hour=500/1h0m0s failed_checks=5/1h0m0s deny=CU,KP"},
		{args: []string{"service", "update", "default", "--per-ip", "default", "--deny-countries", "none"}, want: "updated"},
		{args: []string{"service", "list"}, want: "per_number_day=3/24h0m0s budget_hour"},
		{args: []string{"service", "update", "default", "--allow-countries", "NP", "--deny-countries", "IN"}, want: "not both", wantErr: true},
		{args: []string{"service", "update", "default", "--budget-day", "100/1h"}, want: "budget_day", wantErr: true},
		{args: []string{"service", "update", "default", "--allow-countries", "Nepal"}, want: "ISO country", wantErr: true},
		{args: []string{"apikey", "create", "--name", "office", "--allowed-ips", "203.0.113.0/24,2001:db8::1"}, want: "pvk_"},
		{args: []string{"apikey", "create", "--name", "bad", "--allowed-ips", "203.0.113.0/99"}, want: "allowed-ips", wantErr: true},
		{args: []string{"apikey", "create", "--name", "backend", "--scopes", "verify:send,risk_check:override"}, want: "pvk_"},
		{args: []string{"apikey", "list"}, want: "203.0.113.0/24,2001:db8::1/128"},
		{args: []string{"apikey", "list"}, want: "verify:send,risk_check:override"},
		{args: []string{"apikey", "list"}, want: "never"},
	}
	for _, s := range steps {
		out, err := runCmd(s.args...)
		switch {
		case s.wantErr && (err == nil || !strings.Contains(describe(err), s.want)):
			t.Errorf("%q: error %v, want one saying %q", s.args, err, s.want)
		case !s.wantErr && (err != nil || !strings.Contains(out, s.want)):
			t.Errorf("%q: %q %v, want output holding %q", s.args, out, err, s.want)
		}
	}
}
