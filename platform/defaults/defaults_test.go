package defaults_test

import (
	"testing"
	"time"

	"github.com/engramhq/engram/platform/defaults"
)

func TestPositiveKeepsOnlyPositiveValues(t *testing.T) {
	for _, tt := range []struct {
		given, want time.Duration
	}{
		{0, time.Second},
		{-time.Millisecond, time.Second},
		{time.Millisecond, time.Millisecond},
	} {
		got := tt.given
		defaults.Positive(&got, time.Second)
		if got != tt.want {
			t.Errorf("Positive(%v, 1s) = %v, want %v", tt.given, got, tt.want)
		}
	}
	n := 0
	defaults.Positive(&n, 16)
	if n != 16 {
		t.Errorf("Positive(0, 16) = %d, want 16", n)
	}
}
