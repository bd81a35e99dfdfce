package host

import (
	"errors"
	"fmt"
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
//	global.get F; i64.const 0; i64.le_s; if; unreachable; end

// FuelExport is the name of the fuel global a metered module exports.
const FuelExport = "__eventpipe_fuel"

// LoadFuel is the fuel a metered module starts with: its start function
// runs before the host can fill the tank.
const LoadFuel = 1_000_000_000

// section ids in the order the binary format requires.
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}

// StopExport is the name of the i32 global the watchdog sets to stop a
// metered module: every loop header reads it.
const StopExport = "__eventpipe_stop"

// StackExport is the name of the global that counts the stack a metered
// module's calls in progress may use, in 8-byte words.
const StackExport = "__eventpipe_stack"

// MaxStackWords bounds the stack of a metered module's calls in progress
// (wazero's own ceiling is 400 MB per instance). A function that calls
// others is charged, on entry, its parameters and locals, an upper bound
// of its operand stack (its code size) and 16 words of frame, and
// refunded on exit; a call that would pass the bound traps. Functions that
// call nothing are not charged: they add one bounded frame at most.
const MaxStackWords = 8 << 20 // 64 MiB

// funcType is a function type's parameters and results.
type funcType struct{ params, results []byte }

// moduleInfo is what metering needs to know of a module.
type moduleInfo struct {
	types           []funcType
	funcTypes       []uint32 // type index of each function declared in the code section
	importedGlobals uint32
	declaredGlobals uint32
	hasMemory       bool // memory.grow 0 can serve as the yield to Go
}

// meter returns bin with fuel metering and the stack bound injected.
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
	var info moduleInfo
	var types, exports, globals []byte
	haveTypes, haveGlobals, haveExports := false, false, false
	for _, s := range secs {
		var err error
		switch s.id {
		case 1:
			haveTypes, types = true, s.body
			info.types, err = parseTypes(s.body)
		case 2:
			var mems uint32
			info.importedGlobals, mems, err = countImports(s.body)
			info.hasMemory = info.hasMemory || mems > 0
		case 5:
			var n uint32
			n, err = (&reader{b: s.body}).u32()
			info.hasMemory = info.hasMemory || n > 0
		case 3:
			info.funcTypes, err = parseFunctions(s.body)
		case 6:
			haveGlobals, globals = true, s.body
			info.declaredGlobals, err = (&reader{b: s.body}).u32()
		case 7:
			haveExports, exports = true, s.body
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
	}
	fuel := info.importedGlobals + info.declaredGlobals
	stack, stop := fuel+1, fuel+2
	m := &meterer{info: &info, fuel: fuel, stack: stack, stop: stop}

	newGlobals, err := appendItems(globals, haveGlobals,
		append([]byte{0x7e, 0x01, 0x42}, append(sleb64(LoadFuel), 0x0b)...),
		[]byte{0x7e, 0x01, 0x42, 0x00, 0x0b},
		[]byte{0x7f, 0x01, 0x41, 0x00, 0x0b})
	if err != nil {
		return nil, fmt.Errorf("global section: %w", err)
	}
	export := func(name string, g uint32) []byte {
		e := append(uleb(uint32(len(name))), name...)
		return append(append(e, 0x03), uleb(g)...)
	}
	newExports, err := appendItems(exports, haveExports, export(FuelExport, fuel), export(StackExport, stack), export(StopExport, stop))
	if err != nil {
		return nil, fmt.Errorf("export section: %w", err)
	}
	var code []byte
	for _, s := range secs {
		if s.id == 10 {
			if code, err = m.code(s.body); err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
		}
	}
	// Types the function wrappers need (several results) come last.
	newTypes := types
	if len(m.newTypes) > 0 {
		if newTypes, err = appendItems(types, haveTypes, m.newTypes...); err != nil {
			return nil, fmt.Errorf("type section: %w", err)
		}
	}

	out := make([]byte, 0, len(bin)+len(bin)/4+64)
	out = append(out, bin[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = append(out, uleb(uint32(len(body)))...)
		out = append(out, body...)
	}
	placed := map[byte]bool{}
	place := func(rank int) {
		for _, id := range []byte{1, 6, 7} {
			if !placed[id] && rank > sectionOrder[id] && (id != 1 || len(m.newTypes) > 0) {
				emit(id, map[byte][]byte{1: newTypes, 6: newGlobals, 7: newExports}[id])
				placed[id] = true
			}
		}
	}
	for _, s := range secs {
		if s.id != 0 {
			place(sectionOrder[s.id])
		}
		switch s.id {
		case 1:
			emit(1, newTypes)
		case 6:
			emit(6, newGlobals)
		case 7:
			emit(7, newExports)
		case 10:
			emit(10, code)
		default:
			emit(s.id, s.body)
		}
		placed[s.id] = true
	}
	place(len(sectionOrder) + 1) // at the end, if not placed yet
	return out, nil
}

// meterRevision names the metering this code injects, in the names of
// cached metered modules: a change to the injected code changes it, so a
// cache never hands back a module metered the old way.
const meterRevision = 4

// YieldEvery is how many units of fuel a metered module runs between two
// yields to Go. Compiled wasm has no point where Go's garbage collector
// can pause it: without yields a loop would hold every stop-the-world,
// and so the whole process, watchdog included, until its fuel ran out.
// A yield is memory.grow 0, which wazero serves in Go.
const YieldEvery = 1 << 16

// fuelCheck is the entry check of a function that calls but does not
// loop: it charges the fuel global directly.
func (m *meterer) fuelCheck() []byte {
	gi := uleb(m.fuel)
	var c []byte
	c = append(append(c, 0x23), gi...) // global.get
	c = append(c, 0x42, 0x01, 0x7d)    // i64.const 1; i64.sub
	c = append(append(c, 0x24), gi...) // global.set
	c = append(append(c, 0x23), gi...) // global.get
	if !m.info.hasMemory {
		c = append(c, 0x42, 0x00, 0x57) // i64.const 0; i64.le_s
		return append(c, 0x04, 0x40, 0x00, 0x0b)
	}
	c = append(append(c, 0x42), sleb64(YieldEvery-1)...) // i64.const mask
	c = append(c, 0x83, 0x50)                            // i64.and; i64.eqz: every YieldEvery units
	c = append(c, 0x04, 0x40)                            // if
	c = append(c, m.yield()...)
	c = append(append(c, 0x23), gi...) //   global.get
	c = append(c, 0x42, 0x00, 0x57)    //   i64.const 0; i64.le_s: spent
	c = append(append(c, 0x23), uleb(m.stop)...)
	c = append(c, 0x72)                   //   or stopped
	c = append(c, 0x04, 0x40, 0x00, 0x0b) //   if unreachable end
	return append(c, 0x0b)                // end
}

// yield is memory.grow 0, dropped: a trip through Go.
func (m *meterer) yield() []byte { return []byte{0x41, 0x00, 0x40, 0x00, 0x1a} }

// stackEnter charges cost words to stack global g and traps past the
// bound; stackLeave refunds them.
func stackEnter(g uint32, cost int64) []byte {
	gi := uleb(g)
	var c []byte
	c = append(append(c, 0x23), gi...)                    // global.get
	c = append(append(c, 0x42), sleb64(cost)...)          // i64.const cost
	c = append(c, 0x7c)                                   // i64.add
	c = append(append(c, 0x24), gi...)                    // global.set
	c = append(append(c, 0x23), gi...)                    // global.get
	c = append(append(c, 0x42), sleb64(MaxStackWords)...) // i64.const bound
	c = append(c, 0x56)                                   // i64.gt_u
	return append(c, 0x04, 0x40, 0x00, 0x0b)              // if unreachable end
}

func stackLeave(g uint32, cost int64) []byte {
	gi := uleb(g)
	var c []byte
	c = append(append(c, 0x23), gi...)
	c = append(append(c, 0x42), sleb64(cost)...)
	c = append(c, 0x7d) // i64.sub
	return append(append(c, 0x24), gi...)
}

func parseTypes(body []byte) ([]funcType, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	types := make([]funcType, 0, n)
	vec := func() ([]byte, error) {
		k, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int(k) > r.left() {
			return nil, errTruncated
		}
		v := r.b[r.off : r.off+int(k)]
		r.off += int(k)
		return v, nil
	}
	for range n {
		form, err := r.byte()
		if err != nil {
			return nil, err
		}
		if form != 0x60 {
			return nil, fmt.Errorf("type form %#x not supported", form)
		}
		var t funcType
		if t.params, err = vec(); err != nil {
			return nil, err
		}
		if t.results, err = vec(); err != nil {
			return nil, err
		}
		types = append(types, t)
	}
	return types, nil
}

func parseFunctions(body []byte) ([]uint32, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	fs := make([]uint32, n)
	for i := range fs {
		if fs[i], err = r.u32(); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// countImports counts the globals and memories a module imports.
func countImports(body []byte) (globals, memories uint32, err error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return 0, 0, err
	}
	skipName := func() error {
		l, err := r.u32()
		if err != nil {
			return err
		}
		return r.skip(int(l))
	}
	for range n {
		if err := skipName(); err != nil {
			return 0, 0, err
		}
		if err := skipName(); err != nil {
			return 0, 0, err
		}
		kind, err := r.byte()
		if err != nil {
			return 0, 0, err
		}
		switch kind {
		case 0: // func: type index
			_, err = r.u32()
		case 1: // table: reftype, limits
			if _, err = r.byte(); err == nil {
				err = skipLimits(r)
			}
		case 2: // memory: limits
			memories++
			err = skipLimits(r)
		case 3: // global: valtype, mutability
			globals++
			if _, err = r.byte(); err == nil {
				_, err = r.byte()
			}
		default:
			return 0, 0, fmt.Errorf("import kind %d", kind)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return globals, memories, nil
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

// appendItems adds items to a vector section's body (a new section when
// there was none).
func appendItems(body []byte, have bool, items ...[]byte) ([]byte, error) {
	var n uint32
	rest := []byte(nil)
	if have {
		r := &reader{b: body}
		var err error
		if n, err = r.u32(); err != nil {
			return nil, err
		}
		rest = body[r.off:]
	}
	out := append(uleb(n+uint32(len(items))), rest...)
	for _, it := range items {
		out = append(out, it...)
	}
	return out, nil
}

// meterer rewrites function bodies.
type meterer struct {
	info              *moduleInfo
	fuel, stack, stop uint32   // the globals
	newTypes          [][]byte // types added for wrappers of multi-result functions
}

// localCheck charges one unit to the function's fuel local l and traps,
// after writing it back, when it is spent or the watchdog said stop. The
// fuel lives in a local (a register) inside a function, so a loop does not
// wait on a store and load of the global every iteration. The fast path is
// a decrement, a mask and a branch: the stop flag is read every YieldEvery
// units, at the yield to Go (a stop waits at most that long: microseconds
// for a byte loop), except in a module without memory, which cannot
// yield and reads it every time.
func (m *meterer) localCheck(l uint32) []byte {
	c := m.decrement(l)
	if !m.info.hasMemory {
		c = append(c, 0x1a) // drop
		return append(c, m.trapIfSpent(l)...)
	}
	c = append(c, yieldDue()...)
	c = append(c, 0x04, 0x40)          // if
	c = append(c, m.yield()...)        //   a trip through Go
	c = append(c, m.trapIfSpent(l)...) //   spent or stopped?
	return append(c, 0x0b)             // end
}

// decrement charges one unit to the fuel local l, leaving its new value.
func (m *meterer) decrement(l uint32) []byte {
	li := uleb(l)
	c := append([]byte{0x20}, li...)      // local.get F
	c = append(c, 0x42, 0x01, 0x7d)       // i64.const 1; i64.sub
	return append(append(c, 0x22), li...) // local.tee F
}

// yieldDue turns the fuel left into whether a yield is due: every
// YieldEvery units, and when the tank is empty.
func yieldDue() []byte {
	c := append([]byte{0x42}, sleb64(YieldEvery-1)...) // i64.const mask
	return append(c, 0x83, 0x50)                       // i64.and; i64.eqz
}

// trapIfSpent traps, after writing the fuel back, when the fuel local l is
// spent or the watchdog said stop.
func (m *meterer) trapIfSpent(l uint32) []byte {
	c := append([]byte{0x20}, uleb(l)...)        // local.get F
	c = append(c, 0x50)                          // i64.eqz
	c = append(append(c, 0x23), uleb(m.stop)...) // global.get stop
	c = append(c, 0x72, 0x04, 0x40)              // i32.or; if
	c = append(c, m.store(l)...)                 //   write the fuel back
	return append(c, 0x00, 0x0b)                 //   unreachable end
}

// A leaf loop — one that neither calls nor holds another loop, the byte
// loops plugins spend their time in — is metered without a call in its
// body: wazero keeps a loop's values in memory, not registers, when a call
// (the yield to Go is memory.grow) sits anywhere in it, which made such
// loops ~1.5× slower. Its check branches out of it instead, to a yield
// after it, and the loop is entered again at its header:
//
//	block $after; loop $outer; block $yield
//	  loop $L; [decrement; br_if $yield every YieldEvery units]; body; end
//	  br $after
//	end
//	yield; trap if spent or stopped
//	br $outer
//	end; end
//
// Entering $L again at its header is the same as branching to it: the
// check is the first thing in its body, and a loop with an empty block
// type carries no values. Branches in the body that leave $L go past the
// three wrappers (appendBranch).

// isLeafLoop reports whether the loop whose body starts at b[off:] has an
// empty block type (checked by the caller), no call and no loop inside.
func isLeafLoop(b []byte, off int) bool {
	r := &reader{b: b, off: off}
	depth := 0
	for r.left() > 0 {
		op := r.b[r.off]
		r.off++
		switch op {
		case 0x03, 0x10, 0x11, 0x12, 0x13:
			return false
		case 0x02, 0x04:
			depth++
		case 0x0b:
			if depth == 0 {
				return true
			}
			depth--
		}
		if skipImmediates(r, op) != nil {
			return false
		}
	}
	return false
}

// leafCheck is a leaf loop's check: a decrement, and a branch out to the
// yield every YieldEvery units (and when the tank is empty).
func (m *meterer) leafCheck(l uint32) []byte {
	c := append(m.decrement(l), yieldDue()...)
	return append(c, 0x0d, 0x01) // br_if $yield
}

// leafSlowPath follows a leaf loop's $yield block: a trip through Go, then
// a trap when the fuel is spent or the watchdog said stop.
func (m *meterer) leafSlowPath(l uint32) []byte {
	return append(m.yield(), m.trapIfSpent(l)...)
}

// appendBranch appends branch ins (br, br_if, br_table) found inside a
// leaf loop, inner blocks deep in its body, with every label that leaves
// the loop moved past its three wrappers.
func appendBranch(o, ins []byte, inner int) ([]byte, error) {
	r := &reader{b: ins, off: 1}
	label := func() ([]byte, error) {
		d, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int(d) > inner {
			d += 3
		}
		return uleb(d), nil
	}
	o = append(o, ins[0])
	n := uint32(0)
	if ins[0] == 0x0e {
		var err error
		if n, err = r.u32(); err != nil {
			return nil, err
		}
		o = append(o, uleb(n)...)
		n++ // and the default
	} else {
		n = 1
	}
	for range n {
		d, err := label()
		if err != nil {
			return nil, err
		}
		o = append(o, d...)
	}
	return o, nil
}

// load copies the fuel global into local l; store writes it back.
func (m *meterer) load(l uint32) []byte {
	return append(append(append([]byte{0x23}, uleb(m.fuel)...), 0x21), uleb(l)...)
}

func (m *meterer) store(l uint32) []byte {
	return append(append(append([]byte{0x20}, uleb(l)...), 0x24), uleb(m.fuel)...)
}

// blockType is the block type of a wrapper around a body of type t.
func (m *meterer) blockType(t funcType) []byte {
	switch len(t.results) {
	case 0:
		return []byte{0x40}
	case 1:
		return []byte{t.results[0]}
	}
	for i, u := range m.info.types {
		if len(u.params) == 0 && string(u.results) == string(t.results) {
			return sleb64(int64(i))
		}
	}
	for i, nt := range m.newTypes {
		if string(nt) == string(encodeType(funcType{results: t.results})) {
			return sleb64(int64(len(m.info.types) + i))
		}
	}
	m.newTypes = append(m.newTypes, encodeType(funcType{results: t.results}))
	return sleb64(int64(len(m.info.types) + len(m.newTypes) - 1))
}

func encodeType(t funcType) []byte {
	b := append([]byte{0x60}, uleb(uint32(len(t.params)))...)
	b = append(b, t.params...)
	b = append(b, uleb(uint32(len(t.results)))...)
	return append(b, t.results...)
}

// code rewrites the code section. In every function that calls others:
// the fuel check and the stack charge at entry, the body wrapped in a
// block whose end refunds the charge (a return becomes a branch to that
// block, a tail call refunds first). In every loop: the fuel check at its
// header. Functions that neither loop nor call are left as they are.
func (m *meterer) code(body []byte) ([]byte, error) {
	r := &reader{b: body}
	count, err := r.u32()
	if err != nil {
		return nil, err
	}
	if int(count) != len(m.info.funcTypes) {
		return nil, fmt.Errorf("%d bodies for %d functions", count, len(m.info.funcTypes))
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
		ti := m.info.funcTypes[i]
		if int(ti) >= len(m.info.types) {
			return nil, fmt.Errorf("function %d: type %d out of range", i, ti)
		}
		t := m.info.types[ti]
		sizeAt := len(out)
		out = append(out, 0x80, 0x80, 0x80, 0x80, 0x00)
		groups, err := f.u32()
		if err != nil {
			return nil, err
		}
		locals := int64(len(t.params))
		for range groups {
			n, err := f.u32()
			if err != nil {
				return nil, err
			}
			if _, err := f.byte(); err != nil {
				return nil, err
			}
			locals += int64(n)
		}
		header := f.b[:f.off]
		cost := 16 + locals + int64(f.left())
		calls, loops, err := scanBody(&reader{b: f.b, off: f.off})
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		if !calls && !loops { // ends by itself: left as it is
			out = append(out, f.b...)
		} else if err := m.body(&out, f, t, header, groups, uint32(locals), cost, calls, loops); err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
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

// scanBody reports whether code calls functions and whether it loops.
func scanBody(r *reader) (calls, loops bool, err error) {
	for r.left() > 0 {
		op := r.b[r.off]
		r.off++
		switch op {
		case 0x10, 0x11, 0x12, 0x13:
			calls = true
		case 0x03:
			loops = true
		}
		if err := skipImmediates(r, op); err != nil {
			return false, false, err
		}
	}
	return calls, loops, nil
}

// body writes one function that loops or calls: its locals (plus the fuel
// local F when it loops), the entry charges, the code wrapped in a block
// whose end writes F back and refunds the stack, and the checks.
func (m *meterer) body(out *[]byte, f *reader, t funcType, header []byte, groups, nLocals uint32, cost int64, calls, loops bool) error {
	o := *out
	F := nLocals // the fuel local, after the parameters and locals
	if loops {
		o = append(o, uleb(groups+1)...)
		o = append(o, header[len(uleb(groups)):]...)
		o = append(o, 0x01, 0x7e)
		o = append(o, m.load(F)...)
	} else {
		o = append(o, header...)
	}
	if calls { // recursion: charge the entry, and the stack
		if loops {
			o = append(o, m.localCheck(F)...)
		} else {
			o = append(o, m.fuelCheck()...)
		}
		o = append(o, stackEnter(m.stack, cost)...)
	}
	o = append(o, 0x02)
	o = append(o, m.blockType(t)...)
	leave := func() {
		if loops {
			o = append(o, m.store(F)...)
		}
		if calls {
			o = append(o, stackLeave(m.stack, cost)...)
		}
	}
	nesting := 0 // blocks open inside the wrapper
	leaf := 0    // the nesting of the leaf loop being written (see leafLoop), or 0
	for f.left() > 0 {
		start := f.off
		op := f.b[f.off]
		f.off++
		if err := skipImmediates(f, op); err != nil {
			return fmt.Errorf("offset %d, opcode %#x: %w", start, op, err)
		}
		ins := f.b[start:f.off]
		switch op {
		case 0x02, 0x04:
			nesting++
		case 0x03: // loop: charge every iteration
			nesting++
			if m.info.hasMemory && leaf == 0 && len(ins) == 2 && ins[1] == 0x40 && isLeafLoop(f.b, f.off) {
				o = append(o, 0x02, 0x40, 0x03, 0x40, 0x02, 0x40) // block $after; loop $outer; block $yield
				o = append(o, ins...)                             // the loop
				o = append(o, m.leafCheck(F)...)
				nesting += 3
				leaf = nesting
				continue
			}
			o = append(o, ins...)
			o = append(o, m.localCheck(F)...)
			continue
		case 0x0c, 0x0d, 0x0e: // branches: out of a leaf loop, past its three wrappers
			if leaf != 0 {
				var err error
				if o, err = appendBranch(o, ins, nesting-leaf); err != nil {
					return fmt.Errorf("offset %d: %w", start, err)
				}
				continue
			}
		case 0x0b:
			if leaf != 0 && nesting == leaf { // the leaf loop's end
				o = append(o, 0x0b, 0x0c, 0x02, 0x0b) // end; br $after; end $yield
				o = append(o, m.leafSlowPath(F)...)
				o = append(o, 0x0c, 0x00, 0x0b, 0x0b) // br $outer; end $outer; end $after
				nesting -= 4
				leaf = 0
				continue
			}
			if nesting == 0 {
				if f.left() != 0 {
					return errors.New("code after its end")
				}
				o = append(o, 0x0b) // the wrapper's end
				leave()
				o = append(o, 0x0b)
				continue
			}
			nesting--
		case 0x0f: // return: to the wrapper's end
			o = append(append(o, 0x0c), uleb(uint32(nesting))...)
			continue
		case 0x10, 0x11: // a call: the callee takes the fuel from the global
			if loops {
				o = append(o, m.store(F)...)
				o = append(o, ins...)
				o = append(o, m.load(F)...)
				continue
			}
		case 0x12, 0x13: // tail calls leave the frame first
			leave()
		}
		o = append(o, ins...)
	}
	*out = o
	return nil
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
