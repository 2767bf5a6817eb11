/*
 * state/snapio.h: the record files of state snapshots (memory.c's table,
 * state.c's in-memory timers): little-endian fixed-width integers and
 * byte strings through stdio, with every length read back checked against
 * a bound and against what is left of the file before anything is
 * allocated (a snapshot copied in from elsewhere is untrusted input).
 *
 * A writer is flushed when closed, not synced (whoever keeps the file
 * syncs it: the checkpoint store does, off the task's thread); a reader
 * remembers the
 * first problem and names the file and offset in it.
 *
 * @thread task.
 */
#ifndef RN_STATE_SNAPIO_H
#define RN_STATE_SNAPIO_H

#include "stream/core.h"

#include <stdio.h>

typedef struct rn__snapio {
    FILE *f;
    const char *path; /* borrowed */
    uint64_t off;     /* bytes read or written so far */
    uint64_t size;    /* reader: the file's size */
    bool writer;
    bool failed;
    rn_error_t err;   /* the first failure */
} rn__snapio_t;

/* Every file starts with magic (4 bytes) and version (u32): a writer
 * writes them, a reader checks them (a mismatch marks it failed, naming
 * what: "a memory state snapshot").
 * @returns RN_OK, RN_ENOTFOUND (reader, no file) or RN_EIO. */
rn_code_t rn__snapio_open(rn__snapio_t *io, const char *path, bool write, const char *magic,
                          uint32_t version, const char *what, rn_error_t *err);
/* Writer: flushes and fsyncs. @returns the first failure of the file. */
rn_code_t rn__snapio_close(rn__snapio_t *io, rn_error_t *err);

/* The encodings of rn__snapio_u32 and _u64, for records built in a
 * buffer and written with one rn__snapio_bytes. */
static inline void
rn__snapio_le32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}
static inline void
rn__snapio_le64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

void rn__snapio_u8(rn__snapio_t *io, uint8_t v);
void rn__snapio_u32(rn__snapio_t *io, uint32_t v);
void rn__snapio_u64(rn__snapio_t *io, uint64_t v);
void rn__snapio_bytes(rn__snapio_t *io, const void *p, size_t n);

uint8_t rn__snapio_get_u8(rn__snapio_t *io);
uint32_t rn__snapio_get_u32(rn__snapio_t *io);
uint64_t rn__snapio_get_u64(rn__snapio_t *io);
/* A length of at most max that the rest of the file can hold. */
uint32_t rn__snapio_get_len(rn__snapio_t *io, uint32_t max, const char *what);
void rn__snapio_get_bytes(rn__snapio_t *io, void *p, size_t n);
/* Marks the reader failed with a message about the content. */
void rn__snapio_bad(rn__snapio_t *io, const char *fmt, ...) RN_PRINTF(2, 3);

#endif
