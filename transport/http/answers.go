package http

import (
	"encoding/json"
	"math/rand/v2"
	"sync"

	"github.com/labstack/echo/v4"
)

// answersKey is where a request finds its server's encoded answers.
const answersKey = "engram.answers"

// maxAnswers and maxAnswerBytes bound the encoded answers kept.
const (
	maxAnswers     = 4096
	maxAnswerBytes = 32 << 20
)

// answers remembers the JSON encoding of the answers of conditional GETs,
// by caller, request URI and ETag. An ETag names one representation of
// what the caller may see at that URI (RFC 9110, 8.8.3), so the bytes
// encoded for it once are the bytes of every later answer with that ETag:
// a client polling a page that has not changed costs a lookup, not an
// encoding of every item again.
type answers struct {
	mu    sync.RWMutex
	m     map[string][]byte
	bytes int
}

func newAnswers() *answers { return &answers{m: map[string][]byte{}} }

// use makes the answers reachable from every request's context.
func (a *answers) use(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(answersKey, a)
		return next(c)
	}
}

// encoded returns the JSON of body under key, encoding and keeping it the
// first time.
func (a *answers) encoded(key string, body any) ([]byte, error) {
	a.mu.RLock()
	b, ok := a.m[key]
	a.mu.RUnlock()
	if ok {
		return b, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	b = append(b, '\n') // as echo's JSON answers end
	if len(b) > maxAnswerBytes/64 {
		return b, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.m) >= maxAnswers || a.bytes+len(b) > maxAnswerBytes {
		a.evictOne()
	}
	if old, ok := a.m[key]; ok {
		a.bytes -= len(old)
	}
	a.m[key] = b
	a.bytes += len(b)
	return b, nil
}

// evictOne drops an answer taken at random (mu held).
func (a *answers) evictOne() {
	skip := rand.IntN(min(len(a.m), 8))
	for k, b := range a.m {
		if skip == 0 {
			delete(a.m, k)
			a.bytes -= len(b)
			return
		}
		skip--
	}
}
