package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestCompatConfig(t *testing.T) {
	const sid, token = "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name       string
		sid, token string
		wantErr    string
	}{
		{"neither", "", "", ""},
		{"both", sid, token, ""},
		{"upper-case hex", "AC0123456789ABCDEF0123456789ABCDEF", token, ""},
		{"sid only", sid, "", "both"},
		{"token only", "", token, "both"},
		{"short sid", "AC123", token, "AC followed by 32 hex"},
		{"not AC", "SK0123456789abcdef0123456789abcdef", token, "AC followed by 32 hex"},
		{"short token", sid, "abc", "at least 16"},
		{"token with symbols", sid, "0123456789abcdef-", "letters and digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PHONEVERIFY_COMPAT_ACCOUNT_SID": tt.sid, "PHONEVERIFY_COMPAT_AUTH_TOKEN": tt.token}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg, _, err := LoadConfig(func(k string) string { return env[k] }, fs, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if cfg.CompatAccountSID != tt.sid || cfg.CompatAuthToken != tt.token {
					t.Errorf("got %q %q", cfg.CompatAccountSID, cfg.CompatAuthToken)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
	if table := configTable(); !strings.Contains(table, "PHONEVERIFY_COMPAT_AUTH_TOKEN_FILE") {
		t.Errorf("the README table does not offer the token as a file:\n%s", table)
	}
}
