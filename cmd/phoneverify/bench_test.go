package main

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/phoneverify/phoneverify/internal/testenv"
)

// lastLine is the bench's machine-readable summary.
var lastLine = regexp.MustCompile(`^pairs_per_s=(\d+\.\d) p50_ms=(\d+\.\d\d) p99_ms=(\d+\.\d\d) errors=(\d+) server_rss_mib=(\d+\.\d|n/a)$`)

// runBenchCmd runs "phoneverify bench args…" and returns its output's lines
// and the last line's fields.
func runBenchCmd(t *testing.T, env map[string]string, args ...string) ([]string, []string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), append([]string{"bench"}, args...), envFunc(env), &stdout, &stderr); err != nil {
		t.Fatalf("bench %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	m := lastLine.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q does not match %s; output:\n%s", lines[len(lines)-1], lastLine, stdout.String())
	}
	if m[4] != "0" {
		t.Errorf("errors=%s, want 0; output:\n%s", m[4], stdout.String())
	}
	if pairs, _ := strconv.ParseFloat(m[1], 64); pairs <= 0 {
		t.Errorf("pairs_per_s=%s, want some pairs; output:\n%s", m[1], stdout.String())
	}
	return lines, m
}

func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// The bench starts its own node from the binary, times a restart, drives
// every operation and reports the node's memory. Only the format and the
// absence of errors are asserted: speed is for the bench to measure.
func TestBenchSelfStarted(t *testing.T) {
	bin := buildBinary(t)
	tests := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return nil }},
		{"postgres and redis, two nodes", func(t *testing.T) []string {
			return []string{"--nodes", "2", "--database-url", testenv.NewPostgresDatabase(t), "--redis-url", testenv.RedisURL(t)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--duration", "2s", "--rate", "20", "--wrong", "0.5", "--resend", "0.5", "--introspect", "0.5", "--server-binary", bin}, tt.args(t)...)
			lines, m := runBenchCmd(t, map[string]string{"PATH": "/usr/bin:/bin", "HOME": t.TempDir()}, args...)
			if m[5] == "n/a" {
				t.Errorf("server_rss_mib=n/a for a self-started node")
			}
			for _, want := range []string{"startup_ms=", "start ", "resend ", "check_wrong ", "check ", "introspect ", "errors: none", "bench: start limits off"} {
				if !hasLine(lines, want) {
					t.Errorf("no line starting %q in:\n%s", want, strings.Join(lines, "\n"))
				}
			}
		})
	}
}

// With --target the bench loads a node someone else started, reading the
// codes that node's webhook gateway posts to the bench's receiver.
func TestBenchTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recv := ln.Addr().String()
	ln.Close()
	secret := "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	m, _ := startNode(t, t.TempDir(), map[string]string{
		"PHONEVERIFY_GATEWAY_WEBHOOK_URL":    "http://" + recv + "/",
		"PHONEVERIFY_GATEWAY_WEBHOOK_SECRET": secret,
		"PHONEVERIFY_RATE_LIMIT_IP":          "off",
	})
	env := map[string]string{"PHONEVERIFY_API_KEY": testKey, "PHONEVERIFY_GATEWAY_WEBHOOK_SECRET": secret}
	lines, fields := runBenchCmd(t, env, "--target", "http://"+m.Addr(), "--receiver", recv, "--duration", "1s", "--rate", "20")
	if fields[5] != "n/a" {
		t.Errorf("server_rss_mib=%s without --server-pid, want n/a", fields[5])
	}
	if hasLine(lines, "startup_ms=") {
		t.Errorf("a startup time for a node the bench did not start")
	}
}

func TestBenchRefuses(t *testing.T) {
	env := map[string]string{"PHONEVERIFY_API_KEY": testKey, "PHONEVERIFY_GATEWAY_WEBHOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"public address", env, []string{"--target", "http://93.184.215.14:8080"}, "not a loopback address"},
		{"private address", env, []string{"--target", "http://127.0.0.1:8080,http://10.1.2.3:8080"}, "not a loopback address"},
		{"not a URL", env, []string{"--target", "127.0.0.1:8080"}, "not an http(s) URL"},
		{"no key", map[string]string{}, []string{"--target", "http://127.0.0.1:8080"}, "set PHONEVERIFY_API_KEY"},
		{"receiver not on loopback", env, []string{"--target", "http://127.0.0.1:8080", "--receiver", "0.0.0.0:8099"}, "must be a loopback address"},
		{"two sqlite nodes", nil, []string{"--nodes", "2"}, "needs a shared PostgreSQL database"},
		{"too many nodes", nil, []string{"--nodes", "9"}, "--nodes must be 1 to 8"},
		{"too long", nil, []string{"--duration", "2h"}, "the duration must be positive and at most 1h0m0s"},
		{"server flags with a target", env, []string{"--target", "http://127.0.0.1:8080", "--nodes", "2"}, "for self-started nodes"},
		{"foreign server env", nil, []string{"--server-env", "PATH=/tmp"}, "want PHONEVERIFY_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), append([]string{"bench"}, tt.args...), envFunc(tt.env), &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("bench %v: error %v, want one saying %q", tt.args, err, tt.want)
			}
		})
	}
}
