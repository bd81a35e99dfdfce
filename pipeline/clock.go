package pipeline

import (
	"sync/atomic"
	"time"
)

// clock stamps events' times at about two thirds the cost of time.Now on
// machines where reading the wall clock is slow (a VM without a usable
// TSC: ~50 ns, most of an enabled Emit): one read of the monotonic clock,
// added to an anchor read from the wall clock. The anchor is renewed when
// it is a second old, so a step of the system clock shows within a second.
type clock struct {
	anchor atomic.Pointer[time.Time]
}

func (c *clock) now() time.Time {
	if a := c.anchor.Load(); a != nil {
		if d := time.Since(*a); d < time.Second {
			return a.Add(d)
		}
	}
	return c.renew()
}

// renew reads the wall clock and makes it the anchor.
func (c *clock) renew() time.Time {
	t := time.Now().UTC()
	c.anchor.Store(&t)
	return t
}
