package eventstore

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

var ProbeQueueNs, ProbeWriteNs, ProbeGroups, ProbeAppends atomic.Int64

func init() {
	go func() {
		var q0, w0, g0, a0 int64
		for range time.Tick(5 * time.Second) {
			q, w, g, a := ProbeQueueNs.Load(), ProbeWriteNs.Load(), ProbeGroups.Load(), ProbeAppends.Load()
			if a == a0 {
				continue
			}
			fmt.Fprintf(os.Stderr, "PROBE appends %d groups %d  queue avg %.2fms  group write avg %.2fms  appends/group %.1f\n",
				a-a0, g-g0, float64(q-q0)/float64(a-a0)/1e6, float64(w-w0)/float64(max(g-g0, 1))/1e6, float64(a-a0)/float64(max(g-g0, 1)))
			q0, w0, g0, a0 = q, w, g, a
		}
	}()
}
