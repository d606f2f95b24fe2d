package main

import (
	"strings"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

func TestConfigRateLimitsAndRedis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(c *Config) string
		wantErr string
	}{
		{
			name: "defaults",
			check: func(c *Config) string {
				if c.RateLimitIP != (pv.Limit{Max: 30, Window: 10 * time.Minute}) || !c.RateLimitCountry.Off() ||
					c.RedisURL != "" || c.RedisPoolSize != 0 || c.StartupTimeout != time.Minute {
					return "defaults differ"
				}
				return ""
			},
		},
		{
			name: "from the environment",
			env: map[string]string{"PHONEVERIFY_RATE_LIMIT_IP": "off", "PHONEVERIFY_RATE_LIMIT_COUNTRY": "1000/1h",
				"PHONEVERIFY_REDIS_URL": "redis://127.0.0.1:6379/2", "PHONEVERIFY_REDIS_POOL_SIZE": "16", "PHONEVERIFY_STARTUP_TIMEOUT": "5s"},
			check: func(c *Config) string {
				if !c.RateLimitIP.Off() || c.RateLimitCountry != (pv.Limit{Max: 1000, Window: time.Hour}) ||
					c.RedisURL != "redis://127.0.0.1:6379/2" || c.RedisPoolSize != 16 || c.StartupTimeout != 5*time.Second {
					return "settings not taken"
				}
				return ""
			},
		},
		{
			name: "flag over variable",
			env:  map[string]string{"PHONEVERIFY_RATE_LIMIT_IP": "5/1m"},
			args: []string{"--rate-limit-ip", "7/1h"},
			check: func(c *Config) string {
				if c.RateLimitIP != (pv.Limit{Max: 7, Window: time.Hour}) {
					return "the flag did not win"
				}
				return ""
			},
		},
		{name: "bad limit", env: map[string]string{"PHONEVERIFY_RATE_LIMIT_IP": "30 per 10m"}, wantErr: "PHONEVERIFY_RATE_LIMIT_IP"},
		{name: "negative pool", env: map[string]string{"PHONEVERIFY_REDIS_POOL_SIZE": "-1"}, wantErr: "PHONEVERIFY_REDIS_POOL_SIZE"},
		{name: "zero startup timeout", env: map[string]string{"PHONEVERIFY_STARTUP_TIMEOUT": "0s"}, wantErr: "PHONEVERIFY_STARTUP_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadConfigCase(t, tt.env, tt.args, tt.wantErr)
			if c == nil {
				return
			}
			if msg := tt.check(c); msg != "" {
				t.Errorf("%s: %+v", msg, c)
			}
		})
	}
}

func TestConfigTableListsNewSettings(t *testing.T) {
	t.Parallel()
	table := configTable()
	for _, name := range []string{"PHONEVERIFY_REDIS_URL", "PHONEVERIFY_REDIS_POOL_SIZE", "PHONEVERIFY_RATE_LIMIT_IP",
		"PHONEVERIFY_RATE_LIMIT_COUNTRY", "PHONEVERIFY_STARTUP_TIMEOUT"} {
		if !strings.Contains(table, "`"+name+"`") {
			t.Errorf("the configuration table lacks %s", name)
		}
	}
}
