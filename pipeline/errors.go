package pipeline

import (
	"errors"
	"fmt"
)

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

// FieldError is a configuration problem with one key of a component's
// configuration. Field is the key path relative to the component (for
// example "buffer_size" or "rules[1].to[0]"), in the spelling of the
// configuration file, so that a loader can point at the line it came from.
// Validate methods return FieldErrors, alone or joined with errors.Join.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrorf returns a *FieldError for field with a formatted message.
func FieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
