/*
 * checkpoint/meta.h: the commit point of a checkpoint, its metadata file
 * (docs/checkpoints.md, storage layout).
 *
 * The metadata is written last, twice (_metadata and _metadata.copy), each
 * copy to a temporary name, fsynced and made visible by an atomic rename,
 * then the directory is fsynced: a reader sees a whole copy or none. Each
 * copy ends in a trailer with the XXH3-128 of what precedes it, so that a
 * flipped byte or a truncation is detected, and one damaged copy means
 * "read the other", not "go back a checkpoint". What the bytes say is the
 * caller's (JSON, per the plan).
 *
 * @thread any (no shared state).
 */
#ifndef RN_CHECKPOINT_META_H
#define RN_CHECKPOINT_META_H

#include "stream/core.h"

#define RN_CKPT_META "_metadata"
#define RN_CKPT_META_COPY "_metadata.copy"

/* Writes data (len bytes, borrowed) as both copies of dir's metadata.
 * dir must exist. @returns RN_OK, or RN_EIO with err naming the file and
 * the call that failed (a temporary file may be left; readers ignore it). */
rn_code_t rn__ckpt_meta_write(const char *dir, const void *data, size_t len, rn_error_t *err);

/* Reads dir's metadata: _metadata, else _metadata.copy when the first is
 * missing or fails its checksum. Neither file is trusted: its size is
 * checked against max before anything is allocated.
 * @param data set to the bytes (rn_malloc'd, NUL-terminated after len;
 * free with rn_free()) @param copy set to 0 (_metadata) or 1 (the copy).
 * @returns RN_OK; RN_ENOTFOUND when neither file exists (msg set);
 * RN_ECORRUPT when none checks out (msg names each copy's problem);
 * RN_EIO. */
rn_code_t rn__ckpt_meta_read(const char *dir, size_t max, void **data, size_t *len, int *copy,
                             rn_error_t *err);

/* Checks both copies of dir's metadata: each must check out and hold the
 * same bytes (rn__ckpt_meta_read is content with one; `checkpoints
 * --verify` is not). @returns RN_OK, or RN_ECORRUPT naming the copy. */
rn_code_t rn__ckpt_meta_verify_copies(const char *dir, size_t max, rn_error_t *err);

#endif
