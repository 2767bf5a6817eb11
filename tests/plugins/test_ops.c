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
    return rc;
}
