package inmem_test

import (
	"testing"

	"github.com/engramhq/engram/eventstore/inmem"
	"github.com/engramhq/engram/eventstore/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return inmem.New() })
}
