//! eventpipe's built-in sanitize plugin in Rust: the rules of the native
//! stage (pipeline/stage/sanitize.go, jsonrewrite.go) written by hand, with
//! no crates (Debian's rustc 1.63, wasm32-unknown-unknown). The Go build
//! (plugins/sanitize) runs the native code itself but is slow in wasm; this
//! one is held to the native stage byte for byte by plugins/plugins_test.go.
//! `extra_patterns` needs regular expressions: use the Go build for them.
//!
//! Build (`make plugins`): rustc --target wasm32-unknown-unknown --crate-type cdylib -C opt-level=3
//! -C strip=symbols -C target-feature=+simd128,+bulk-memory -C lto=fat -C codegen-units=1
//! -o sanitize-rust.wasm sanitize.rs (link-time optimisation inlines the standard library's
//! Vec and slice code: ~10% faster).
#![allow(clippy::all)]

static MANIFEST: &str = r#"{"name":"eventpipe-sanitize","version":"1.0.0","kind":"transform","capabilities":[]}"#;

/// stage.UserDataFields(): removed while user_data is on (the default).
const USER_DATA_FIELDS: [&str; 29] = [
    "name", "first_name", "last_name", "full_name", "display_name", "username", "user_name",
    "email", "email_address", "phone", "phone_number", "mobile",
    "address", "street", "street_address", "postal_code", "zip", "zip_code",
    "ip", "ip_address", "client_ip", "remote_addr", "remote_ip", "x_forwarded_for",
    "user_agent", "useragent", "date_of_birth", "dob", "birthdate",
];

static mut BUF: Vec<u8> = Vec::new();
static mut OUT: Vec<u8> = Vec::new();
static mut ERR: Vec<u8> = Vec::new();
static mut CFG: Option<Config> = None;
static mut SCRATCH: Vec<u8> = Vec::new(); // the rewriter's output, reused
static mut HITS: Vec<usize> = Vec::new(); // where triggers start in the data, reused

struct Config {
    paths: bool,
    secrets: bool,
    user_data: bool,
    repl: Vec<u8>,
    deny: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    hash_key: Vec<u8>,
    key_lits: Vec<Vec<u8>>, // `"key"` lower-case, for the cheap scan
    keys: LitSet,            // the same, as a set
    keys_by_len: Vec<Vec<Vec<u8>>>, // the same by length, when none holds a quote or backslash inside
    triggers: LitSet,        // every rule's, each with its rule's bit (mask)
    // Fixed-size tables: an index made of two bytes needs no bounds check.
    pair: Box<[u8; 65536]>, // flags by lower-cased byte pair: 1 a trigger starts, 2 a key starts
    pair2: Box<[u8; 65536]>, // the same flags by a literal's second and third bytes (all set for two-byte literals)
    pair_any: Box<[u64; 1024]>, // one bit per byte pair: pair has a flag there
}

#[no_mangle]
pub extern "C" fn eventpipe_abi_v1() -> i32 {
    1
}

#[no_mangle]
pub extern "C" fn eventpipe_manifest() -> i64 {
    ((MANIFEST.as_ptr() as i64) << 32) | MANIFEST.len() as i64
}

#[no_mangle]
pub extern "C" fn eventpipe_buffer(size: i32) -> i32 {
    unsafe {
        let need = size as usize + 16;
        if BUF.len() < need {
            BUF.resize(need, 0);
        }
        BUF.as_mut_ptr() as i32
    }
}

#[no_mangle]
pub extern "C" fn eventpipe_error() -> i64 {
    unsafe { ((ERR.as_ptr() as i64) << 32) | ERR.len() as i64 }
}

fn fail(msg: &str) -> i32 {
    unsafe {
        ERR = msg.as_bytes().to_vec();
    }
    -1
}

#[no_mangle]
pub extern "C" fn eventpipe_init(p: i32, n: i32) -> i32 {
    let arg = unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) }.to_vec();
    match init(&arg) {
        Ok(c) => {
            unsafe { CFG = Some(c) };
            0
        }
        Err(e) => fail(&e),
    }
}

// ---- configuration -------------------------------------------------------

fn init(arg: &[u8]) -> Result<Config, String> {
    let v = parse_json(arg).map_err(|_| "init: not JSON".to_string())?;
    let mut paths = true;
    let mut secrets = true;
    let mut user_data = true;
    let mut repl: Vec<u8> = b"[REDACTED]".to_vec();
    let mut deny: Vec<Vec<u8>> = ["password", "passwd", "secret", "api_key", "apikey", "access_token", "refresh_token", "authorization", "cookie", "ssn", "credit_card", "card_number"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let mut allow: Vec<Vec<u8>> = Vec::new();
    let mut hash: Vec<Vec<u8>> = Vec::new();
    let mut hash_key: Vec<u8> = Vec::new();
    if let Json::Obj(top) = &v {
        if let Some((_, Json::Obj(cfg))) = top.iter().rev().find(|(k, _)| k == b"config") {
            for (k, val) in cfg {
                // encoding/json matches field names without regard to case.
                let k: Vec<u8> = k.iter().map(|&c| lower(c)).collect();
                match &k[..] {
                    b"paths" => set_bool(&mut paths, val)?,
                    b"secrets" => set_bool(&mut secrets, val)?,
                    b"user_data" => set_bool(&mut user_data, val)?,
                    b"replacement" => {
                        if let Json::Str(s) = val {
                            repl = s.clone()
                        }
                    }
                    b"extra_patterns" => {
                        if let Json::Arr(a) = val {
                            if !a.is_empty() {
                                return Err("extra_patterns need regular expressions, which this build of the sanitize plugin does not have: use sanitize.wasm (Go)".into());
                            }
                        }
                    }
                    b"deny_fields" => deny = strings(val)?,
                    b"allow_fields" => allow = strings(val)?,
                    b"hash_fields" => hash = strings(val)?,
                    b"hash_key" => {
                        if let Json::Str(s) = val {
                            hash_key = base64(s).ok_or("illegal base64 data in hash_key")?;
                        }
                    }
                    _ => return Err(format!("json: unknown field \"{}\"", String::from_utf8_lossy(&k))),
                }
            }
        }
    }
    if repl.is_empty() {
        repl = b"[REDACTED]".to_vec();
    }
    let allow: Vec<Vec<u8>> = allow.iter().map(|k| go_lower(k)).collect();
    let mut all: Vec<&[u8]> = Vec::new();
    for r in RULES.iter() {
        all.extend_from_slice(r.triggers);
    }
    if user_data {
        deny.extend(USER_DATA_FIELDS.iter().map(|s| s.as_bytes().to_vec()));
    }
    let mut c = Config {
        paths,
        secrets,
        user_data,
        repl,
        deny: Vec::new(),
        hash: Vec::new(),
        hash_key,
        key_lits: Vec::new(),
        keys: LitSet::new(&[]),
        keys_by_len: Vec::new(),
        triggers: {
            let mut t = LitSet::new(&all);
            t.bits = RULES.iter().enumerate().flat_map(|(k, r)| r.triggers.iter().map(move |_| 1u64 << k)).collect();
            t
        },
        pair: table(),
        pair2: table(),
        pair_any: table(),
    };
    for l in all.iter() {
        c.pair[(l[0] as usize) << 8 | l[1] as usize] |= 1;
        mark_pair2(&mut c.pair2[..], l, 1);
    }
    for k in &deny {
        let k = go_lower(k);
        if !allow.contains(&k) && !c.deny.contains(&k) {
            let mut lit = vec![b'"'];
            lit.extend_from_slice(&k);
            lit.push(b'"');
            c.key_lits.push(lit);
            c.deny.push(k);
        }
    }
    for k in &hash {
        let k = go_lower(k);
        let mut lit = vec![b'"'];
        lit.extend_from_slice(&k);
        lit.push(b'"');
        c.key_lits.push(lit);
        c.hash.push(k);
    }
    // A key in the data is a quoted string: its length, up to the closing
    // quote, picks the few literals worth comparing.
    if c.key_lits.iter().all(|l| !l[1..l.len() - 1].iter().any(|&b| b == b'"' || b == b'\\')) {
        for l in &c.key_lits {
            if c.keys_by_len.len() <= l.len() {
                c.keys_by_len.resize(l.len() + 1, Vec::new());
            }
            c.keys_by_len[l.len()].push(l.clone());
        }
    }
    let lits: Vec<&[u8]> = c.key_lits.iter().map(|l| &l[..]).collect();
    c.keys = LitSet::new(&lits);
    for l in &c.key_lits {
        c.pair[(l[0] as usize) << 8 | l[1] as usize] |= 2;
        mark_pair2(&mut c.pair2[..], l, 2);
    }
    if !c.hash.is_empty() && c.hash_key.is_empty() {
        return Err("sanitize: hash_fields needs a hash key".into());
    }
    for k in 0..65536 {
        if c.pair[k] != 0 {
            c.pair_any[k / 64] |= 1 << (k % 64);
        }
    }
    Ok(c)
}

// A zeroed table of N entries, made on the heap.
fn table<T: Copy + Default, const N: usize>() -> Box<[T; N]> {
    match std::convert::TryInto::<Box<[T; N]>>::try_into(vec![T::default(); N].into_boxed_slice()) {
        Ok(t) => t,
        Err(_) => unreachable!(),
    }
}

// Marks a literal's second and third bytes in pair2 (every pair for a
// two-byte literal: nothing follows it to check).
fn mark_pair2(pair2: &mut [u8], l: &[u8], flag: u8) {
    if l.len() == 2 {
        for f in pair2.iter_mut() {
            *f |= flag;
        }
    } else {
        pair2[(l[1] as usize) << 8 | l[2] as usize] |= flag;
    }
}

fn set_bool(dst: &mut bool, v: &Json) -> Result<(), String> {
    match v {
        Json::Bool(b) => *dst = *b,
        Json::Null => {}
        _ => return Err("json: cannot unmarshal into a bool".into()),
    }
    Ok(())
}

fn strings(v: &Json) -> Result<Vec<Vec<u8>>, String> {
    match v {
        Json::Null => Ok(Vec::new()),
        Json::Arr(a) => a
            .iter()
            .map(|x| match x {
                Json::Str(s) => Ok(s.clone()),
                _ => Err("json: cannot unmarshal into a string".to_string()),
            })
            .collect(),
        _ => Err("json: cannot unmarshal into []string".into()),
    }
}

fn base64(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' => continue,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

// ---- the batch ---------------------------------------------------------------

fn u16le(b: &[u8], o: usize) -> usize {
    (b[o] as usize) | (b[o + 1] as usize) << 8
}
fn u32le(b: &[u8], o: usize) -> usize {
    u16le(b, o) | u16le(b, o + 2) << 16
}

#[no_mangle]
pub extern "C" fn eventpipe_process(_p: i32, n: i32) -> i64 {
    let cfg = match unsafe { CFG.as_ref() } {
        Some(c) => c,
        None => return fail("not initialised") as i64,
    };
    unsafe {
        let input = &BUF[..n as usize];
        let out = &mut OUT;
        out.clear();
        out.extend_from_slice(&input[..8]);
        let count = u32le(input, 4);
        let mut o = 8;
        for _ in 0..count {
            let size = u32le(input, o);
            let r = &input[o..o + size];
            let mut lens = [0usize; 7];
            for k in 0..7 {
                lens[k] = u16le(r, 20 + 2 * k);
            }
            let mut p = 40;
            let mut f: [&[u8]; 7] = [&[]; 7];
            for k in 0..7 {
                f[k] = &r[p..p + lens[k]];
                p += lens[k];
            }
            let data = &r[p..];
            let source = sanitize_string(cfg, f[1], true, true, true);
            let new_data = if data.is_empty() { Ok(None) } else { rewrite_data(cfg, data) };
            match new_data {
                Err(()) => {
                    // Malformed data: the event is dropped (an empty type).
                    let start = out.len();
                    out.extend_from_slice(&r[..40]);
                    for k in 0..8 {
                        out[start + 20 + 2 * k] = 0;
                        out[start + 21 + 2 * k] = 0;
                    }
                    out[start + 36..start + 40].copy_from_slice(&0u32.to_le_bytes());
                    out[start..start + 4].copy_from_slice(&40u32.to_le_bytes());
                }
                Ok(nd) => {
                    if source.is_none() && nd.is_none() {
                        out.extend_from_slice(r);
                    } else {
                        let src: &[u8] = match &source {
                            Some(s) => s,
                            None => f[1],
                        };
                        let d: &[u8] = match &nd {
                            Some(d) => d,
                            None => data,
                        };
                        let start = out.len();
                        let total = 40 + lens[0] + src.len() + lens[2] + lens[3] + lens[4] + lens[5] + lens[6] + d.len();
                        out.extend_from_slice(&r[..40]);
                        out[start..start + 4].copy_from_slice(&(total as u32).to_le_bytes());
                        let sl = src.len() as u16;
                        out[start + 22..start + 24].copy_from_slice(&sl.to_le_bytes());
                        out[start + 36..start + 40].copy_from_slice(&(d.len() as u32).to_le_bytes());
                        out.extend_from_slice(f[0]);
                        out.extend_from_slice(src);
                        for k in 2..7 {
                            out.extend_from_slice(f[k]);
                        }
                        out.extend_from_slice(d);
                    }
                }
            }
            o += size;
        }
        ((out.as_ptr() as i64) << 32) | out.len() as i64
    }
}

// ---- strings ---------------------------------------------------------------

fn lower(c: u8) -> u8 {
    c | (((c.wrapping_sub(b'A') < 26) as u8) << 5)
}

// The last byte first: against many literals of different lengths (the
// `"key"` ones end in a quote) it rules out almost all of them at once.
fn has_prefix_fold(s: &[u8], lit: &[u8]) -> bool {
    let n = lit.len();
    s.len() >= n && (n == 0 || lower(s[n - 1]) == lit[n - 1]) && s.iter().zip(lit).all(|(a, b)| lower(*a) == *b)
}

/// Lower-case literals (two bytes or more) searched for, without regard
/// to ASCII case, in one pass: a bit set of their first two bytes rules
/// out almost every position, one of their second and third bytes most of
/// the rest (as litSet in sanitize.go).
struct LitSet {
    lits: Vec<Vec<u8>>,
    bigram: Box<[u64; 1024]>,
    next: Box<[u64; 1024]>, // bytes 1 and 2; every bit if a literal has two bytes
    short: bool,
    bits: Vec<u64>, // for mask: each literal's bits (parallel to lits)
}

impl LitSet {
    fn new(lits: &[&[u8]]) -> LitSet {
        let mut set = LitSet { lits: lits.iter().map(|l| l.to_vec()).collect(), bigram: table(), next: table(), short: false, bits: Vec::new() };
        for l in lits {
            let k = (l[0] as usize) << 8 | l[1] as usize;
            set.bigram[k / 64] |= 1 << (k % 64);
            if l.len() == 2 {
                set.short = true;
            } else {
                let k = (l[1] as usize) << 8 | l[2] as usize;
                set.next[k / 64] |= 1 << (k % 64);
            }
        }
        if set.short {
            for w in set.next.iter_mut() {
                *w = !0;
            }
        }
        set
    }

    // The bits of every literal b holds.
    fn mask(&self, b: &[u8]) -> u64 {
        let mut m = 0;
        let n = b.len();
        let mut i = scan_pairs(b, 0, &self.bigram);
        while i + 1 < n {
            let second = if i + 2 < n {
                let k = (lower(b[i + 1]) as usize) << 8 | lower(b[i + 2]) as usize;
                self.next[k / 64] & (1 << (k % 64)) != 0
            } else {
                self.short
            };
            if second {
                for (j, l) in self.lits.iter().enumerate() {
                    if has_prefix_fold(&b[i..], l) {
                        m |= self.bits[j];
                    }
                }
            }
            i = scan_pairs(b, i + 1, &self.bigram);
        }
        m
    }
}

/// The first i at or after from where the lower-cased byte pair b[i],
/// b[i+1] is in set; b.len() if none. A loop that calls nothing, kept out
/// of line: metered as a leaf loop (host/fuel.go), it runs at nearly the
/// speed of unmetered code.
#[inline(never)]
fn scan_pairs(b: &[u8], from: usize, set: &[u64; 1024]) -> usize {
    let n = b.len();
    let mut i = from;
    while i + 1 < n {
        let k = (lower(b[i]) as usize) << 8 | lower(b[i + 1]) as usize;
        if set[k / 64] & (1 << (k % 64)) != 0 {
            return i;
        }
        i += 1;
    }
    n
}

fn is_word(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

// Go regexp's \s.
fn re_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

// isSpace of sanitize.go (with \v).
fn kv_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x0b)
}

const KV_WORDS: [&[u8]; 8] = [b"password", b"passwd", b"pwd", b"secret", b"token", b"api_key", b"api-key", b"apikey"];
/// A rule's matcher: the next match at or after `from`, as (start, end,
/// bytes kept from its start before the replacement, bytes kept at its end).
type Finder = fn(&[u8], usize) -> Option<(usize, usize, usize, usize)>;

fn replace_all(s: &[u8], repl: &[u8], find: Finder) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut last = 0;
    let mut from = 0;
    while from <= s.len() {
        let (a, b, keep_head, keep_tail) = match find(s, from) {
            Some(m) => m,
            None => break,
        };
        let o = out.get_or_insert_with(Vec::new);
        o.extend_from_slice(&s[last..a + keep_head]);
        o.extend_from_slice(repl);
        o.extend_from_slice(&s[b - keep_tail..b]);
        last = b;
        from = if b > a { b } else { b + 1 };
    }
    out.map(|mut o| {
        o.extend_from_slice(&s[last..]);
        o
    })
}

fn run_of(s: &[u8], mut i: usize, class: fn(u8) -> bool) -> usize {
    while i < s.len() && class(s[i]) {
        i += 1;
    }
    i
}

fn key_class(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' '
}

// `PRIVATE KEY-----` ending a run of [A-Z0-9 ] that starts at j: the end
// of the match, if any.
fn key_block_end(s: &[u8], j: usize) -> Option<usize> {
    let e = run_of(s, j, key_class);
    if e >= j + 11 && &s[e - 11..e] == b"PRIVATE KEY" && s[e..].starts_with(b"-----") {
        Some(e + 5)
    } else {
        None
    }
}

fn find_private_key(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let mut i = from;
    while i + 11 <= s.len() {
        if s[i..].starts_with(b"-----BEGIN ") {
            if let Some(begin_end) = key_block_end(s, i + 11) {
                let mut p = begin_end;
                while p + 9 <= s.len() {
                    if s[p..].starts_with(b"-----END ") {
                        if let Some(end) = key_block_end(s, p + 9) {
                            return Some((i, end, 0, 0));
                        }
                    }
                    p += 1;
                }
                return Some((i, s.len(), 0, 0));
            }
        }
        i += 1;
    }
    None
}

fn scheme_class(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'.' || c == b'-'
}

// Matches start at the earliest letter of the scheme run before a "://",
// so only the places where "://" occurs are looked at.
fn find_url_password(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let mut e = from;
    while e + 3 <= s.len() {
        if &s[e..e + 3] != b"://" {
            e += 1;
            continue;
        }
        let mut r = e;
        while r > from && scheme_class(s[r - 1]) {
            r -= 1;
        }
        let a = match (r..e).find(|&k| s[k].is_ascii_alphabetic()) {
            Some(a) => a,
            None => {
                e += 1;
                continue;
            }
        };
        let f = run_of(s, e + 3, |c| !(c == b':' || c == b'/' || c == b'@' || c == b'"' || re_space(c)));
        if f < s.len() && s[f] == b':' {
            let g = run_of(s, f + 1, |c| !(c == b'@' || c == b'/' || c == b'"' || re_space(c)));
            if g > f + 1 && g < s.len() && s[g] == b'@' {
                return Some((a, g + 1, f + 1 - a, 1));
            }
        }
        e += 1;
    }
    None
}

fn jwt_class(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn find_jwt(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let mut a = from;
    while a + 3 <= s.len() {
        if s[a..].starts_with(b"eyJ") {
            let e1 = run_of(s, a + 3, jwt_class);
            if e1 >= a + 8 && e1 < s.len() && s[e1] == b'.' && s[e1 + 1..].starts_with(b"eyJ") {
                let e2 = run_of(s, e1 + 4, jwt_class);
                if e2 >= e1 + 9 && e2 < s.len() && s[e2] == b'.' {
                    let e3 = run_of(s, e2 + 1, jwt_class);
                    return Some((a, e3, 0, 0));
                }
            }
        }
        a += 1;
    }
    None
}

// With (?i), Go's regexp folds 's' with U+017F and 'k' with U+212A.
fn fold_char(s: &[u8], i: usize, c: u8) -> Option<usize> {
    if i < s.len() && lower(s[i]) == c {
        return Some(1);
    }
    if c == b's' && s[i..].starts_with(&[0xc5, 0xbf]) {
        return Some(2);
    }
    if c == b'k' && s[i..].starts_with(&[0xe2, 0x84, 0xaa]) {
        return Some(3);
    }
    None
}

fn fold_literal(s: &[u8], mut i: usize, lit: &[u8]) -> Option<usize> {
    for &c in lit {
        i += fold_char(s, i, c)?;
    }
    Some(i)
}

// A run of an ASCII class under (?i): the class's letters also take the
// two non-ASCII folds. Returns the end and the number of characters.
fn fold_run(s: &[u8], mut i: usize, class: fn(u8) -> bool, max: usize) -> (usize, usize) {
    let mut n = 0;
    while i < s.len() && n < max {
        if class(s[i]) {
            i += 1;
        } else if class(b's') && s[i..].starts_with(&[0xc5, 0xbf]) {
            i += 2;
        } else if class(b'k') && s[i..].starts_with(&[0xe2, 0x84, 0xaa]) {
            i += 3;
        } else {
            break;
        }
        n += 1;
    }
    (i, n)
}

fn bearer_class(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"._~+/=-".contains(&c)
}

fn find_bearer(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    for a in from..s.len() {
        let mut w = match fold_literal(s, a, b"bearer") {
            Some(w) => w,
            None => continue,
        };
        if w >= s.len() || !re_space(s[w]) {
            continue;
        }
        w = run_of(s, w, re_space);
        let (t, n) = fold_run(s, w, bearer_class, usize::MAX);
        if n >= 8 {
            return Some((a, t, w - a, 0));
        }
    }
    None
}

fn boundary_before(s: &[u8], a: usize) -> bool {
    a == 0 || !is_word(s[a - 1])
}

fn find_token(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    for a in from..s.len() {
        if !boundary_before(s, a) {
            continue;
        }
        let t = &s[a..];
        let end = if t.starts_with(b"sk-") {
            let e = run_of(s, a + 3, jwt_class);
            if e - (a + 3) >= 16 {
                Some(e)
            } else {
                None
            }
        } else if t.len() >= 4 && t.starts_with(b"gh") && b"pousr".contains(&t[2]) && t[3] == b'_' {
            let e = run_of(s, a + 4, alnum);
            if e - (a + 4) >= 20 {
                Some(e)
            } else {
                None
            }
        } else if t.starts_with(b"github_pat_") {
            let e = run_of(s, a + 11, is_word);
            if e - (a + 11) >= 20 {
                Some(e)
            } else {
                None
            }
        } else if t.len() >= 5 && t.starts_with(b"xox") && b"baprs".contains(&t[3]) && t[4] == b'-' {
            let e = run_of(s, a + 5, |c| c.is_ascii_alphanumeric() || c == b'-');
            if e - (a + 5) >= 10 {
                Some(e)
            } else {
                None
            }
        } else if t.starts_with(b"AIza") {
            if t.len() >= 39 && t[4..39].iter().all(|&c| jwt_class(c)) {
                Some(a + 39)
            } else {
                None
            }
        } else if t.starts_with(b"glpat-") {
            let e = run_of(s, a + 6, jwt_class);
            if e - (a + 6) >= 20 {
                Some(e)
            } else {
                None
            }
        } else {
            None
        };
        if let Some(e) = end {
            return Some((a, e, 0, 0));
        }
    }
    None
}

fn find_aws_key(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    for a in from..s.len() {
        if !boundary_before(s, a) {
            continue;
        }
        let t = &s[a..];
        if t.len() >= 20
            && (t.starts_with(b"AKIA") || t.starts_with(b"ASIA"))
            && t[4..20].iter().all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && (t.len() == 20 || !is_word(t[20]))
        {
            return Some((a, a + 20, 0, 0));
        }
    }
    None
}

fn aws_secret_class(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/' || c == b'+' || c == b'='
}

fn find_aws_secret(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    for a in from..s.len() {
        let mut p = match fold_literal(s, a, b"aws_secret_access_key") {
            Some(p) => p,
            None => continue,
        };
        if p < s.len() && (s[p] == b'"' || s[p] == b'\'') {
            p += 1;
        }
        p = run_of(s, p, re_space);
        if p >= s.len() || (s[p] != b':' && s[p] != b'=') {
            continue;
        }
        p = run_of(s, p + 1, re_space);
        if p < s.len() && (s[p] == b'"' || s[p] == b'\'') {
            p += 1;
        }
        let (e, n) = fold_run(s, p, aws_secret_class, 40);
        if n == 40 {
            return Some((a, e, p - a, 0));
        }
    }
    None
}

fn redact_kv(s: &[u8], repl: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut last = 0;
    let mut i = 0;
    while i < s.len() {
        if i > 0 && is_word(s[i - 1]) {
            i += 1;
            continue;
        }
        for w in KV_WORDS.iter() {
            if s.len() - i < w.len() || !has_prefix_fold(&s[i..], w) {
                continue;
            }
            let mut j = i + w.len();
            j = run_of(s, j, kv_space);
            if j >= s.len() || (s[j] != b'=' && s[j] != b':') {
                continue;
            }
            j = run_of(s, j + 1, kv_space);
            let k = run_of(s, j, |c| !kv_space(c) && !b"&,;\"'".contains(&c));
            if k == j {
                continue;
            }
            let o = out.get_or_insert_with(Vec::new);
            o.extend_from_slice(&s[last..j]);
            o.extend_from_slice(repl);
            last = k;
            i = k - 1;
            break;
        }
        i += 1;
    }
    out.map(|mut o| {
        o.extend_from_slice(&s[last..]);
        o
    })
}

struct Rule {
    triggers: &'static [&'static [u8]],
    find: Option<Finder>, // None: key=value
}

const RULES: [Rule; 9] = [
    Rule { triggers: &[b"private key"], find: Some(find_private_key) },
    Rule { triggers: &[b"://"], find: Some(find_url_password) },
    Rule { triggers: &[b"eyj"], find: Some(find_jwt) },
    Rule { triggers: &[b"bearer"], find: Some(find_bearer) },
    Rule { triggers: &[b"basic"], find: Some(find_basic) },
    Rule { triggers: &[b"sk-", b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_", b"xox", b"aiza", b"glpat-"], find: Some(find_token) },
    Rule { triggers: &[b"akia", b"asia"], find: Some(find_aws_key) },
    Rule { triggers: &[b"aws_secret"], find: Some(find_aws_secret) },
    Rule { triggers: &KV_WORDS, find: None },
];

/// Sanitizes one string (secrets, then user data, then paths); None when it
/// is unchanged.
fn sanitize_string(cfg: &Config, s: &[u8], secrets: bool, user_data: bool, paths: bool) -> Option<Vec<u8>> {
    let mut cur: Option<Vec<u8>> = None;
    // The rules whose literals s holds: one scan for all of them.
    let found = if secrets && cfg.secrets { cfg.triggers.mask(s) } else { 0 };
    if found != 0 {
        for (k, r) in RULES.iter().enumerate() {
            let text: &[u8] = match &cur {
                Some(c) => c,
                None => s,
            };
            if found & (1 << k) == 0 {
                continue;
            }
            let next = match r.find {
                Some(f) => replace_all(text, &cfg.repl, f),
                None => redact_kv(text, &cfg.repl),
            };
            if next.is_some() {
                cur = next;
            }
        }
    }
    if user_data && cfg.user_data {
        let (email, digits) = {
            let text: &[u8] = match &cur {
                Some(c) => c,
                None => s,
            };
            may_hold_user_data(text)
        };
        let mut apply = |find: Finder| {
            let text: &[u8] = match &cur {
                Some(c) => c,
                None => s,
            };
            if let Some(c) = replace_all(text, &cfg.repl, find) {
                cur = Some(c);
            }
        };
        if email {
            apply(find_email);
        }
        if digits {
            apply(find_ssn);
            apply(find_card);
        }
    }
    if paths && cfg.paths {
        let text: &[u8] = match &cur {
            Some(c) => c,
            None => s,
        };
        if text.iter().any(|&c| c == b'/' || c == b'\\') {
            if let Some(c) = clean_paths(text, &cfg.repl) {
                cur = Some(c);
            }
        }
    }
    match cur {
        Some(c) if c != s => Some(c),
        _ => None,
    }
}

// ---- user data and HTTP Basic credentials (as sanitize.go) -----------------

// Whether a denied or hashed key's literal starts s.
fn key_at(cfg: &Config, s: &[u8]) -> bool {
    if cfg.keys_by_len.is_empty() {
        return cfg.keys.lits.iter().any(|l| has_prefix_fold(s, l));
    }
    let max = cfg.keys_by_len.len();
    let mut j = 1;
    while j < s.len() && j < max && s[j] != b'"' {
        j += 1;
    }
    if j >= s.len() || j + 1 >= max {
        return false;
    }
    cfg.keys_by_len[j + 1].iter().any(|l| has_prefix_fold(s, l))
}

fn may_hold_user_data(b: &[u8]) -> (bool, bool) {
    let email = b.iter().fold(false, |a, &c| a | (c == b'@'));
    let digits = b.iter().fold(0u32, |n, &c| n + (c.wrapping_sub(b'0') < 10) as u32);
    (email, digits >= 9)
}

fn is_email_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'%' | b'+' | b'-')
}

// An e-mail address at or after from (Finder): a local part, '@', a
// domain of two labels or more ending in letters. The local part does not
// reach back before from (the end of the last match).
fn find_email(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let mut at = from;
    while at < s.len() {
        if s[at] != b'@' {
            at += 1;
            continue;
        }
        let mut a = at;
        while a > from && is_email_local(s[a - 1]) {
            a -= 1;
        }
        if a < at {
            if let Some(e) = email_domain_end(s, at + 1) {
                return Some((a, e, 0, 0));
            }
        }
        at += 1;
    }
    None
}

fn email_domain_end(s: &[u8], i: usize) -> Option<usize> {
    let mut end = None;
    let mut j = i;
    loop {
        let mut k = j;
        let mut letters = true;
        while k < s.len() && (s[k].is_ascii_alphanumeric() || s[k] == b'-') {
            letters = letters && s[k].is_ascii_alphabetic();
            k += 1;
        }
        if k == j {
            return end;
        }
        if j > i && letters && k - j >= 2 {
            end = Some(k);
        }
        if k >= s.len() || s[k] != b'.' {
            return end;
        }
        j = k + 1;
    }
}

fn number_boundary(c: u8) -> bool {
    !is_word(c) && c != b'-'
}

// An SSN-like number (ddd-dd-dddd standing alone) at or after from (Finder).
fn find_ssn(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let d = |c: u8| c.is_ascii_digit();
    let mut i = from;
    while i + 11 <= s.len() {
        let t = &s[i..i + 11];
        if (i == 0 || number_boundary(s[i - 1]))
            && (i + 11 == s.len() || number_boundary(s[i + 11]))
            && d(t[0]) && d(t[1]) && d(t[2]) && t[3] == b'-' && d(t[4]) && d(t[5])
            && t[6] == b'-' && d(t[7]) && d(t[8]) && d(t[9]) && d(t[10])
        {
            return Some((i, i + 11, 0, 0));
        }
        i += 1;
    }
    None
}

// A card number at or after from (Finder): 13 to 19 digits, single spaces
// or hyphens between them, standing alone, Luhn-checked. A run of digits
// that is not one is skipped whole.
fn find_card(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let mut i = from;
    while i < s.len() {
        if !s[i].is_ascii_digit() || (i > 0 && is_word(s[i - 1])) {
            i += 1;
            continue;
        }
        let mut n = 0;
        let mut end = i;
        let mut j = i;
        while j < s.len() {
            if s[j].is_ascii_digit() {
                n += 1;
                j += 1;
                end = j;
                continue;
            }
            if (s[j] == b' ' || s[j] == b'-') && j + 1 < s.len() && s[j + 1].is_ascii_digit() {
                j += 1;
                continue;
            }
            break;
        }
        if n >= 13 && n <= 19 && (end == s.len() || !is_word(s[end])) && luhn(&s[i..end]) {
            return Some((i, end, 0, 0));
        }
        i = end;
    }
    None
}

fn luhn(s: &[u8]) -> bool {
    let mut sum = 0;
    let mut double = false;
    for &c in s.iter().rev() {
        if !c.is_ascii_digit() {
            continue;
        }
        let mut d = (c - b'0') as u32;
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum % 10 == 0
}

fn is_base64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn base64_has_colon(tok: &[u8]) -> bool {
    if tok.len() < 4 || tok.len() % 4 == 1 {
        return false;
    }
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in tok {
        let v = match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            _ => 63,
        };
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if (acc >> bits) as u8 == b':' {
                return true;
            }
            acc &= (1 << bits) - 1;
        }
    }
    false
}

// "basic" at a word start, white space, base64 of user:password.
fn find_basic(s: &[u8], from: usize) -> Option<(usize, usize, usize, usize)> {
    let mut a = from;
    while a + 5 < s.len() {
        if !boundary_before(s, a) || !has_prefix_fold(&s[a..a + 5], b"basic") {
            a += 1;
            continue;
        }
        let k = run_of(s, a + 5, re_space);
        if k == a + 5 {
            a += 1;
            continue;
        }
        let e = run_of(s, k, is_base64);
        if !base64_has_colon(&s[k..e]) {
            a += 1;
            continue;
        }
        let mut p = e;
        while p < s.len() && p - e < 2 && s[p] == b'=' {
            p += 1;
        }
        return Some((a, p, k - a, 0));
    }
    None
}

// ---- paths -----------------------------------------------------------------

fn is_path_delim(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'=' | b'(' | b'[' | b',' | b':')
}

fn is_path_end(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'<' | b'>' | b'|' | b';' | b',' | b'(' | b')' | b'[' | b']')
}

fn clean_paths(s: &[u8], repl: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut last = 0;
    let mut i = 0;
    while i < s.len() {
        if i > 0 && !is_path_delim(s[i - 1]) {
            i += 1;
            continue;
        }
        let c = s[i];
        let is_drive = i + 2 < s.len() && (c | 0x20).is_ascii_lowercase() && s[i + 1] == b':' && s[i + 2] == b'\\';
        // A relative path that climbs ("../", "..\\") is redacted whole.
        let climbs = c == b'.' && i + 2 < s.len() && s[i + 1] == b'.' && (s[i + 2] == b'/' || s[i + 2] == b'\\');
        if c != b'/' && !(c == b'~' && i + 1 < s.len() && s[i + 1] == b'/') && !is_drive && !climbs {
            i += 1;
            continue;
        }
        let end = run_of(s, i, |c| !is_path_end(c));
        let tok = &s[i..end];
        if tok.starts_with(b"//") {
            i = end + 1;
            continue;
        }
        if climbs {
            let o = out.get_or_insert_with(Vec::new);
            o.extend_from_slice(&s[last..i]);
            o.extend_from_slice(repl);
            last = end;
            i = end + 1;
            continue;
        }
        let clean = clean_path(tok);
        if clean != tok {
            let o = out.get_or_insert_with(Vec::new);
            o.extend_from_slice(&s[last..i]);
            o.extend_from_slice(&clean);
            last = end;
        }
        i = end + 1;
    }
    out.map(|mut o| {
        o.extend_from_slice(&s[last..]);
        o
    })
}

fn contains(s: &[u8], sub: &[u8]) -> bool {
    s.len() >= sub.len() && (0..=s.len() - sub.len()).any(|i| &s[i..i + sub.len()] == sub)
}

fn clean_path(p0: &[u8]) -> Vec<u8> {
    let mut p = p0.to_vec();
    if p.len() > 1 && (p[0] == b'/' || p.starts_with(b"~/")) && (contains(&p, b"/.") || contains(&p, b"//")) {
        let trailing = p.ends_with(b"/");
        let mut c = if p[0] == b'~' {
            let mut r = vec![b'/'];
            r.extend_from_slice(&p[2..]);
            let mut t = vec![b'~'];
            t.extend_from_slice(&go_path_clean(&r));
            t
        } else {
            go_path_clean(&p)
        };
        if trailing && !c.ends_with(b"/") {
            c.push(b'/');
        }
        p = c;
    }
    if let Some(rest) = cut_home(&p) {
        let mut t = vec![b'~'];
        t.extend_from_slice(&rest);
        p = t;
    }
    p
}

fn cut_home(p: &[u8]) -> Option<Vec<u8>> {
    for prefix in [&b"/home/"[..], &b"/Users/"[..]] {
        if p.starts_with(prefix) {
            let user = &p[prefix.len()..];
            return match user.iter().position(|&c| c == b'/') {
                Some(0) => None,
                None => Some(Vec::new()),
                Some(k) => Some(user[k..].to_vec()),
            };
        }
    }
    if p == b"/root" || p.starts_with(b"/root/") {
        return Some(p[5..].to_vec());
    }
    if p.len() > 9 && p[1] == b':' && p[2..9].iter().zip(b"\\users\\").all(|(a, b)| lower(*a) == *b) {
        let user = &p[9..];
        return match user.iter().position(|&c| c == b'\\') {
            Some(0) => None,
            None => Some(Vec::new()),
            Some(k) => Some(user[k..].to_vec()),
        };
    }
    None
}

// Go's path.Clean.
fn go_path_clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if path[r] == b'/' {
            r += 1;
        } else if path[r] == b'.' && (r + 1 == n || path[r + 1] == b'/') {
            r += 1;
        } else if path[r] == b'.' && path[r + 1] == b'.' && (r + 2 == n || path[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

// ---- JSON --------------------------------------------------------------------

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

// The end of the string token starting at i (a quote), and whether it
// holds escapes.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut esc = false;
    while j < b.len() {
        match b[j] {
            b'"' => return Some((j + 1, esc)),
            b'\\' => {
                esc = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
    None
}

fn hexval(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

// Decodes a string token as encoding/json does: escapes resolved, bad
// surrogates and invalid UTF-8 become U+FFFD.
fn decode_string(tok: &[u8]) -> Option<Vec<u8>> {
    let b = &tok[1..tok.len() - 1];
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let u4 = |i: usize| -> Option<u32> {
        if i + 4 > b.len() {
            return None;
        }
        let mut v = 0;
        for k in 0..4 {
            v = v * 16 + hexval(b[i + k])?;
        }
        Some(v)
    };
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            let e = *b.get(i + 1)?;
            i += 2;
            match e {
                b'"' | b'\\' | b'/' => out.push(e),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let mut r = u4(i)?;
                    i += 4;
                    if (0xd800..0xe000).contains(&r) {
                        let mut ok = false;
                        if r < 0xdc00 && i + 6 <= b.len() && b[i] == b'\\' && b[i + 1] == b'u' {
                            if let Some(r2) = u4(i + 2) {
                                if (0xdc00..0xe000).contains(&r2) {
                                    r = 0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00);
                                    i += 6;
                                    ok = true;
                                }
                            }
                        }
                        if !ok {
                            r = 0xfffd;
                        }
                    }
                    push_char(&mut out, char::from_u32(r).unwrap_or('\u{fffd}'));
                }
                _ => return None,
            }
        } else if c < 0x80 {
            if c < 0x20 {
                return None;
            }
            out.push(c);
            i += 1;
        } else {
            let (ch, n) = decode_rune(&b[i..]);
            match ch {
                Some(ch) => push_char(&mut out, ch),
                None => out.extend_from_slice("\u{fffd}".as_bytes()),
            }
            i += n;
        }
    }
    Some(out)
}

// One UTF-8 sequence: the char, or None and 1 for an invalid byte.
fn decode_rune(b: &[u8]) -> (Option<char>, usize) {
    let n = match b[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (None, 1),
    };
    if b.len() < n {
        return (None, 1);
    }
    match std::str::from_utf8(&b[..n]) {
        Ok(s) => (s.chars().next(), n),
        Err(_) => (None, 1),
    }
}

// pipeline.AppendJSONString.
// The end of the run of bytes at s[i..] that JSON takes as they are
// (encoding/json's escaping, HTML characters included): a loop that calls
// nothing, so that the copy is one extend per run, not a push per byte.
#[inline(never)]
fn plain_run(s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        let c = s[i];
        if c >= 0x80 || c < 0x20 || c == b'"' || c == b'\\' || c == b'<' || c == b'>' || c == b'&' {
            break;
        }
        i += 1;
    }
    i
}

fn append_json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let j = plain_run(s, i);
        out.extend_from_slice(&s[i..j]);
        i = j;
        if i >= s.len() {
            break;
        }
        let c = s[i];
        if c < 0x80 {
            match c {
                b'"' | b'\\' => {
                    out.push(b'\\');
                    out.push(c)
                }
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ if c < 0x20 || c == b'<' || c == b'>' || c == b'&' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 15) as usize]);
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        let (ch, n) = decode_rune(&s[i..]);
        match ch {
            None => out.extend_from_slice(b"\\ufffd"),
            Some('\u{2028}') => out.extend_from_slice(b"\\u2028"),
            Some('\u{2029}') => out.extend_from_slice(b"\\u2029"),
            Some(_) => out.extend_from_slice(&s[i..i + n]),
        }
        i += n;
    }
    out.push(b'"');
}

// Go's strings.ToLower, for the keys it is used on.
fn go_lower(s: &[u8]) -> Vec<u8> {
    if s.iter().all(|&c| c < 0x80) {
        return s.iter().map(|&c| lower(c)).collect();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let (ch, n) = if s[i] < 0x80 { (Some(s[i] as char), 1) } else { decode_rune(&s[i..]) };
        match ch {
            Some('\u{130}') => out.push(b'i'),
            Some(c) => {
                let mut l = c.to_lowercase();
                let first = l.next().unwrap_or(c);
                if l.next().is_some() {
                    push_char(&mut out, c);
                } else {
                    push_char(&mut out, first);
                }
            }
            None => out.extend_from_slice("\u{fffd}".as_bytes()),
        }
        i += n;
    }
    out
}

struct Rewriter<'a> {
    cfg: &'a Config,
    raw: &'a [u8],
    i: usize,
    out: Vec<u8>,
    changed: bool,
    secrets: bool,
    paths: bool,
    user_data: bool,
    keys: bool,
    hits: &'a [usize],
    next_hit: usize,
    all_strings: bool,
}

impl<'a> Rewriter<'a> {
    // Whether a trigger starts in raw[start..end]; hits are consumed in
    // order as the walk moves forward.
    fn hit_within(&mut self, start: usize, end: usize) -> bool {
        while self.next_hit < self.hits.len() && self.hits[self.next_hit] < start {
            self.next_hit += 1;
        }
        self.next_hit < self.hits.len() && self.hits[self.next_hit] < end
    }

    fn ws(&mut self) {
        self.i = skip_ws(self.raw, self.i);
    }

    fn value(&mut self) -> Result<(), ()> {
        self.ws();
        if self.i >= self.raw.len() {
            return Err(());
        }
        match self.raw[self.i] {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => {
                let (end, esc) = string_end(self.raw, self.i).ok_or(())?;
                let start = self.i;
                let tok = &self.raw[start..end];
                self.i = end;
                let secrets = self.secrets && (esc || self.all_strings || self.hit_within(start, end));
                let paths = self.paths && tok.iter().any(|&c| c == b'/' || c == b'\\');
                let user_data = self.user_data && {
                    let (email, digits) = may_hold_user_data(tok);
                    email || digits || esc
                };
                if !secrets && !paths && !user_data {
                    self.out.extend_from_slice(tok);
                    return Ok(());
                }
                let decoded;
                let s: &[u8] = if esc {
                    decoded = decode_string(tok).ok_or(())?;
                    &decoded
                } else {
                    &tok[1..tok.len() - 1]
                };
                match sanitize_string(self.cfg, s, secrets, user_data, paths) {
                    Some(clean) => {
                        append_json_string(&mut self.out, &clean);
                        self.changed = true;
                    }
                    None => self.out.extend_from_slice(tok),
                }
                Ok(())
            }
            _ => {
                let j = run_of(self.raw, self.i, |b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\t' | b'\r'));
                if j == self.i {
                    return Err(());
                }
                self.out.extend_from_slice(&self.raw[self.i..j]);
                self.i = j;
                Ok(())
            }
        }
    }

    fn skip(&mut self) -> Result<(), ()> {
        let (n, changed) = (self.out.len(), self.changed);
        let (s, p, k, u) = (self.secrets, self.paths, self.keys, self.user_data);
        self.secrets = false;
        self.paths = false;
        self.keys = false;
        self.user_data = false;
        let r = self.value();
        self.out.truncate(n);
        self.changed = changed;
        self.secrets = s;
        self.paths = p;
        self.keys = k;
        self.user_data = u;
        r
    }

    fn object(&mut self) -> Result<(), ()> {
        self.out.push(b'{');
        self.i += 1;
        let mut parsed = 0;
        let mut written = 0;
        loop {
            self.ws();
            if self.i >= self.raw.len() {
                return Err(());
            }
            if self.raw[self.i] == b'}' {
                self.i += 1;
                self.out.push(b'}');
                return Ok(());
            }
            if parsed > 0 {
                if self.raw[self.i] != b',' {
                    return Err(());
                }
                self.i += 1;
                self.ws();
            }
            parsed += 1;
            if self.i >= self.raw.len() || self.raw[self.i] != b'"' {
                return Err(());
            }
            let (end, esc) = string_end(self.raw, self.i).ok_or(())?;
            let key_start = self.i;
            self.i = end;
            self.ws();
            if self.i >= self.raw.len() || self.raw[self.i] != b':' {
                return Err(());
            }
            self.i += 1;
            let key_tok = &self.raw[key_start..end];
            if self.keys {
                let key = if esc { decode_string(key_tok).ok_or(())? } else { key_tok[1..key_tok.len() - 1].to_vec() };
                let lk = go_lower(&key);
                if self.cfg.deny.contains(&lk) {
                    self.changed = true;
                    self.skip()?;
                    continue;
                }
                if self.cfg.hash.contains(&lk) {
                    let start = self.i;
                    self.skip()?;
                    let v = hash_value(self.cfg, &self.raw[start..self.i]);
                    if written > 0 {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(key_tok);
                    self.out.push(b':');
                    written += 1;
                    append_json_string(&mut self.out, &v);
                    self.changed = true;
                    continue;
                }
            }
            if written > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(key_tok);
            self.out.push(b':');
            written += 1;
            self.value()?;
        }
    }

    fn array(&mut self) -> Result<(), ()> {
        self.out.push(b'[');
        self.i += 1;
        let mut first = true;
        loop {
            self.ws();
            if self.i >= self.raw.len() {
                return Err(());
            }
            if self.raw[self.i] == b']' {
                self.i += 1;
                self.out.push(b']');
                return Ok(());
            }
            if !first {
                if self.raw[self.i] != b',' {
                    return Err(());
                }
                self.i += 1;
                self.out.push(b',');
            }
            self.value()?;
            first = false;
        }
    }
}

/// The data rewritten, None when unchanged; Err for malformed JSON.
fn rewrite_data(cfg: &Config, raw: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    // One pass finds what the walk needs to know: \u escapes (they can
    // spell a trigger or a key the scan cannot see: then every string and
    // key is checked), path separators, denied or hashed keys, and where
    // triggers start (strings elsewhere skip the secret rules).
    let mut hits = unsafe { std::mem::take(&mut HITS) };
    hits.clear();
    let n = raw.len();
    // One table lookup per byte pair says whether a trigger (bit 1) or a
    // key (bit 2) may start there, a second (by the next pair) rules out
    // most of the rest; the same pass notes path separators, '@' and
    // digits (scanBytes in sanitize.go).
    let mut keys = false;
    {
        let pair = &*cfg.pair;
        let pair2 = &*cfg.pair2;
        // An 8 KiB bit set first, in a loop of its own: it stays in cache,
        // the byte tables (64 KiB each) are read only where a literal may
        // start, and the loop that runs over every byte calls nothing.
        let mut i = scan_pairs(raw, 0, &cfg.pair_any);
        while i + 1 < n {
            let next = lower(raw[i + 1]) as usize;
            let mut f = pair[(lower(raw[i]) as usize) << 8 | next];
            if i + 2 < n {
                f &= pair2[next << 8 | lower(raw[i + 2]) as usize];
            }
            if f & 1 != 0 && cfg.secrets && cfg.triggers.lits.iter().any(|l| has_prefix_fold(&raw[i..], l)) {
                hits.push(i);
            }
            if f & 2 != 0 && !keys && key_at(cfg, &raw[i..]) {
                keys = true;
            }
            i = scan_pairs(raw, i + 1, &cfg.pair_any);
        }
    }
    // Separate simple passes: each compiles to SIMD (simd128).
    let paths = raw.iter().fold(false, |a, &c| a | (c == b'/') | (c == b'\\'));
    let mut escaped = false;
    if paths {
        let mut i = 0;
        while let Some(k) = raw[i..].iter().position(|&c| c == b'\\') {
            if i + k + 1 < n && raw[i + k + 1] == b'u' {
                escaped = true;
                break;
            }
            i += k + 2;
            if i >= n {
                break;
            }
        }
    }
    let secrets = cfg.secrets && (escaped || !hits.is_empty());
    let paths = cfg.paths && paths;
    let keys = escaped || keys;
    let user_data = cfg.user_data && (escaped || {
        let (email, digits) = may_hold_user_data(raw);
        email || digits
    });
    let result = if !secrets && !paths && !keys && !user_data {
        Ok(None)
    } else {
        let scratch = unsafe { std::mem::take(&mut SCRATCH) };
        let mut w = Rewriter { cfg, raw, i: 0, out: scratch, changed: false, secrets, paths, user_data, keys, hits: &hits, next_hit: 0, all_strings: escaped };
        w.out.clear();
        let r = w.value();
        let changed = w.changed;
        let result = if r.is_ok() && changed { Some(w.out.clone()) } else { None };
        unsafe { SCRATCH = w.out };
        r.map(|_| result)
    };
    unsafe { HITS = hits };
    result
}

// ---- hash_fields -------------------------------------------------------------

enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(Vec<u8>),
    Arr(Vec<Json>),
    Obj(Vec<(Vec<u8>, Json)>),
}

fn parse_json(b: &[u8]) -> Result<Json, ()> {
    let mut i = 0;
    let v = parse_value(b, &mut i)?;
    if skip_ws(b, i) != b.len() {
        return Err(());
    }
    Ok(v)
}

fn parse_value(b: &[u8], i: &mut usize) -> Result<Json, ()> {
    *i = skip_ws(b, *i);
    if *i >= b.len() {
        return Err(());
    }
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut members = Vec::new();
            *i = skip_ws(b, *i);
            if *i < b.len() && b[*i] == b'}' {
                *i += 1;
                return Ok(Json::Obj(members));
            }
            loop {
                *i = skip_ws(b, *i);
                if *i >= b.len() || b[*i] != b'"' {
                    return Err(());
                }
                let (end, _) = string_end(b, *i).ok_or(())?;
                let k = decode_string(&b[*i..end]).ok_or(())?;
                *i = skip_ws(b, end);
                if *i >= b.len() || b[*i] != b':' {
                    return Err(());
                }
                *i += 1;
                let v = parse_value(b, i)?;
                members.push((k, v));
                *i = skip_ws(b, *i);
                if *i < b.len() && b[*i] == b',' {
                    *i += 1;
                    continue;
                }
                if *i < b.len() && b[*i] == b'}' {
                    *i += 1;
                    return Ok(Json::Obj(members));
                }
                return Err(());
            }
        }
        b'[' => {
            *i += 1;
            let mut items = Vec::new();
            *i = skip_ws(b, *i);
            if *i < b.len() && b[*i] == b']' {
                *i += 1;
                return Ok(Json::Arr(items));
            }
            loop {
                items.push(parse_value(b, i)?);
                *i = skip_ws(b, *i);
                if *i < b.len() && b[*i] == b',' {
                    *i += 1;
                    continue;
                }
                if *i < b.len() && b[*i] == b']' {
                    *i += 1;
                    return Ok(Json::Arr(items));
                }
                return Err(());
            }
        }
        b'"' => {
            let (end, _) = string_end(b, *i).ok_or(())?;
            let s = decode_string(&b[*i..end]).ok_or(())?;
            *i = end;
            Ok(Json::Str(s))
        }
        b't' if b[*i..].starts_with(b"true") => {
            *i += 4;
            Ok(Json::Bool(true))
        }
        b'f' if b[*i..].starts_with(b"false") => {
            *i += 5;
            Ok(Json::Bool(false))
        }
        b'n' if b[*i..].starts_with(b"null") => {
            *i += 4;
            Ok(Json::Null)
        }
        _ => {
            let start = *i;
            let mut j = *i;
            if j < b.len() && b[j] == b'-' {
                j += 1;
            }
            if j < b.len() && b[j] == b'0' {
                j += 1;
            } else if j < b.len() && (b'1'..=b'9').contains(&b[j]) {
                j = run_of(b, j, |c| c.is_ascii_digit());
            } else {
                return Err(());
            }
            if j < b.len() && b[j] == b'.' {
                let k = run_of(b, j + 1, |c| c.is_ascii_digit());
                if k == j + 1 {
                    return Err(());
                }
                j = k;
            }
            if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
                j += 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                let k = run_of(b, j, |c| c.is_ascii_digit());
                if k == j {
                    return Err(());
                }
                j = k;
            }
            let f: f64 = std::str::from_utf8(&b[start..j]).map_err(|_| ())?.parse().map_err(|_| ())?;
            if !f.is_finite() {
                return Err(());
            }
            *i = j;
            Ok(Json::Num(f))
        }
    }
}

// encoding/json's Marshal of what Unmarshal into `any` gave.
fn marshal(v: &Json, out: &mut Vec<u8>) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Num(f) => out.extend_from_slice(go_float(*f).as_bytes()),
        Json::Str(s) => marshal_string(s, out),
        Json::Arr(a) => {
            out.push(b'[');
            for (k, x) in a.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                marshal(x, out);
            }
            out.push(b']');
        }
        Json::Obj(m) => {
            // A map: the last of duplicate keys wins; keys sorted.
            let mut keys: Vec<&Vec<u8>> = Vec::new();
            for (k, _) in m {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            keys.sort();
            out.push(b'{');
            for (n, k) in keys.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                marshal_string(k, out);
                out.push(b':');
                let v = &m.iter().rev().find(|(kk, _)| kk == *k).unwrap().1;
                marshal(v, out);
            }
            out.push(b'}');
        }
    }
}

fn marshal_string(s: &[u8], out: &mut Vec<u8>) {
    // As AppendJSONString, but encoding/json writes \b and \f short.
    let mut tmp = Vec::new();
    append_json_string(&mut tmp, s);
    let mut i = 0;
    while i < tmp.len() {
        if tmp[i..].starts_with(b"\\u0008") {
            out.extend_from_slice(b"\\b");
            i += 6;
        } else if tmp[i..].starts_with(b"\\u000c") {
            out.extend_from_slice(b"\\f");
            i += 6;
        } else {
            out.push(tmp[i]);
            i += 1;
        }
    }
}

// strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json picks it.
fn go_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && (a < 1e-6 || a >= 1e21) {
        let s = format!("{:e}", f);
        // Rust: 1e21, 1.5e-7; Go: 1e+21, 1.5e-07 (then json trims to e-7).
        match s.find('e') {
            Some(k) => {
                let (m, e) = s.split_at(k);
                let e = &e[1..];
                if e.starts_with('-') {
                    format!("{}e{}", m, e)
                } else {
                    format!("{}e+{}", m, e)
                }
            }
            None => s,
        }
    } else {
        format!("{}", f)
    }
}

fn hash_value(cfg: &Config, raw: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    match parse_json(raw) {
        Ok(Json::Str(s)) => data = s,
        Ok(v) => marshal(&v, &mut data),
        Err(()) => data.extend_from_slice(b"null"),
    }
    let mac = hmac_sha256(&cfg.hash_key, &data);
    let mut out = b"hmac-sha256:".to_vec();
    const HEX: &[u8] = b"0123456789abcdef";
    for b in &mac[..16] {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
    out
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for t in 0..16 {
            w[t] = u32::from_be_bytes([block[4 * t], block[4 * t + 1], block[4 * t + 2], block[4 * t + 3]]);
        }
        for t in 16..64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16].wrapping_add(s0).wrapping_add(w[t - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for t in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7].wrapping_add(s1).wrapping_add(ch).wrapping_add(K[t]).wrapping_add(w[t]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), v[0], v[1], v[2], v[3].wrapping_add(t1), v[4], v[5], v[6]];
        }
        for k in 0..8 {
            h[k] = h[k].wrapping_add(v[k]);
        }
    }
    let mut out = [0u8; 32];
    for k in 0..8 {
        out[4 * k..4 * k + 4].copy_from_slice(&h[k].to_be_bytes());
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = if key.len() > 64 { sha256(key).to_vec() } else { key.to_vec() };
    k.resize(64, 0);
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(data);
    let ih = sha256(&inner);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&ih);
    sha256(&outer)
}
