package pipeline

import "errors"

var (
	// ErrClosed is returned by Emit and Publish after Close began, and by
	// Subscription.Next once a closed subscription has been drained.
	ErrClosed = errors.New("eventpipe: bus closed")
	// ErrBufferFull is returned under the "reject" overflow policy.
	ErrBufferFull = errors.New("eventpipe: buffer full")
	// ErrBlockTimeout is returned under the "block" policy when no room
	// appeared within the block timeout.
	ErrBlockTimeout = errors.New("eventpipe: buffer full: timed out waiting for room")
	// ErrDropped is returned under the "drop_newest" policy: the event was
	// not accepted (and was counted).
	ErrDropped = errors.New("eventpipe: buffer full: event dropped")
	// ErrRateLimited is returned when the rate limit's policy is "drop".
	ErrRateLimited = errors.New("eventpipe: rate limited: event dropped")
)
