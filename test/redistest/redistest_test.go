package redistest_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/test/redistest"
)

func TestPrefixIsRemovedWhenTheTestEnds(t *testing.T) {
	client := redistest.Client(t, "")
	var prefix string
	t.Run("writer", func(t *testing.T) {
		prefix = redistest.Prefix(t)
		if !strings.HasPrefix(prefix, "engramtest:") || !strings.HasSuffix(prefix, ":") {
			t.Fatalf("prefix %q, want engramtest:<hex>:", prefix)
		}
		ctx := t.Context()
		if err := client.Set(ctx, prefix+"forever", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := client.Set(ctx, prefix+"expiring", "v", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if err := client.HSet(ctx, prefix+"a:hash*[x]", "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
	})
	keys, err := redistest.Keys(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left under %s: %q", prefix, keys)
	}
}

func TestDeleteTouchesOnlyItsPrefix(t *testing.T) {
	client := redistest.Client(t, "")
	ctx := t.Context()
	mine, other := redistest.Prefix(t), redistest.Prefix(t)
	for i := range 2500 { // more than one UNLINK batch
		if err := client.Set(ctx, mine+"k"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Set(ctx, other+"kept", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := redistest.Delete(ctx, client, mine)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2500 {
		t.Errorf("Delete removed %d keys, want 2500", n)
	}
	if left, err := redistest.Keys(ctx, client, mine); err != nil || len(left) != 0 {
		t.Errorf("Keys(mine) = %d keys, %v; want none", len(left), err)
	}
	if left, err := redistest.Keys(ctx, client, other); err != nil || len(left) != 1 {
		t.Errorf("Keys(other) = %q, %v; want its one key", left, err)
	}
}

func TestDeleteDoesNotTreatThePrefixAsAGlob(t *testing.T) {
	client := redistest.Client(t, "")
	ctx := context.Background()
	base := redistest.Prefix(t)
	glob := base + "*"
	if err := client.Set(ctx, base+"plain", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := redistest.Delete(ctx, client, glob); err != nil || n != 0 {
		t.Errorf("Delete(%q) = %d, %v; want nothing removed", glob, n, err)
	}
}
