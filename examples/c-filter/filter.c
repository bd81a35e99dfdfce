/* The conformance filter (sdk/ABI.md) in C. */
#define EVENTPIPE_MANIFEST "{\"name\":\"conformance-c\",\"version\":\"1.0.0\",\"kind\":\"filter\",\"capabilities\":[]}"
#include "../../../../sdk/c/eventpipe.h"

static u32 fnv1a(const u8 *p, u32 n) {
	u32 h = 0x811c9dc5u;
	for (u32 i = 0; i < n; i++) h = (h ^ p[i]) * 0x01000193u;
	return h;
}

unsigned char eventpipe_filter(const eventpipe_event *e) {
	if (e->source_len == 4 && e->source[0] == 'e' && e->source[1] == 'v' && e->source[2] == 'i' && e->source[3] == 'l')
		return EP_DEAD_LETTER;
	if (e->type_len >= 6) {
		const u8 *t = e->type + e->type_len - 6;
		if (t[0] == '.' && t[1] == 'd' && t[2] == 'e' && t[3] == 'b' && t[4] == 'u' && t[5] == 'g') return EP_DROP;
	}
	if (fnv1a(e->data, e->data_len) % 7 == 0) return EP_DROP;
	return EP_KEEP;
}
