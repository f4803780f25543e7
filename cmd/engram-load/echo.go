package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/queries"
)

// newEchoServer is the raw limit of a GET: an echo router with one JSON
// handler at /echo, no middleware, no database.
func newEchoServer() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	now := time.Now().UTC()
	// A conversation as Engram answers it: the same type, encoded the same way.
	body := queries.Conversation{
		ID: "0197a3c2-5d1e-7b44-9a51-2f6f4c1e8d20", WorkspaceID: "0197a3c2-5c90-7f10-8e0b-6a3d9b7f1c55",
		Title: "Quarterly planning", Modality: "text", CreatedBy: "0197a3c2-5b12-7aa8-b3c4-1e2f3a4b5c6d",
		MessageCount: 20, CreatedAt: now, UpdatedAt: now, LastActivityAt: now, Version: 21,
	}
	e.GET("/echo", func(c echo.Context) error { return c.JSON(http.StatusOK, body) })
	return e
}

// runEcho serves the echo handler until ctx ends, printing its address.
func runEcho(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("engram-load echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "engram-load echo:", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: newEchoServer(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return 0
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return 0
		}
		fmt.Fprintln(stderr, "engram-load echo:", err)
		return 1
	}
}
