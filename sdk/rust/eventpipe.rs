//! eventpipe plugin ABI v1 for Rust (sdk/ABI.md), with no crates: it builds
//! with Debian's rustc 1.63 for wasm32-unknown-unknown.
//!
//! A plugin includes this file as a module, defines `MANIFEST` and a
//! `filter` function, and registers them with `eventpipe_filter!`:
//!
//! ```ignore
//! #[path = "eventpipe.rs"] mod eventpipe;
//! use eventpipe::{Event, Verdict};
//! fn filter(e: &Event) -> Verdict { if e.r#type.ends_with(b".debug") { Verdict::Drop } else { Verdict::Keep } }
//! eventpipe_filter!(r#"{"name":"f","version":"1.0.0","kind":"filter","capabilities":[]}"#, filter);
//! ```
//!
//! Build: `rustc --target wasm32-unknown-unknown --crate-type cdylib -C opt-level=3 -C strip=symbols -o f.wasm f.rs`
#![allow(dead_code)]

pub struct Event<'a> {
    pub time: i64,
    pub sequence: u64,
    pub r#type: &'a [u8],
    pub source: &'a [u8],
    pub id: &'a [u8],
    pub correlation_id: &'a [u8],
    pub causation_id: &'a [u8],
    pub language: &'a [u8],
    pub tags: &'a [u8],
    pub data: &'a [u8],
}

#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep = 0,
    Drop = 1,
    DeadLetter = 2,
}

fn u16le(b: &[u8], o: usize) -> usize {
    (b[o] as usize) | (b[o + 1] as usize) << 8
}
fn u32le(b: &[u8], o: usize) -> usize {
    u16le(b, o) | u16le(b, o + 2) << 16
}
fn u64le(b: &[u8], o: usize) -> u64 {
    (u32le(b, o) as u64) | (u32le(b, o + 4) as u64) << 32
}

/// The buffer the host writes batches into; the output follows the input.
pub static mut BUF: Vec<u8> = Vec::new();

pub fn buffer(size: usize) -> *mut u8 {
    unsafe {
        let need = 2 * size + 16;
        if BUF.len() < need {
            BUF.resize(need, 0);
        }
        BUF.as_mut_ptr()
    }
}

/// Runs `f` over the batch of `n` bytes at the start of the buffer and
/// writes the verdicts after it; returns (ptr << 32) | count.
pub fn process(n: usize, f: fn(&Event) -> Verdict) -> i64 {
    unsafe {
        let (input, output) = BUF.split_at_mut(n);
        let count = u32le(input, 4);
        let mut o = 8;
        for i in 0..count {
            let size = u32le(input, o);
            let r = &input[o..o + size];
            let mut p = 40;
            let mut field = |k: usize| {
                let l = u16le(r, 20 + 2 * k);
                let s = &r[p..p + l];
                p += l;
                s
            };
            let (t, s, id, c, z, l, g) = (field(0), field(1), field(2), field(3), field(4), field(5), field(6));
            let e = Event {
                time: u64le(r, 4) as i64,
                sequence: u64le(r, 12),
                r#type: t, source: s, id, correlation_id: c, causation_id: z, language: l, tags: g,
                data: &r[p..],
            };
            output[i] = f(&e) as u8;
            o += size;
        }
        ((output.as_ptr() as i64) << 32) | count as i64
    }
}

#[macro_export]
macro_rules! eventpipe_filter {
    ($manifest:expr, $f:ident) => {
        static MANIFEST: &str = $manifest;
        #[no_mangle]
        pub extern "C" fn eventpipe_abi_v1() -> i32 { 1 }
        #[no_mangle]
        pub extern "C" fn eventpipe_manifest() -> i64 {
            ((MANIFEST.as_ptr() as i64) << 32) | MANIFEST.len() as i64
        }
        #[no_mangle]
        pub extern "C" fn eventpipe_buffer(size: i32) -> i32 { eventpipe::buffer(size as usize) as i32 }
        #[no_mangle]
        pub extern "C" fn eventpipe_init(_p: i32, _n: i32) -> i32 { 0 }
        #[no_mangle]
        pub extern "C" fn eventpipe_process(_p: i32, n: i32) -> i64 { eventpipe::process(n as usize, $f) }
    };
}
