/*
 * tests/plugins/ext_connector.c: a source and a sink from a plugin
 * (runnel/connector.h), for tests/integration/test_plugin_connector.sh.
 * Built as build/tests/plugins/libext_connector.so; links nothing of
 * runnel's.
 *
 * Source "counter", bounded: rows {id int, key string ('k' + id % 4),
 * ts timestamp (1700000000000 + id ms)} for ids 0 .. count - 1, instance
 * i of p making ids i, i + p, ... Config:
 *   count     how many ids (default 1000; a negative one is refused);
 *   rate      ids per second for the whole source (default: no limit);
 *   per_poll  ids per poll at most (default 500);
 *   no_fields true: the plan declares no field (to be refused);
 *   null_ts   the id whose ts is null (to fail the job), default none.
 * Its position is the next id (8 bytes, little-endian); open checks that
 * a restored one is one of the instance's ids and prints to stderr
 * "counter I/P resumes at ID" (the test compares it with the output).
 *
 * Sink "append": each record as a line, the int, timestamp or string
 * fields named by config `fields` (default [id]) joined by ',', appended
 * (one write each) to the file config `path` names; flush and finish
 * fsync it. config fail_flush: true makes flush fail.
 */
#include <runnel/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TS0 1700000000000LL
#define MAX_FIELDS 8

/* ---- config helpers ---- */

static int
conf_int(const rn_conf_t *config, const char *key, long long dflt, long long *out,
         rn_error_t *err)
{
    const char *s = config ? rn_conf_scalar(rn_conf_get(config, key)) : NULL;
    char *end;
    *out = dflt;
    if (config != NULL && rn_conf_get(config, key) != NULL && s == NULL)
        return rn_pf_fail(NULL, err, RN_EINVAL, "config %s must be an integer", key);
    if (s == NULL)
        return RN_OK;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return rn_pf_fail(NULL, err, RN_EINVAL, "config %s '%s' is not an integer", key, s);
    return RN_OK;
}

static int
conf_true(const rn_conf_t *config, const char *key)
{
    const char *s = config ? rn_conf_scalar(rn_conf_get(config, key)) : NULL;
    return s != NULL && strcmp(s, "true") == 0;
}

/* ---- counter ---- */

typedef struct counter {
    long long count, per_poll, null_ts;
    double rate;       /* this instance's ids per second, 0: no limit */
    long long next;    /* the next id to make */
    long long step;    /* parallelism */
    long long made;    /* since open, for the rate */
    struct timespec t0; /* of the first poll */
    int started;
    int f_id, f_key, f_ts;
} counter_t;

static int
counter_config(const rn_conf_t *config, counter_t *c, rn_error_t *err)
{
    long long rate;
    int rc;
    if ((rc = conf_int(config, "count", 1000, &c->count, err)) != RN_OK ||
        (rc = conf_int(config, "rate", 0, &rate, err)) != RN_OK ||
        (rc = conf_int(config, "per_poll", 500, &c->per_poll, err)) != RN_OK ||
        (rc = conf_int(config, "null_ts", -1, &c->null_ts, err)) != RN_OK)
        return rc;
    if (c->count < 0)
        return rn_pf_fail(NULL, err, RN_EINVAL, "config count must not be negative (%lld)",
                          c->count);
    if (rate < 0 || c->per_poll < 1)
        return rn_pf_fail(NULL, err, RN_EINVAL, "config rate and per_poll must be positive");
    c->rate = (double)rate;
    return RN_OK;
}

static int
counter_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    counter_t c;
    int rc = counter_config(rn_pf_plan_config(p), &c, err);
    if (rc != RN_OK || conf_true(rn_pf_plan_config(p), "no_fields"))
        return rc;
    if ((rc = rn_pf_plan_output(p, NULL, "id", RN_TYPE_INT, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "key", RN_TYPE_STRING, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "ts", RN_TYPE_TIMESTAMP, err)) != RN_OK)
        return rc;
    return RN_OK;
}

static int
counter_open(rn_pf_t *f, const void *restored, size_t len, rn_error_t *err)
{
    counter_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    int rc = counter_config(rn_pf_config(f), c, err);
    long long inst = rn_pf_instance(f), par = rn_pf_parallelism(f);
    c->step = par;
    c->next = inst;
    c->rate /= (double)par;
    if (rc == RN_OK && restored != NULL) {
        const unsigned char *b = restored;
        unsigned long long v = 0;
        for (size_t i = 0; i < len && i < 8; i++)
            v |= (unsigned long long)b[i] << (8 * i);
        if (len != 8 || (long long)v < inst || ((long long)v - inst) % par != 0)
            rc = rn_pf_fail(f, err, RN_ECORRUPT,
                            "restored position is not one of instance %lld's ids", inst);
        c->next = (long long)v;
        fprintf(stderr, "counter %lld/%lld resumes at %lld\n", inst, par, c->next);
    }
    if (rc != RN_OK) {
        free(c);
        return rc;
    }
    c->f_id = rn_pf_out_field(f, 0, "id");
    c->f_key = rn_pf_out_field(f, 0, "key");
    c->f_ts = rn_pf_out_field(f, 0, "ts");
    rn_pf_set_data(f, c);
    return RN_OK;
}

static int
counter_poll(rn_pf_t *f, bool *done, rn_error_t *err)
{
    counter_t *c = rn_pf_data(f);
    long long n = c->per_poll;
    if (c->next >= c->count) {
        *done = true;
        return RN_OK;
    }
    if (c->rate > 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!c->started) {
            c->t0 = now;
            c->started = 1;
        }
        double secs = (double)(now.tv_sec - c->t0.tv_sec) + (double)(now.tv_nsec - c->t0.tv_nsec) / 1e9;
        long long due = (long long)(secs * c->rate) + 1 - c->made;
        if (due <= 0)
            return RN_EAGAIN;
        n = due < n ? due : n;
    }
    for (long long k = 0; k < n && c->next < c->count; k++) {
        int rc = rn_pf_out_begin(f, 0, err);
        if (rc != RN_OK)
            return rc;
        char key[8];
        int klen = snprintf(key, sizeof(key), "k%lld", c->next % 4);
        rn_pf_out_set_int(f, c->f_id, c->next);
        rn_pf_out_set_string(f, c->f_key, key, (size_t)klen);
        if (c->next != c->null_ts)
            rn_pf_out_set_int(f, c->f_ts, TS0 + c->next);
        c->next += c->step;
        c->made++;
    }
    *done = c->next >= c->count;
    return RN_OK;
}

static int
counter_snapshot(rn_pf_t *f, rn_pf_pos_t *pos, rn_error_t *err)
{
    counter_t *c = rn_pf_data(f);
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((unsigned long long)c->next >> (8 * i));
    return rn_pf_pos_set(pos, b, sizeof(b), err);
}

static void
counter_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_source_fn_t counter_fn = {
    .size = sizeof(rn_source_fn_t),
    .name = "counter",
    .plan = counter_plan,
    .open = counter_open,
    .poll = counter_poll,
    .snapshot = counter_snapshot,
    .close = counter_close,
    .bounded = true,
};

/* ---- append ---- */

typedef struct append {
    int fd;
    int n;
    int field[MAX_FIELDS];
    int fail_flush;
    char path[4096];
} append_t;

/* The names in config `fields` (default: id). @returns how many. */
static int
field_names(const rn_conf_t *config, const char *names[MAX_FIELDS])
{
    const rn_conf_t *list = config ? rn_conf_get(config, "fields") : NULL;
    if (list == NULL) {
        names[0] = "id";
        return 1;
    }
    size_t n = rn_conf_kind(list) == RN_CONF_SEQ ? rn_conf_len(list) : 1;
    int k = 0;
    for (size_t i = 0; i < n && k < MAX_FIELDS; i++) {
        const rn_conf_t *item = rn_conf_kind(list) == RN_CONF_SEQ ? rn_conf_at(list, i) : list;
        names[k++] = rn_conf_scalar(item);
    }
    return k;
}

static int
append_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    const rn_conf_t *config = rn_pf_plan_config(p);
    const char *path = config ? rn_conf_scalar(rn_conf_get(config, "path")) : NULL;
    if (path == NULL || path[0] == '\0')
        return rn_pf_fail(NULL, err, RN_EINVAL, "config needs path (the file to append to)");
    const char *names[MAX_FIELDS];
    int n = field_names(config, names);
    for (int i = 0; i < n; i++) {
        rn_type_t t;
        if (names[i] == NULL || rn_pf_plan_input_field(p, names[i], &t) < 0)
            return rn_pf_fail(NULL, err, RN_EINVAL, "the input has no field '%s'",
                              names[i] ? names[i] : "?");
        if (t != RN_TYPE_INT && t != RN_TYPE_TIMESTAMP && t != RN_TYPE_STRING)
            return rn_pf_fail(NULL, err, RN_EINVAL,
                              "field '%s': append writes int, timestamp and string fields",
                              names[i]);
    }
    return RN_OK;
}

static int
append_open(rn_pf_t *f, rn_error_t *err)
{
    const rn_conf_t *config = rn_pf_config(f);
    append_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    snprintf(a->path, sizeof(a->path), "%s", rn_conf_scalar(rn_conf_get(config, "path")));
    const char *names[MAX_FIELDS];
    a->n = field_names(config, names);
    for (int i = 0; i < a->n; i++)
        a->field[i] = rn_pf_field(f, names[i]);
    a->fail_flush = conf_true(config, "fail_flush");
    a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (a->fd < 0) {
        int e = errno;
        free(a);
        return rn_pf_fail(f, err, RN_EIO, "%s: %s", rn_conf_scalar(rn_conf_get(config, "path")),
                          strerror(e));
    }
    rn_pf_set_data(f, a);
    return RN_OK;
}

static int
append_write(rn_pf_t *f, rn_error_t *err)
{
    append_t *a = rn_pf_data(f);
    char line[1024];
    size_t len = 0;
    for (int i = 0; i < a->n && len < sizeof(line) - 40; i++) {
        size_t slen;
        const char *s = rn_pf_get_string(f, a->field[i], &slen);
        if (i > 0)
            line[len++] = ',';
        if (rn_pf_is_null(f, a->field[i]))
            len += (size_t)snprintf(line + len, sizeof(line) - len, "null");
        else if (s != NULL)
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%.*s",
                                    (int)(slen < 512 ? slen : 512), s);
        else
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%lld",
                                    (long long)rn_pf_get_int(f, a->field[i]));
    }
    line[len++] = '\n';
    if (write(a->fd, line, len) != (ssize_t)len)
        return rn_pf_fail(f, err, RN_EIO, "%s: %s", a->path, strerror(errno));
    return RN_OK;
}

static int
append_flush(rn_pf_t *f, rn_error_t *err)
{
    append_t *a = rn_pf_data(f);
    if (a->fail_flush)
        return rn_pf_fail(f, err, RN_EIO, "%s: the disk said no (fail_flush)", a->path);
    if (fsync(a->fd) != 0)
        return rn_pf_fail(f, err, RN_EIO, "%s: fsync: %s", a->path, strerror(errno));
    return RN_OK;
}

static int
append_finish(rn_pf_t *f, rn_error_t *err)
{
    append_t *a = rn_pf_data(f);
    if (fsync(a->fd) != 0)
        return rn_pf_fail(f, err, RN_EIO, "%s: fsync: %s", a->path, strerror(errno));
    return RN_OK;
}

static void
append_close(rn_pf_t *f)
{
    append_t *a = rn_pf_data(f);
    close(a->fd);
    free(a);
}

static const rn_sink_fn_t append_fn = {
    .size = sizeof(rn_sink_fn_t),
    .name = "append",
    .plan = append_plan,
    .open = append_open,
    .write = append_write,
    .flush = append_flush,
    .finish = append_finish,
    .close = append_close,
};

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    int rc = rn_plugin_register_source(p, RN_ABI_VERSION, &counter_fn, err);
    if (rc == RN_OK)
        rc = rn_plugin_register_sink(p, RN_ABI_VERSION, &append_fn, err);
    return rc;
}
