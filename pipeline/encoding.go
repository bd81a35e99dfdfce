package pipeline

import (
	"context"
	"sync/atomic"
)

// Formats of SharedEncodings: the encodings outputs write.
const (
	EncodingEventpipe      = "eventpipe"        // Event.AppendJSON
	EncodingCloudEvents    = "cloudevents"      // Event.AppendCloudEvent
	EncodingCloudEventLine = "cloudevents-line" // Event.AppendCloudEventLine
)

// SharedEncodings lets the outputs of one batch share each event's
// encoding in a format, so that an event routed to a file and to stdout
// is encoded once. The runner makes one per batch for the formats two or
// more of its outputs write, and hands each output a view of it through
// the context of Export (WithSharedEncodings); an output asks for its
// format with SharedEncodingsFor. Safe for the outputs' goroutines: an
// encoding is made by whichever asks first (rarely, two may make it).
type SharedEncodings struct {
	n       int
	formats map[string][]atomic.Pointer[[]byte] // by format, one per batch index
}

// NewSharedEncodings returns shared encodings for a batch of n events in
// formats.
func NewSharedEncodings(n int, formats ...string) *SharedEncodings {
	s := &SharedEncodings{n: n, formats: make(map[string][]atomic.Pointer[[]byte], len(formats))}
	for _, f := range formats {
		s.Add(f)
	}
	return s
}

// Add shares format too. Only before the outputs use s.
func (s *SharedEncodings) Add(format string) {
	if _, ok := s.formats[format]; !ok {
		s.formats[format] = make([]atomic.Pointer[[]byte], s.n)
	}
}

type sharedKey struct{}

type sharedView struct {
	s   *SharedEncodings
	idx []int // the batch index of each event handed to the output
}

// WithSharedEncodings returns ctx carrying s for an output whose events
// are those of the batch at idx.
func WithSharedEncodings(ctx context.Context, s *SharedEncodings, idx []int) context.Context {
	return context.WithValue(ctx, sharedKey{}, sharedView{s, idx})
}

// EncodingView is an output's view of the shared encodings in its format.
type EncodingView struct {
	slots []atomic.Pointer[[]byte]
	idx   []int
}

// SharedEncodingsFor returns the view of the shared encodings in format
// for the n events an output was given, or nil when ctx carries none for
// them (a single output, or a retry of some of them).
func SharedEncodingsFor(ctx context.Context, format string, n int) *EncodingView {
	v, ok := ctx.Value(sharedKey{}).(sharedView)
	if !ok || len(v.idx) != n {
		return nil
	}
	slots, ok := v.s.formats[format]
	if !ok {
		return nil
	}
	return &EncodingView{slots: slots, idx: v.idx}
}

// Append appends the encoding of ev, the output's i-th event, to dst:
// the shared one, or one made with enc and shared. A nil view encodes.
func (v *EncodingView) Append(dst []byte, i int, ev *Event, enc func([]byte, *Event) []byte) []byte {
	if v == nil {
		return enc(dst, ev)
	}
	slot := &v.slots[v.idx[i]]
	if b := slot.Load(); b != nil {
		return append(dst, *b...)
	}
	n := len(dst)
	dst = enc(dst, ev)
	b := append([]byte(nil), dst[n:]...)
	slot.Store(&b)
	return dst
}
