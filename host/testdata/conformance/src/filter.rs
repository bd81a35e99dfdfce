// The conformance filter (sdk/ABI.md) in Rust.
#[path = "../../../../sdk/rust/eventpipe.rs"]
#[macro_use]
mod eventpipe;
use eventpipe::{Event, Verdict};

fn fnv1a(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for &c in b {
        h = (h ^ c as u32).wrapping_mul(0x01000193);
    }
    h
}

fn filter(e: &Event) -> Verdict {
    if e.source == b"evil" {
        return Verdict::DeadLetter;
    }
    if e.r#type.ends_with(b".debug") {
        return Verdict::Drop;
    }
    if fnv1a(e.data) % 7 == 0 {
        return Verdict::Drop;
    }
    Verdict::Keep
}

eventpipe_filter!(r#"{"name":"conformance-rust","version":"1.0.0","kind":"filter","capabilities":[]}"#, filter);
