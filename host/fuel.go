package host

import (
	"errors"
	"fmt"
	"slices"
)

// Fuel metering. wazero stops a call when its context ends only if the
// module was compiled with termination checks, and those leave the
// compiled code at every loop header (~20 ns per iteration: byte loops run
// 5-8x slower). Instead, the host rewrites the module when it loads it, as
// paritytech's wasm-instrument and NEAR do: a mutable i64 global, the
// fuel, is charged one unit at every loop header and at the entry of
// every function that loops or calls (one that does neither ends by
// itself), and the code traps (unreachable) once it is below zero. The
// host fills the tank before each call (fuel per batch, scaled by its
// events); a watchdog empties it when the batch's timeout passes, so a
// wall-clock limit costs nothing until it fires. The rewrite keeps every
// index, branch depth and offset the module had: it appends a global and
// an export, and inserts a self-contained sequence of instructions.
//
// The injected check, 18-20 bytes:
//
//	global.get F; i64.const 1; i64.sub; global.set F
//	global.get F; i64.const 0; i64.lt_s; if; unreachable; end

// FuelExport is the name of the fuel global a metered module exports.
const FuelExport = "__eventpipe_fuel"

// LoadFuel is the fuel a metered module starts with: its start function
// runs before the host can fill the tank.
const LoadFuel = 1_000_000_000

// section ids in the order the binary format requires.
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

// meter returns bin with fuel metering injected.
func meter(bin []byte) ([]byte, error) {
	type sec struct {
		id   byte
		body []byte
	}
	var secs []sec
	r := &reader{b: bin, off: 8}
	for r.left() > 0 {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int(size) > r.left() {
			return nil, errTruncated
		}
		secs = append(secs, sec{id, r.b[r.off : r.off+int(size)]})
		r.off += int(size)
	}
	// The fuel global's index: after the imported and declared globals.
	var importedGlobals, declaredGlobals uint32
	var exports, globals []byte
	haveGlobals, haveExports := false, false
	for _, s := range secs {
		switch s.id {
		case 2:
			n, err := countImportedGlobals(s.body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			importedGlobals = n
		case 6:
			haveGlobals = true
			globals = s.body
			n, err := (&reader{b: s.body}).u32()
			if err != nil {
				return nil, err
			}
			declaredGlobals = n
		case 7:
			haveExports = true
			exports = s.body
		}
	}
	fuel := importedGlobals + declaredGlobals
	check := fuelCheck(fuel)

	newGlobals, err := appendItem(globals, haveGlobals, append([]byte{0x7e, 0x01, 0x42}, append(sleb64(LoadFuel), 0x0b)...))
	if err != nil {
		return nil, fmt.Errorf("global section: %w", err)
	}
	exp := append(uleb(uint32(len(FuelExport))), FuelExport...)
	exp = append(append(exp, 0x03), uleb(fuel)...)
	newExports, err := appendItem(exports, haveExports, exp)
	if err != nil {
		return nil, fmt.Errorf("export section: %w", err)
	}

	out := make([]byte, 0, len(bin)+len(bin)/4+64)
	out = append(out, bin[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = append(out, uleb(uint32(len(body)))...)
		out = append(out, body...)
	}
	placedG, placedE := false, false
	place := func(rank int) {
		if !placedG && rank > sectionOrder[6] {
			emit(6, newGlobals)
			placedG = true
		}
		if !placedE && rank > sectionOrder[7] {
			emit(7, newExports)
			placedE = true
		}
	}
	for _, s := range secs {
		if s.id != 0 {
			place(sectionOrder[s.id])
		}
		switch s.id {
		case 6:
			emit(6, newGlobals)
			placedG = true
		case 7:
			emit(7, newExports)
			placedE = true
		case 10:
			code, err := meterCode(s.body, check)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			emit(10, code)
		default:
			emit(s.id, s.body)
		}
	}
	place(len(sectionOrder) + 1) // at the end, if not placed yet
	return out, nil
}

// fuelCheck is the injected sequence for fuel global g.
func fuelCheck(g uint32) []byte {
	gi := uleb(g)
	var c []byte
	c = append(append(c, 0x23), gi...) // global.get
	c = append(c, 0x42, 0x01, 0x7d)    // i64.const 1; i64.sub
	c = append(append(c, 0x24), gi...) // global.set
	c = append(append(c, 0x23), gi...) // global.get
	c = append(c, 0x42, 0x00, 0x53)    // i64.const 0; i64.lt_s
	c = append(c, 0x04, 0x40, 0x00, 0x0b)
	return c
}

func countImportedGlobals(body []byte) (uint32, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	var globals uint32
	skipName := func() error {
		l, err := r.u32()
		if err != nil {
			return err
		}
		if int(l) > r.left() {
			return errTruncated
		}
		r.off += int(l)
		return nil
	}
	for range n {
		if err := skipName(); err != nil {
			return 0, err
		}
		if err := skipName(); err != nil {
			return 0, err
		}
		kind, err := r.byte()
		if err != nil {
			return 0, err
		}
		switch kind {
		case 0: // func: type index
			_, err = r.u32()
		case 1: // table: reftype, limits
			if _, err = r.byte(); err == nil {
				err = skipLimits(r)
			}
		case 2: // memory: limits
			err = skipLimits(r)
		case 3: // global: valtype, mutability
			globals++
			if _, err = r.byte(); err == nil {
				_, err = r.byte()
			}
		default:
			return 0, fmt.Errorf("import kind %d", kind)
		}
		if err != nil {
			return 0, err
		}
	}
	return globals, nil
}

func skipLimits(r *reader) error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u64(); err != nil {
		return err
	}
	if flag&1 != 0 {
		_, err = r.u64()
	}
	return err
}

// appendItem adds one item to a vector section's body (a new section when
// there was none).
func appendItem(body []byte, have bool, item []byte) ([]byte, error) {
	if !have {
		return append([]byte{1}, item...), nil
	}
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := uleb(n + 1)
	out = append(out, body[r.off:]...)
	return append(out, item...), nil
}

// meterCode injects the check at the entry of every function body and
// after every loop header.
func meterCode(body []byte, check []byte) ([]byte, error) {
	r := &reader{b: body}
	count, err := r.u32()
	if err != nil {
		return nil, err
	}
	// Each body's size is written as a 5-byte LEB128 (the format allows
	// padding), so bodies are written in place, without a second copy.
	out := make([]byte, 0, len(body)+len(body)/4+64)
	out = append(out, uleb(count)...)
	for i := range count {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int(size) > r.left() {
			return nil, errTruncated
		}
		f := &reader{b: r.b[r.off : r.off+int(size)]}
		r.off += int(size)
		sizeAt := len(out)
		out = append(out, 0x80, 0x80, 0x80, 0x80, 0x00)
		fn := out
		// Locals are copied as they are.
		groups, err := f.u32()
		if err != nil {
			return nil, err
		}
		for range groups {
			if _, err := f.u32(); err != nil {
				return nil, err
			}
			if _, err := f.byte(); err != nil {
				return nil, err
			}
		}
		fn = append(fn, f.b[:f.off]...)
		// A function that neither loops nor calls ends by itself: its
		// entry needs no charge (leaf helpers called per byte stay fast).
		// Whether it does is known at its end; the check is then
		// inserted at its entry.
		entry, needs := len(fn), false
		for f.left() > 0 {
			start := f.off
			op := f.b[f.off]
			f.off++
			if err := skipImmediates(f, op); err != nil {
				return nil, fmt.Errorf("function %d, offset %d, opcode %#x: %w", i, start, op, err)
			}
			fn = append(fn, f.b[start:f.off]...)
			switch op {
			case 0x03: // loop: charge every iteration
				fn = append(fn, check...)
				needs = true
			case 0x10, 0x11, 0x12, 0x13: // calls
				needs = true
			}
		}
		if needs {
			fn = slices.Insert(fn, entry, check...)
		}
		out = fn
		n := uint32(len(out) - sizeAt - 5)
		for k := range 5 {
			b := byte(n>>(7*k)) & 0x7f
			if k < 4 {
				b |= 0x80
			}
			out[sizeAt+k] = b
		}
	}
	if r.left() != 0 {
		return nil, errors.New("bytes after the last function")
	}
	return out, nil
}

var errOpcode = errors.New("opcode the host does not know")

// skipImmediates moves past the immediates of opcode op. Written without
// closures: it runs for every instruction of every module loaded.
func skipImmediates(r *reader, op byte) error {
	switch {
	case op >= 0x20 && op <= 0x26 || op == 0x0c || op == 0x0d || op == 0x10 || op == 0x12 ||
		op == 0x3f || op == 0x40 || op == 0xd2 || op == 0x41 || op == 0x42:
		// locals, globals, table.get/set, br, br_if, call, return_call,
		// memory.size/grow, ref.func, i32/i64.const: one LEB128
		return r.skipLEB()
	case op >= 0x28 && op <= 0x3e: // loads, stores
		return r.skipMemarg()
	case op >= 0x45 && op <= 0xc4 || op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f ||
		op == 0x1a || op == 0x1b || op == 0xd1:
		return nil // no immediates
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if: block type
		b, err := r.byte()
		if err != nil {
			return err
		}
		if b != 0x40 && (b < 0x6f || b > 0x7f) {
			r.off--
			return r.skipLEB() // a type index, as s33
		}
		return nil
	case op == 0x0e: // br_table
		n, err := r.u32()
		if err != nil {
			return err
		}
		for range uint64(n) + 1 {
			if err := r.skipLEB(); err != nil {
				return err
			}
		}
		return nil
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		if err := r.skipLEB(); err != nil {
			return err
		}
		return r.skipLEB()
	case op == 0x1c: // select t*
		n, err := r.u32()
		if err != nil {
			return err
		}
		return r.skip(int(n))
	case op == 0x43:
		return r.skip(4)
	case op == 0x44:
		return r.skip(8)
	case op == 0xd0: // ref.null t
		return r.skip(1)
	case op == 0xfc:
		sub, err := r.u32()
		if err != nil {
			return err
		}
		switch {
		case sub <= 7: // trunc_sat
			return nil
		case sub == 8 || sub == 10 || sub == 12 || sub == 14: // memory.init, memory.copy, table.init, table.copy
			if err := r.skipLEB(); err != nil {
				return err
			}
			return r.skipLEB()
		case sub <= 17:
			return r.skipLEB()
		}
		return errOpcode
	case op == 0xfd: // SIMD
		sub, err := r.u32()
		if err != nil {
			return err
		}
		switch {
		case sub <= 11 || sub == 92 || sub == 93: // loads, stores
			return r.skipMemarg()
		case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
			return r.skip(16)
		case sub >= 21 && sub <= 34: // extract, replace lane
			return r.skip(1)
		case sub >= 84 && sub <= 91: // load/store lane
			if err := r.skipMemarg(); err != nil {
				return err
			}
			return r.skip(1)
		}
		return nil
	case op == 0xfe: // atomics
		sub, err := r.u32()
		if err != nil {
			return err
		}
		if sub == 3 {
			return r.skip(1)
		}
		return r.skipMemarg()
	}
	return errOpcode
}

// sleb64 encodes v as a signed LEB128.
func sleb64(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
