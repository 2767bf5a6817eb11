/*
 * stream/fs.c: see fs.h.
 */
#include "stream/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
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

/* Whether a directory on the way to a path is safe: only its owner,
 * root or this user, can change what its names point to; others may write
 * it only with the sticky bit (as /tmp), which keeps them from renaming or
 * removing entries they do not own. */
static rn_code_t
check_dir_safe(const char *dir, const struct stat *sb, const char *what, const char *path,
               rn_error_t *err)
{
    if (sb->st_uid != 0 && sb->st_uid != geteuid())
        return rn__errf(err, RN_EINVAL,
                        "%s '%s': the directory '%s' on its way belongs to another user (uid "
                        "%u), who could replace what it holds: use a directory of your own",
                        what, path, dir, (unsigned)sb->st_uid);
    if ((sb->st_mode & (S_IWGRP | S_IWOTH)) && !(sb->st_mode & S_ISVTX))
        return rn__errf(err, RN_EINVAL,
                        "%s '%s': the directory '%s' on its way can be written by other users "
                        "(mode %04o, no sticky bit), who could replace what it holds: chmod "
                        "go-w it, or use another directory",
                        what, path, dir, (unsigned)(sb->st_mode & 07777));
    return RN_OK;
}

rn_code_t
rn__fs_check_path(const char *path, const char *what, char *real, struct stat *last,
                  rn_error_t *err)
{
    /* todo holds what is left to walk; cur the real path walked so far
     * ("" for /). A symlink met puts its target in front of the rest. */
    char todo[2 * PATH_MAX], cur[PATH_MAX] = "", next[PATH_MAX], link[PATH_MAX];
    struct stat sb;
    int links = 0;
    size_t n = strlen(path);
    if (n == 0 || n >= PATH_MAX)
        return rn__errf(err, RN_EINVAL, "%s '%.256s': empty or too long a path", what, path);
    if (path[0] == '/') {
        memcpy(todo, path, n + 1);
    } else {
        if (getcwd(todo, PATH_MAX) == NULL)
            return rn__errf(err, RN_EIO, "%s '%s': getcwd: %s", what, path, strerror(errno));
        size_t c = strlen(todo);
        if (c + 1 + n >= sizeof(todo))
            return rn__errf(err, RN_EINVAL, "%s '%s': too long a path", what, path);
        todo[c] = '/';
        memcpy(todo + c + 1, path, n + 1);
    }
    if (lstat("/", &sb) != 0)
        return sys_err(err, "stat", "/");
    rn_code_t rc = check_dir_safe("/", &sb, what, path, err);
    if (rc != RN_OK)
        return rc;
    *last = sb;
    char *p = todo;
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        char *end = strchr(p, '/');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            /* cur is real: its parent, already checked, is what ".." is. */
            if (len == 2) {
                char *slash = strrchr(cur, '/');
                if (slash != NULL)
                    *slash = '\0';
            }
            p += len;
            if (lstat(cur[0] ? cur : "/", last) != 0)
                return sys_err(err, "stat", cur[0] ? cur : "/");
            continue;
        }
        if (strlen(cur) + 1 + len >= sizeof(next))
            return rn__errf(err, RN_EINVAL, "%s '%.256s': too long a path", what, path);
        snprintf(next, sizeof(next), "%s/%.*s", cur, (int)len, p);
        p += len;
        if (lstat(next, &sb) != 0) {
            int e = errno;
            bool at_end = strspn(p, "/") == strlen(p);
            return rn__errf(err, e == ENOENT ? RN_ENOTFOUND : RN_EIO, "%s %s: %s%s%s%s", what,
                            path, at_end ? "" : "'", at_end ? "" : next, at_end ? "" : "': ",
                            strerror(e));
        }
        if (S_ISLNK(sb.st_mode)) {
            /* Its directory was checked; a link in a sticky directory is
             * still replaced at will by its owner. */
            if (sb.st_uid != 0 && sb.st_uid != geteuid())
                return rn__errf(err, RN_EINVAL,
                                "%s '%s': the symbolic link '%s' on its way belongs to another "
                                "user (uid %u), who could point it elsewhere",
                                what, path, next, (unsigned)sb.st_uid);
            ssize_t l = readlink(next, link, sizeof(link) - 1);
            if (l < 0)
                return sys_err(err, "readlink", next);
            link[l] = '\0';
            if (++links > 40 || (size_t)l + strlen(p) + 1 >= sizeof(todo))
                return rn__errf(err, RN_EINVAL, "%s '%s': too many symbolic links", what, path);
            /* The rest of todo moves behind the target (memmove: p is in todo). */
            size_t rest = strlen(p);
            memmove(todo + l, p, rest + 1);
            memcpy(todo, link, (size_t)l);
            p = todo;
            if (link[0] == '/')
                cur[0] = '\0';
            continue;
        }
        memcpy(cur, next, strlen(next) + 1);
        *last = sb;
        const char *q = p;
        while (*q == '/')
            q++;
        if (*q == '\0')
            break;
        if (!S_ISDIR(sb.st_mode)) {
            errno = ENOTDIR;
            return sys_err(err, "stat", cur);
        }
        if ((rc = check_dir_safe(cur, &sb, what, path, err)) != RN_OK)
            return rc;
    }
    if (real != NULL)
        snprintf(real, PATH_MAX, "%s", cur[0] ? cur : "/");
    return RN_OK;
}

rn_code_t
rn__fs_check_private(const char *dir, const char *what, rn_error_t *err)
{
    struct stat sb;
    char real[PATH_MAX];
    rn_code_t rc = rn__fs_check_path(dir, what, real, &sb, err);
    if (rc != RN_OK)
        return rc;
    if (!S_ISDIR(sb.st_mode))
        return rn__errf(err, RN_EINVAL, "%s '%s' is not a directory", what, dir);
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
