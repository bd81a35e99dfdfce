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
	mu     sync.Mutex
	rng    *rand.ChaCha8
	lastHi uint64 // the last id's time bits (with version)
	lastLo uint64 // and its random bits
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
	hi, lo := g.next(t, g.rng.Uint64())
	g.mu.Unlock()
	return appendUUID(dst, hi, lo)
}

// next returns the id bits for time t: ids from one generator strictly
// increase (RFC 9562, 6.2 method 2): an id whose time bits are not after
// the last one's reuses them and increments the random bits.
func (g *IDGenerator) next(t time.Time, r uint64) (hi, lo uint64) {
	ms := uint64(t.UnixMilli())
	frac := uint64(t.Nanosecond()%1e6) * 4096 / 1e6
	hi = ms<<16 | 0x7000 | frac&0x0fff
	lo = r&0x3fffffffffffffff | 0x8000000000000000
	if hi <= g.lastHi {
		hi, lo = g.lastHi, g.lastLo+1
		if lo&0x3fffffffffffffff == 0 { // random bits exhausted: move time on
			hi, lo = hi+1, 0x8000000000000000
		}
	}
	g.lastHi, g.lastLo = hi, lo
	return hi, lo
}

// Assign gives every event of events that has no ID a fresh one (see
// assign).
func (g *IDGenerator) Assign(events []Event) { g.assign(events, nil) }

// assign gives every event of events that has no ID a fresh one. All the
// ids of a batch share one allocation and one random draw (spread by the
// event's index); ids still strictly increase, see next.
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
	scratch = scratch[:0]
	for i := range events {
		if events[i].ID == "" {
			hi, lo := g.next(events[i].Time, r+uint64(i)*0x9e3779b97f4a7c15)
			scratch = appendUUID(scratch, hi, lo)
		}
	}
	g.mu.Unlock()
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

func appendUUID(dst []byte, hi, lo uint64) []byte {
	var u [16]byte
	binary.BigEndian.PutUint64(u[0:8], hi)
	binary.BigEndian.PutUint64(u[8:16], lo)
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return dst
}
