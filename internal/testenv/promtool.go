package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Promtool returns the path of Prometheus's promtool, which checks metrics
// output and rule files (Debian's package prometheus). Without it it skips
// tb with a message saying how to install it, or fails tb when
// PHONEVERIFY_TEST_REQUIRE_SERVICES=1.
func Promtool(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	msg := "promtool is not installed: install Debian's package with `apt-get update && apt-get install -y prometheus` to run the metrics checks"
	if os.Getenv(RequireVar) == "1" {
		tb.Fatal(msg + " (" + RequireVar + "=1 forbids skipping)")
	}
	tb.Skip(msg)
	return ""
}
