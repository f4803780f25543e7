//go:build unix

package sse

import "syscall"

// directWrites tells whether live streams may be written directly (see
// flusher).
const directWrites = true

// writeFD writes b to the non-blocking descriptor fd once.
func writeFD(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
