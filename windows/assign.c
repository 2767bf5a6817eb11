/*
 * windows/assign.c: which windows an event time belongs to, session
 * merging and window namespaces (see window_int.h).
 *
 * Design: the arithmetic of Flink's TumblingEventTimeWindows,
 * SlidingEventTimeWindows, EventTimeSessionWindows and TimeWindow (offset
 * 0), so that a job gives the same windows here as there. Starts are
 * aligned to the epoch and computed with a non-negative remainder, so
 * negative timestamps (before 1970) land in the right window. Sums that
 * could pass INT64_MAX (the final watermark is INT64_MAX, and lateness is
 * added to window ends) saturate instead of wrapping.
 *
 * @thread any.
 */
#include "windows/window_int.h"

int64_t
rn__win_add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

int64_t
rn__win_start(int64_t ts, int64_t size)
{
    rn_assert(size > 0);
    int64_t r = ts % size;
    if (r < 0)
        r += size;
    /* Windows that would start before INT64_MIN start at it. */
    return rn__win_add_sat(ts, -r);
}

size_t
rn__win_max_windows(const rn_win_spec_t *spec)
{
    if (spec->kind != RN_WIN_SLIDING)
        return 1;
    return (size_t)(spec->size / spec->slide + (spec->size % spec->slide != 0));
}

static rn_win_t
win_of(int64_t start, int64_t len)
{
    rn_win_t w = {start, rn__win_add_sat(start, len)};
    return w;
}

size_t
rn__win_assign(const rn_win_spec_t *spec, int64_t ts, rn_win_t *out)
{
    switch (spec->kind) {
    case RN_WIN_TUMBLING:
        out[0] = win_of(rn__win_start(ts, spec->size), spec->size);
        return 1;
    case RN_WIN_SESSION:
        out[0] = win_of(ts, spec->gap);
        return 1;
    case RN_WIN_SLIDING: {
        size_t n = 0, max = rn__win_max_windows(spec);
        int64_t lowest = rn__win_add_sat(ts, -spec->size);
        for (int64_t s = rn__win_start(ts, spec->slide); s > lowest && n < max;) {
            out[n++] = win_of(s, spec->size);
            if (__builtin_sub_overflow(s, spec->slide, &s))
                break;
        }
        return n;
    }
    }
    RN_NOTREACHED();
}

size_t
rn__win_session_merge(const rn_win_t *wins, size_t n, rn_win_t add, rn_win_t *merged, bool *hit)
{
    size_t nhit = 0;
    bool changed = true;
    *merged = add;
    for (size_t i = 0; i < n; i++)
        hit[i] = false;
    /* Sessions of one key are few; repeat until nothing more joins, which
     * covers chains (add reaches a, a's cover reaches b) whatever the
     * order. */
    while (changed) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (hit[i] || !rn__win_intersects(*merged, wins[i]))
                continue;
            *merged = rn__win_cover(*merged, wins[i]);
            hit[i] = true;
            nhit++;
            changed = true;
        }
    }
    return nhit;
}

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define to_be64(x) (x)
#else
#define to_be64(x) __builtin_bswap64(x)
#endif

static inline void
put_be(uint8_t *p, int64_t v)
{
    uint64_t u = to_be64((uint64_t)v ^ 0x8000000000000000ull);
    memcpy(p, &u, 8);
}

static inline int64_t
get_be(const uint8_t *p)
{
    uint64_t u;
    memcpy(&u, p, 8);
    return (int64_t)(to_be64(u) ^ 0x8000000000000000ull);
}

void
rn__win_ns_encode(rn_win_t w, uint8_t ns[RN_WIN_NS_LEN])
{
    put_be(ns, w.start);
    put_be(ns + 8, w.end);
}

rn_win_t
rn__win_ns_decode(const uint8_t ns[RN_WIN_NS_LEN])
{
    rn_win_t w = {get_be(ns), get_be(ns + 8)};
    return w;
}
