package pipeline

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"
)

// IDGenerator makes time-sortable event ids: UUIDv7 (RFC 9562) with the
// event's time in the top 48 bits and its sub-millisecond fraction in the
// next 12, so ids sort by event time. It is safe for concurrent use.
type IDGenerator struct {
	mu  sync.Mutex
	rng *rand.ChaCha8
}

// NewIDGenerator returns a generator seeded from crypto/rand.
func NewIDGenerator() *IDGenerator {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return &IDGenerator{rng: rand.NewChaCha8(seed)}
}

// New returns the id for an event at time t, in its 36-character form.
func (g *IDGenerator) New(t time.Time) string {
	var buf [36]byte
	return string(g.Append(buf[:0], t))
}

// Append appends the id for an event at time t to dst.
func (g *IDGenerator) Append(dst []byte, t time.Time) []byte {
	g.mu.Lock()
	r := g.rng.Uint64()
	g.mu.Unlock()
	return appendUUIDv7(dst, t, r)
}

// assign gives every event of events that has no ID a fresh one. All the
// ids of a batch share one allocation and one random draw: the random bits
// are a per-batch value plus the event's index, still unique with
// overwhelming probability.
func (g *IDGenerator) assign(events []Event, scratch []byte) []byte {
	missing := 0
	for i := range events {
		if events[i].ID == "" {
			missing++
		}
	}
	if missing == 0 {
		return scratch
	}
	g.mu.Lock()
	r := g.rng.Uint64()
	g.mu.Unlock()
	scratch = scratch[:0]
	for i := range events {
		if events[i].ID == "" {
			scratch = appendUUIDv7(scratch, events[i].Time, r+uint64(i))
		}
	}
	all := string(scratch)
	k := 0
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = all[k : k+36]
			k += 36
		}
	}
	return scratch
}

func appendUUIDv7(dst []byte, t time.Time, r uint64) []byte {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	frac := uint64(t.Nanosecond()%1e6) * 4096 / 1e6
	binary.BigEndian.PutUint64(u[0:8], ms<<16|0x7000|frac&0x0fff)
	binary.BigEndian.PutUint64(u[8:16], r&0x3fffffffffffffff|0x8000000000000000)
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return dst
}
