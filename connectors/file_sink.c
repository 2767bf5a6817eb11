/*
 * connectors/file_sink.c: the "file" sink: one file of JSON lines or CSV
 * at `path`, written by a single instance whatever the job's parallelism.
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
 * `delivery` (exactly-once | at-least-once) is accepted for the job-file
 * contract; with publish-on-finish both are met for bounded jobs. A
 * checkpointed, transactional variant comes with checkpoints.
 *
 * @thread plan: control; the instance: its task.
 */
#include "connectors/connector_int.h"

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
    int fd; /* the temporary file, -1 when closed */
    bool created;
    bool published;
    rn_text_out_t out;
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

static rn_code_t
write_all(fsink_t *s, rn_error_t *err)
{
    const char *p = s->out.buf.data;
    size_t left = s->out.buf.len;

    while (left > 0) {
        ssize_t n = write(s->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return rn__errf(err, RN_EIO, "cannot write '%s': %s", s->plan->path,
                            strerror(errno));
        p += n;
        left -= (size_t)n;
    }
    s->out.buf.len = 0;
    return RN_OK;
}

static void fsink_close(rn_op_t *op);

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
    if (stat(plan->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rn__errf(err, RN_EIO, "cannot write '%s': directory '%s' does not exist",
                        plan->path, plan->dir);
    if (stat(plan->path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return rn__errf(err, RN_EIO, "cannot write '%s': it is a directory", plan->path);
    s->fd = open(plan->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0)
        return rn__errf(err, RN_EIO, "cannot write '%s': cannot create '%s': %s", plan->path,
                        plan->tmp, strerror(errno));
    s->created = true;
    return rn__text_out_init(&s->out, &plan->text, err);
}

static rn_code_t
fsink_open(rn_op_t *op, rn_error_t *err)
{
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
    /* Not finished: the job failed or was cancelled; leave no partial file. */
    if (s->created && !s->published)
        unlink(s->plan->tmp);
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
};
