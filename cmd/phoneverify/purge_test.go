package main

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"
)

func TestPurgeCommand(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"PHONEVERIFY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "pv.db")}
	runCmd := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, envFunc(vars), &out, &errOut)
		return out.String(), err
	}
	out, err := runCmd("purge")
	if err != nil || !strings.HasPrefix(out, "purged records last updated before ") || !strings.Contains(out, "0 verifications") || !strings.Contains(out, "0 events") {
		t.Fatalf("purge: %q %v", out, err)
	}
	vars["PHONEVERIFY_RETENTION"] = "0"
	if _, err := runCmd("purge"); err == nil || !strings.Contains(err.Error(), "kept forever") {
		t.Errorf("purge with retention 0: %v, want a refusal", err)
	}
}

func TestFraudConfig(t *testing.T) {
	tests := []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{}, ""},
		{map[string]string{"PHONEVERIFY_FRAUD_MODE": "Monitor", "PHONEVERIFY_RETENTION": "0"}, ""},
		{map[string]string{"PHONEVERIFY_FRAUD_MODE": "strict"}, "PHONEVERIFY_FRAUD_MODE"},
		{map[string]string{"PHONEVERIFY_RETENTION": "10m"}, "PHONEVERIFY_RETENTION"},
		{map[string]string{"PHONEVERIFY_RETENTION": "a month"}, "PHONEVERIFY_RETENTION"},
	}
	for _, tt := range tests {
		cfg, _, err := LoadConfig(envFunc(tt.env), flag.NewFlagSet("t", flag.ContinueOnError), nil)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.env, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v: config %+v, error %v; want one naming %s", tt.env, cfg, err, tt.wantErr)
		}
	}
	cfg, _, _ := LoadConfig(envFunc(nil), flag.NewFlagSet("t", flag.ContinueOnError), nil)
	if cfg.FraudMode != "block" || cfg.Retention.Hours() != 720 {
		t.Errorf("defaults: mode %q retention %s, want block and 720h", cfg.FraudMode, cfg.Retention)
	}
}

// TestNodeFraudMode: PHONEVERIFY_FRAUD_MODE sets the default service's
// mode on a running node, and the node refuses pumping in block mode.
func TestNodeFraudMode(t *testing.T) {
	m, _ := startNode(t, t.TempDir(), map[string]string{"PHONEVERIFY_FRAUD_MODE": "monitor"})
	if status, body := call(t, m, "GET", "/v1/services/default/fraud", ""); status != 200 || body["mode"] != "monitor" {
		t.Fatalf("settings: %d %v", status, body)
	}
	if status, body := call(t, m, "PUT", "/v1/services/default/fraud", `{"mode":"block","prefix_floor":2}`); status != 200 || body["mode"] != "block" {
		t.Fatalf("PUT settings: %d %v", status, body)
	}
	var statuses []int
	for _, to := range []string{"+998901000001", "+998901000002", "+998901000003"} {
		status, _ := call(t, m, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
		statuses = append(statuses, status)
	}
	if statuses[0] != 201 || statuses[1] != 201 || statuses[2] != 403 {
		t.Errorf("statuses %v, want 201 201 403", statuses)
	}
	if status, body := call(t, m, "GET", "/v1/fraud/decisions", ""); status != 200 || len(body["decisions"].([]any)) != 1 {
		t.Errorf("decisions: %d %v", status, body)
	}
}
