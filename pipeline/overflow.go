package pipeline

import "fmt"

// Overflow is what a full bounded buffer does with one more event.
type Overflow uint8

const (
	// DropOldest discards the oldest queued event to make room; the new
	// event is accepted. Never blocks the producer.
	DropOldest Overflow = iota
	// DropNewest discards the new event (Emit returns ErrDropped).
	DropNewest
	// Block waits for room up to the block timeout, then fails with
	// ErrBlockTimeout.
	Block
	// Reject fails at once with ErrBufferFull.
	Reject
)

var overflowNames = [...]string{"drop_oldest", "drop_newest", "block", "reject"}

func (o Overflow) String() string {
	if int(o) < len(overflowNames) {
		return overflowNames[o]
	}
	return fmt.Sprintf("Overflow(%d)", o)
}

// ParseOverflow reads an overflow policy name (drop_oldest, drop_newest,
// block, reject).
func ParseOverflow(s string) (Overflow, error) {
	for i, n := range overflowNames {
		if n == s {
			return Overflow(i), nil
		}
	}
	return 0, fmt.Errorf("unknown overflow policy %q (want drop_oldest, drop_newest, block or reject)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (o Overflow) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Overflow) UnmarshalText(b []byte) error {
	v, err := ParseOverflow(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// RateLimitPolicy is what the rate limiter does with an event over the rate.
type RateLimitPolicy uint8

const (
	// RateDrop drops the event, counted as rate-limited.
	RateDrop RateLimitPolicy = iota
	// RateWait waits for a token (up to the context's deadline).
	RateWait
)

func (p RateLimitPolicy) String() string {
	if p == RateWait {
		return "wait"
	}
	return "drop"
}

// ParseRateLimitPolicy reads "drop" or "wait".
func ParseRateLimitPolicy(s string) (RateLimitPolicy, error) {
	switch s {
	case "drop":
		return RateDrop, nil
	case "wait":
		return RateWait, nil
	}
	return 0, fmt.Errorf("unknown rate limit policy %q (want drop or wait)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (p RateLimitPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *RateLimitPolicy) UnmarshalText(b []byte) error {
	v, err := ParseRateLimitPolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
