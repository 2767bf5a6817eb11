/*
 * tests/plugins/test_ops.c: a plugin for tests/integration/test_plugin.sh.
 * Built several times: as it is (libtest_ops.so), and with one of these
 * defined to give the loader a broken library:
 *   TEST_ABI=N           registers with ABI N instead of RN_ABI_VERSION;
 *   TEST_NO_INIT         exports no runnel_plugin_init;
 *   TEST_MISSING_SYMBOL  calls a function no runnel has (the load fails).
 *
 * Operators:
 *   threshold (config: {threshold: N}, required): a record with value >= N
 *     goes to the main output as {key, value, big: true}, a smaller one to
 *     the side output `small` as {id, value}; value -1 fails the job. At
 *     the end each instance emits {key: "#count", value: records it saw,
 *     big: false}, from per-instance data kept since open.
 *   doubler (no plan: the input's schema): the record with value * 2.
 *   per_second (keyed): a tumbling window of 1 s per key built from keyed
 *     state and event-time timers, to be compared with window_aggregate's
 *     count(), sum(value) and count_distinct(value). Per window end (8
 *     bytes big-endian): a map "acc" -> {n, total}, a map "distinct"
 *     (end, value) -> "", an entry in the list "pending" and a timer at
 *     end - 1. The timer emits {key, window_end, n, total, distinct,
 *     windows, listed, fired_sum}: windows counts the key's fired windows
 *     (a value state), listed says the end was in "pending" (then taken
 *     out of it), fired_sum is the sum of the key's fired window ends (a
 *     reducing state). All of it deterministic, whatever the batches.
 *   probe (keyed by an int): the rest of the API. Per record, to the main
 *     output {id, v_float, checks}: checks is true when the getters and
 *     instance calls answer as they must. The first record of a key sets
 *     a processing-time timer 20 ms on and an event-time timer that it
 *     deletes at once (it must never fire). The processing-time timer
 *     emits {k, ok} to the side output `proc`: ok when the key decodes to
 *     the int, and the value and map states of the key clear.
 */
#include <runnel/plugin.h>

#include <stdlib.h>
#include <string.h>

#ifndef TEST_ABI
#define TEST_ABI RN_ABI_VERSION
#endif

#ifdef TEST_MISSING_SYMBOL
int rn_pf_not_in_any_runnel(rn_pf_t *f);
#endif

typedef struct thr {
    long long seen;
    int64_t threshold;
    int f_id, f_key, f_value;         /* input fields */
    int small, o_key, o_value, o_big; /* outputs */
    int s_id, s_value;
} thr_t;

static int
threshold_of(const rn_conf_t *config, int64_t *out, rn_error_t *err)
{
    const char *t = config ? rn_conf_scalar(rn_conf_get(config, "threshold")) : NULL;
    char *end;
    if (t == NULL)
        return rn_pf_fail(NULL, err, RN_EINVAL, "config needs threshold (an integer)");
    *out = strtoll(t, &end, 10);
    if (*end != '\0')
        return rn_pf_fail(NULL, err, RN_EINVAL, "threshold '%s' is not an integer", t);
    return RN_OK;
}

static int
thr_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    int64_t t;
    rn_type_t ty;
    int rc = threshold_of(rn_pf_plan_config(p), &t, err);
    if (rc != RN_OK)
        return rc;
    if (rn_pf_plan_input_field(p, "value", &ty) < 0 || ty != RN_TYPE_INT)
        return rn_pf_fail(NULL, err, RN_EINVAL, "the input needs an int field 'value'");
    if ((rc = rn_pf_plan_output(p, NULL, "key", RN_TYPE_STRING, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "value", RN_TYPE_INT, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "big", RN_TYPE_BOOL, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, "small", "id", RN_TYPE_INT, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, "small", "value", RN_TYPE_INT, err)) != RN_OK)
        return rc;
    return RN_OK;
}

static int
thr_open(rn_pf_t *f, rn_error_t *err)
{
    thr_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    int rc = threshold_of(rn_pf_config(f), &s->threshold, err);
    if (rc != RN_OK) {
        free(s);
        return rc;
    }
    s->f_id = rn_pf_field(f, "id");
    s->f_key = rn_pf_field(f, "key");
    s->f_value = rn_pf_field(f, "value");
    s->small = rn_pf_port(f, "small");
    s->o_key = rn_pf_out_field(f, 0, "key");
    s->o_value = rn_pf_out_field(f, 0, "value");
    s->o_big = rn_pf_out_field(f, 0, "big");
    s->s_id = rn_pf_out_field(f, s->small, "id");
    s->s_value = rn_pf_out_field(f, s->small, "value");
    rn_pf_set_data(f, s);
    return RN_OK;
}

static int
thr_process(rn_pf_t *f, rn_error_t *err)
{
    thr_t *s = rn_pf_data(f);
    int64_t v = rn_pf_get_int(f, s->f_value);
    int rc;
#ifdef TEST_MISSING_SYMBOL
    rn_pf_not_in_any_runnel(f);
#endif
    s->seen++;
    if (v == -1)
        return rn_pf_fail(f, err, RN_EDATA, "record %lld has value -1",
                          (long long)rn_pf_get_int(f, s->f_id));
    if (v >= s->threshold) {
        size_t len;
        const char *k = rn_pf_get_string(f, s->f_key, &len);
        if ((rc = rn_pf_out_begin(f, 0, err)) != RN_OK)
            return rc;
        rn_pf_out_set_string(f, s->o_key, k, len);
        rn_pf_out_set_int(f, s->o_value, v);
        rn_pf_out_set_bool(f, s->o_big, true);
    } else {
        if ((rc = rn_pf_out_begin(f, s->small, err)) != RN_OK)
            return rc;
        rn_pf_out_set_int(f, s->s_id, rn_pf_get_int(f, s->f_id));
        rn_pf_out_set_int(f, s->s_value, v);
    }
    return RN_OK;
}

static int
thr_finish(rn_pf_t *f, rn_error_t *err)
{
    thr_t *s = rn_pf_data(f);
    int rc = rn_pf_out_begin(f, 0, err);
    if (rc != RN_OK)
        return rc;
    rn_pf_out_set_string(f, s->o_key, "#count", 6);
    rn_pf_out_set_int(f, s->o_value, s->seen);
    rn_pf_out_set_bool(f, s->o_big, false);
    return RN_OK;
}

static void
thr_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static int
dbl_process(rn_pf_t *f, rn_error_t *err)
{
    int rc = rn_pf_out_begin(f, 0, err); /* a copy of the record */
    if (rc != RN_OK)
        return rc;
    int v = rn_pf_field(f, "value");
    rn_pf_out_set_int(f, rn_pf_out_field(f, 0, "value"), rn_pf_get_int(f, v) * 2);
    return RN_OK;
}

/* ---- per_second ---- */

typedef struct ps {
    rn_pf_map_t *acc, *distinct;
    rn_pf_list_t *pending;
    rn_pf_value_t *windows, *fired;
    int f_value;
    int o_key, o_end, o_n, o_total, o_distinct, o_windows, o_listed, o_fired;
} ps_t;

typedef struct acc {
    int64_t n, total;
} acc_t;

static void
be64(unsigned char *p, int64_t v)
{
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        p[i] = (unsigned char)(v & 0xff);
}

static void
add_i64(const void *ctx, void *dst, const void *src)
{
    (void)ctx;
    int64_t a, b;
    memcpy(&a, dst, 8);
    memcpy(&b, src, 8);
    a += b;
    memcpy(dst, &a, 8);
}

static int
ps_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    static const struct {
        const char *name;
        rn_type_t type;
    } out[] = {{"key", RN_TYPE_STRING}, {"window_end", RN_TYPE_TIMESTAMP}, {"n", RN_TYPE_INT},
               {"total", RN_TYPE_INT}, {"distinct", RN_TYPE_INT}, {"windows", RN_TYPE_INT},
               {"listed", RN_TYPE_BOOL}, {"fired_sum", RN_TYPE_INT}};
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        int rc = rn_pf_plan_output(p, NULL, out[i].name, out[i].type, err);
        if (rc != RN_OK)
            return rc;
    }
    return RN_OK;
}

static int
ps_open(rn_pf_t *f, rn_error_t *err)
{
    ps_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    if ((s->acc = rn_pf_map_state(f, "acc", err)) == NULL ||
        (s->distinct = rn_pf_map_state(f, "distinct", err)) == NULL ||
        (s->pending = rn_pf_list_state(f, "pending", err)) == NULL ||
        (s->windows = rn_pf_value_state(f, "windows", err)) == NULL ||
        (s->fired = rn_pf_reducing_state(f, "fired_sum", 8, add_i64, err)) == NULL) {
        free(s);
        return err->code;
    }
    s->f_value = rn_pf_field(f, "value");
    s->o_key = rn_pf_out_field(f, 0, "key");
    s->o_end = rn_pf_out_field(f, 0, "window_end");
    s->o_n = rn_pf_out_field(f, 0, "n");
    s->o_total = rn_pf_out_field(f, 0, "total");
    s->o_distinct = rn_pf_out_field(f, 0, "distinct");
    s->o_windows = rn_pf_out_field(f, 0, "windows");
    s->o_listed = rn_pf_out_field(f, 0, "listed");
    s->o_fired = rn_pf_out_field(f, 0, "fired_sum");
    rn_pf_set_data(f, s);
    return RN_OK;
}

static int
ps_process(rn_pf_t *f, rn_error_t *err)
{
    ps_t *s = rn_pf_data(f);
    int64_t ts = rn_pf_timestamp(f), v = rn_pf_get_int(f, s->f_value);
    int64_t end = (ts / 1000 + 1) * 1000;
    unsigned char k[16];
    be64(k, end);
    be64(k + 8, v);
    acc_t a = {0, 0};
    const void *val;
    size_t len;
    int rc = rn_pf_map_get(s->acc, k, 8, &val, &len, err);
    if (rc == RN_OK && len == sizeof(a)) {
        memcpy(&a, val, sizeof(a));
    } else if (rc == RN_ENOTFOUND) {
        if ((rc = rn_pf_list_add(s->pending, &end, 8, err)) != RN_OK ||
            (rc = rn_pf_timer_register(f, RN_PF_EVENT_TIME, end - 1, err)) != RN_OK)
            return rc;
    } else {
        return rc != RN_OK ? rc : rn_pf_fail(f, err, RN_EINVAL, "acc of %zu bytes", len);
    }
    a.n++;
    a.total += v;
    if ((rc = rn_pf_map_put(s->acc, k, 8, &a, sizeof(a), err)) != RN_OK)
        return rc;
    return rn_pf_map_put(s->distinct, k, 16, "", 0, err);
}

/* The distinct map's keys of one window end, counted and collected. */
typedef struct ends {
    int64_t end;
    unsigned char (*keys)[16];
    size_t n, cap;
    bool listed;
    int64_t *rest; /* pending ends other than end */
    size_t nrest;
} ends_t;

static int
collect_distinct(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    (void)v;
    (void)vlen;
    ends_t *e = ctx;
    unsigned char want[8];
    be64(want, e->end);
    if (klen != 16 || memcmp(k, want, 8) != 0)
        return 0;
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        void *nk = realloc(e->keys, e->cap * 16);
        if (nk == NULL)
            return RN_ENOMEM;
        e->keys = nk;
    }
    memcpy(e->keys[e->n++], k, 16);
    return 0;
}

static int
collect_pending(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    (void)k;
    (void)klen;
    ends_t *e = ctx;
    int64_t end;
    if (vlen != 8)
        return RN_EINVAL;
    memcpy(&end, v, 8);
    if (end == e->end) {
        e->listed = true;
        return 0;
    }
    int64_t *r = realloc(e->rest, (e->nrest + 1) * sizeof(*r));
    if (r == NULL)
        return RN_ENOMEM;
    e->rest = r;
    e->rest[e->nrest++] = end;
    return 0;
}

static int
ps_on_timer(rn_pf_t *f, int64_t time, int domain, rn_error_t *err)
{
    ps_t *s = rn_pf_data(f);
    if (domain != RN_PF_EVENT_TIME)
        return rn_pf_fail(f, err, RN_EINVAL, "a processing-time timer nobody registered");
    ends_t e = {.end = time + 1};
    unsigned char k[8];
    be64(k, e.end);
    acc_t a;
    const void *val;
    size_t len;
    int64_t windows = 0, fired = 0;
    int rc = rn_pf_map_get(s->acc, k, 8, &val, &len, err);
    if (rc != RN_OK)
        return rc == RN_ENOTFOUND ? rn_pf_fail(f, err, RN_EINVAL, "a timer without its window") : rc;
    memcpy(&a, val, sizeof(a));
    if ((rc = rn_pf_map_remove(s->acc, k, 8, err)) != RN_OK)
        goto out;
    if ((rc = rn_pf_map_each(s->distinct, collect_distinct, &e, err)) != RN_OK)
        goto out;
    for (size_t i = 0; i < e.n; i++)
        if ((rc = rn_pf_map_remove(s->distinct, e.keys[i], 16, err)) != RN_OK)
            goto out;
    if ((rc = rn_pf_list_each(s->pending, collect_pending, &e, err)) != RN_OK ||
        (rc = rn_pf_list_clear(s->pending, err)) != RN_OK)
        goto out;
    for (size_t i = 0; i < e.nrest; i++)
        if ((rc = rn_pf_list_add(s->pending, &e.rest[i], 8, err)) != RN_OK)
            goto out;
    rc = rn_pf_value_get(s->windows, &val, &len, err);
    if (rc == RN_OK && len == 8)
        memcpy(&windows, val, 8);
    else if (rc != RN_ENOTFOUND)
        goto out;
    windows++;
    if ((rc = rn_pf_value_put(s->windows, &windows, 8, err)) != RN_OK ||
        (rc = rn_pf_reduce(s->fired, &e.end, err)) != RN_OK)
        goto out;
    if ((rc = rn_pf_value_get(s->fired, &val, &len, err)) != RN_OK)
        goto out;
    memcpy(&fired, val, 8);
    size_t klen;
    const char *key = rn_pf_key_string(f, 0, &klen);
    if ((rc = rn_pf_out_begin(f, 0, err)) != RN_OK)
        goto out;
    rn_pf_out_set_string(f, s->o_key, key, klen);
    rn_pf_out_set_int(f, s->o_end, e.end);
    rn_pf_out_set_int(f, s->o_n, a.n);
    rn_pf_out_set_int(f, s->o_total, a.total);
    rn_pf_out_set_int(f, s->o_distinct, (int64_t)e.n);
    rn_pf_out_set_int(f, s->o_windows, windows);
    rn_pf_out_set_bool(f, s->o_listed, e.listed);
    rn_pf_out_set_int(f, s->o_fired, fired);
out:
    free(e.keys);
    free(e.rest);
    return rc;
}

static void
ps_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_process_fn_t per_second_fn = {
    .size = sizeof(rn_process_fn_t),
    .name = "per_second",
    .plan = ps_plan,
    .open = ps_open,
    .process = ps_process,
    .close = ps_close,
    .on_timer = ps_on_timer,
};

/* ---- probe ---- */

typedef struct probe {
    rn_pf_value_t *first;
    rn_pf_map_t *marks;
    int f_id, f_value, f_flag, f_none;
    int proc, o_id, o_vf, o_checks, p_k, p_ok;
} probe_t;

static int
probe_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    int rc = rn_pf_plan_output(p, NULL, "id", RN_TYPE_INT, err);
    if (rc == RN_OK)
        rc = rn_pf_plan_output(p, NULL, "v_float", RN_TYPE_FLOAT, err);
    if (rc == RN_OK)
        rc = rn_pf_plan_output(p, NULL, "checks", RN_TYPE_BOOL, err);
    if (rc == RN_OK)
        rc = rn_pf_plan_output(p, NULL, "nothing", RN_TYPE_STRING, err);
    if (rc == RN_OK)
        rc = rn_pf_plan_output(p, "proc", "k", RN_TYPE_INT, err);
    if (rc == RN_OK)
        rc = rn_pf_plan_output(p, "proc", "ok", RN_TYPE_BOOL, err);
    return rc;
}

static int
probe_open(rn_pf_t *f, rn_error_t *err)
{
    probe_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    if ((s->first = rn_pf_value_state(f, "first", err)) == NULL ||
        (s->marks = rn_pf_map_state(f, "marks", err)) == NULL) {
        free(s);
        return err->code;
    }
    s->f_id = rn_pf_field(f, "id");
    s->f_value = rn_pf_field(f, "value");
    s->f_flag = rn_pf_field(f, "flag");
    s->f_none = rn_pf_field(f, "no_such_field");
    s->proc = rn_pf_port(f, "proc");
    s->o_id = rn_pf_out_field(f, 0, "id");
    s->o_vf = rn_pf_out_field(f, 0, "v_float");
    s->o_checks = rn_pf_out_field(f, 0, "checks");
    s->p_k = rn_pf_out_field(f, s->proc, "k");
    s->p_ok = rn_pf_out_field(f, s->proc, "ok");
    rn_pf_set_data(f, s);
    return RN_OK;
}

static int
probe_process(rn_pf_t *f, rn_error_t *err)
{
    probe_t *s = rn_pf_data(f);
    int64_t v = rn_pf_get_int(f, s->f_value);
    size_t len;
    bool checks = s->f_none == -1 && rn_pf_is_null(f, s->f_none) &&
                  rn_pf_get_bool(f, s->f_flag) == (v % 2 == 0) && !rn_pf_is_null(f, s->f_flag) &&
                  rn_pf_get_string(f, s->f_value, &len) == NULL && len == 0 &&
                  rn_pf_key_int(f, 0) == v && rn_pf_instance(f) >= 0 &&
                  rn_pf_instance(f) < rn_pf_parallelism(f) && rn_pf_parallelism(f) == 2 &&
                  strcmp(rn_pf_name(f), "op") == 0 && rn_pf_port(f, "nope") == -1 &&
                  rn_pf_now(f) > 1700000000000 && rn_pf_timestamp(f) >= rn_pf_watermark(f);
    int rc = rn_pf_out_begin(f, 0, err);
    if (rc != RN_OK)
        return rc;
    rn_pf_out_set_int(f, s->o_id, rn_pf_get_int(f, s->f_id));
    rn_pf_out_set_float(f, s->o_vf, rn_pf_get_float(f, s->f_value)); /* an int read as a float */
    rn_pf_out_set_bool(f, s->o_checks, checks);
    rn_pf_out_set_null(f, rn_pf_out_field(f, 0, "nothing"));
    const void *val;
    rc = rn_pf_value_get(s->first, &val, &len, err);
    if (rc != RN_ENOTFOUND)
        return rc;
    int64_t ts = rn_pf_timestamp(f);
    if ((rc = rn_pf_value_put(s->first, &ts, sizeof(ts), err)) != RN_OK ||
        (rc = rn_pf_map_put(s->marks, "x", 1, "1", 1, err)) != RN_OK ||
        (rc = rn_pf_timer_register(f, RN_PF_PROCESSING_TIME, rn_pf_now(f) + 20, err)) != RN_OK ||
        (rc = rn_pf_timer_register(f, RN_PF_EVENT_TIME, ts + 1, err)) != RN_OK)
        return rc;
    return rn_pf_timer_delete(f, RN_PF_EVENT_TIME, ts + 1, err);
}

static int
probe_on_timer(rn_pf_t *f, int64_t time, int domain, rn_error_t *err)
{
    probe_t *s = rn_pf_data(f);
    (void)time;
    if (domain != RN_PF_PROCESSING_TIME)
        return rn_pf_fail(f, err, RN_EINVAL, "a deleted event-time timer fired");
    const void *val;
    size_t len;
    bool ok = rn_pf_value_get(s->first, &val, &len, err) == RN_OK && len == 8 &&
              rn_pf_map_get(s->marks, "x", 1, &val, &len, err) == RN_OK && len == 1;
    int rc;
    if ((rc = rn_pf_value_clear(s->first, err)) != RN_OK ||
        (rc = rn_pf_map_clear(s->marks, err)) != RN_OK)
        return rc;
    ok = ok && rn_pf_value_get(s->first, &val, &len, err) == RN_ENOTFOUND &&
         rn_pf_map_get(s->marks, "x", 1, &val, &len, err) == RN_ENOTFOUND;
    if ((rc = rn_pf_out_begin(f, s->proc, err)) != RN_OK)
        return rc;
    rn_pf_out_set_int(f, s->p_k, rn_pf_key_int(f, 0));
    rn_pf_out_set_bool(f, s->p_ok, ok);
    return RN_OK;
}

static const rn_process_fn_t probe_fn = {
    .size = sizeof(rn_process_fn_t),
    .name = "probe",
    .plan = probe_plan,
    .open = probe_open,
    .process = probe_process,
    .close = thr_close, /* frees the data */
    .on_timer = probe_on_timer,
};

static const rn_process_fn_t threshold_fn = {
    .size = sizeof(rn_process_fn_t),
    .name = "threshold",
    .plan = thr_plan,
    .open = thr_open,
    .process = thr_process,
    .finish = thr_finish,
    .close = thr_close,
};

static const rn_process_fn_t doubler_fn = {
    .size = sizeof(rn_process_fn_t),
    .name = "doubler",
    .process = dbl_process,
};

#ifdef TEST_NO_INIT
int runnel_plugin_init_misspelt(rn_plugin_t *p, rn_error_t *err);
int
runnel_plugin_init_misspelt(rn_plugin_t *p, rn_error_t *err)
#else
int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
#endif
{
    int rc = rn_plugin_register(p, TEST_ABI, &threshold_fn, err);
    if (rc == RN_OK)
        rc = rn_plugin_register(p, TEST_ABI, &doubler_fn, err);
    if (rc == RN_OK)
        rc = rn_plugin_register(p, TEST_ABI, &per_second_fn, err);
    if (rc == RN_OK)
        rc = rn_plugin_register(p, TEST_ABI, &probe_fn, err);
    return rc;
}
