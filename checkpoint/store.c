/*
 * checkpoint/store.c: the checkpoint store on disk (docs/checkpoints.md,
 * storage layout): names, listing, the metadata as JSON, verification of
 * every file a checkpoint names, and retention.
 *
 * Paths inside the metadata are relative to the store's root and never
 * contain ".." or start with "/": a path that does is damage (or an
 * attack), refused like a checksum mismatch.
 *
 * @thread any (no shared state).
 */
#include "checkpoint/ckpt.h"
#include "checkpoint/crash.h"
#include "checkpoint/meta.h"
#include "stream/fs.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
rn__ckpt_name(int64_t id, char *out, size_t size)
{
    snprintf(out, size, "chk-%08lld", (long long)id);
}

/* @returns the id of "chk-<digits>[suffix]", -1 when name is not one;
 * *complete: no suffix. */
static int64_t
parse_name(const char *name, bool *complete)
{
    if (strncmp(name, "chk-", 4) != 0)
        return -1;
    const char *p = name + 4;
    int64_t id = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 18) {
        id = id * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0)
        return -1;
    *complete = *p == '\0';
    return id;
}

static int
cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

rn_code_t
rn__ckpt_list(const char *dir, int64_t **ids, size_t *n, int64_t *max_seen, rn_error_t *err)
{
    *ids = NULL;
    *n = 0;
    if (max_seen != NULL)
        *max_seen = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return RN_OK;
        return rn__errf(err, RN_EIO, "checkpoints '%s': %s", dir, strerror(errno));
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        bool complete;
        int64_t id = parse_name(de->d_name, &complete);
        if (id < 0)
            continue;
        if (max_seen != NULL && id > *max_seen)
            *max_seen = id;
        if (!complete)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *ids = rn_xrealloc(*ids, cap * sizeof(**ids));
        }
        (*ids)[(*n)++] = id;
    }
    closedir(d);
    if (*n > 1)
        qsort(*ids, *n, sizeof(**ids), cmp_desc);
    return RN_OK;
}

/* Reads and parses dir's metadata; want_id -1: any id (a savepoint). */
static json_t *
read_meta_dir(const char *dir, const char *name, int64_t want_id, rn_error_t *err)
{
    void *data = NULL;
    size_t len = 0;
    int copy = 0;
    rn_code_t rc = rn__ckpt_meta_read(dir, RN_CKPT_META_MAX, &data, &len, &copy, err);
    if (rc != RN_OK) {
        if (rc == RN_ENOTFOUND && err != NULL)
            err->code = RN_ECORRUPT; /* a completed checkpoint has one */
        return NULL;
    }
    if (copy == 1)
        RN_LOG_WARN(name, "%s/%s is damaged; read its copy %s", dir, RN_CKPT_META,
                    RN_CKPT_META_COPY);
    json_error_t je;
    /* The trailer line is the meta layer's, not JSON: cut it off. */
    char *t = strstr(data, "\n#xxh3-128 ");
    size_t jlen = t != NULL ? (size_t)(t - (char *)data) : len;
    json_t *meta = json_loadb(data, jlen, JSON_REJECT_DUPLICATES, &je);
    rn_free(data);
    if (meta == NULL) {
        rn__errf(err, RN_ECORRUPT, "%s/%s: not JSON (line %d: %s)", dir, RN_CKPT_META, je.line,
                 je.text);
        return NULL;
    }
    json_int_t fmt = json_integer_value(json_object_get(meta, "format"));
    json_int_t mid = json_integer_value(json_object_get(meta, "id"));
    char file[4096 + 32];
    snprintf(file, sizeof(file), "%s/%s", dir, copy == 1 ? RN_CKPT_META_COPY : RN_CKPT_META);
    if (fmt != RN_CKPT_FORMAT) {
        rn__errf(err, RN_ECORRUPT, "%s: format %lld (this build reads format %d)", file,
                 (long long)fmt, RN_CKPT_FORMAT);
    } else if (rn__ckpt_check_meta(file, meta, err) != RN_OK) {
        /* err says which field */
    } else if (want_id >= 0 && mid != want_id) {
        rn__errf(err, RN_ECORRUPT, "%s: id %lld in the directory of checkpoint %lld", file,
                 (long long)mid, (long long)want_id);
    } else {
        return meta;
    }
    json_decref(meta);
    return NULL;
}

json_t *
rn__ckpt_read_meta(const char *root, int64_t id, rn_error_t *err)
{
    char name[64], dir[4096];
    rn__ckpt_name(id, name, sizeof(name));
    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    return read_meta_dir(dir, name, id, err);
}

json_t *
rn__savepoint_read_meta(const char *dir, rn_error_t *err)
{
    rn_error_t e = RN_ERROR_INIT;
    json_t *meta = read_meta_dir(dir, dir, -1, err != NULL ? err : &e);
    if (meta != NULL && !json_is_string(json_object_get(meta, "kind"))) {
        rn__errf(err, RN_EINVAL, "%s is a checkpoint, not a savepoint", dir);
        json_decref(meta);
        return NULL;
    }
    return meta;
}

static bool
safe_path(const char *p)
{
    if (p == NULL || p[0] == '\0' || p[0] == '/' || strstr(p, "..") != NULL ||
        strlen(p) > 1024)
        return false;
    return true;
}

/* Checks one file entry {"path", "size", "xxh3"} against the disk. */
static rn_code_t
verify_file(const char *root, const json_t *f, rn_error_t *err)
{
    const char *path = json_string_value(json_object_get(f, "path"));
    const char *hex = json_string_value(json_object_get(f, "xxh3"));
    json_t *jsize = json_object_get(f, "size");
    if (!safe_path(path) || hex == NULL || !json_is_integer(jsize))
        return rn__errf(err, RN_ECORRUPT, "a file entry without a safe path, size or hash");
    char full[4096 + 1100];
    snprintf(full, sizeof(full), "%s/%s", root, path);
    XXH128_hash_t h;
    uint64_t size;
    rn_error_t e = RN_ERROR_INIT;
    if (rn__fs_hash_file(full, &h, &size, &e) != RN_OK)
        return rn__errf(err, RN_ECORRUPT, "%s: %s", path,
                        e.code == RN_ENOTFOUND ? "missing" : e.msg);
    char got[33];
    rn__fs_hash_hex(h, got);
    if (size != (uint64_t)json_integer_value(jsize))
        return rn__errf(err, RN_ECORRUPT, "%s: %llu bytes, the metadata says %lld (truncated?)",
                        path, (unsigned long long)size, (long long)json_integer_value(jsize));
    if (strcmp(got, hex) != 0)
        return rn__errf(err, RN_ECORRUPT, "%s: checksum mismatch (XXH3-128 %s, expected %s)",
                        path, got, hex);
    return RN_OK;
}

rn_code_t
rn__ckpt_verify(const char *root, const json_t *meta, rn_error_t *err)
{
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(meta, "parts"), i, part)
    {
        json_t *f = json_object_get(part, "file");
        if (f != NULL && !json_is_null(f) && verify_file(root, f, err) != RN_OK)
            return RN_ECORRUPT;
        size_t j;
        json_t *sf;
        json_array_foreach(json_object_get(part, "state"), j, sf)
        {
            const char *as = json_string_value(json_object_get(sf, "as"));
            if (!safe_path(as))
                return rn__errf(err, RN_ECORRUPT, "a state file without a safe name");
            if (verify_file(root, sf, err) != RN_OK)
                return RN_ECORRUPT;

        }
    }
    return RN_OK;
}

/* Adds the shared/ paths meta names to set (a JSON object used as a set). */
static void
collect_shared(const json_t *meta, json_t *set)
{
    size_t i, j;
    json_t *part, *sf;
    json_array_foreach(json_object_get(meta, "parts"), i, part)
    {
        json_array_foreach(json_object_get(part, "state"), j, sf)
        {
            const char *p = json_string_value(json_object_get(sf, "path"));
            if (p != NULL && strncmp(p, "shared/", 7) == 0)
                json_object_set_new(set, p + 7, json_true());
        }
    }
}

rn_code_t
rn__ckpt_retain(const char *root, int retain, const json_t *keep, rn_error_t *err)
{
    int64_t *ids = NULL;
    size_t n = 0;
    rn_code_t rc = rn__ckpt_list(root, &ids, &n, NULL, err);
    if (rc != RN_OK)
        return rc;
    char name[64], path[4096], gone[4096 + 16];
    for (size_t i = (size_t)retain; i < n; i++) {
        rn__ckpt_name(ids[i], name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", root, name);
        /* Out of sight first (a rename, durable), then removed: a crash
         * in the middle must not leave what looks like a damaged
         * checkpoint, which recovery would report and a sink that cannot
         * take back its output would refuse. The next recovery removes
         * the rest. */
        snprintf(gone, sizeof(gone), "%s.deleting", path);
        rn_error_t e = RN_ERROR_INIT;
        if (rename(path, gone) != 0) {
            RN_LOG_WARN(root, "cannot remove old checkpoint %s: %s", path, strerror(errno));
            continue;
        }
        if (rn__fs_fsync_dir(root, &e) != RN_OK)
            RN_LOG_WARN(root, "%s", e.msg);
        rn__crash_point("ckpt.retention_mid");
        if (rn__fs_rm_tree(gone) != 0)
            RN_LOG_WARN(root, "cannot remove old checkpoint %s: %s", gone, strerror(errno));
    }
    /* Shared files: only those no retained checkpoint names. A retained
     * checkpoint whose metadata cannot be read stops the collection (its
     * files might be deleted otherwise). */
    json_t *set = json_object();
    if (keep != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(keep, i, v)
        {
            const char *p = json_string_value(v);
            if (p != NULL && strncmp(p, "shared/", 7) == 0)
                json_object_set_new(set, p + 7, json_true());
        }
    }
    bool ok = true;
    for (size_t i = 0; i < n && i < (size_t)retain; i++) {
        rn_error_t e = RN_ERROR_INIT;
        json_t *meta = rn__ckpt_read_meta(root, ids[i], &e);
        if (meta == NULL) {
            RN_LOG_WARN(root, "shared files kept: %s", e.msg);
            ok = false;
            break;
        }
        collect_shared(meta, set);
        json_decref(meta);
    }
    rn_free(ids);
    snprintf(path, sizeof(path), "%s/shared", root);
    DIR *d = ok ? opendir(path) : NULL;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || de->d_name[1] == '.'))
            continue;
        if (json_object_get(set, de->d_name) != NULL)
            continue;
        char f[4096 + 256];
        snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
        if (unlink(f) != 0 && errno != ENOENT)
            RN_LOG_WARN(root, "cannot remove %s: %s", f, strerror(errno));
        rn__crash_point("ckpt.retention_mid");
    }
    if (d != NULL)
        closedir(d);
    json_decref(set);
    return RN_OK;
}
