/*
 * checkpoint/meta.c: write and read a checkpoint's metadata, twice and
 * checksummed (meta.h).
 *
 * A copy is: the data, then a trailer of TRAILER_LEN bytes,
 *
 *     "\n#xxh3-128 " <32 lower-case hex digits> "\n"
 *
 * the XXH3-128 (canonical, big-endian) of the data before it. Truncation
 * loses or breaks the trailer; a flipped byte breaks the hash.
 */
#include "checkpoint/meta.h"
#include "stream/fs.h"

#include "checkpoint/crash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define TRAILER_HEAD "\n#xxh3-128 "
#define TRAILER_HEAD_LEN (sizeof(TRAILER_HEAD) - 1)
#define TRAILER_LEN (TRAILER_HEAD_LEN + 32 + 1)

/* The trailer of data[0..len) into out (TRAILER_LEN bytes, no NUL). */
static void
trailer(const void *data, size_t len, char out[TRAILER_LEN + 1])
{
    memcpy(out, TRAILER_HEAD, TRAILER_HEAD_LEN);
    rn__fs_hash_hex(XXH3_128bits(data, len), out + TRAILER_HEAD_LEN);
    out[TRAILER_LEN - 1] = '\n';
}

static rn_code_t
sys_err(rn_error_t *err, const char *call, const char *path)
{
    return rn__errf(err, RN_EIO, "checkpoint metadata: %s %s: %s", call, path, strerror(errno));
}

/* One copy: name.tmp written and fsynced, then renamed to name. */
static rn_code_t
write_copy(const char *dir, const char *name, const void *data, size_t len, rn_error_t *err)
{
    char tmp[4096], path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= sizeof(tmp))
        return rn__errf(err, RN_EINVAL, "checkpoint metadata: path too long: %s", dir);
    char *buf = rn_xmalloc(len + TRAILER_LEN + 1);
    memcpy(buf, data, len);
    trailer(data, len, buf + len);
    rn_code_t rc = rn__fs_write_file(tmp, buf, len + TRAILER_LEN, err);
    rn_free(buf);
    if (rc != RN_OK)
        return rn__errctx(err, "checkpoint metadata");
    rn__crash_point("ckpt.meta_before_rename");
    if (rename(tmp, path) != 0)
        return sys_err(err, "rename", tmp);
    rn__crash_point("ckpt.meta_after_rename");
    return RN_OK;
}

rn_code_t
rn__ckpt_meta_write(const char *dir, const void *data, size_t len, rn_error_t *err)
{
    rn_code_t rc = write_copy(dir, RN_CKPT_META, data, len, err);
    if (rc == RN_OK)
        rc = write_copy(dir, RN_CKPT_META_COPY, data, len, err);
    if (rc != RN_OK)
        return rc;
    rn__crash_point("ckpt.meta_before_dir_fsync");
    return rn__fs_fsync_dir(dir, err);
}

/* Reads and checks one copy. @returns RN_OK with *data, RN_ENOTFOUND,
 * RN_ECORRUPT (why in why) or RN_EIO (err). */
static rn_code_t
read_copy(const char *dir, const char *name, size_t max, void **data, size_t *len, char *why,
          size_t whysize, rn_error_t *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return rn__errf(err, RN_EINVAL, "checkpoint metadata: path too long: %s", dir);
    void *data0 = NULL;
    size_t size = 0;
    rn_error_t e = RN_ERROR_INIT;
    rn_code_t rc = rn__fs_read_file(path, max + TRAILER_LEN, &data0, &size, &e);
    if (rc == RN_ENOTFOUND) {
        snprintf(why, whysize, "%s is missing", name);
        return RN_ENOTFOUND;
    }
    if (rc == RN_ECORRUPT) {
        snprintf(why, whysize, "%s has more than %zu bytes of data", name, max);
        return RN_ECORRUPT;
    }
    if (rc != RN_OK) {
        if (err != NULL)
            *err = e;
        return rc;
    }
    char *buf = data0;
    if (size < TRAILER_LEN) {
        rn_free(buf);
        snprintf(why, whysize, "%s has %zu bytes (a trailer of %zu and at most %zu of data)", name,
                 size, (size_t)TRAILER_LEN, max);
        return RN_ECORRUPT;
    }
    char tr[TRAILER_LEN + 1];
    size_t dlen = size - TRAILER_LEN;
    trailer(buf, dlen, tr);
    if (memcmp(buf + dlen, tr, TRAILER_LEN) != 0) {
        rn_free(buf);
        snprintf(why, whysize, "%s fails its checksum (damaged or truncated)", name);
        return RN_ECORRUPT;
    }
    buf[dlen] = '\0';
    *data = buf;
    *len = dlen;
    return RN_OK;
}

rn_code_t
rn__ckpt_meta_read(const char *dir, size_t max, void **data, size_t *len, int *copy,
                   rn_error_t *err)
{
    char why[2][512];
    const char *names[2] = {RN_CKPT_META, RN_CKPT_META_COPY};
    rn_code_t rc[2];
    for (int i = 0; i < 2; i++) {
        why[i][0] = '\0';
        rc[i] = read_copy(dir, names[i], max, data, len, why[i], sizeof(why[i]), err);
        if (rc[i] == RN_OK) {
            *copy = i;
            if (i == 1)
                RN_LOG_WARN("checkpoint", "%s: %s; read %s", dir, why[0], RN_CKPT_META_COPY);
            return RN_OK;
        }
        if (rc[i] != RN_ENOTFOUND && rc[i] != RN_ECORRUPT)
            return rc[i];
    }
    if (rc[0] == RN_ENOTFOUND && rc[1] == RN_ENOTFOUND)
        return rn__errf(err, RN_ENOTFOUND, "%s: no checkpoint metadata", dir);
    return rn__errf(err, RN_ECORRUPT, "%s: checkpoint metadata damaged: %s; %s", dir, why[0],
                    why[1]);
}

rn_code_t
rn__ckpt_meta_verify_copies(const char *dir, size_t max, rn_error_t *err)
{
    const char *names[2] = {RN_CKPT_META, RN_CKPT_META_COPY};
    void *data[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    rn_code_t rc = RN_OK;
    for (int i = 0; i < 2 && rc == RN_OK; i++) {
        char why[512] = "";
        rc = read_copy(dir, names[i], max, &data[i], &len[i], why, sizeof(why), err);
        if (rc == RN_ENOTFOUND || rc == RN_ECORRUPT)
            rc = rn__errf(err, RN_ECORRUPT, "%s/%s", dir, why);
    }
    if (rc == RN_OK && (len[0] != len[1] || memcmp(data[0], data[1], len[0]) != 0))
        rc = rn__errf(err, RN_ECORRUPT, "%s: %s and %s differ", dir, RN_CKPT_META,
                      RN_CKPT_META_COPY);
    rn_free(data[0]);
    rn_free(data[1]);
    return rc;
}
