/*
 * stream/key.c: the key encoding and key groups described in key.h.
 * @thread any.
 */
#include "stream/key.h"

#include <xxhash.h>

static inline uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(v >> (i * 8));
    return p;
}

static inline uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Doubles ordered as bytes: flip all bits of negatives, the sign bit of
 * positives. */
static uint64_t
float_bits(double f)
{
    uint64_t u;
    memcpy(&u, &f, sizeof(u));
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

static double
bits_float(uint64_t u)
{
    double f;
    u = (u & 0x8000000000000000ull) ? (u & ~0x8000000000000000ull) : ~u;
    memcpy(&f, &u, sizeof(f));
    return f;
}

size_t
rn__key_encode(const rn_keyspec_t *ks, const rn_value_t *row, uint8_t *buf, size_t size)
{
    uint8_t *p = buf, *end = buf + size;

    for (uint32_t i = 0; i < ks->n; i++) {
        const rn_value_t *v = &row[ks->fields[i]];
        if (p + 1 > end)
            return 0;
        if (v->null) {
            *p++ = 0;
            continue;
        }
        *p++ = 1;
        switch (ks->types[i]) {
        case RN_TYPE_INT:
        case RN_TYPE_TIMESTAMP:
            if (p + 8 > end)
                return 0;
            p = put_u64(p, (uint64_t)v->u.i ^ 0x8000000000000000ull);
            break;
        case RN_TYPE_FLOAT:
            if (p + 8 > end)
                return 0;
            p = put_u64(p, float_bits(v->u.f));
            break;
        case RN_TYPE_BOOL:
            if (p + 1 > end)
                return 0;
            *p++ = v->u.b ? 1 : 0;
            break;
        case RN_TYPE_STRING: {
            uint32_t len = v->len;
            do {
                if (p >= end)
                    return 0;
                *p++ = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
                len >>= 7;
            } while (len);
            if ((size_t)(end - p) < v->len)
                return 0;
            memcpy(p, v->u.s, v->len);
            p += v->len;
            break;
        }
        case RN_TYPE_NULL: break;
        }
    }
    return (size_t)(p - buf);
}

rn_code_t
rn__key_decode(const rn_type_t *types, uint32_t n, const uint8_t *key, size_t len,
               rn_arena_t *arena, rn_value_t *out)
{
    const uint8_t *p = key, *end = key + len;

    for (uint32_t i = 0; i < n; i++) {
        if (p >= end)
            return RN_ECORRUPT;
        if (*p++ == 0) {
            out[i] = rn__val_null();
            continue;
        }
        switch (types[i]) {
        case RN_TYPE_INT:
        case RN_TYPE_TIMESTAMP:
            if (end - p < 8)
                return RN_ECORRUPT;
            out[i] = rn__val_int((int64_t)(get_u64(p) ^ 0x8000000000000000ull));
            p += 8;
            break;
        case RN_TYPE_FLOAT:
            if (end - p < 8)
                return RN_ECORRUPT;
            out[i] = rn__val_float(bits_float(get_u64(p)));
            p += 8;
            break;
        case RN_TYPE_BOOL:
            if (p >= end)
                return RN_ECORRUPT;
            out[i] = rn__val_bool(*p++ != 0);
            break;
        case RN_TYPE_STRING: {
            uint64_t slen = 0;
            int shift = 0;
            for (;;) {
                if (p >= end || shift > 28)
                    return RN_ECORRUPT;
                uint8_t c = *p++;
                slen |= (uint64_t)(c & 0x7f) << shift;
                shift += 7;
                if (!(c & 0x80))
                    break;
            }
            if ((uint64_t)(end - p) < slen)
                return RN_ECORRUPT;
            const char *s = (const char *)p;
            if (arena != NULL)
                s = rn__arena_strdup(arena, s, (size_t)slen);
            out[i] = rn__val_str(s, (uint32_t)slen);
            p += slen;
            break;
        }
        case RN_TYPE_NULL: out[i] = rn__val_null(); break;
        }
    }
    return p == end ? RN_OK : RN_ECORRUPT;
}

uint64_t
rn__key_hash(const uint8_t *key, size_t len)
{
    return XXH3_64bits(key, len);
}

void
rn__key_group_range(uint32_t i, uint32_t max_parallelism, uint32_t parallelism, uint32_t *first,
                    uint32_t *last)
{
    /* Flink's KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex. */
    *first = (uint32_t)(((uint64_t)i * max_parallelism + parallelism - 1) / parallelism);
    *last = (uint32_t)((((uint64_t)i + 1) * max_parallelism - 1) / parallelism);
}
