package sse

import "sync"

// recentFrames is how many encoded event frames the hub keeps.
const recentFrames = 8192

// frameCache keeps the most recently encoded event frames by global
// position, evicting the oldest insertion first. It is safe for concurrent
// use.
type frameCache struct {
	mu     sync.Mutex
	frames map[int64]*frame
	order  []int64 // a ring of the positions in frames, oldest at next
	next   int
}

func newFrameCache(size int) *frameCache {
	return &frameCache{frames: make(map[int64]*frame, size), order: make([]int64, 0, size)}
}

func (c *frameCache) get(position int64) (*frame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.frames[position]
	return f, ok
}

func (c *frameCache) put(position int64, f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.frames[position]; ok {
		return
	}
	if len(c.order) < cap(c.order) {
		c.order = append(c.order, position)
	} else {
		delete(c.frames, c.order[c.next])
		c.order[c.next] = position
		c.next = (c.next + 1) % len(c.order)
	}
	c.frames[position] = f
}
