/*
 * stream/fs.h: the file system calls that checkpoints, state and sinks
 * share: directories made 0700 and files 0600, copies that are synced
 * before they count, hard links with a copy where the file system cannot
 * link, content hashes.
 *
 * Every function returns an error whose message names the path and the
 * call that failed, ready to print.
 *
 * @thread any (no shared state).
 */
#ifndef RN_STREAM_FS_H
#define RN_STREAM_FS_H

#include "stream/core.h"

#include <sys/stat.h>
#include <xxhash.h>

/* Makes dir and its missing parents, new ones with mode 0700. */
rn_code_t rn__fs_mkdir_p(const char *dir, rn_error_t *err);
/* Removes path and everything under it; missing is fine.
 * @returns 0 or -1 with errno set. */
int rn__fs_rm_tree(const char *path);
/* Copies src to dst (created 0600, must not exist), fsyncs dst; also hashes
 * what it copied when hash is not NULL. dst NULL: only reads (and hashes). */
rn_code_t rn__fs_copy(const char *src, const char *dst, XXH128_hash_t *hash, uint64_t *size,
                      rn_error_t *err);
/* Hard-links src as dst, or copies it when the file systems differ or do
 * not link. */
rn_code_t rn__fs_link_or_copy(const char *src, const char *dst, rn_error_t *err);
/* fsync of a file's data. */
rn_code_t rn__fs_fsync_file(const char *path, rn_error_t *err);
/* fsync of a directory, so that names made in it survive a crash (a file
 * system that cannot sync directories, EINVAL, is taken as done). */
rn_code_t rn__fs_fsync_dir(const char *dir, rn_error_t *err);
/* Size and XXH3-128 of a file's bytes. */
rn_code_t rn__fs_hash_file(const char *path, XXH128_hash_t *hash, uint64_t *size, rn_error_t *err);
/* Writes data as a new file (0600, truncated if it exists) and fsyncs it. */
rn_code_t rn__fs_write_file(const char *path, const void *data, size_t len, rn_error_t *err);
/* Reads a whole file of at most max bytes (checked before allocating).
 * @param data set to rn_malloc'd bytes, NUL-terminated after len.
 * @returns RN_OK, RN_ENOTFOUND, RN_ECORRUPT (too large) or RN_EIO. */
rn_code_t rn__fs_read_file(const char *path, size_t max, void **data, size_t *len,
                           rn_error_t *err);
/* 32 lowercase hex digits of a hash (out holds 33 bytes). */
void rn__fs_hash_hex(XXH128_hash_t h, char out[33]);
/* Checks that no user but this one and root can change what path names,
 * as careful tools do (OpenSSH's StrictModes): every directory on the way
 * from /, symbolic links followed, is owned by root or the effective user
 * and writable by group or others only with the sticky bit (as /tmp); each
 * symbolic link met is owned by root or the effective user. The last
 * component is not judged: the caller does.
 * @param what names the path in messages ("plugin library").
 * @param real set to the real path (PATH_MAX bytes), or NULL.
 * @param last set to the lstat of the last component (never a link).
 * @returns RN_OK, RN_ENOTFOUND, RN_EIO, or RN_EINVAL with why. */
rn_code_t rn__fs_check_path(const char *path, const char *what, char *real, struct stat *last,
                            rn_error_t *err);
/* Refuses a directory others could plant files in (a checkpoint, savepoint
 * or state directory): it must be owned by the effective user and written
 * by nobody else, and its way from / pass rn__fs_check_path. */
rn_code_t rn__fs_check_private(const char *dir, const char *what, rn_error_t *err);

#endif
