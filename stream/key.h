/*
 * stream/key.h: keys and key groups.
 *
 * A record's key is the concatenation of its key fields encoded compactly
 * and deterministically (the same bytes on every machine and every build of
 * this format version), so that it can be hashed, compared with memcmp and
 * stored in state as it is:
 *   int, timestamp: 8 bytes big-endian with the sign bit flipped (so that
 *                   bytes order as numbers do);
 *   float:          8 bytes, IEEE bits order-preserving transform;
 *   bool:           1 byte;
 *   string:         varint length, then the bytes;
 *   null:           one 0x00 tag byte before a value that is absent, 0x01
 *                   before a present one (every field carries the tag).
 * The key group is XXH3_64(key bytes) % max_parallelism; key groups go to
 * instances by contiguous ranges (Flink's formula), so that rescaling moves
 * ranges of key groups.
 *
 * @thread any.
 */
#ifndef RN_STREAM_KEY_H
#define RN_STREAM_KEY_H

#include "stream/row.h"

#define RN_KEY_FORMAT_VERSION 1
#define RN_DEFAULT_MAX_PARALLELISM 128
#define RN_KEY_MAX 4096 /* longest encoded key accepted */

/* Positions and types of the key fields in one schema. */
typedef struct rn_keyspec {
    uint32_t n;
    int fields[8];
    rn_type_t types[8];
} rn_keyspec_t;

#define RN_KEY_FIELDS_MAX 8

/* Encodes the key of row into buf (size bytes). @returns the encoded
 * length, or 0 when it would not fit (the caller reports the record). */
size_t rn__key_encode(const rn_keyspec_t *ks, const rn_value_t *row, uint8_t *buf, size_t size);

/* Decodes key bytes into n = ks->n values; strings are copied into arena
 * when it is not NULL, else they point into key (borrowed from it).
 * @returns RN_OK or RN_ECORRUPT. */
rn_code_t rn__key_decode(const rn_type_t *types, uint32_t n, const uint8_t *key, size_t len,
                         rn_arena_t *arena, rn_value_t *out);

uint64_t rn__key_hash(const uint8_t *key, size_t len);

static inline uint32_t
rn__key_group(uint64_t hash, uint32_t max_parallelism)
{
    return (uint32_t)(hash % max_parallelism);
}

/* The instance that owns key group kg (Flink's
 * computeOperatorIndexForKeyGroup). */
static inline uint32_t
rn__key_group_instance(uint32_t kg, uint32_t max_parallelism, uint32_t parallelism)
{
    return (uint32_t)(((uint64_t)kg * parallelism) / max_parallelism);
}

/* The contiguous key-group range [*first, *last] of instance i. */
void rn__key_group_range(uint32_t i, uint32_t max_parallelism, uint32_t parallelism,
                         uint32_t *first, uint32_t *last);

#endif
