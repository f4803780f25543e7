package inmem_test

import (
	"testing"

	"github.com/engramhq/engram/cognition/inmem"
	"github.com/engramhq/engram/cognition/memorytest"
)

func TestMemoryContract(t *testing.T) {
	memorytest.Run(t, func(t *testing.T) memorytest.Subject {
		m := inmem.New()
		return memorytest.Subject{Memory: m, Apply: m.Apply}
	})
}
