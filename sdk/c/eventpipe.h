/* eventpipe plugin ABI v1 for C (sdk/ABI.md). Freestanding: no libc needed.
 *
 * A plugin defines EVENTPIPE_MANIFEST and, for a filter,
 *     unsigned char eventpipe_filter(const eventpipe_event *e);
 * then includes this header once (it defines the exports). Build:
 *     clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--strip-all -Wl,--export-dynamic -o f.wasm f.c
 */
#ifndef EVENTPIPE_H
#define EVENTPIPE_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define EP_EXPORT(name) __attribute__((export_name(name)))

typedef struct {
	i64 time;            /* unix nanoseconds, 0 if unknown */
	u64 sequence;
	const u8 *type;   u32 type_len;
	const u8 *source; u32 source_len;
	const u8 *id;     u32 id_len;
	const u8 *correlation_id; u32 correlation_id_len;
	const u8 *causation_id;   u32 causation_id_len;
	const u8 *language;       u32 language_len;
	const u8 *tags;           u32 tags_len;   /* JSON array of strings */
	const u8 *data;           u32 data_len;   /* JSON */
} eventpipe_event;

enum { EP_KEEP = 0, EP_DROP = 1, EP_DEAD_LETTER = 2 };

/* The compiler may emit calls to these; define them so nothing is imported. */
void *memset(void *d, int c, unsigned long n) { u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, unsigned long n) { u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }

static inline u16 ep_u16(const u8 *p) { return (u16)(p[0] | p[1] << 8); }
static inline u32 ep_u32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static inline u64 ep_u64(const u8 *p) { return (u64)ep_u32(p) | (u64)ep_u32(p + 4) << 32; }

extern unsigned char __heap_base;

static u8 *ep_buf;
static u32 ep_cap;

EP_EXPORT("eventpipe_abi_v1") int eventpipe_abi_v1(void) { return 1; }

static const char ep_manifest[] = EVENTPIPE_MANIFEST;
EP_EXPORT("eventpipe_manifest") i64 eventpipe_manifest(void) {
	return (i64)(u32)ep_manifest << 32 | (i64)(sizeof ep_manifest - 1);
}

/* One buffer from the heap base; the output goes right after the input,
 * so the buffer is twice the size asked (grown with memory.grow). */
EP_EXPORT("eventpipe_buffer") u32 eventpipe_buffer(u32 size) {
	u32 need = 2 * size + 16;
	u32 base = (u32)&__heap_base;
	u32 have = __builtin_wasm_memory_size(0) * 65536u;
	if (base + need > have) {
		u32 pages = (base + need - have + 65535) / 65536;
		if (__builtin_wasm_memory_grow(0, pages) == (unsigned long)-1) return 0;
	}
	ep_buf = (u8 *)base;
	ep_cap = need;
	return base;
}

#ifdef EVENTPIPE_INIT
int EVENTPIPE_INIT(const u8 *config, u32 len);
#endif
EP_EXPORT("eventpipe_init") int eventpipe_init(const u8 *p, u32 n) {
#ifdef EVENTPIPE_INIT
	return EVENTPIPE_INIT(p, n);
#else
	(void)p; (void)n;
	return 0;
#endif
}

unsigned char eventpipe_filter(const eventpipe_event *e);

EP_EXPORT("eventpipe_process") i64 eventpipe_process(const u8 *p, u32 n) {
	u32 count = ep_u32(p + 4);
	u8 *out = (u8 *)p + n;
	const u8 *r = p + 8;
	eventpipe_event e;
	for (u32 i = 0; i < count; i++) {
		const u8 *f = r + 40;
		e.time = (i64)ep_u64(r + 4);
		e.sequence = ep_u64(r + 12);
		e.type = f;           e.type_len = ep_u16(r + 20);           f += e.type_len;
		e.source = f;         e.source_len = ep_u16(r + 22);         f += e.source_len;
		e.id = f;             e.id_len = ep_u16(r + 24);             f += e.id_len;
		e.correlation_id = f; e.correlation_id_len = ep_u16(r + 26); f += e.correlation_id_len;
		e.causation_id = f;   e.causation_id_len = ep_u16(r + 28);   f += e.causation_id_len;
		e.language = f;       e.language_len = ep_u16(r + 30);       f += e.language_len;
		e.tags = f;           e.tags_len = ep_u16(r + 32);           f += e.tags_len;
		e.data = f;           e.data_len = ep_u32(r + 36);
		out[i] = eventpipe_filter(&e);
		r += ep_u32(r);
	}
	return (i64)(u32)out << 32 | count;
}

#endif
