// eventpipe plugin ABI v1 helpers for AssemblyScript (sdk/ABI.md).
// Build a plugin with: npx asc plugin.ts --outFile plugin.wasm --optimizeLevel 3 --runtime stub --use abort=
// (the stub runtime never frees: the helpers allocate only when a batch is
// larger than any before).

let buf: usize = 0;
let cap: i32 = 0;

// eventpipe_buffer: a buffer of at least size bytes, with room for the
// output after the input.
export function buffer(size: i32): usize {
  const need = 2 * size + 16;
  if (need > cap) {
    buf = heap.alloc(<usize>need);
    cap = need;
  }
  return buf;
}

// packs a pointer and length as the ABI's i64 result.
export function pack(ptr: usize, len: i32): i64 {
  return (<i64>ptr << 32) | <i64>len;
}

// A record's fields, by offset from the record start.
export function typeLen(r: usize): i32 { return <i32>load<u16>(r + 20); }
export function sourceLen(r: usize): i32 { return <i32>load<u16>(r + 22); }
export function dataLen(r: usize): i32 { return <i32>load<u32>(r + 36); }
export function recordSize(r: usize): i32 { return <i32>load<u32>(r); }
export function typeStart(r: usize): usize { return r + 40; }
export function sourceStart(r: usize): usize { return r + 40 + <usize>typeLen(r); }
export function dataStart(r: usize): usize { return r + <usize>recordSize(r) - <usize>dataLen(r); }
