/*
 * stream/row.h: schemas, values, batches and the arena that holds a batch's
 * strings.
 *
 * Design: records are rows of fixed-size rn_value_t cells, one per schema
 * field, stored row-major in a batch of up to RN_BATCH_ROWS rows. Field
 * names are resolved to positions when the graph is planned, never per
 * record. Strings are (pointer, length) cells whose bytes live in the
 * batch's arena or in memory that outlives the batch (an expression's
 * literal, a generator's key table); a row copied into another batch copies
 * its strings into that batch's arena (rn__batch_copy_row). Each row also
 * carries its event time in ts[], apart from its fields, as Flink's
 * StreamRecord carries its timestamp.
 *
 * @thread a batch belongs to one task at a time; it moves between tasks only
 * through a queue, which hands over ownership.
 */
#ifndef RN_STREAM_ROW_H
#define RN_STREAM_ROW_H

#include "stream/core.h"

#define RN_BATCH_ROWS 1024

typedef struct rn_value {
    union {
        int64_t i; /* int, timestamp */
        double f;
        bool b;
        const char *s; /* string bytes, not NUL-terminated */
    } u;
    uint32_t len; /* string length in bytes */
    uint8_t null; /* 1: null; the union is then unspecified */
    uint8_t pad[3];
} rn_value_t;

_Static_assert(sizeof(rn_value_t) == 16, "rn_value_t is 16 bytes");

typedef struct rn_field {
    char *name; /* owned by the schema */
    rn_type_t type;
} rn_field_t;

/* Immutable once the graph is planned; owned by the job's plan and alive
 * until the job is destroyed. */
typedef struct rn_schema {
    uint32_t nfields;
    uint32_t cap;
    rn_field_t *fields;
} rn_schema_t;

/* @returns an empty schema; free with rn__schema_destroy(). */
rn_schema_t *rn__schema_new(void);
void rn__schema_destroy(rn_schema_t *s);
/* @param name copied. @returns RN_EINVAL when name is already a field. */
rn_code_t rn__schema_add(rn_schema_t *s, const char *name, rn_type_t type, rn_error_t *err);
/* @returns the field's position, or -1. */
int rn__schema_find(const rn_schema_t *s, const char *name);
/* @returns a deep copy; free with rn__schema_destroy(). */
rn_schema_t *rn__schema_copy(const rn_schema_t *s);
/* Writes "name:type, name:type" into buf. */
void rn__schema_format(const rn_schema_t *s, char *buf, size_t size);

/* A bump allocator: chunks are kept across resets so that a reused batch
 * allocates nothing in steady state. */
typedef struct rn_arena_chunk rn_arena_chunk_t;
typedef struct rn_arena {
    rn_arena_chunk_t *head; /* current chunk */
    rn_arena_chunk_t *full; /* chunks filled before head */
    size_t used;            /* bytes used in head */
} rn_arena_t;

void rn__arena_init(rn_arena_t *a);
void rn__arena_fini(rn_arena_t *a);
/* Forgets everything allocated; keeps one chunk. */
void rn__arena_reset(rn_arena_t *a);
/* @returns size bytes owned by the arena until its next reset (8-aligned). */
void *rn__arena_alloc(rn_arena_t *a, size_t size);
/* @returns a copy of s[0..len) owned by the arena (NUL-terminated too). */
const char *rn__arena_strdup(rn_arena_t *a, const char *s, size_t len);

typedef struct rn_batch {
    const rn_schema_t *schema; /* borrowed from the plan */
    uint32_t n;                /* rows in use */
    uint32_t cap;              /* row capacity */
    uint32_t width;            /* schema->nfields (at least 1 for storage) */
    rn_value_t *vals;          /* cap * width cells, row-major */
    int64_t *ts;               /* cap event times, epoch ms */
    rn_arena_t arena;          /* string bytes of this batch */
    struct rn_batch *next;     /* free lists and queues */
} rn_batch_t;

#define RN_ROW(b, i) (&(b)->vals[(size_t)(i) * (b)->width])

/* @returns an empty batch for schema (borrowed; must outlive the batch)
 * with room for cap rows; free with rn__batch_destroy(). */
rn_batch_t *rn__batch_new(const rn_schema_t *schema, uint32_t cap);
void rn__batch_destroy(rn_batch_t *b);
/* Empties the batch, keeping its memory. */
void rn__batch_reset(rn_batch_t *b);
/* Appends one row, all cells null, and returns it. Requires n < cap. */
rn_value_t *rn__batch_append(rn_batch_t *b, int64_t ts);
/* Appends row src (of a batch with the same schema) with its strings copied
 * into b's arena. Requires n < cap. */
void rn__batch_copy_row(rn_batch_t *b, const rn_value_t *src, int64_t ts);
/* Copies one string cell's bytes into b's arena and points the cell at them. */
void rn__batch_own_string(rn_batch_t *b, rn_value_t *cell);
static inline bool rn__batch_full(const rn_batch_t *b) { return b->n >= b->cap; }

/* Value helpers. */
static inline rn_value_t rn__val_null(void) { rn_value_t v; memset(&v, 0, sizeof(v)); v.null = 1; return v; }
static inline rn_value_t rn__val_int(int64_t i) { rn_value_t v; memset(&v, 0, sizeof(v)); v.u.i = i; return v; }
static inline rn_value_t rn__val_float(double f) { rn_value_t v; memset(&v, 0, sizeof(v)); v.u.f = f; return v; }
static inline rn_value_t rn__val_bool(bool b) { rn_value_t v; memset(&v, 0, sizeof(v)); v.u.b = b; return v; }
static inline rn_value_t rn__val_str(const char *s, uint32_t len) { rn_value_t v; memset(&v, 0, sizeof(v)); v.u.s = s; v.len = len; return v; }

/* Equality and order of two non-null values of one type (strings bytewise). */
bool rn__val_equal(rn_type_t type, const rn_value_t *a, const rn_value_t *b);
int rn__val_compare(rn_type_t type, const rn_value_t *a, const rn_value_t *b);

#endif
