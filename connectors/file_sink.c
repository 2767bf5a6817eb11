/*
 * connectors/file_sink.c: the "file" sink: one file of JSON lines, CSV or
 * lines of a plugin's format (text_sink.c) at `path`, written by a single instance whatever the job's parallelism.
 *
 * Design: an output file is never left half-written. The sink writes into
 * a temporary file in the destination's directory (".NAME.tmp-PID", so
 * that the final rename stays within one file system and is atomic) and
 * only finish(), reached when every input ended, makes it the file at
 * `path`: write out the buffer, fsync, rename over path, fsync the
 * directory so that the rename itself survives a crash. A job that fails
 * never reaches finish(); close() then removes the temporary file and the
 * previous content of `path`, if any, stays as it was.
 *
 * Records are encoded into a buffer (connectors/encode.h) written with
 * write(2) once it holds about 1 MiB, so there is no system call per
 * record. A missing parent directory is an error at open, naming the path;
 * the sink does not create directories.
 *
 * With checkpoints the sink is transactional (two-phase commit, as
 * Flink's file sink): records go to a hidden pending file next to path;
 * when a barrier reaches the sink it syncs that file and hands it to the
 * checkpoint (pre-commit) with the length of path committed so far; when
 * the checkpoint is complete it appends the file to path at that length
 * and syncs (commit). Recovery from a checkpoint truncates path to the
 * committed length the checkpoint recorded and appends the checkpoint's
 * copy of the pending bytes: whatever was made visible after it is taken
 * back (so recovery may go back past a damaged checkpoint), and after any
 * number of crashes path equals one clean run's output. A checkpoint
 * that was aborted leaves its pending file uncommitted: the next
 * pre-commit hands over the concatenation of everything uncommitted.
 * `delivery` (exactly-once | at-least-once) is accepted for the job-file
 * contract; both get this behaviour.
 *
 * @thread plan: control; the instance: its task.
 */
#include "connectors/connector_int.h"

#include "stream/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLUSH_AT (1 << 20)

static const char *const keys[] = {"path", "format", "delivery", NULL};
static const char *const deliveries[] = {"exactly-once", "at-least-once", NULL};

typedef struct fsink_plan {
    char *path; /* owned */
    char *tmp;  /* owned: the temporary file's path */
    char *dir;  /* owned: the directory of path */
    rn_text_plan_t text;
} fsink_plan_t;

typedef struct fsink {
    const fsink_plan_t *plan;
    int fd; /* the temporary file (transactional: the pending file), -1 when closed */
    bool created;
    bool published;
    rn_text_out_t out;
    /* Transactional (checkpoints). */
    bool txn;
    int tfd;            /* path, -1 when closed */
    int64_t committed;  /* length of path once every commit so far is done */
    char *live;         /* the pending file being written, owned */
    uint64_t seq;       /* pending files made */
    char *pre;          /* pre-committed, not yet committed: a file, owned, or NULL */
    int64_t pre_id;     /* its checkpoint */
    int64_t pre_len;
    /* Committed at the end of the input while its checkpoint may still be
     * storing it (the coordinator reads the file after the barrier):
     * removed on close, once the coordinator has stopped. Owned, or NULL. */
    char *spent;
} fsink_t;

/* ---- plan ---------------------------------------------------------------- */

static void
fsink_plan_free(void *p)
{
    fsink_plan_t *plan = p;
    if (plan == NULL)
        return;
    rn_free(plan->path);
    rn_free(plan->tmp);
    rn_free(plan->dir);
    rn__text_plan_fini(&plan->text);
    rn_free(plan);
}

/* dir and ".NAME.tmp-PID" next to path. */
static void
temp_names(fsink_plan_t *plan)
{
    const char *slash = strrchr(plan->path, '/');
    size_t dirlen = slash != NULL ? (size_t)(slash - plan->path) + 1 : 0;
    const char *base = plan->path + dirlen;
    size_t size = strlen(plan->path) + 40;

    plan->tmp = rn_xmalloc(size);
    snprintf(plan->tmp, size, "%.*s.%s.tmp-%ld", (int)dirlen, plan->path, base, (long)getpid());
    if (dirlen == 0)
        plan->dir = rn_xstrdup(".");
    else if (dirlen == 1)
        plan->dir = rn_xstrdup("/");
    else
        plan->dir = rn_xstrndup(plan->path, dirlen - 1);
}

static rn_code_t
fsink_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const char *path = NULL;
    char what[160];
    int delivery;
    rn_code_t rc;

    rn__conn_what(pc, "file sink", what, sizeof(what));
    if (rn__conf_require(conf, "path", what, err) == NULL)
        return err ? err->code : RN_EINVAL;
    if ((rc = rn__conf_str(conf, "path", NULL, &path, err)) != RN_OK ||
        (rc = rn__conf_enum(conf, "delivery", deliveries, 0, &delivery, err)) != RN_OK)
        return rc;
    size_t len = path != NULL ? strlen(path) : 0;
    if (len == 0 || path[len - 1] == '/')
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "path"),
                            "%s: path must name a file, such as ./out/result.jsonl", what);
    /* Caught at plan time (so by validate), not after the whole job ran
     * and its rename over path failed. Looking is all: nothing is made. */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "path"),
                            "%s: path '%s' is a directory; name a file in it, such as "
                            "%s/result.jsonl",
                            what, path, path);
    if (stat(path, &sb) != 0 && errno == ENOTDIR)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "path"),
                            "%s: path '%s': a part of it before the file name is not a "
                            "directory",
                            what, path);
    fsink_plan_t *plan = rn_xcalloc(1, sizeof(*plan));
    if ((rc = rn__text_plan_init(pc, what, &plan->text, err)) != RN_OK) {
        rn_free(plan);
        return rc;
    }
    plan->path = rn_xstrdup(path);
    temp_names(plan);
    rn__pc_set_plan(pc, plan, fsink_plan_free);
    rn__pc_force_parallelism(pc, 1);
    return RN_OK;
}

/* ---- run ------------------------------------------------------------------ */

/* Writes the buffer out to the file being written (the temporary or the
 * live pending one). On a failure what was written leaves the buffer, so
 * that nothing is ever written twice; the error names both files. */
static rn_code_t
write_all(fsink_t *s, rn_error_t *err)
{
    const char *p = s->out.buf.data;
    size_t left = s->out.buf.len;
    const char *file = s->txn ? s->live : s->plan->tmp;
    rn_code_t rc = RN_OK;

    while (left > 0) {
        ssize_t n = write(s->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = rn__errf(err, RN_EIO, "cannot write '%s': write '%s': %s", s->plan->path, file,
                          n < 0 ? strerror(errno) : "no progress");
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (left > 0)
        memmove(s->out.buf.data, p, left);
    s->out.buf.len = left;
    return rc;
}

static void fsink_close(rn_op_t *op);
static rn_code_t write_all(fsink_t *s, rn_error_t *err);

/* The directory of the output file, made (0700, with missing parents)
 * when it is not there, as Flink's file sink does. */
static rn_code_t
ensure_dir(const fsink_plan_t *plan, rn_error_t *err)
{
    struct stat sb;
    if (stat(plan->dir, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? RN_OK
                                   : rn__errf(err, RN_EIO, "cannot write '%s': '%s' is not a directory",
                                              plan->path, plan->dir);
    if (rn__fs_mkdir_p(plan->dir, err) != RN_OK)
        return rn__errctx(err, "cannot write '%s'", plan->path);
    return RN_OK;
}

static rn_code_t
open_temp(rn_op_t *op, rn_error_t *err)
{
    const fsink_plan_t *plan = rn__op_plan(op);
    fsink_t *s = rn_calloc(1, sizeof(*s));
    struct stat sb;

    if (s == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    s->plan = plan;
    s->fd = -1;
    rn__op_set_data(op, s);
    if (ensure_dir(plan, err) != RN_OK)
        return err ? err->code : RN_EIO;
    if (stat(plan->path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return rn__errf(err, RN_EIO, "cannot write '%s': it is a directory", plan->path);
    s->fd = open(plan->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0)
        return rn__errf(err, RN_EIO, "cannot write '%s': cannot create '%s': %s", plan->path,
                        plan->tmp, strerror(errno));
    s->created = true;
    return rn__text_out_init(&s->out, &plan->text, err);
}

/* ---- transactional (checkpoints) ------------------------------------------ */

static char *
pending_name(const fsink_plan_t *plan, uint64_t seq)
{
    const char *slash = strrchr(plan->path, '/');
    const char *base = slash != NULL ? slash + 1 : plan->path;
    size_t size = strlen(plan->dir) + strlen(base) + 64;
    char *p = rn_xmalloc(size);
    snprintf(p, size, "%s/.%s.pending-%ld-%llu", plan->dir, base, (long)getpid(),
             (unsigned long long)seq);
    return p;
}

/* Removes the pending files earlier runs left (they are in the
 * checkpoints, or were never committed). */
static void
remove_stale_pending(const fsink_plan_t *plan)
{
    const char *slash = strrchr(plan->path, '/');
    const char *base = slash != NULL ? slash + 1 : plan->path;
    char prefix[1024];
    snprintf(prefix, sizeof(prefix), ".%s.pending-", base);
    DIR *d = opendir(plan->dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char f[4096 + 256];
        snprintf(f, sizeof(f), "%s/%s", plan->dir, de->d_name);
        unlink(f);
    }
    closedir(d);
}

static rn_code_t
open_live(fsink_t *s, rn_error_t *err)
{
    rn_free(s->live);
    s->live = pending_name(s->plan, s->seq++);
    s->fd = open(s->live, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0)
        return rn__errf(err, RN_EIO, "cannot write '%s': cannot create '%s': %s", s->plan->path,
                        s->live, strerror(errno));
    return RN_OK;
}

/* Copies len bytes of file src to path at offset off (pwrite: doing it
 * again writes the same bytes). */
static rn_code_t
copy_at(fsink_t *s, const char *src, int64_t off, int64_t len, rn_error_t *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return rn__errf(err, RN_EIO, "cannot commit to '%s': open '%s': %s", s->plan->path, src,
                        strerror(errno));
    char *buf = rn_xmalloc(1 << 20);
    rn_code_t rc = RN_OK;
    int64_t done = 0;
    while (done < len) {
        size_t want = (size_t)(len - done < (1 << 20) ? len - done : (1 << 20));
        ssize_t r = pread(in, buf, want, done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = rn__errf(err, RN_EIO, "cannot commit to '%s': '%s' is shorter than %lld bytes",
                          s->plan->path, src, (long long)len);
            break;
        }
        for (ssize_t w = 0; w < r;) {
            ssize_t n = pwrite(s->tfd, buf + w, (size_t)(r - w), off + done + w);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = rn__errf(err, RN_EIO, "cannot write '%s': %s", s->plan->path,
                              strerror(errno));
                break;
            }
            w += n;
        }
        if (rc != RN_OK)
            break;
        done += r;
    }
    rn_free(buf);
    close(in);
    if (rc == RN_OK && fsync(s->tfd) != 0)
        rc = rn__errf(err, RN_EIO, "cannot sync '%s': %s", s->plan->path, strerror(errno));
    return rc;
}

/* Writes out the buffer and syncs the live pending file. @returns its
 * length. */
static rn_code_t
seal_live(fsink_t *s, int64_t *len, rn_error_t *err)
{
    rn_code_t rc = write_all(s, err);
    if (rc != RN_OK)
        return rc;
    off_t end = lseek(s->fd, 0, SEEK_END);
    if (end < 0 || fsync(s->fd) != 0)
        return rn__errf(err, RN_EIO, "cannot write '%s': sync '%s': %s", s->plan->path, s->live,
                        strerror(errno));
    int crc = close(s->fd);
    s->fd = -1;
    if (crc != 0)
        return rn__errf(err, RN_EIO, "cannot write '%s': close '%s': %s", s->plan->path, s->live,
                        strerror(errno));
    *len = (int64_t)end;
    return RN_OK;
}

/* Appends file src (len bytes) to the pre-committed file. */
static rn_code_t
append_file(const char *dst, const char *src, int64_t len, rn_error_t *err)
{
    int out = open(dst, O_WRONLY | O_APPEND | O_CLOEXEC);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    rn_code_t rc = RN_OK;
    if (out < 0 || in < 0) {
        rc = rn__errf(err, RN_EIO, "open '%s': %s", out < 0 ? dst : src, strerror(errno));
    } else {
        char *buf = rn_xmalloc(1 << 20);
        for (int64_t done = 0; done < len && rc == RN_OK;) {
            ssize_t r = read(in, buf, 1 << 20);
            if (r < 0 && errno == EINTR)
                continue;
            ssize_t w = r > 0 ? write(out, buf, (size_t)r) : 0;
            if (r < 0 || w < 0)
                rc = rn__errf(err, RN_EIO, "append '%s' to '%s': %s %s", src, dst,
                              r < 0 ? "read" : "write", strerror(errno));
            else if (r == 0 || w != r)
                rc = rn__errf(err, RN_EIO, "append '%s' to '%s': %s", src, dst,
                              r == 0 ? "it is shorter than it was" : "short write");
            done += r;
        }
        rn_free(buf);
        if (rc == RN_OK && fsync(out) != 0)
            rc = rn__errf(err, RN_EIO, "sync '%s': %s", dst, strerror(errno));
    }
    if (out >= 0)
        close(out);
    if (in >= 0)
        close(in);
    return rc;
}

static rn_code_t
txn_snapshot(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    fsink_t *s = rn__op_data(op);
    if (s == NULL || !s->txn)
        return RN_OK;
    if (id == 0 || s->fd < 0) {
        /* Finished: everything is committed. */
        *data = json_pack("{s:I, s:I}", "committed", (json_int_t)s->committed, "len", 0);
        return RN_OK;
    }
    int64_t len;
    rn_code_t rc = seal_live(s, &len, err);
    if (rc == RN_OK && s->pre != NULL) {
        /* An aborted checkpoint's pending bytes: this one takes them over. */
        if ((rc = append_file(s->pre, s->live, len, err)) == RN_OK) {
            unlink(s->live);
            s->pre_len += len;
        }
    } else if (rc == RN_OK) {
        s->pre = s->live;
        s->live = NULL;
        s->pre_len = len;
    }
    if (rc == RN_OK) {
        s->pre_id = id;
        *data = json_pack("{s:I, s:I}", "committed", (json_int_t)s->committed, "len",
                          (json_int_t)s->pre_len);
        *file = rn_xstrdup(s->pre);
        rc = open_live(s, err);
    }
    /* Fatal: a failed fsync may have dropped the pages it could not write
     * (a later one reports success all the same), a failed append left
     * part of it in the pre-committed file, and the live file is closed.
     * No later checkpoint could trust these files; the job fails and the
     * next run takes the output back to the last completed checkpoint. */
    if (rc != RN_OK && err != NULL)
        err->flags |= RN_ERR_FATAL;
    return rc;
}

/* Commits the pre-committed bytes. keep: the file stays until close (the
 * end of the input commits before the checkpoint that holds the file is
 * stored; removed now, the checkpoint failed to open it and was aborted
 * with a warning). */
static rn_code_t
txn_commit_pre(fsink_t *s, bool keep, rn_error_t *err)
{
    if (s->pre == NULL)
        return RN_OK;
    rn_code_t rc = copy_at(s, s->pre, s->committed, s->pre_len, err);
    if (rc != RN_OK)
        return rc;
    s->committed += s->pre_len;
    if (keep && s->spent == NULL) {
        s->spent = s->pre;
    } else {
        unlink(s->pre);
        rn_free(s->pre);
    }
    s->pre = NULL;
    s->pre_len = 0;
    return RN_OK;
}

static rn_code_t
txn_complete(rn_op_t *op, int64_t id, rn_error_t *err)
{
    fsink_t *s = rn__op_data(op);
    if (s == NULL || !s->txn || s->pre == NULL || s->pre_id > id)
        return RN_OK;
    return txn_commit_pre(s, false, err);
}

/* Opens path for commits: as the checkpoint left it, or empty. */
static rn_code_t
txn_open(rn_op_t *op, fsink_t *s, rn_error_t *err)
{
    const fsink_plan_t *plan = s->plan;
    const json_t *snap = rn__op_restored(op);
    remove_stale_pending(plan);
    s->txn = true;
    s->tfd = open(plan->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (s->tfd < 0)
        return rn__errf(err, RN_EIO, "cannot write '%s': %s", plan->path, strerror(errno));
    int64_t committed = 0, len = 0;
    if (snap != NULL) {
        json_t *c = json_object_get(snap, "committed"), *l = json_object_get(snap, "len");
        committed = json_integer_value(c);
        len = json_integer_value(l);
        if (!json_is_integer(c) || !json_is_integer(l) || committed < 0 || len < 0 ||
            (len > 0 && rn__op_restored_file(op) == NULL))
            return rn__errf(err, RN_ECORRUPT, "'%s': the checkpoint's part of this sink is "
                                              "not one this build wrote", plan->path);
        struct stat sb;
        if (fstat(s->tfd, &sb) != 0 || sb.st_size < committed)
            return rn__errf(err, RN_EIO,
                            "'%s' has %lld bytes, fewer than the %lld the checkpoint committed: "
                            "it was changed outside runnel; restore it or remove the "
                            "checkpoints to start over",
                            plan->path, (long long)sb.st_size, (long long)committed);
    }
    /* Whatever was made visible after the checkpoint is taken back. */
    if (ftruncate(s->tfd, committed) != 0)
        return rn__errf(err, RN_EIO, "cannot truncate '%s': %s", plan->path, strerror(errno));
    s->committed = committed;
    rn_code_t rc;
    if (len > 0 && (rc = copy_at(s, rn__op_restored_file(op), committed, len, err)) != RN_OK)
        return rc;
    s->committed += len;
    if (fsync(s->tfd) != 0)
        return rn__errf(err, RN_EIO, "cannot sync '%s': %s", plan->path, strerror(errno));
    if ((rc = rn__text_out_init(&s->out, &plan->text, err)) != RN_OK)
        return rc;
    /* The CSV header is in what was committed already. */
    if (s->committed > 0)
        s->out.buf.len = 0;
    return open_live(s, err);
}

static rn_code_t
txn_finish(rn_op_t *op, fsink_t *s, rn_error_t *err)
{
    int64_t len;
    rn_code_t rc = seal_live(s, &len, err);
    if (rc == RN_OK)
        rc = txn_commit_pre(s, true, err);
    if (rc == RN_OK)
        rc = copy_at(s, s->live, s->committed, len, err);
    if (rc != RN_OK)
        return rc;
    s->committed += len;
    unlink(s->live);
    s->published = true;
    RN_LOG_DEBUG(rn__op_name(op), "committed %llu records to %s",
                 (unsigned long long)s->out.records, s->plan->path);
    return RN_OK;
}

static rn_code_t
fsink_open(rn_op_t *op, rn_error_t *err)
{
    if (rn__op_checkpointing(op)) {
        const fsink_plan_t *plan = rn__op_plan(op);
        fsink_t *s = rn_xcalloc(1, sizeof(*s));
        s->plan = plan;
        s->fd = s->tfd = -1;
        rn__op_set_data(op, s);
        rn_code_t rc;
        if ((rc = ensure_dir(plan, err)) == RN_OK)
            rc = txn_open(op, s, err);
        if (rc != RN_OK)
            fsink_close(op);
        return rc;
    }
    rn_code_t rc = open_temp(op, err);
    /* close() is not called after a failed open(): clean up here. */
    if (rc != RN_OK)
        fsink_close(op);
    return rc;
}

static rn_code_t
fsink_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    fsink_t *s = rn__op_data(op);
    rn_code_t rc = rn__text_out_batch(&s->out, input, b, err);

    rn__op_free_batch(op, b);
    if (rc == RN_OK && s->out.buf.len >= FLUSH_AT)
        rc = write_all(s, err);
    return rc;
}

static rn_code_t
fsync_dir(const char *dir, const char *path, rn_error_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rn__errf(err, RN_EIO, "'%s': cannot open its directory: %s", path,
                        strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems cannot sync a directory (EINVAL); the rename is
     * then as durable as they make it. */
    if (rc != 0 && e != EINVAL)
        return rn__errf(err, RN_EIO, "'%s': cannot sync its directory: %s", path, strerror(e));
    return RN_OK;
}

static rn_code_t
fsink_finish(rn_op_t *op, rn_error_t *err)
{
    fsink_t *s = rn__op_data(op);
    const fsink_plan_t *plan = s->plan;
    rn_code_t rc;

    if (s->txn)
        return txn_finish(op, s, err);
    if ((rc = write_all(s, err)) != RN_OK)
        return rc;
    if (fsync(s->fd) != 0)
        return rn__errf(err, RN_EIO, "cannot sync '%s': %s", plan->tmp, strerror(errno));
    int crc = close(s->fd);
    s->fd = -1;
    if (crc != 0)
        return rn__errf(err, RN_EIO, "cannot write '%s': %s", plan->tmp, strerror(errno));
    if (rename(plan->tmp, plan->path) != 0)
        return rn__errf(err, RN_EIO, "cannot rename '%s' to '%s': %s", plan->tmp, plan->path,
                        strerror(errno));
    s->published = true;
    RN_LOG_DEBUG(rn__op_name(op), "wrote %llu records to %s",
                 (unsigned long long)s->out.records, plan->path);
    return fsync_dir(plan->dir, plan->path, err);
}

static void
fsink_close(rn_op_t *op)
{
    fsink_t *s = rn__op_data(op);
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->txn) {
        /* What is not committed is in a checkpoint, or will be produced
         * again from one: path keeps what is committed. */
        if (s->tfd >= 0)
            close(s->tfd);
        if (s->live != NULL)
            unlink(s->live);
        if (s->pre != NULL)
            unlink(s->pre);
        if (s->spent != NULL)
            unlink(s->spent);
        rn_free(s->live);
        rn_free(s->pre);
        rn_free(s->spent);
    } else if (s->created && !s->published) {
        /* Not finished: the job failed or was cancelled; leave no partial
         * file. */
        unlink(s->plan->tmp);
    }
    rn__text_out_fini(&s->out);
    rn_free(s);
    rn__op_set_data(op, NULL);
}

const rn_opclass_t rn__sink_file = {
    .type = "file",
    .section = RN_SINK,
    .keys = keys,
    .plan = fsink_plan,
    .open = fsink_open,
    .process = fsink_process,
    .finish = fsink_finish,
    .close = fsink_close,
    .snapshot = txn_snapshot,
    .complete = txn_complete,
    .rewindable = true,
};
