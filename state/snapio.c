/*
 * state/snapio.c: see snapio.h.
 */
#include "state/snapio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

rn_code_t
rn__snapio_open(rn__snapio_t *io, const char *path, bool write, const char *magic,
                uint32_t version, const char *what, rn_error_t *err)
{
    memset(io, 0, sizeof(*io));
    io->path = path;
    io->err = (rn_error_t)RN_ERROR_INIT;
    io->writer = write;
    int fd = write ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                   : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rn__errf(err, errno == ENOENT ? RN_ENOTFOUND : RN_EIO, "%s '%s': %s",
                        write ? "create" : "open", path, strerror(errno));
    struct stat sb;
    if (!write && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
        close(fd);
        return rn__errf(err, RN_EIO, "'%s' is not a regular file", path);
    }
    io->size = write ? 0 : (uint64_t)sb.st_size;
    io->f = fdopen(fd, write ? "w" : "r");
    if (io->f == NULL) {
        close(fd);
        return rn__errf(err, RN_ENOMEM, "'%s': out of memory", path);
    }
    setvbuf(io->f, NULL, _IOFBF, 1 << 16);
    if (write) {
        rn__snapio_bytes(io, magic, 4);
        rn__snapio_u32(io, version);
        return RN_OK;
    }
    char got[4];
    rn__snapio_get_bytes(io, got, 4);
    uint32_t ver = rn__snapio_get_u32(io);
    if (!io->failed && (memcmp(got, magic, 4) != 0 || ver != version))
        rn__snapio_bad(io, "not %s of version %u", what, version);
    return RN_OK;
}

static void
fail_io(rn__snapio_t *io, const char *call)
{
    if (!io->failed)
        rn__errf(&io->err, RN_EIO, "%s '%s': %s", call, io->path,
                 errno ? strerror(errno) : "failed");
    io->failed = true;
}

rn_code_t
rn__snapio_close(rn__snapio_t *io, rn_error_t *err)
{
    if (io->f == NULL)
        return RN_OK;
    bool writer = io->writer;
    /* Not synced here: a snapshot is written in the synchronous part of a
     * checkpoint, and the checkpoint store syncs each file it keeps
     * (checkpoint/coord.c), off the task's thread. */
    if (writer && !io->failed && fflush(io->f) != 0)
        fail_io(io, "write");
    if (fclose(io->f) != 0 && writer)
        fail_io(io, "close");
    io->f = NULL;
    if (!io->failed)
        return RN_OK;
    if (err != NULL)
        *err = io->err;
    return io->err.code;
}

void
rn__snapio_bytes(rn__snapio_t *io, const void *p, size_t n)
{
    if (io->failed || n == 0)
        return;
    /* Unlocked: the task owns the stream (a locked call per field was
     * most of the cost of a snapshot's in-memory timers). */
    if (fwrite_unlocked(p, 1, n, io->f) != n)
        fail_io(io, "write");
    io->off += n;
}

void
rn__snapio_u8(rn__snapio_t *io, uint8_t v)
{
    rn__snapio_bytes(io, &v, 1);
}

void
rn__snapio_u32(rn__snapio_t *io, uint32_t v)
{
    uint8_t b[4];
    rn__snapio_le32(b, v);
    rn__snapio_bytes(io, b, 4);
}

void
rn__snapio_u64(rn__snapio_t *io, uint64_t v)
{
    uint8_t b[8];
    rn__snapio_le64(b, v);
    rn__snapio_bytes(io, b, 8);
}

void
rn__snapio_bad(rn__snapio_t *io, const char *fmt, ...)
{
    if (io->failed)
        return;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rn__errf(&io->err, RN_ECORRUPT, "'%s' at byte %llu: %s", io->path,
             (unsigned long long)io->off, msg);
    io->failed = true;
}

void
rn__snapio_get_bytes(rn__snapio_t *io, void *p, size_t n)
{
    if (io->failed) {
        memset(p, 0, n);
        return;
    }
    if (n == 0)
        return;
    if (io->size - io->off < n) {
        memset(p, 0, n);
        rn__snapio_bad(io, "truncated (%zu more bytes expected, %llu left)", n,
                       (unsigned long long)(io->size - io->off));
        return;
    }
    if (fread(p, 1, n, io->f) != n) {
        memset(p, 0, n);
        fail_io(io, "read");
        return;
    }
    io->off += n;
}

uint8_t
rn__snapio_get_u8(rn__snapio_t *io)
{
    uint8_t v;
    rn__snapio_get_bytes(io, &v, 1);
    return v;
}

uint32_t
rn__snapio_get_u32(rn__snapio_t *io)
{
    uint8_t b[4];
    rn__snapio_get_bytes(io, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t
rn__snapio_get_u64(rn__snapio_t *io)
{
    uint8_t b[8];
    rn__snapio_get_bytes(io, b, 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

uint32_t
rn__snapio_get_len(rn__snapio_t *io, uint32_t max, const char *what)
{
    uint32_t n = rn__snapio_get_u32(io);
    if (io->failed)
        return 0;
    if (n > max || n > io->size - io->off) {
        rn__snapio_bad(io, "%s of %u bytes (at most %u, %llu left in the file)", what, n, max,
                       (unsigned long long)(io->size - io->off));
        return 0;
    }
    return n;
}
