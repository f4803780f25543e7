package redis_test

import (
	"testing"

	"github.com/engramhq/engram/test/redistest"
)

// TestMain fails the run if a test left keys under a Redis prefix it was
// given.
func TestMain(m *testing.M) { redistest.Main(m) }
