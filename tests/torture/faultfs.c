/*
 * tests/torture/faultfs.c: an LD_PRELOAD shim that makes the Nth write,
 * sync, rename or create of a process fail, for the write-fault tests
 * (tests/integration/test_write_faults.sh).
 *
 * Design: every interposed call that writes (write, pwrite, writev,
 * pwritev, fsync, fdatasync, fallocate, ftruncate,
 * rename, renameat, link, open/openat/creat for writing, and stdio's
 * fwrite, fflush and fclose of a writable stream, since glibc's stdio
 * writes through internal calls no shim sees) is counted, if it concerns
 * a path under FAULTFS_PREFIX (any path when unset; for calls on a
 * descriptor, the path /proc/self/fd says). RocksDB's files go through
 * the same libc calls (its POSIX environment: open, write, pwrite,
 * fsync, fdatasync, fallocate, rename), so they are counted too.
 * sync_file_range is left alone: RocksDB calls it as a hint and asserts
 * that its probe of it fails with ENOSYS only; errors surface at the
 * sync that follows. The
 * count-th call with count == FAULTFS_N fails with FAULTFS_ERRNO (ENOSPC
 * or EIO, by name or number; ENOSPC by default) without doing anything;
 * FAULTFS_N unset or 0: nothing fails, the calls are only counted.
 * FAULTFS_CALL (a call's name as the trace spells it, such as fdatasync)
 * and FAULTFS_GLOB (an fnmatch pattern of the path) narrow what is
 * counted, so that N picks one kind of site however the threads
 * interleave: FAULTFS_CALL=fdatasync FAULTFS_GLOB='*MANIFEST-*'
 * FAULTFS_N=1 fails the first sync of a RocksDB MANIFEST. With
 * FAULTFS_STICKY=1 every call of any kind under the prefix fails after
 * it, as on a full disk; else only that one call fails (a transient
 * error). FAULTFS_COUNT: a file the count is written to at exit.
 * FAULTFS_TRACE: a file that gets a line "N call path" for every counted
 * call (what a sweep picks its cases from: each kind of site once).
 * FAULTFS_OPS: a comma-separated subset of the classes write, sync,
 * rename, open (all by default).
 *
 * Deterministic for a deterministic process; runnel's threads make the
 * order of calls vary a little between runs, which FAULTFS_CALL and
 * FAULTFS_GLOB make up for: the first of a kind of site is the same.
 *
 * @thread any (the counter is atomic).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* The build hides symbols by default; these must interpose. */
#pragma GCC visibility push(default)

/* An optimizing build's <stdio.h> may make it a macro. */
#undef fwrite_unlocked

enum { OP_WRITE = 1, OP_SYNC = 2, OP_RENAME = 4, OP_OPEN = 8 };

static atomic_long counter;
static atomic_int fired;
static long fail_at;
static int fail_errno = ENOSPC;
static bool sticky;
static unsigned ops = OP_WRITE | OP_SYNC | OP_RENAME | OP_OPEN;
static char prefix[4096];
static size_t prefix_len;
static const char *count_file;
static const char *only_call; /* FAULTFS_CALL, or NULL */
static const char *only_glob; /* FAULTFS_GLOB, or NULL */
static int trace_fd = -1;

#define REAL(name) real_##name
#define LOAD(name)                                                                            \
    do {                                                                                      \
        if (REAL(name) == NULL)                                                               \
            REAL(name) = dlsym(RTLD_NEXT, #name);                                             \
    } while (0)

static ssize_t (*REAL(write))(int, const void *, size_t);
static ssize_t (*REAL(pwrite))(int, const void *, size_t, off_t);
static ssize_t (*REAL(pwrite64))(int, const void *, size_t, off_t);
static ssize_t (*REAL(writev))(int, const struct iovec *, int);
static ssize_t (*REAL(pwritev))(int, const struct iovec *, int, off_t);
static int (*REAL(fsync))(int);
static int (*REAL(fdatasync))(int);
static int (*REAL(fallocate))(int, int, off_t, off_t);
static int (*REAL(fallocate64))(int, int, off_t, off_t);
static int (*REAL(posix_fallocate))(int, off_t, off_t);
static int (*REAL(ftruncate))(int, off_t);
static int (*REAL(rename))(const char *, const char *);
static int (*REAL(renameat))(int, const char *, int, const char *);
static int (*REAL(link))(const char *, const char *);
static int (*REAL(open))(const char *, int, ...);
static int (*REAL(open64))(const char *, int, ...);
static int (*REAL(openat))(int, const char *, int, ...);
static int (*REAL(openat64))(int, const char *, int, ...);
static int (*REAL(creat))(const char *, mode_t);
static size_t (*REAL(fwrite))(const void *, size_t, size_t, FILE *);
static size_t (*REAL(fwrite_unlocked))(const void *, size_t, size_t, FILE *);
static int (*REAL(fflush))(FILE *);
static int (*REAL(fclose))(FILE *);

static void
write_count(void)
{
    if (count_file == NULL)
        return;
    LOAD(open);
    LOAD(write);
    int fd = REAL(open)(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", atomic_load(&counter));
    if (REAL(write)(fd, buf, (size_t)n) != n)
        fprintf(stderr, "faultfs: cannot write the count to %s\n", count_file);
    close(fd);
}

__attribute__((constructor)) static void
faultfs_init(void)
{
    const char *s = getenv("FAULTFS_N");
    fail_at = s != NULL ? strtol(s, NULL, 10) : 0;
    s = getenv("FAULTFS_ERRNO");
    if (s != NULL && strcmp(s, "EIO") == 0)
        fail_errno = EIO;
    else if (s != NULL && strcmp(s, "ENOSPC") != 0 && atoi(s) > 0)
        fail_errno = atoi(s);
    s = getenv("FAULTFS_STICKY");
    sticky = s != NULL && strcmp(s, "1") == 0;
    s = getenv("FAULTFS_PREFIX");
    if (s != NULL && s[0] != '\0' && realpath(s, prefix) == NULL)
        snprintf(prefix, sizeof(prefix), "%s", s);
    prefix_len = strlen(prefix);
    s = getenv("FAULTFS_OPS");
    if (s != NULL && s[0] != '\0') {
        ops = 0;
        ops |= strstr(s, "write") ? OP_WRITE : 0;
        ops |= strstr(s, "sync") ? OP_SYNC : 0;
        ops |= strstr(s, "rename") ? OP_RENAME : 0;
        ops |= strstr(s, "open") ? OP_OPEN : 0;
    }
    only_call = getenv("FAULTFS_CALL");
    if (only_call != NULL && only_call[0] == '\0')
        only_call = NULL;
    only_glob = getenv("FAULTFS_GLOB");
    if (only_glob != NULL && only_glob[0] == '\0')
        only_glob = NULL;
    s = getenv("FAULTFS_TRACE");
    if (s != NULL && s[0] != '\0') {
        LOAD(open);
        trace_fd = REAL(open)(s, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    }
    count_file = getenv("FAULTFS_COUNT");
    if (count_file != NULL && count_file[0] != '\0')
        atexit(write_count);
    else
        count_file = NULL;
}

static bool
path_in(const char *path)
{
    if (prefix_len == 0)
        return true;
    if (path == NULL)
        return false;
    char abs[4096];
    if (path[0] != '/') {
        if (getcwd(abs, sizeof(abs)) == NULL)
            return false;
        size_t n = strlen(abs);
        snprintf(abs + n, sizeof(abs) - n, "/%s", path);
        path = abs;
    }
    return strncmp(path, prefix, prefix_len) == 0 &&
           (path[prefix_len] == '/' || path[prefix_len] == '\0');
}

static bool
fd_in(int fd)
{
    if (prefix_len == 0)
        return true;
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return false;
    path[n] = '\0';
    return path_in(path);
}

/* Whether this call (of class op, on a path that matched) fails. */
static bool
hit(unsigned op, const char *what, const char *path)
{
    if (!(ops & op))
        return false;
    if (sticky && atomic_load(&fired)) {
        errno = fail_errno; /* a full disk: everything fails from now on */
        return true;
    }
    if (only_call != NULL && strcmp(what, only_call) != 0)
        return false;
    if (only_glob != NULL && (path == NULL || fnmatch(only_glob, path, 0) != 0))
        return false;
    long n = atomic_fetch_add(&counter, 1) + 1;
    if (trace_fd >= 0) {
        char line[4200];
        int len = snprintf(line, sizeof(line), "%ld %s %s\n", n, what, path != NULL ? path : "?");
        LOAD(write);
        if (REAL(write)(trace_fd, line, (size_t)len) < 0)
            abort();
    }
    if (fail_at <= 0 || n != fail_at)
        return false;
    if (atomic_exchange(&fired, 1) == 0) {
        char line[4200];
        int len = snprintf(line, sizeof(line), "faultfs: %s #%ld (%s) fails with %s\n", what, n,
                           path != NULL ? path : "?", strerror(fail_errno));
        LOAD(write);
        if (REAL(write)(2, line, (size_t)len) < 0)
            abort();
    }
    errno = fail_errno;
    return true;
}

static bool
hit_fd(unsigned op, const char *what, int fd)
{
    if (!(ops & op) || fd <= 2 || !fd_in(fd))
        return false;
    if ((fail_at <= 0 || prefix_len == 0) && trace_fd < 0 && only_glob == NULL)
        return hit(op, what, NULL);
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    path[n > 0 ? n : 0] = '\0';
    return hit(op, what, path);
}

static bool
is_regular_fd(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Writes to pipes, sockets and terminals (logs, the REST server, the
 * exchange's eventfds) are not the disk's. */
static bool
hit_file(unsigned op, const char *what, int fd)
{
    return fd > 2 && (ops & op) && is_regular_fd(fd) && hit_fd(op, what, fd);
}

ssize_t
write(int fd, const void *buf, size_t n)
{
    LOAD(write);
    return hit_file(OP_WRITE, "write", fd) ? -1 : REAL(write)(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
    LOAD(pwrite);
    return hit_file(OP_WRITE, "pwrite", fd) ? -1 : REAL(pwrite)(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    LOAD(pwrite64);
    return hit_file(OP_WRITE, "pwrite", fd) ? -1 : REAL(pwrite64)(fd, buf, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
    LOAD(writev);
    return hit_file(OP_WRITE, "writev", fd) ? -1 : REAL(writev)(fd, iov, cnt);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    LOAD(pwritev);
    return hit_file(OP_WRITE, "pwritev", fd) ? -1 : REAL(pwritev)(fd, iov, cnt, off);
}

int
fsync(int fd)
{
    LOAD(fsync);
    return hit_fd(OP_SYNC, "fsync", fd) ? -1 : REAL(fsync)(fd);
}

int
fdatasync(int fd)
{
    LOAD(fdatasync);
    return hit_fd(OP_SYNC, "fdatasync", fd) ? -1 : REAL(fdatasync)(fd);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
    LOAD(fallocate);
    return hit_file(OP_WRITE, "fallocate", fd) ? -1 : REAL(fallocate)(fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
    LOAD(fallocate64);
    return hit_file(OP_WRITE, "fallocate", fd) ? -1 : REAL(fallocate64)(fd, mode, off, len);
}

int
posix_fallocate(int fd, off_t off, off_t len)
{
    LOAD(posix_fallocate);
    /* posix_fallocate returns the error rather than setting errno. */
    return hit_file(OP_WRITE, "posix_fallocate", fd) ? fail_errno
                                                     : REAL(posix_fallocate)(fd, off, len);
}

int
ftruncate(int fd, off_t len)
{
    LOAD(ftruncate);
    return hit_file(OP_WRITE, "ftruncate", fd) ? -1 : REAL(ftruncate)(fd, len);
}

int
rename(const char *from, const char *to)
{
    LOAD(rename);
    return path_in(to) && hit(OP_RENAME, "rename", to) ? -1 : REAL(rename)(from, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
    LOAD(renameat);
    bool in = tofd == AT_FDCWD || to[0] == '/' ? path_in(to) : prefix_len == 0;
    return in && hit(OP_RENAME, "rename", to) ? -1 : REAL(renameat)(fromfd, from, tofd, to);
}

int
link(const char *from, const char *to)
{
    LOAD(link);
    return path_in(to) && hit(OP_RENAME, "link", to) ? -1 : REAL(link)(from, to);
}

static bool
writes(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
}

/* Directories opened to be synced are reads: their fsync counts. A
 * path relative to a descriptor other than the working directory's is
 * judged only when no prefix is set. */
#define OPEN_BODY(judged, call, ...)                                                          \
    mode_t mode = 0;                                                                          \
    if (flags & (O_CREAT | O_TMPFILE)) {                                                      \
        va_list ap;                                                                           \
        va_start(ap, flags);                                                                  \
        mode = (mode_t)va_arg(ap, int);                                                       \
        va_end(ap);                                                                           \
    }                                                                                         \
    if ((judged) && writes(flags) && path_in(path) && hit(OP_OPEN, "open", path))             \
        return -1;                                                                            \
    return call(__VA_ARGS__, mode)

#define AT_JUDGED (dirfd == AT_FDCWD || path[0] == '/' || prefix_len == 0)

int
open(const char *path, int flags, ...)
{
    LOAD(open);
    OPEN_BODY(true, REAL(open), path, flags);
}

int
open64(const char *path, int flags, ...)
{
    LOAD(open64);
    OPEN_BODY(true, REAL(open64), path, flags);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
    LOAD(openat);
    OPEN_BODY(AT_JUDGED, REAL(openat), dirfd, path, flags);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
    LOAD(openat64);
    OPEN_BODY(AT_JUDGED, REAL(openat64), dirfd, path, flags);
}

int
creat(const char *path, mode_t mode)
{
    LOAD(creat);
    return path_in(path) && hit(OP_OPEN, "open", path) ? -1 : REAL(creat)(path, mode);
}

/* stdio: the stream's descriptor decides, as for write(). */
static bool
hit_stream(const char *what, FILE *f)
{
    if (f == NULL)
        return false;
    int fd = fileno(f);
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY && hit_file(OP_WRITE, what, fd);
}

size_t
fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    LOAD(fwrite);
    return hit_stream("fwrite", f) ? 0 : REAL(fwrite)(p, size, n, f);
}

size_t(fwrite_unlocked)(const void *p, size_t size, size_t n, FILE *f)
{
    LOAD(fwrite_unlocked);
    return hit_stream("fwrite", f) ? 0 : REAL(fwrite_unlocked)(p, size, n, f);
}

int
fflush(FILE *f)
{
    LOAD(fflush);
    return hit_stream("fflush", f) ? EOF : REAL(fflush)(f);
}

int
fclose(FILE *f)
{
    LOAD(fclose);
    if (hit_stream("fclose", f)) {
        /* The stream goes all the same (its buffer unwritten, as a
         * failed close leaves it): a failed fclose frees it too. */
        int e = errno;
        (void)REAL(fclose)(f);
        errno = e;
        return EOF;
    }
    return REAL(fclose)(f);
}

#pragma GCC visibility pop
