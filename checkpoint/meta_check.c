/*
 * checkpoint/meta_check.c: every field of a checkpoint's or savepoint's
 * metadata checked against its type, its bounds and the other fields,
 * before anything of it is used (docs/checkpoints.md, storage layout).
 *
 * The checksum of the metadata says only that the bytes are those that
 * were written; a savepoint copied in, a tool that rewrote a field (and
 * the checksum with it) or a bug can still hand over metadata that no
 * run of runnel writes. Such metadata is damage, reported with the file
 * and the field, and recovery treats the checkpoint as damaged (it goes
 * back where the sinks allow, else refuses).
 *
 * What the metadata alone can tell: the types; ids, counts and ranges in
 * their bounds; each component's instances exactly 0..parallelism-1,
 * once each; a keyed instance's key groups exactly the range runnel gives
 * it; a finished instance at the end of time (an instance finishes by
 * advancing its watermark to the end) and without state, a keyed one that
 * is not finished with its state; a sink's pending length the size of the
 * file it hands over; the total size the sum of the files'. Files are
 * checked against the disk by rn__ckpt_verify, positions against the job
 * by the components that restore them.
 *
 * @thread any (no shared state).
 */
#include "checkpoint/ckpt.h"
#include "stream/key.h"

#include <stdio.h>
#include <string.h>

/* Key groups: runnel makes at most 32768 (state/rocksdb.c's layout). */
#define KG_MAX 32768
/* Instances of a component: far beyond any machine runnel runs on. */
#define PAR_MAX KG_MAX
#define STR_(x) #x
#define STR(x) STR_(x)

static bool
is_hex32(const char *s)
{
    if (s == NULL || strlen(s) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A path relative to the root: not empty, not absolute, no "..", no
 * empty component, at most 1024 bytes. */
static bool
rel_path(const char *p)
{
    if (p == NULL || p[0] == '\0' || p[0] == '/' || strlen(p) > 1024 ||
        strstr(p, "..") != NULL || strstr(p, "//") != NULL || p[strlen(p) - 1] == '/')
        return false;
    return true;
}

static bool
int_in(const json_t *v, json_int_t lo, json_int_t hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* A file entry {path, size, xxh3[, as]}; adds its size to *total. */
static rn_code_t
check_file(const char *file, const char *where, const char *field, const json_t *f, bool state,
           json_int_t *total, rn_error_t *err)
{
    if (!json_is_object(f))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: %s is not an object", file, where, field);
    const json_t *size = json_object_get(f, "size");
    if (!rel_path(json_string_value(json_object_get(f, "path"))))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: %s.path is not a relative path", file, where,
                        field);
    if (!int_in(size, 0, INT64_MAX / 4))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: %s.size is not a size in bytes", file, where,
                        field);
    if (!is_hex32(json_string_value(json_object_get(f, "xxh3"))))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: %s.xxh3 is not 32 hex digits", file, where,
                        field);
    const json_t *as = json_object_get(f, "as");
    if (state ? !rel_path(json_string_value(as)) : as != NULL)
        return rn__errf(err, RN_ECORRUPT, "%s: %s: %s.as is %s", file, where, field,
                        state ? "not a relative path" : "present on a sink's file");
    *total += json_integer_value(size);
    return RN_OK;
}

/* One part: parts[i]. seen: per component, a JSON array of booleans per
 * instance. */
static rn_code_t
check_part(const char *file, const json_t *meta, size_t i, const json_t *pj, json_t *seen,
           json_int_t *total, rn_error_t *err)
{
    char where[700];
    snprintf(where, sizeof(where), "parts[%zu]", i);
    if (!json_is_object(pj))
        return rn__errf(err, RN_ECORRUPT, "%s: %s is not an object", file, where);
    const char *node = json_string_value(json_object_get(pj, "node"));
    const json_t *par =
        json_object_get(json_object_get(meta, "parallelism"), node != NULL ? node : "");
    if (node == NULL || par == NULL)
        return rn__errf(err, RN_ECORRUPT, "%s: %s: node is not a component of the parallelism",
                        file, where);
    const json_t *inst = json_object_get(pj, "instance");
    if (!int_in(inst, 0, json_integer_value(par) - 1))
        return rn__errf(err, RN_ECORRUPT, "%s: %s ('%s'): instance is not one of its %lld",
                        file, where, node, (long long)json_integer_value(par));
    int in = (int)json_integer_value(inst);
    snprintf(where, sizeof(where), "parts[%zu] ('%.500s' #%d)", i, node, in);
    json_t *s = json_object_get(seen, node);
    if (json_is_true(json_array_get(s, (size_t)in)))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: a second part of that instance", file, where);
    json_array_set_new(s, (size_t)in, json_true());

    const json_t *fin = json_object_get(pj, "finished");
    const json_t *wm = json_object_get(pj, "wm");
    if (!json_is_boolean(fin))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: finished is not true or false", file, where);
    if (!json_is_integer(wm))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: wm is not an integer", file, where);
    bool finished = json_is_true(fin);
    if (finished && json_integer_value(wm) != RN_TS_MAX)
        return rn__errf(err, RN_ECORRUPT,
                        "%s: %s: finished, but wm %lld is not the end of time (an instance "
                        "finishes by advancing its watermark to the end)",
                        file, where, (long long)json_integer_value(wm));
    const json_t *data = json_object_get(pj, "data");
    if (data != NULL && !json_is_object(data) && !json_is_null(data))
        return rn__errf(err, RN_ECORRUPT, "%s: %s: data is not an object", file, where);

    json_int_t sub = 0;
    const json_t *f = json_object_get(pj, "file");
    bool has_file = f != NULL && !json_is_null(f);
    if (has_file && check_file(file, where, "file", f, false, &sub, err) != RN_OK)
        return RN_ECORRUPT;
    /* The file sink hands over its pending bytes and says how many. */
    const json_t *len = json_object_get(data, "len");
    if (len != NULL) {
        json_int_t want = has_file ? json_integer_value(json_object_get(f, "size")) : 0;
        if (!json_is_integer(len) || json_integer_value(len) != want)
            return rn__errf(err, RN_ECORRUPT,
                            "%s: %s: data.len is not the size of its file (%lld bytes)", file,
                            where, (long long)want);
    }

    const json_t *kg = json_object_get(pj, "key_groups");
    const json_t *state = json_object_get(pj, "state");
    if (kg != NULL) {
        uint32_t first, last;
        json_int_t maxp = json_integer_value(json_object_get(meta, "max_parallelism"));
        rn__key_group_range((uint32_t)in, (uint32_t)maxp, (uint32_t)json_integer_value(par),
                            &first, &last);
        if (!json_is_array(kg) || json_array_size(kg) != 2 ||
            !int_in(json_array_get(kg, 0), first, first) ||
            !int_in(json_array_get(kg, 1), last, last))
            return rn__errf(err, RN_ECORRUPT,
                            "%s: %s: key_groups is not [%u, %u], that instance's of %lld", file,
                            where, first, last, (long long)maxp);
        if (!finished && !json_is_array(state))
            return rn__errf(err, RN_ECORRUPT,
                            "%s: %s: a keyed instance that had not finished, without state",
                            file, where);
    }
    if (state != NULL) {
        if (!json_is_array(state) || kg == NULL || finished)
            return rn__errf(err, RN_ECORRUPT,
                            "%s: %s: state on an instance that is %s", file, where,
                            kg == NULL ? "not keyed" : "finished");
        bool handle = false;
        size_t j;
        const json_t *sf;
        json_array_foreach(state, j, sf)
        {
            char field[32];
            snprintf(field, sizeof(field), "state[%zu]", j);
            if (check_file(file, where, field, sf, true, &sub, err) != RN_OK)
                return RN_ECORRUPT;
            handle = handle || strcmp(json_string_value(json_object_get(sf, "as")), "handle") == 0;
        }
        if (!handle)
            return rn__errf(err, RN_ECORRUPT, "%s: %s: state without its handle file", file,
                            where);
    }
    *total += sub;
    return RN_OK;
}

rn_code_t
rn__ckpt_check_meta(const char *file, const json_t *meta, rn_error_t *err)
{
    const json_t *kind = json_object_get(meta, "kind");
    const char *mode = json_string_value(json_object_get(meta, "mode"));
    const char *job = json_string_value(json_object_get(meta, "job"));
    const json_t *parts = json_object_get(meta, "parts");
    const json_t *pars = json_object_get(meta, "parallelism");
    const char *bad = NULL;
    if (!json_is_object(meta))
        bad = "the metadata is not an object";
    else if (!int_in(json_object_get(meta, "format"), RN_CKPT_FORMAT, RN_CKPT_FORMAT))
        bad = "format is not " STR(RN_CKPT_FORMAT);
    else if (kind != NULL &&
             (!json_is_string(kind) || strcmp(json_string_value(kind), "savepoint") != 0))
        bad = "kind is not \"savepoint\"";
    else if (job == NULL || job[0] == '\0')
        bad = "job is not a name";
    else if (!int_in(json_object_get(meta, "id"), 1, INT64_MAX / 2))
        bad = "id is not a checkpoint number";
    else if (!int_in(json_object_get(meta, "time_ms"), 0, INT64_MAX / 2))
        bad = "time_ms is not a time";
    else if (mode == NULL ||
             (strcmp(mode, "exactly-once") != 0 && strcmp(mode, "at-least-once") != 0))
        bad = "mode is not exactly-once or at-least-once";
    else if (!int_in(json_object_get(meta, "max_parallelism"), 1, KG_MAX))
        bad = "max_parallelism is not 1.." STR(KG_MAX);
    else if (!int_in(json_object_get(meta, "size"), 0, INT64_MAX / 2) ||
             !int_in(json_object_get(meta, "added"), 0, INT64_MAX / 2))
        bad = "size or added is not a size in bytes";
    else if (!json_is_object(pars) || json_object_size(pars) == 0)
        bad = "parallelism is not an object of components";
    else if (!json_is_array(parts))
        bad = "parts is not an array";
    if (bad != NULL)
        return rn__errf(err, RN_ECORRUPT, "%s: %s", file, bad);

    json_t *seen = json_object();
    const char *node;
    const json_t *p;
    json_object_foreach((json_t *)pars, node, p)
    {
        if (!int_in(p, 1, PAR_MAX)) {
            json_decref(seen);
            return rn__errf(err, RN_ECORRUPT, "%s: parallelism of '%s' is not 1.." STR(PAR_MAX),
                            file, node);
        }
        json_t *arr = json_array();
        for (json_int_t k = 0; k < json_integer_value(p); k++)
            json_array_append_new(arr, json_false());
        json_object_set_new(seen, node, arr);
    }
    json_int_t total = 0;
    size_t i;
    const json_t *pj;
    rn_code_t rc = RN_OK;
    json_array_foreach(parts, i, pj)
    {
        if ((rc = check_part(file, meta, i, pj, seen, &total, err)) != RN_OK)
            break;
    }
    /* Every instance of every component has its part. */
    json_t *s;
    json_object_foreach(seen, node, s)
    {
        size_t k;
        json_t *b;
        json_array_foreach(s, k, b)
        {
            if (rc == RN_OK && !json_is_true(b))
                rc = rn__errf(err, RN_ECORRUPT, "%s: parts: no part of '%s' #%zu", file, node, k);
        }
    }
    json_decref(seen);
    if (rc == RN_OK && total != json_integer_value(json_object_get(meta, "size")))
        rc = rn__errf(err, RN_ECORRUPT,
                      "%s: size %lld is not the sum of its files' sizes (%lld bytes)", file,
                      (long long)json_integer_value(json_object_get(meta, "size")),
                      (long long)total);
    return rc;
}
