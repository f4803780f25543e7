package sse

import (
	"context"
	"net"
)

type connKey struct{}

// ConnContext keeps each connection in its base context, so that a live
// stream can bound its socket's send buffer (see Config.SendBuffer). Pass it
// as the HTTP server's ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// limitSendBuffer fixes the send buffer of the request's TCP connection to
// size bytes. Left alone, the kernel grows it up to megabytes for a client
// that does not read, which hides a slow client from the hub and costs
// memory; fixed, a stuck client fills its stream's bounded buffer soon.
func limitSendBuffer(ctx context.Context, size int) {
	if size <= 0 {
		return
	}
	if c, ok := ctx.Value(connKey{}).(*net.TCPConn); ok {
		_ = c.SetWriteBuffer(size)
	}
}
