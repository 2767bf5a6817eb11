/*
 * checkpoint/coord.c: the checkpoint coordinator (docs/checkpoints.md).
 *
 * One thread per job runs a libuv loop: a tick timer (every 10 ms) that
 * triggers checkpoints every `interval`, aborts one past `timeout` and
 * acknowledges for tasks that have finished; an async handle that tasks
 * wake when they hand in their parts (rn__ckpt_ack). One checkpoint at a
 * time, as Flink's default.
 *
 * The asynchronous part runs here, while the tasks go on: each part's
 * staged files are hashed (XXH3-128); SST files go to shared/<hash>.sst
 * (stored once, whatever checkpoint or restart made them: incremental),
 * the others into the checkpoint's directory. When every task has
 * acknowledged, the metadata is written (meta.c: both copies, checksums,
 * fsync, atomic renames), the directory renamed from chk-N.inprogress to
 * chk-N and the root synced: the commit point. Only then are the tasks
 * told (rn__job_complete) and old checkpoints retired.
 *
 * @thread the coordinator's own, except the functions ckpt.h marks.
 */
#include "checkpoint/ckpt.h"
#include "checkpoint/crash.h"
#include "checkpoint/meta.h"
#include "stream/fs.h"
#include "stream/job_int.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define TICK_MS 10

typedef struct ack {
    int64_t id;
    int task; /* -1: a decline */
    rn_ckpt_part_t *parts;
    int n;
    rn_error_t why;
    int64_t pause_us; /* -1: none measured */
} ack_t;

#define PAUSES 4096

typedef struct pending {
    int64_t id;
    int64_t start_ms;
    bool final;
    int nacked;
    bool *acked; /* per task */
    json_t *parts;  /* materialized parts */
    json_t *shared; /* shared/ paths it refers to (kept by retention) */
    uint64_t added, size;
    char dir[4096];    /* where files go: chk-N.inprogress, or the savepoint's .inprogress */
    char target[4096]; /* the name dir gets at the commit */
    char prefix[64];   /* of paths in the metadata: "chk-N/", "" for a savepoint */
    bool savepoint;    /* self-contained: every file copied in, paths relative to it */
} pending_t;

/* A savepoint asked for (REST): taken as the next checkpoint. */
typedef struct sp_req {
    char dir[4096];
    bool stop;
    rn_ckpt_done_fn done;
    void *ctx;
} sp_req_t;

struct rn_ckpt {
    rn_job_t *job;
    rn_ckpt_conf_t conf;
    char staging[4096]; /* <state base>/.ckpt-<pid> */
    pthread_t thread;
    bool started;
    uv_loop_t loop;
    uv_timer_t tick;
    uv_async_t wake;

    pthread_mutex_t lock; /* guards the fields below up to the thread's own */
    ack_t *inbox;
    size_t ninbox, capinbox;
    bool stop_req;  /* a final checkpoint is wanted */
    sp_req_t *sp;   /* a savepoint is wanted, or being taken (owned) */
    bool quit;      /* the thread must end */
    rn_ckpt_stats_t stats;
    int64_t pauses[PAUSES]; /* ring of the last pauses, µs */
    int64_t npauses;

    int64_t next_id;
    int64_t last_ms; /* when the last checkpoint was triggered */
    pending_t *cur;
    bool final_done;
    bool job_ended; /* rn__ckpt_stop: what is in flight ends with the job */
};

static void
pending_free(pending_t *p)
{
    if (p == NULL)
        return;
    rn_free(p->acked);
    json_decref(p->parts);
    json_decref(p->shared);
    rn_free(p);
}

static void
ack_free(ack_t *a)
{
    for (int i = 0; i < a->n; i++) {
        if (a->parts[i].state != NULL)
            rn__fs_rm_tree(a->parts[i].state);
        rn__ckpt_part_fini(&a->parts[i]);
    }
    rn_free(a->parts);
}

/* ---- the asynchronous part: files into the store ---- */

/* Stores file src under rel (relative to the root; SST files under their
 * content hash in shared/ instead) and appends its entry to files. */
static rn_code_t
store_file(rn_ckpt_t *c, pending_t *p, const char *src, const char *rel, const char *as,
           json_t *files, rn_error_t *err)
{
    XXH128_hash_t h;
    uint64_t size;
    /* A cancelled job (a second SIGTERM) ends now, not after a large
     * checkpoint's copies: checked before each file. */
    if (atomic_load(&c->job->cancel))
        return rn__errf(err, RN_ECANCELED, "the job was cancelled");
    rn_code_t rc = rn__fs_hash_file(src, &h, &size, err);
    if (rc != RN_OK)
        return rc;
    char hex[33], path[1200], full[4096 + 1200];
    rn__fs_hash_hex(h, hex);
    size_t n = strlen(src);
    /* Not incremental, or a savepoint: every file copied in, each time. */
    bool sst = !c->conf.full && !p->savepoint && n > 4 && strcmp(src + n - 4, ".sst") == 0;
    if (sst) {
        snprintf(path, sizeof(path), "shared/%s.sst", hex);
        snprintf(full, sizeof(full), "%s/%s", c->conf.dir, path);
        struct stat sb;
        if (stat(full, &sb) != 0 || (uint64_t)sb.st_size != size) {
            char tmp[4096 + 1300];
            snprintf(tmp, sizeof(tmp), "%s/shared/.%s.tmp-%ld", c->conf.dir, hex, (long)getpid());
            unlink(tmp);
            if ((rc = rn__fs_link_or_copy(src, tmp, err)) != RN_OK)
                return rc;
            if (rename(tmp, full) != 0)
                return rn__errf(err, RN_EIO, "rename '%s': %s", full, strerror(errno));
            p->added += size;
        }
        json_array_append_new(p->shared, json_string(path));
    } else {
        snprintf(path, sizeof(path), "%s%s", p->prefix, rel);
        snprintf(full, sizeof(full), "%s/%s", p->dir, rel);
        char *slash = strrchr(full, '/');
        *slash = '\0';
        if ((rc = rn__fs_mkdir_p(full, err)) != RN_OK)
            return rc;
        *slash = '/';
        /* A full checkpoint owns its copies (a hard link would share
         * RocksDB's file, which is what incremental does). So does every
         * checkpoint for a file with other links (RocksDB's OPTIONS file,
         * linked by its checkpoint from the live database): linked, one
         * damaged inode would damage every checkpoint that names it, and
         * with it the fallback to the previous one. Files the task wrote
         * for this checkpoint alone (handle, sink bytes) are linked. */
        struct stat ssb;
        bool shared_inode = stat(src, &ssb) == 0 && ssb.st_nlink > 1;
        rc = c->conf.full || p->savepoint || shared_inode
                 ? rn__fs_copy(src, full, NULL, NULL, err)
                 : rn__fs_link_or_copy(src, full, err);
        /* Snapshot files are written unsynced by the task: synced here. */
        if (rc == RN_OK)
            rc = rn__fs_fsync_file(full, err);
        if (rc != RN_OK)
            return rc;
        p->added += size;
    }
    /* Checkpoint files are the job's: 0600, also RocksDB's hard links. */
    chmod(full, 0600);
    p->size += size;
    json_t *f = json_pack("{s:s, s:I, s:s}", "path", path, "size", (json_int_t)size, "xxh3", hex);
    if (as != NULL)
        json_object_set_new(f, "as", json_string(as));
    json_array_append_new(files, f);
    return RN_OK;
}

/* Stores every file under dir (one level of subdirectories: db/). */
static rn_code_t
store_tree(rn_ckpt_t *c, pending_t *p, const char *dir, const char *owner, const char *sub,
           json_t *files, rn_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", dir, sub[0] ? "/" : "", sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return rn__errf(err, RN_EIO, "staged snapshot '%s': %s", path, strerror(errno));
    struct dirent *de;
    rn_code_t rc = RN_OK;
    while (rc == RN_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char src[4096 + 256], as[600], rel[1100];
        snprintf(src, sizeof(src), "%s/%s", path, de->d_name);
        snprintf(as, sizeof(as), "%s%s%s", sub, sub[0] ? "/" : "", de->d_name);
        struct stat sb;
        if (lstat(src, &sb) != 0) {
            rc = rn__errf(err, RN_EIO, "stat '%s': %s", src, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            if (sub[0] != '\0')
                rc = rn__errf(err, RN_EIO, "unexpected directory '%s'", src);
            else
                rc = store_tree(c, p, dir, owner, de->d_name, files, err);
        } else {
            snprintf(rel, sizeof(rel), "%s/%s", owner, as);
            rc = store_file(c, p, src, rel, as, files, err);
        }
    }
    closedir(d);
    return rc;
}

static rn_code_t
store_part(rn_ckpt_t *c, pending_t *p, const rn_ckpt_part_t *part, rn_error_t *err)
{
    char owner[600];
    snprintf(owner, sizeof(owner), "%s#%d", part->node, part->instance);
    json_t *j = json_pack("{s:s, s:i, s:b, s:I}", "node", part->node, "instance",
                          part->instance, "finished", part->finished, "wm", (json_int_t)part->wm);
    json_object_set(j, "data", part->data != NULL ? part->data : json_null());
    if (part->kg_last >= part->kg_first)
        json_object_set_new(j, "key_groups",
                            json_pack("[I, I]", (json_int_t)part->kg_first,
                                      (json_int_t)part->kg_last));
    rn_code_t rc = RN_OK;
    if (part->file != NULL) {
        json_t *one = json_array();
        char rel[800];
        snprintf(rel, sizeof(rel), "%s/file", owner);
        rc = store_file(c, p, part->file, rel, NULL, one, err);
        if (rc == RN_OK)
            json_object_set(j, "file", json_array_get(one, 0));
        json_decref(one);
    }
    if (rc == RN_OK && part->state != NULL) {
        json_t *files = json_array();
        rc = store_tree(c, p, part->state, owner, "", files, err);
        json_object_set_new(j, "state", files);
    }
    if (rc == RN_OK)
        json_array_append(p->parts, j);
    json_decref(j);
    return rc;
}

/* ---- triggering, aborting, committing ---- */

static void
abort_cur(rn_ckpt_t *c, const char *why)
{
    pending_t *p = c->cur;
    if (p == NULL)
        return;
    /* A checkpoint in flight when the job ends is no failure: every sink
     * committed at the end of its input. */
    if (c->job_ended && !p->savepoint)
        RN_LOG_INFO(c->job->name, "checkpoint %lld aborted: %s", (long long)p->id, why);
    else
        RN_LOG_WARN(c->job->name, "%s %lld aborted: %s",
                    p->savepoint ? "savepoint" : "checkpoint", (long long)p->id, why);
    rn__fs_rm_tree(p->dir);
    pthread_mutex_lock(&c->lock);
    c->stats.failed++;
    sp_req_t *sp = p->savepoint ? c->sp : NULL;
    if (sp != NULL)
        c->sp = NULL;
    pthread_mutex_unlock(&c->lock);
    if (sp != NULL) {
        rn_error_t e = RN_ERROR_INIT;
        rn__errf(&e, RN_EIO, "savepoint aborted: %s", why);
        sp->done(sp->ctx, NULL, &e);
        rn_free(sp);
    }
    pending_free(p);
    c->cur = NULL;
}

/* sp: a savepoint's request (taken over), or NULL. */
static void
trigger(rn_ckpt_t *c, bool final, sp_req_t *sp)
{
    pending_t *p = rn_xcalloc(1, sizeof(*p));
    rn_error_t err = RN_ERROR_INIT;
    p->id = c->next_id++;
    p->start_ms = rn__now_ms();
    p->final = final;
    p->acked = rn_xcalloc((size_t)rn__job_ntasks(c->job), sizeof(bool));
    p->parts = json_array();
    p->shared = json_array();
    char name[64];
    rn__ckpt_name(p->id, name, sizeof(name));
    if (sp != NULL) {
        p->savepoint = true;
        snprintf(p->target, sizeof(p->target), "%s", sp->dir);
        snprintf(p->dir, sizeof(p->dir), "%s.inprogress", sp->dir);
    } else {
        snprintf(p->target, sizeof(p->target), "%s/%s", c->conf.dir, name);
        snprintf(p->dir, sizeof(p->dir), "%s/%s.inprogress", c->conf.dir, name);
        snprintf(p->prefix, sizeof(p->prefix), "%s/", name);
    }
    rn__fs_rm_tree(p->dir);
    if (mkdir(p->dir, 0700) != 0) {
        rn__errf(&err, RN_EIO, "mkdir '%s': %s", p->dir, strerror(errno));
        RN_LOG_WARN(c->job->name, "%s %lld not taken: %s", sp ? "savepoint" : "checkpoint",
                    (long long)p->id, err.msg);
        pending_free(p);
        if (sp != NULL) {
            pthread_mutex_lock(&c->lock);
            c->sp = NULL;
            pthread_mutex_unlock(&c->lock);
            sp->done(sp->ctx, NULL, &err);
            rn_free(sp);
        }
        return;
    }
    c->cur = p;
    c->last_ms = p->start_ms;
    RN_LOG_INFO(c->job->name, "checkpoint %lld triggered%s", (long long)p->id,
                final ? " (final)" : "");
    rn__job_trigger(c->job, p->id, final);
}

static rn_code_t
sync_tree(const char *dir, rn_error_t *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return rn__errf(err, RN_EIO, "open '%s': %s", dir, strerror(errno));
    struct dirent *de;
    rn_code_t rc = RN_OK;
    while (rc == RN_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[4096 + 256];
        snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
            rc = sync_tree(sub, err);
    }
    closedir(d);
    return rc == RN_OK ? rn__fs_fsync_dir(dir, err) : rc;
}

/* Writes the metadata of p, with parts, into dir (the commit point's
 * first half: meta.c). */
static rn_code_t
write_meta(rn_ckpt_t *c, const pending_t *p, const char *dir, json_t *parts, bool savepoint,
           rn_error_t *err)
{
    rn_job_t *job = c->job;
    json_t *par = json_object();
    for (int i = 0; i < job->nnodes; i++)
        json_object_set_new(par, job->nodes[i].name, json_integer(job->nodes[i].parallelism));
    json_t *meta = json_pack("{s:i, s:s, s:I, s:I, s:s, s:i, s:o, s:O, s:I, s:I}", "format",
                             RN_CKPT_FORMAT, "job", job->name, "id", (json_int_t)p->id,
                             "time_ms", (json_int_t)rn__now_ms(), "mode",
                             c->conf.exactly_once ? "exactly-once" : "at-least-once",
                             "max_parallelism", job->max_parallelism, "parallelism", par,
                             "parts", parts, "size", (json_int_t)p->size, "added",
                             (json_int_t)p->added);
    if (savepoint)
        json_object_set_new(meta, "kind", json_string("savepoint"));
    char *text = json_dumps(meta, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(meta);
    if (text == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for the metadata");
    rn_code_t rc = rn__ckpt_meta_write(dir, text, strlen(text), err);
    free(text);
    return rc;
}

/* Hard-links (or copies) the savepoint's file entry f into the checkpoint
 * directory tmp (named name) and points f at it. */
static rn_code_t
mirror_file(const pending_t *p, const char *tmp, const char *name, json_t *f, rn_error_t *err)
{
    const char *rel = json_string_value(json_object_get(f, "path"));
    char src[4096 + 1100], dst[4096 + 1100], path[1200];
    snprintf(src, sizeof(src), "%s/%s", p->target, rel);
    snprintf(dst, sizeof(dst), "%s/%s", tmp, rel);
    snprintf(path, sizeof(path), "%s/%s", name, rel);
    char *slash = strrchr(dst, '/');
    *slash = '\0';
    rn_code_t rc = rn__fs_mkdir_p(dst, err);
    *slash = '/';
    if (rc == RN_OK)
        rc = rn__fs_link_or_copy(src, dst, err);
    if (rc == RN_OK)
        json_object_set_new(f, "path", json_string(path));
    return rc;
}

/* A savepoint is the newest snapshot, and the sinks commit on it (its
 * output is part of it), so that it must be what a plain `runnel run`
 * resumes from, not the checkpoint before: after the savepoint's own
 * commit it is made a checkpoint too, chk-N in the checkpoints
 * directory, whose files are hard links to the savepoint's (copies on
 * another file system), committed as any checkpoint. A crash before that
 * commit leaves the sinks uncommitted (they are told after it). */
static rn_code_t
mirror_savepoint(rn_ckpt_t *c, const pending_t *p, rn_error_t *err)
{
    char name[64], tmp[4096 + 64], final[4096 + 64];
    rn__ckpt_name(p->id, name, sizeof(name));
    snprintf(tmp, sizeof(tmp), "%s/%s.inprogress", c->conf.dir, name);
    snprintf(final, sizeof(final), "%s/%s", c->conf.dir, name);
    rn__fs_rm_tree(tmp);
    if (mkdir(tmp, 0700) != 0)
        return rn__errf(err, RN_EIO, "mkdir '%s': %s", tmp, strerror(errno));
    json_t *parts = json_deep_copy(p->parts);
    rn_code_t rc = parts != NULL ? RN_OK : rn__errf(err, RN_ENOMEM, "out of memory");
    size_t i, j;
    json_t *pj, *f;
    json_array_foreach(parts, i, pj)
    {
        f = json_object_get(pj, "file");
        if (rc == RN_OK && json_is_object(f))
            rc = mirror_file(p, tmp, name, f, err);
        json_array_foreach(json_object_get(pj, "state"), j, f)
        {
            if (rc == RN_OK)
                rc = mirror_file(p, tmp, name, f, err);
        }
    }
    if (rc == RN_OK)
        rc = sync_tree(tmp, err);
    if (rc == RN_OK)
        rc = write_meta(c, p, tmp, parts, false, err);
    json_decref(parts);
    if (rc == RN_OK && rename(tmp, final) != 0)
        rc = rn__errf(err, RN_EIO, "rename '%s': %s", tmp, strerror(errno));
    if (rc == RN_OK)
        rc = rn__fs_fsync_dir(c->conf.dir, err);
    if (rc != RN_OK)
        rn__fs_rm_tree(tmp);
    return rc;
}

static rn_code_t
commit(rn_ckpt_t *c, rn_error_t *err)
{
    pending_t *p = c->cur;
    rn_job_t *job = c->job;
    rn_code_t rc;
    char shared[4096 + 16];
    snprintf(shared, sizeof(shared), "%s/shared", c->conf.dir);
    if ((!p->savepoint && (rc = rn__fs_fsync_dir(shared, err)) != RN_OK) ||
        (rc = sync_tree(p->dir, err)) != RN_OK)
        return rc;
    rn__crash_point("ckpt.after_files");
    if ((rc = write_meta(c, p, p->dir, p->parts, p->savepoint, err)) != RN_OK)
        return rc;
    if (p->savepoint)
        rn__crash_point("ckpt.savepoint_mid");
    if (rename(p->dir, p->target) != 0)
        return rn__errf(err, RN_EIO, "rename '%s': %s", p->dir, strerror(errno));
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", p->target);
    char *slash = strrchr(parent, '/');
    if (slash != NULL)
        *slash = '\0';
    if ((rc = rn__fs_fsync_dir(slash != NULL ? parent : ".", err)) != RN_OK)
        return rc;
    if (p->savepoint && (rc = mirror_savepoint(c, p, err)) != RN_OK)
        return rn__errctx(err, "savepoint %lld taken into %s, but not made a checkpoint",
                          (long long)p->id, p->target);
    if (!p->savepoint)
        rn__crash_point("ckpt.after_commit");
    int64_t dur = rn__now_ms() - p->start_ms;
    RN_LOG_INFO(job->name, "%s %lld complete: %llu bytes (%llu new) in %lld ms",
                p->savepoint ? "savepoint" : "checkpoint", (long long)p->id,
                (unsigned long long)p->size, (unsigned long long)p->added, (long long)dur);
    pthread_mutex_lock(&c->lock);
    c->stats.completed++;
    c->stats.last_id = p->id;
    c->stats.last_duration_ms = dur;
    c->stats.last_bytes = p->added;
    c->stats.last_size = p->size;
    c->stats.total_added += p->added;
    c->stats.total_size += p->size;
    c->stats.total_duration_ms += dur;
    sp_req_t *sp = p->savepoint ? c->sp : NULL;
    if (sp != NULL)
        c->sp = NULL;
    pthread_mutex_unlock(&c->lock);
    if (p->final)
        c->final_done = true;
    /* Sinks commit on a savepoint too: it is also checkpoint chk-N
     * (mirror_savepoint), which recovery resumes from. */
    rn__job_complete(job, p->id);
    if (sp != NULL) {
        sp->done(sp->ctx, p->target, NULL);
        rn_free(sp);
    }
    pending_free(p);
    c->cur = NULL;
    rn_error_t e = RN_ERROR_INIT;
    if (rn__ckpt_retain(c->conf.dir, c->conf.retain, NULL, &e) != RN_OK)
        RN_LOG_WARN(job->name, "retention: %s", e.msg);
    return RN_OK;
}

static void
take_ack(rn_ckpt_t *c, ack_t *a)
{
    pending_t *p = c->cur;
    rn_error_t err = RN_ERROR_INIT;
    if (p == NULL || a->id != p->id) {
        ack_free(a); /* an aborted checkpoint's */
        return;
    }
    if (a->task < 0) {
        abort_cur(c, a->why.msg);
        ack_free(a);
        return;
    }
    if (p->acked[a->task]) {
        ack_free(a);
        return;
    }
    rn_code_t rc = RN_OK;
    for (int i = 0; i < a->n && rc == RN_OK; i++) {
        rn_ckpt_part_t *part = &a->parts[i];
        if (atomic_load(&c->job->cancel)) {
            rc = rn__errf(&err, RN_ECANCELED, "the job was cancelled");
            break;
        }
        if (part->fin.fn != NULL) {
            rc = part->fin.fn(part->fin.ctx, true, &err);
            part->fin.fn = NULL;
        }
        if (rc == RN_OK)
            rc = store_part(c, p, part, &err);
    }
    ack_free(a);
    if (rc != RN_OK) {
        /* A fatal error lost state (a backend's part could not write
         * what its task handed over): the job cannot go on, and the next
         * run resumes from the last completed checkpoint. */
        if (err.flags & RN_ERR_FATAL)
            rn__job_fail(c->job, &err);
        abort_cur(c, err.msg);
        return;
    }
    p->acked[a->task] = true;
    p->nacked++;
}

/* Acknowledges for tasks that finished before they saw the barrier. */
static void
ack_done_tasks(rn_ckpt_t *c)
{
    pending_t *p = c->cur;
    int nt = rn__job_ntasks(c->job);
    for (int t = 0; p != NULL && t < nt; t++) {
        if (p->acked[t])
            continue;
        rn_ckpt_part_t *parts;
        int n;
        if (rn__job_done_parts(c->job, t, &parts, &n)) {
            ack_t a = {p->id, t, parts, n, RN_ERROR_INIT, -1};
            take_ack(c, &a);
            p = c->cur;
        }
    }
}

static bool
timed_out(const rn_ckpt_t *c)
{
    return c->cur != NULL && rn__now_ms() - c->cur->start_ms > c->conf.timeout_ms;
}

static void
abort_timeout(rn_ckpt_t *c)
{
    char why[120];
    snprintf(why, sizeof(why), "not complete within the timeout of %lld ms",
             (long long)c->conf.timeout_ms);
    abort_cur(c, why);
}

static void
drain(rn_ckpt_t *c)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        if (c->ninbox == 0) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        ack_t a = c->inbox[0];
        memmove(c->inbox, c->inbox + 1, (c->ninbox - 1) * sizeof(ack_t));
        c->ninbox--;
        pthread_mutex_unlock(&c->lock);
        take_ack(c, &a);
    }
    pending_t *p = c->cur;
    if (p != NULL && p->nacked == rn__job_ntasks(c->job)) {
        rn_error_t err = RN_ERROR_INIT;
        if (timed_out(c))
            abort_timeout(c);
        else if (commit(c, &err) != RN_OK)
            abort_cur(c, err.msg);
    }
}

static void
on_wake(uv_async_t *h)
{
    rn_ckpt_t *c = h->data;
    pthread_mutex_lock(&c->lock);
    bool quit = c->quit;
    pthread_mutex_unlock(&c->lock);
    if (quit) {
        uv_stop(&c->loop);
        return;
    }
    drain(c);
}

static void
on_tick(uv_timer_t *h)
{
    rn_ckpt_t *c = h->data;
    int64_t now = rn__now_ms();
    ack_done_tasks(c);
    drain(c);
    if (timed_out(c))
        abort_timeout(c);
    if (atomic_load(&c->job->cancel))
        return; /* no new checkpoint for a job that is ending at once */
    pthread_mutex_lock(&c->lock);
    bool stop = c->stop_req || atomic_load(&c->job->stop_requested);
    sp_req_t *sp = c->cur == NULL && !c->final_done ? c->sp : NULL;
    pthread_mutex_unlock(&c->lock);
    if (sp != NULL)
        trigger(c, sp->stop, sp);
    else if (c->cur == NULL && !c->final_done &&
             (stop || now - c->last_ms >= c->conf.interval_ms))
        trigger(c, stop, NULL);
}

static void *
coord_main(void *arg)
{
    rn_ckpt_t *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Removes the staging directories of dead processes under base. */
static void
remove_stale_staging(const char *base)
{
    DIR *d = opendir(base);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid;
        if (sscanf(de->d_name, ".ckpt-%ld", &pid) != 1 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
        rn__fs_rm_tree(path);
    }
    closedir(d);
}

/* The savepoints root: made, private as the checkpoint directory, and
 * never one of the store's own names (the store's directory itself, its
 * shared/, a chk-N, a hidden one), which retention and numbering would
 * take for theirs. A savepoint killed while it was written left its
 * <name>.inprogress in it: removed (REST refuses such names, so every one
 * is a leftover). */
static rn_code_t
savepoints_root(const rn_ckpt_t *c, rn_error_t *err)
{
    const char *sp = c->conf.savepoints;
    char ck[PATH_MAX], real[PATH_MAX];
    rn_code_t rc;
    if (sp == NULL)
        return RN_OK;
    if ((rc = rn__fs_mkdir_p(sp, err)) != RN_OK ||
        (rc = rn__fs_check_private(sp, "savepoints directory", err)) != RN_OK)
        return rc;
    if (realpath(c->conf.dir, ck) == NULL || realpath(sp, real) == NULL)
        return rn__errf(err, RN_EIO, "checkpoints.savepoints '%s': %s", sp, strerror(errno));
    size_t n = strlen(ck);
    if (strncmp(real, ck, n) == 0 && (real[n] == '\0' || real[n] == '/')) {
        const char *rel = real[n] == '/' ? real + n + 1 : "";
        if (rel[0] == '\0' || rel[0] == '.' || strncmp(rel, "shared", 6) == 0 ||
            strncmp(rel, "chk-", 4) == 0)
            return rn__errf(err, RN_EINVAL,
                            "checkpoints.savepoints '%s' lies in the checkpoint store's own "
                            "files ('%s'): use a directory of its own, such as %s/savepoints "
                            "(the default)",
                            sp, real, c->conf.dir);
    }
    DIR *d = opendir(real);
    if (d == NULL)
        return rn__errf(err, RN_EIO, "opendir '%s': %s", real, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 11 || strcmp(de->d_name + len - 11, ".inprogress") != 0)
            continue;
        char path[PATH_MAX + 256];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", real, de->d_name);
        /* Only what a savepoint of this user can have left: a directory. */
        if (lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
            continue;
        RN_LOG_INFO(c->job->name, "removing '%s', a savepoint that was not completed", path);
        rn__fs_rm_tree(path);
    }
    closedir(d);
    return RN_OK;
}

rn_ckpt_t *
rn__ckpt_new(rn_job_t *job, const rn_ckpt_conf_t *conf, int64_t first_id, rn_error_t *err)
{
    rn_ckpt_t *c = rn_xcalloc(1, sizeof(*c));
    c->job = job;
    c->conf = *conf;
    c->conf.dir = rn_xstrdup(conf->dir);
    c->next_id = first_id > 0 ? first_id : 1;
    c->last_ms = rn__now_ms();
    pthread_mutex_init(&c->lock, NULL);
    char base[4096], shared[4096 + 16];
    rn__state_base_dir(&job->state_opts, base, sizeof(base));
    snprintf(shared, sizeof(shared), "%s/shared", c->conf.dir);
    rn_code_t rc;
    if ((rc = rn__fs_mkdir_p(c->conf.dir, err)) != RN_OK ||
        (rc = rn__fs_check_private(c->conf.dir, "checkpoint directory", err)) != RN_OK ||
        (rc = rn__fs_mkdir_p(shared, err)) != RN_OK || (rc = savepoints_root(c, err)) != RN_OK ||
        (rc = rn__fs_mkdir_p(base, err)) != RN_OK) {
        rn__ckpt_destroy(c);
        return NULL;
    }
    remove_stale_staging(base);
    snprintf(c->staging, sizeof(c->staging), "%s/.ckpt-%ld", base, (long)getpid());
    rn__fs_rm_tree(c->staging);
    if ((rc = rn__fs_mkdir_p(c->staging, err)) != RN_OK) {
        rn__ckpt_destroy(c);
        return NULL;
    }
    return c;
}

rn_code_t
rn__ckpt_start(rn_ckpt_t *c, rn_error_t *err)
{
    if (uv_loop_init(&c->loop) != 0)
        return rn__errf(err, RN_EIO, "checkpoint coordinator: cannot make its event loop");
    uv_timer_init(&c->loop, &c->tick);
    c->tick.data = c;
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
    if (pthread_create(&c->thread, NULL, coord_main, c) != 0) {
        uv_close((uv_handle_t *)&c->tick, NULL);
        uv_close((uv_handle_t *)&c->wake, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        return rn__errf(err, RN_EIO, "checkpoint coordinator: cannot start its thread: %s",
                        strerror(errno));
    }
    pthread_setname_np(c->thread, "rn-checkpoint");
    pthread_mutex_lock(&c->lock);
    c->started = true;
    pthread_mutex_unlock(&c->lock);
    return RN_OK;
}

void
rn__ckpt_stop(rn_ckpt_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    bool started = c->started;
    c->quit = true;
    c->started = false;
    pthread_mutex_unlock(&c->lock);
    if (!started)
        return;
    uv_async_send(&c->wake);
    pthread_join(c->thread, NULL);
    c->job_ended = true;
    abort_cur(c, "the job ended");
    if (c->sp != NULL) {
        rn_error_t e = RN_ERROR_INIT;
        rn__errf(&e, RN_ECANCELED, "the job ended before the savepoint was taken");
        c->sp->done(c->sp->ctx, NULL, &e);
        rn_free(c->sp);
        c->sp = NULL;
    }
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
}

void
rn__ckpt_destroy(rn_ckpt_t *c)
{
    if (c == NULL)
        return;
    rn__ckpt_stop(c);
    for (size_t i = 0; i < c->ninbox; i++)
        ack_free(&c->inbox[i]);
    rn_free(c->inbox);
    if (c->staging[0] != '\0')
        rn__fs_rm_tree(c->staging);
    pthread_mutex_destroy(&c->lock);
    rn_free(c->conf.dir);
    rn_free(c);
}

static void
post(rn_ckpt_t *c, const ack_t *a)
{
    pthread_mutex_lock(&c->lock);
    if (c->ninbox == c->capinbox) {
        c->capinbox = c->capinbox ? c->capinbox * 2 : 16;
        c->inbox = rn_xrealloc(c->inbox, c->capinbox * sizeof(*c->inbox));
    }
    c->inbox[c->ninbox++] = *a;
    bool started = c->started;
    pthread_mutex_unlock(&c->lock);
    if (started)
        uv_async_send(&c->wake);
}

void
rn__ckpt_ack(rn_ckpt_t *c, int64_t id, int task, rn_ckpt_part_t *parts, int nparts,
             int64_t pause_us)
{
    ack_t a = {id, task, parts, nparts, RN_ERROR_INIT, pause_us};
    pthread_mutex_lock(&c->lock);
    c->pauses[c->npauses++ % PAUSES] = pause_us;
    pthread_mutex_unlock(&c->lock);
    post(c, &a);
}

void
rn__ckpt_decline(rn_ckpt_t *c, int64_t id, const rn_error_t *why)
{
    ack_t a = {id, -1, NULL, 0, *why, -1};
    post(c, &a);
}

rn_code_t
rn__ckpt_savepoint(rn_ckpt_t *c, const char *dir, bool stop, rn_ckpt_done_fn done, void *ctx,
                   rn_error_t *err)
{
    pthread_mutex_lock(&c->lock);
    bool busy = c->sp != NULL || !c->started;
    if (!busy) {
        c->sp = rn_xcalloc(1, sizeof(*c->sp));
        snprintf(c->sp->dir, sizeof(c->sp->dir), "%s", dir);
        c->sp->stop = stop;
        c->sp->done = done;
        c->sp->ctx = ctx;
    }
    pthread_mutex_unlock(&c->lock);
    if (busy)
        return rn__errf(err, RN_EAGAIN, "a savepoint is being taken already, or the job is "
                                        "not running");
    return RN_OK;
}

void
rn__ckpt_request_stop(rn_ckpt_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->stop_req = true;
    pthread_mutex_unlock(&c->lock);
}

void
rn__ckpt_staging(const rn_ckpt_t *c, int64_t id, const char *owner, char *out, size_t size)
{
    snprintf(out, size, "%s/%lld-%s", c->staging, (long long)id, owner);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void
rn__ckpt_stats(rn_ckpt_t *c, rn_ckpt_stats_t *st)
{
    int64_t *p = rn_xmalloc(PAUSES * sizeof(*p));
    pthread_mutex_lock(&c->lock);
    *st = c->stats;
    size_t n = (size_t)(c->npauses < PAUSES ? c->npauses : PAUSES);
    memcpy(p, c->pauses, n * sizeof(*p));
    st->npauses = c->npauses;
    pthread_mutex_unlock(&c->lock);
    if (n > 0) {
        qsort(p, n, sizeof(*p), cmp_i64);
        st->pause_p50_us = p[(n - 1) / 2];
        st->pause_p99_us = p[(n - 1) * 99 / 100];
        st->pause_max_us = p[n - 1];
    }
    rn_free(p);
}
