/*
 * stream/fs.c: see fs.h.
 */
#include "stream/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static rn_code_t
sys_err(rn_error_t *err, const char *call, const char *path)
{
    return rn__errf(err, errno == ENOENT ? RN_ENOTFOUND : RN_EIO, "%s '%s': %s", call, path,
                    strerror(errno));
}

rn_code_t
rn__fs_mkdir_p(const char *dir, rn_error_t *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return rn__errf(err, RN_EINVAL, "directory '%s': empty or too long a path", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return sys_err(err, "mkdir", path);
        path[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rn__errf(err, RN_EIO, "'%s' is not a directory", dir);
    return RN_OK;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int
rn__fs_rm_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static rn_code_t
write_all(int fd, const void *p, size_t n, const char *path, rn_error_t *err)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return sys_err(err, "write", path);
        c += w;
        n -= (size_t)w;
    }
    return RN_OK;
}

rn_code_t
rn__fs_copy(const char *src, const char *dst, XXH128_hash_t *hash, uint64_t *size,
            rn_error_t *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return sys_err(err, "open", src);
    int out = dst != NULL ? open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -2;
    if (out == -1) {
        rn_code_t rc = sys_err(err, "create", dst);
        close(in);
        return rc;
    }
    XXH3_state_t *hs = hash != NULL ? XXH3_createState() : NULL;
    if (hs != NULL)
        XXH3_128bits_reset(hs);
    static const size_t BUF = 1 << 20;
    char *buf = rn_xmalloc(BUF);
    uint64_t total = 0;
    rn_code_t rc = RN_OK;
    for (;;) {
        ssize_t r = read(in, buf, BUF);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = sys_err(err, "read", src);
            break;
        }
        if (r == 0)
            break;
        if (hs != NULL)
            XXH3_128bits_update(hs, buf, (size_t)r);
        total += (uint64_t)r;
        if (out >= 0 && (rc = write_all(out, buf, (size_t)r, dst, err)) != RN_OK)
            break;
    }
    if (out >= 0) {
        if (rc == RN_OK && fsync(out) != 0)
            rc = sys_err(err, "fsync", dst);
        if (close(out) != 0 && rc == RN_OK)
            rc = sys_err(err, "close", dst);
    }
    close(in);
    rn_free(buf);
    if (hs != NULL) {
        if (rc == RN_OK)
            *hash = XXH3_128bits_digest(hs);
        XXH3_freeState(hs);
    }
    if (rc == RN_OK && size != NULL)
        *size = total;
    if (rc != RN_OK && out >= 0)
        unlink(dst);
    return rc;
}

rn_code_t
rn__fs_link_or_copy(const char *src, const char *dst, rn_error_t *err)
{
    if (link(src, dst) == 0)
        return RN_OK;
    if (errno != EXDEV && errno != EPERM && errno != ENOTSUP && errno != EMLINK)
        return sys_err(err, "link", dst);
    return rn__fs_copy(src, dst, NULL, NULL, err);
}

rn_code_t
rn__fs_fsync_dir(const char *dir, rn_error_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(err, "open", dir);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL) {
        errno = e;
        return sys_err(err, "fsync", dir);
    }
    return RN_OK;
}

rn_code_t
rn__fs_hash_file(const char *path, XXH128_hash_t *hash, uint64_t *size, rn_error_t *err)
{
    /* A copy to nowhere: one read loop for both. */
    return rn__fs_copy(path, NULL, hash, size, err);
}

rn_code_t
rn__fs_write_file(const char *path, const void *data, size_t len, rn_error_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return sys_err(err, "create", path);
    rn_code_t rc = write_all(fd, data, len, path, err);
    if (rc == RN_OK && fsync(fd) != 0)
        rc = sys_err(err, "fsync", path);
    if (close(fd) != 0 && rc == RN_OK)
        rc = sys_err(err, "close", path);
    return rc;
}

rn_code_t
rn__fs_read_file(const char *path, size_t max, void **data, size_t *len, rn_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(err, "open", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rn_code_t rc = sys_err(err, "stat", path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > max) {
        close(fd);
        return rn__errf(err, RN_ECORRUPT, "'%s': not a regular file of at most %zu bytes", path,
                        max);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = rn_xmalloc(n + 1);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        rn_free(buf);
        return rn__errf(err, RN_EIO, "read '%s': short read", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return RN_OK;
}

void
rn__fs_hash_hex(XXH128_hash_t h, char out[33])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", c.digest[i]);
}

rn_code_t
rn__fs_check_private(const char *dir, const char *what, rn_error_t *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return sys_err(err, "stat", dir);
    if (sb.st_mode & (S_IWGRP | S_IWOTH))
        return rn__errf(err, RN_EINVAL,
                        "%s '%s' can be written by other users (mode %03o); make it private "
                        "with chmod 700",
                        what, dir, (unsigned)(sb.st_mode & 0777));
    if (sb.st_uid != geteuid())
        return rn__errf(err, RN_EINVAL, "%s '%s' belongs to another user (uid %u)", what, dir,
                        (unsigned)sb.st_uid);
    return RN_OK;
}

rn_code_t
rn__fs_fsync_file(const char *path, rn_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_err(err, "open", path);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) {
        errno = e;
        return sys_err(err, "fsync", path);
    }
    return RN_OK;
}
