/*
 * checkpoint/recover.c: finding the checkpoint to resume from and making
 * its files ready (docs/checkpoints.md, recovery).
 *
 * Newest first, a completed checkpoint is taken when its metadata (either
 * copy), its fields (meta_check.c), every file it names (size and
 * XXH3-128, the state files restore parses parsed: rn__ckpt_verify_deep)
 * and its fit with the job (the caller's check) check out, before any of
 * its state is used. A damaged one is reported with what is wrong;
 * going back past it is allowed only when every sink can take back what
 * it made visible since. Directories of checkpoints that never completed
 * (chk-N.inprogress) are removed: no sink was told of them.
 *
 * Ready files: each keyed instance's state files are hard-linked (or
 * copied) from the store into <dir>/.restore-<pid>/<component>#<i>/ under
 * the names the snapshot had, so that the state backend restores from an
 * ordinary snapshot directory (state/snapshot.c).
 *
 * @thread control.
 */
#include "checkpoint/ckpt.h"
#include "checkpoint/crash.h"
#include "stream/fs.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static rn_code_t ready(const char *root, const char *path, const char *base, int64_t id,
                       json_t *meta, rn_restore_t **out, rn_error_t *err);

rn_code_t
rn__savepoint_recover(const char *dir, const char *staging_base, rn_ckpt_check_fn check,
                      void *ctx, rn_restore_t **out, rn_error_t *err)
{
    json_t *meta = rn__savepoint_read_meta(dir, err);
    if (meta == NULL)
        return rn__errctx(err, "savepoint %s", dir);
    if (rn__ckpt_verify_deep(dir, meta, err) != RN_OK ||
        (check != NULL && check(ctx, meta, err) != RN_OK)) {
        json_decref(meta);
        return rn__errctx(err, "savepoint %s is damaged", dir);
    }
    rn_code_t rc = ready(dir, dir, staging_base, json_integer_value(json_object_get(meta, "id")),
                         meta, out, err);
    if (rc == RN_OK)
        (*out)->savepoint = true;
    return rc;
}

void
rn__restore_free(rn_restore_t *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->nparts; i++)
        rn__ckpt_part_fini(&r->parts[i]);
    rn_free(r->parts);
    if (r->staging != NULL)
        rn__fs_rm_tree(r->staging);
    rn_free(r->staging);
    rn_free(r->path);
    json_decref(r->meta);
    rn_free(r);
}

const rn_ckpt_part_t *
rn__restore_part(const rn_restore_t *r, const char *node, int instance)
{
    for (int i = 0; i < r->nparts; i++)
        if (r->parts[i].instance == instance && strcmp(r->parts[i].node, node) == 0)
            return &r->parts[i];
    return NULL;
}

int
rn__restore_parallelism(const rn_restore_t *r, const char *node)
{
    json_t *p = json_object_get(json_object_get(r->meta, "parallelism"), node);
    return json_is_integer(p) ? (int)json_integer_value(p) : 0;
}

/* Removes what runs that died left: checkpoints that never completed and
 * restore directories. */
static void
clean_leftovers(const char *root)
{
    DIR *d = opendir(root);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        long pid = 0;
        bool stale = false;
        if (strncmp(n, "chk-", 4) == 0 &&
            (strstr(n, ".inprogress") != NULL || strstr(n, ".deleting") != NULL))
            stale = true;
        else if (sscanf(n, ".restore-%ld", &pid) == 1 && pid != (long)getpid())
            stale = kill((pid_t)pid, 0) != 0 && errno == ESRCH;
        if (!stale)
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof(path), "%s/%s", root, n);
        rn__fs_rm_tree(path);
    }
    closedir(d);
}

/* Links a part's state files into staging/<owner>/. */
static rn_code_t
ready_state(const char *root, const char *staging, const char *owner, const json_t *files,
            char **out, rn_error_t *err)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s", staging, owner);
    rn_code_t rc = rn__fs_mkdir_p(dir, err);
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        if (rc != RN_OK)
            break;
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *as = json_string_value(json_object_get(f, "as"));
        char src[4096 + 1100], dst[4096 + 1100];
        snprintf(src, sizeof(src), "%s/%s", root, path);
        snprintf(dst, sizeof(dst), "%s/%s", dir, as);
        char *slash = strrchr(dst, '/');
        *slash = '\0';
        rc = rn__fs_mkdir_p(dst, err);
        *slash = '/';
        if (rc == RN_OK)
            rc = rn__fs_link_or_copy(src, dst, err);
        rn__crash_point("ckpt.restore_mid");
    }
    if (rc == RN_OK)
        *out = rn_xstrdup(dir);
    return rc;
}

/* root: what the metadata's paths are relative to; path: the checkpoint's
 * or savepoint's directory; staging under base. */
static rn_code_t
ready(const char *root, const char *path, const char *base, int64_t id, json_t *meta,
      rn_restore_t **out, rn_error_t *err)
{
    rn_restore_t *r = rn_xcalloc(1, sizeof(*r));
    char staging[4096 + 64];
    snprintf(staging, sizeof(staging), "%s/.restore-%ld", base, (long)getpid());
    rn__fs_rm_tree(staging);
    r->id = id;
    r->path = rn_xstrdup(path);
    r->staging = rn_xstrdup(staging);
    r->meta = meta;
    r->max_parallelism = (int)json_integer_value(json_object_get(meta, "max_parallelism"));
    json_t *parts = json_object_get(meta, "parts");
    r->parts = rn_xcalloc(json_array_size(parts) + 1, sizeof(*r->parts));
    size_t i;
    json_t *pj;
    rn_code_t rc = RN_OK;
    json_array_foreach(parts, i, pj)
    {
        rn_ckpt_part_t *p = &r->parts[r->nparts++];
        const char *node = json_string_value(json_object_get(pj, "node"));
        json_t *inst = json_object_get(pj, "instance");
        if (node == NULL || !json_is_integer(inst) || json_integer_value(inst) < 0 ||
            json_integer_value(inst) > 1 << 20) {
            rc = rn__errf(err, RN_ECORRUPT, "%s: a part without a component or instance", path);
            break;
        }
        p->node = rn_xstrdup(node);
        p->instance = (int)json_integer_value(inst);
        p->finished = json_is_true(json_object_get(pj, "finished"));
        p->wm = json_integer_value(json_object_get(pj, "wm"));
        json_t *kg = json_object_get(pj, "key_groups");
        p->kg_first = 1; /* none */
        if (json_is_array(kg) && json_array_size(kg) == 2) {
            json_int_t f = json_integer_value(json_array_get(kg, 0));
            json_int_t l = json_integer_value(json_array_get(kg, 1));
            if (f < 0 || l < f || l > 32767) {
                rc = rn__errf(err, RN_ECORRUPT, "%s: part '%s' has key groups %lld..%lld", path,
                              node, (long long)f, (long long)l);
                break;
            }
            p->kg_first = (uint32_t)f;
            p->kg_last = (uint32_t)l;
        }
        json_t *data = json_object_get(pj, "data");
        if (json_is_object(data))
            p->data = json_incref(data);
        json_t *file = json_object_get(pj, "file");
        if (json_is_object(file)) {
            char fp[4096 + 1100];
            snprintf(fp, sizeof(fp), "%s/%s", root,
                     json_string_value(json_object_get(file, "path")));
            p->file = rn_xstrdup(fp);
        }
        json_t *state = json_object_get(pj, "state");
        if (json_is_array(state)) {
            char owner[600];
            snprintf(owner, sizeof(owner), "%s#%d", p->node, p->instance);
            if ((rc = ready_state(root, staging, owner, state, &p->state, err)) != RN_OK)
                break;
        }
    }
    if (rc != RN_OK) {
        rn__restore_free(r);
        return rc;
    }
    *out = r;
    return RN_OK;
}

rn_code_t
rn__ckpt_recover(const rn_ckpt_conf_t *conf, const char *job_name, bool rewind,
                 rn_ckpt_check_fn check, void *ctx, rn_restore_t **out, int64_t *next_id,
                 rn_error_t *err)
{
    int64_t *ids = NULL;
    size_t n = 0;
    int64_t max_seen = 0;
    *out = NULL;
    rn_code_t rc = rn__ckpt_list(conf->dir, &ids, &n, &max_seen, err);
    if (rc != RN_OK)
        return rc;
    *next_id = max_seen + 1;
    clean_leftovers(conf->dir);
    char damaged[RN_ERROR_MSG_MAX] = "";
    int64_t damaged_id = 0;
    for (size_t i = 0; i < n; i++) {
        rn_error_t e = RN_ERROR_INIT;
        json_t *meta = rn__ckpt_read_meta(conf->dir, ids[i], &e);
        /* Another job's checkpoint is refused below, not judged. */
        const char *jn = meta != NULL ? json_string_value(json_object_get(meta, "job")) : NULL;
        bool ours = jn != NULL && strcmp(jn, job_name) == 0;
        if (meta != NULL && (rn__ckpt_verify_deep(conf->dir, meta, &e) != RN_OK ||
                             (ours && check != NULL && check(ctx, meta, &e) != RN_OK))) {
            json_decref(meta);
            meta = NULL;
        }
        if (meta == NULL) {
            RN_LOG_WARN(job_name, "checkpoint %lld in %s is damaged: %s", (long long)ids[i],
                        conf->dir, e.msg);
            if (damaged_id == 0) {
                damaged_id = ids[i];
                snprintf(damaged, sizeof(damaged), "%s", e.msg);
            }
            if (!rewind) {
                rn__errf(err, RN_ECORRUPT,
                         "checkpoint %lld in %s is damaged (%s); a sink of this job cannot "
                         "take back what it wrote after the previous checkpoint, so going "
                         "back would duplicate output: repair or restore the file, or remove "
                         "the checkpoint's directory to accept that",
                         (long long)ids[i], conf->dir, e.msg);
                rn_free(ids);
                return RN_ECORRUPT;
            }
            continue;
        }
        if (!ours) {
            rn__errf(err, RN_EINVAL,
                     "%s holds checkpoints of job '%s', not of '%s': give this job its own "
                     "checkpoints.dir",
                     conf->dir, jn ? jn : "?", job_name);
            json_decref(meta);
            rn_free(ids);
            return RN_EINVAL;
        }
        if (damaged_id != 0)
            RN_LOG_WARN(job_name,
                        "checkpoint %lld was damaged (%s); resuming from checkpoint %lld, "
                        "output after it is taken back",
                        (long long)damaged_id, damaged, (long long)ids[i]);
        char name[64], path[4096 + 64];
        rn__ckpt_name(ids[i], name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", conf->dir, name);
        rc = ready(conf->dir, path, conf->dir, ids[i], meta, out, err);
        rn_free(ids);
        return rc;
    }
    rn_free(ids);
    if (damaged_id != 0)
        return rn__errf(err, RN_ECORRUPT,
                        "no intact checkpoint in %s (checkpoint %lld: %s); remove the directory "
                        "to start the job from the beginning",
                        conf->dir, (long long)damaged_id, damaged);
    return RN_OK;
}
