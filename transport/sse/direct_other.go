//go:build !unix

package sse

import "errors"

// directWrites tells whether live streams may be written directly (see
// flusher): not on this platform, where every stream writes for itself.
const directWrites = false

func writeFD(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
