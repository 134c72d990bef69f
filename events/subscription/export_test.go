package subscription

import "time"

// StopRequested is closed once Stop has been called or Subscribe's context
// has ended.
func (s *Subscription) StopRequested() <-chan struct{} { return s.stopping }

// BackoffFor returns the delay after the handler failed on delivery n.
func (c Config) BackoffFor(n uint64) time.Duration { return c.WithDefaults().backoff(n) }
