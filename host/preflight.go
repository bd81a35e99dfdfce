package host

import (
	"bytes"
	"errors"
	"fmt"
)

// Limits checked on a module's bytes before wazero decodes them. A decoder
// trusts the counts a module declares and allocates for them: 30 bytes
// declaring 2^32-1 locals or data segments make it allocate until the Go
// runtime dies. preflight walks the sections, refuses a declared count
// that the bytes after it cannot hold, bounds the locals of a function,
// and rewrites the table section so that no table can grow past a budget
// (table.grow then fails, as the spec allows, instead of taking memory
// outside linear memory).
const (
	// MaxModuleBytes bounds a plugin file; it is checked before the file
	// is read.
	MaxModuleBytes = 64 << 20
	// MaxFunctionLocals bounds the locals one function declares.
	MaxFunctionLocals = 50_000
	// MaxTableElements bounds the elements of every table of a module
	// together (8 bytes each in wazero).
	MaxTableElements = 1 << 20
)

var (
	errTruncated = errors.New("truncated")
	errNotWasm   = errors.New("not a valid wasm module")
)

type reader struct {
	b   []byte
	off int
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) u32() (uint32, error) {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, errors.New("LEB128 value over 32 bits")
			}
			return uint32(v), nil
		}
	}
	return 0, errors.New("LEB128 value over 5 bytes")
}

// u64 reads an unsigned or signed LEB128 of up to 10 bytes (its value is
// only skipped or used as an index).
func (r *reader) u64() (uint64, error) {
	var v uint64
	for shift := 0; shift < 70; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("LEB128 value over 10 bytes")
}

// skipLEB moves past a LEB128 of up to 10 bytes.
func (r *reader) skipLEB() error {
	for k := 0; k < 10; k++ {
		if r.off >= len(r.b) {
			return errTruncated
		}
		c := r.b[r.off]
		r.off++
		if c&0x80 == 0 {
			return nil
		}
	}
	return errors.New("LEB128 value over 10 bytes")
}

// skipMemarg moves past a memory argument: alignment (with a memory index
// after it when bit 6 is set) and offset.
func (r *reader) skipMemarg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		if err := r.skipLEB(); err != nil {
			return err
		}
	}
	return r.skipLEB()
}

func (r *reader) skip(n int) error {
	if n < 0 || r.left() < n {
		return errTruncated
	}
	r.off += n
	return nil
}

func (r *reader) left() int { return len(r.b) - r.off }

// preflight checks bin and returns it, or a copy with its table section
// rewritten.
func preflight(bin []byte) ([]byte, error) {
	if len(bin) > MaxModuleBytes {
		return nil, fmt.Errorf("module is %d bytes, over the limit of %d", len(bin), MaxModuleBytes)
	}
	if len(bin) < 8 || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: no \\0asm header", errNotWasm)
	}
	if !bytes.Equal(bin[4:8], []byte{1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: not version 1", errNotWasm)
	}
	r := &reader{b: bin, off: 8}
	out := bin
	types := uint32(0) // the type section's count, for the type indexes after it
	for r.left() > 0 {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if int(size) > r.left() {
			return nil, fmt.Errorf("section %d declares %d bytes, %d are left", id, size, r.left())
		}
		body := &reader{b: r.b[r.off : r.off+int(size)]}
		r.off += int(size)
		if id == 0 || id == 8 { // custom, start: no vector
			continue
		}
		if id > 12 {
			return nil, fmt.Errorf("unknown section id %d", id)
		}
		count, err := body.u32()
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if id == 12 { // datacount: a count of segments held elsewhere
			if count > uint32(len(bin)) {
				return nil, fmt.Errorf("data count %d cannot be held by a module of %d bytes", count, len(bin))
			}
			continue
		}
		// Every item of every vector section takes at least one byte.
		if int64(count) > int64(body.left()) {
			return nil, fmt.Errorf("section %d declares %d items in %d bytes", id, count, body.left())
		}
		switch id {
		case 1:
			types = count
		case 2:
			if err := checkImports(body, count, types); err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
		case 3:
			// wazero v1.12 validates a call to a function before that
			// function's type index, and panics on one out of range.
			for i := range count {
				t, err := body.u32()
				if err != nil {
					return nil, fmt.Errorf("function section: %w", err)
				}
				if t >= types {
					return nil, fmt.Errorf("function %d has type %d; the module declares %d types", i, t, types)
				}
			}
		case 4:
			t, err := capTables(body, count)
			if err != nil {
				return nil, fmt.Errorf("table section: %w", err)
			}
			out = append(append(append(append([]byte(nil), out[:start]...), 4), uleb(uint32(len(t)))...), t...)
			out = append(out, bin[r.off:]...)
			// The rest is copied unchanged; offsets in r stay those of bin.
		case 10:
			if err := checkCode(body, count); err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
		}
	}
	return out, nil
}

// capTables re-encodes the table section with every table's maximum
// within the module's budget.
func capTables(body *reader, count uint32) ([]byte, error) {
	t := uleb(count)
	budget := uint64(MaxTableElements)
	for i := range count {
		ref, err := body.byte()
		if err != nil {
			return nil, err
		}
		flag, err := body.byte()
		if err != nil {
			return nil, err
		}
		if flag > 1 {
			return nil, fmt.Errorf("table %d: limits flag %#x not supported", i, flag)
		}
		lo, err := body.u32()
		if err != nil {
			return nil, err
		}
		hi := lo // no maximum: the table cannot grow
		if flag == 1 {
			if hi, err = body.u32(); err != nil {
				return nil, err
			}
		}
		if uint64(lo) > budget {
			return nil, fmt.Errorf("table %d starts with %d elements; a module may hold %d in all", i, lo, MaxTableElements)
		}
		hi = uint32(min(uint64(hi), budget))
		budget -= uint64(hi)
		t = append(t, ref, 1)
		t = append(t, uleb(lo)...)
		t = append(t, uleb(hi)...)
	}
	if body.left() != 0 {
		return nil, errors.New("bytes after the last table")
	}
	return t, nil
}

// checkImports checks the type index of every imported function.
func checkImports(body *reader, count, types uint32) error {
	limits := func() error {
		flag, err := body.byte()
		if err != nil {
			return err
		}
		if flag > 3 {
			return fmt.Errorf("limits flag %#x not supported", flag)
		}
		if err := body.skipLEB(); err != nil {
			return err
		}
		if flag&1 != 0 {
			return body.skipLEB()
		}
		return nil
	}
	for i := range count {
		for range 2 { // module and name
			n, err := body.u32()
			if err != nil {
				return err
			}
			if err := body.skip(int(n)); err != nil {
				return err
			}
		}
		kind, err := body.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0: // function
			t, err := body.u32()
			if err != nil {
				return err
			}
			if t >= types {
				return fmt.Errorf("import %d has type %d; the module declares %d types", i, t, types)
			}
		case 1: // table
			if _, err := body.byte(); err != nil {
				return err
			}
			if err := limits(); err != nil {
				return err
			}
		case 2: // memory
			if err := limits(); err != nil {
				return err
			}
		case 3: // global
			if err := body.skip(2); err != nil {
				return err
			}
		default:
			return fmt.Errorf("import %d of kind %d not supported", i, kind)
		}
	}
	return nil
}

// checkCode bounds the locals of every function body.
func checkCode(body *reader, count uint32) error {
	for i := range count {
		size, err := body.u32()
		if err != nil {
			return err
		}
		if int(size) > body.left() {
			return fmt.Errorf("function %d declares %d bytes, %d are left", i, size, body.left())
		}
		fn := &reader{b: body.b[body.off : body.off+int(size)]}
		body.off += int(size)
		groups, err := fn.u32()
		if err != nil {
			return fmt.Errorf("function %d: %w", i, err)
		}
		if int64(groups)*2 > int64(fn.left()) {
			return fmt.Errorf("function %d declares %d groups of locals in %d bytes", i, groups, fn.left())
		}
		total := uint64(0)
		for range groups {
			n, err := fn.u32()
			if err != nil {
				return fmt.Errorf("function %d: %w", i, err)
			}
			if _, err := fn.byte(); err != nil {
				return fmt.Errorf("function %d: %w", i, err)
			}
			if total += uint64(n); total > MaxFunctionLocals {
				return fmt.Errorf("function %d declares over %d locals", i, MaxFunctionLocals)
			}
		}
	}
	return nil
}

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
