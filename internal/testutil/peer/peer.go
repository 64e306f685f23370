// Package peer holds what every real-peer test fixture shares: the rule
// that a missing peer skips locally and fails under CI=true.
package peer

import (
	"fmt"
	"os"
	"testing"
)

// Unavailable skips or, under CI=true, fails the test.
func Unavailable(t testing.TB, why string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(why, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a required peer is unavailable: %s", msg)
	}
	t.Skipf("skipped (set CI=true to make this a failure): %s", msg)
}
