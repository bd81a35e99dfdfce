// The conformance filter (sdk/ABI.md) in AssemblyScript.
import { buffer, pack, typeLen, sourceLen, dataLen, recordSize, typeStart, sourceStart, dataStart } from "../../../../sdk/assemblyscript/eventpipe";

const MANIFEST = `{"name":"conformance-as","version":"1.0.0","kind":"filter","capabilities":[]}`;
let manifest: ArrayBuffer | null = null;

export function eventpipe_abi_v1(): i32 { return 1; }

export function eventpipe_manifest(): i64 {
  if (manifest == null) manifest = String.UTF8.encode(MANIFEST);
  const m = manifest!;
  return pack(changetype<usize>(m), m.byteLength);
}

export function eventpipe_buffer(size: i32): usize { return buffer(size); }

export function eventpipe_init(p: usize, n: i32): i32 { return 0; }

export function eventpipe_process(p: usize, n: i32): i64 {
  const count = load<u32>(p + 4);
  const out = p + <usize>n;
  let r = p + 8;
  for (let i: u32 = 0; i < count; i++) {
    const tlen = typeLen(r);
    const t = typeStart(r);
    let v: u8 = 0;
    if (sourceLen(r) == 4 && load<u32>(sourceStart(r)) == 0x6c697665) {
      v = 2;
    } else if (tlen >= 6 && load<u32>(t + <usize>tlen - 6) == 0x6265642e && load<u16>(t + <usize>tlen - 2) == 0x6775) {
      v = 1;
    } else {
      let h: u32 = 0x811c9dc5;
      const d = dataStart(r);
      const end = d + <usize>dataLen(r);
      for (let q = d; q < end; q++) h = (h ^ <u32>load<u8>(q)) * 0x01000193;
      if (h % 7 == 0) v = 1;
    }
    store<u8>(out + <usize>i, v);
    r += <usize>recordSize(r);
  }
  return pack(out, <i32>count);
}
