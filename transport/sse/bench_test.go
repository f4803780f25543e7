package sse

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/transport/request"
)

// BenchmarkDelivery measures the hub's fan-out to real HTTP streams on
// loopback: one operation is one event delivered to every subscriber.
// It reports the wall time and the CPU time (of this process, which runs
// both ends of every socket) per delivery.
func BenchmarkDelivery(b *testing.B) {
	for _, subscribers := range []int{10, 200, 1000} {
		b.Run(strconv.Itoa(subscribers), func(b *testing.B) { benchmarkDelivery(b, subscribers) })
	}
}

func benchmarkDelivery(b *testing.B, subscribers int) {
	w := newWorld()
	h, _ := newTestHub(b, w.log, Config{MaxConnectionsPerUser: subscribers, Buffer: 4096}, nil)
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			request.SetActor(c, w.ada, time.Time{})
			return next(c)
		}
	})
	h.Register(e.Group("/v1"))
	srv := httptest.NewServer(e)
	defer srv.Close()

	var received atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range subscribers {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/conversations/"+w.c1+"/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("connect: %v", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "id: ") {
					received.Add(1)
				}
			}
		}()
	}
	events := make([]eventstore.Event, b.N)
	for i := range events {
		events[i] = w.post(w.c1, "benchmark")
	}
	cpuBefore := cpuTime()
	b.ResetTimer()
	for i, ev := range events {
		if err := h.Handle(eventstore.ToMessage(ev)); err != nil {
			b.Fatal(err)
		}
		// Stay within the buffers: at most 1000 events in flight.
		for int64(i+1-1000)*int64(subscribers) > received.Load() {
			time.Sleep(50 * time.Microsecond)
		}
	}
	want := int64(b.N) * int64(subscribers)
	for received.Load() < want {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
	b.ReportMetric(float64((cpuTime()-cpuBefore).Nanoseconds())/float64(want), "cpu-ns/delivery")
	cancel()
	srv.CloseClientConnections()
	wg.Wait()
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
