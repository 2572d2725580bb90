package ingest

import (
	"sync"
	"time"
)

// replayCache remembers the signatures of accepted deliveries for the length of the
// signature window, so a captured request replayed within the window is refused.
// A signature is reserved while its delivery is processed and released if the
// delivery fails, so a sender may retry a delivery that was not accepted.
type replayCache struct {
	mu      sync.Mutex
	window  time.Duration
	max     int
	entries map[string]time.Time // key → expiry
	sweepAt time.Time
}

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, entries: make(map[string]time.Time)}
}

// reserve claims key; false means it was seen within the window.
func (c *replayCache) reserve(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.entries[key]; ok && now.Before(exp) {
		return false
	}
	if now.After(c.sweepAt) || len(c.entries) >= c.max {
		c.sweep(now)
	}
	// Signatures older than the window are refused as stale anyway, so the window
	// (plus the allowed clock skew) is all a key needs to be kept for.
	c.entries[key] = now.Add(2 * c.window)
	return true
}

// release forgets key after a failed delivery.
func (c *replayCache) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// sweep drops expired keys; if the cache is still full it drops the oldest half,
// trading replay protection for bounded memory under a flood.
func (c *replayCache) sweep(now time.Time) {
	for k, exp := range c.entries {
		if !now.Before(exp) {
			delete(c.entries, k)
		}
	}
	c.sweepAt = now.Add(c.window / 4)
	if len(c.entries) < c.max {
		return
	}
	cutoff := now.Add(c.window) // entries expiring before this are the older half
	for k, exp := range c.entries {
		if exp.Before(cutoff) {
			delete(c.entries, k)
		}
	}
}
