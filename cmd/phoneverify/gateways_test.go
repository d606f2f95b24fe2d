package main

import (
	"context"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func loadTestConfig(t *testing.T, env map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, _, err := LoadConfig(func(k string) string { return env[k] }, fs, nil)
	return cfg, err
}

// TestStartupGatewayErrors: a route naming a gateway that is not enabled,
// and other delivery settings that cannot work, stop the node at startup
// with an error that names them.
func TestStartupGatewayErrors(t *testing.T) {
	twilioEnv := map[string]string{
		"PHONEVERIFY_GATEWAY_TWILIO_ACCOUNT_SID": "AC" + strings.Repeat("0", 32),
		"PHONEVERIFY_GATEWAY_TWILIO_AUTH_TOKEN":  "token",
		"PHONEVERIFY_GATEWAY_TWILIO_FROM":        "+15005550006",
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"route names a disabled gateway", map[string]string{"PHONEVERIFY_ROUTES": "NP=sparrow;*=twilio"},
			`route NP names gateway "sparrow", which is not enabled (enabled: twilio)`},
		{"malformed routes", map[string]string{"PHONEVERIFY_ROUTES": "Nepal=twilio"}, "PHONEVERIFY_ROUTES"},
		{"vonage secret without vonage", map[string]string{"PHONEVERIFY_GATEWAY_VONAGE_SIGNATURE_SECRET": "s"},
			"PHONEVERIFY_GATEWAY_VONAGE_SIGNATURE_SECRET is set but the Vonage gateway is not enabled"},
		{"bad public URL", map[string]string{"PHONEVERIFY_PUBLIC_URL": "verify.example.com"}, "PHONEVERIFY_PUBLIC_URL"},
		{"no workers", map[string]string{"PHONEVERIFY_OUTBOX_WORKERS": "0"}, "PHONEVERIFY_OUTBOX_WORKERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"PHONEVERIFY_ADDR":         "127.0.0.1:0",
				"PHONEVERIFY_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "pv.db"),
			}
			for k, v := range twilioEnv {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := loadTestConfig(t, env)
			if err == nil {
				m := NewMain(cfg, io.Discard)
				err = m.Open(context.Background())
				m.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestTwilioCallbackFromPublicURL: with PHONEVERIFY_PUBLIC_URL set, Twilio
// is told to post status callbacks to the receipt endpoint under it.
func TestTwilioCallbackFromPublicURL(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"public URL", map[string]string{"PHONEVERIFY_PUBLIC_URL": "https://verify.example.com/"}, "https://verify.example.com/v1/receipts/twilio"},
		{"explicit callback wins", map[string]string{"PHONEVERIFY_PUBLIC_URL": "https://verify.example.com",
			"PHONEVERIFY_GATEWAY_TWILIO_STATUS_CALLBACK": "https://hooks.example.com/twilio"}, "https://hooks.example.com/twilio"},
		{"neither", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"PHONEVERIFY_GATEWAY_TWILIO_ACCOUNT_SID": "AC" + strings.Repeat("0", 32),
				"PHONEVERIFY_GATEWAY_TWILIO_AUTH_TOKEN":  "token",
				"PHONEVERIFY_GATEWAY_TWILIO_FROM":        "+15005550006",
			}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := loadTestConfig(t, env)
			if err != nil {
				t.Fatal(err)
			}
			if got := twilioCallbackURL(cfg); got != tt.want {
				t.Errorf("callback URL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigTableListsDeliverySettings(t *testing.T) {
	table := configTable()
	for _, name := range []string{"PHONEVERIFY_ROUTES", "PHONEVERIFY_OUTBOX_WORKERS", "PHONEVERIFY_PUBLIC_URL",
		"PHONEVERIFY_GATEWAY_VONAGE_SIGNATURE_SECRET", "PHONEVERIFY_CIRCUIT_THRESHOLD"} {
		if !strings.Contains(table, "`"+name+"`") {
			t.Errorf("the README table lacks %s", name)
		}
	}
}
