/*
 * tests/unit/test_datastream.c: the DataStream-like builder
 * (include/runnel/datastream.h) and process functions a program registers
 * itself (rn_process_fn_register): a job built in C runs and gives the
 * output its process function computes; the first mistake made while
 * building is the one reported, with its component; a YAML job names a
 * program's process function without a library; two functions under one
 * name are refused; a scalar and an aggregate function the program
 * registers itself (rn_plugin_register_scalar/_aggregate with no plugin)
 * are used by a filter, a map and a window, and registering them again is
 * a no-op while another table under a taken name is refused.
 */
#include "rn_check.h"

#include <runnel/runnel.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[512];

static const char *
fresh_dir(const char *name)
{
    const char *base = getenv("RN_TEST_TMP") ? getenv("RN_TEST_TMP") : "/tmp";
    mkdir(base, 0755);
    snprintf(tmpdir, sizeof(tmpdir), "%s/datastream.%s.%d", base, name, (int)getpid());
    mkdir(tmpdir, 0700);
    return tmpdir;
}

static long
count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[1024];
    long n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (needle == NULL || strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

/* tens: emits {value, tens: value / 10} for values divisible by 10. */
static int
tens_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    int rc = rn_pf_plan_output(p, NULL, "value", RN_TYPE_INT, err);
    return rc == RN_OK ? rn_pf_plan_output(p, NULL, "tens", RN_TYPE_INT, err) : rc;
}

static int
tens_process(rn_pf_t *f, rn_error_t *err)
{
    int64_t v = rn_pf_get_int(f, rn_pf_field(f, "value"));
    if (v % 10 != 0)
        return RN_OK;
    int rc = rn_pf_out_begin(f, 0, err);
    if (rc != RN_OK)
        return rc;
    rn_pf_out_set_int(f, rn_pf_out_field(f, 0, "value"), v);
    rn_pf_out_set_int(f, rn_pf_out_field(f, 0, "tens"), v / 10);
    return RN_OK;
}

static int
other_process(rn_pf_t *f, rn_error_t *err)
{
    (void)f;
    (void)err;
    return RN_OK;
}

static const rn_process_fn_t tens = {
    .size = sizeof(rn_process_fn_t),
    .name = "tens",
    .plan = tens_plan,
    .process = tens_process,
};

START_TEST(test_datastream_runs_a_process_function)
{
    const char *dir = fresh_dir("run");
    char settings[1024], out[600];
    snprintf(out, sizeof(out), "%s/out.jsonl", dir);
    rn_error_t err = RN_ERROR_INIT;
    rn_env_t *env = rn_env_new("ds");
    rn_env_set(env, "state.backend", "memory");
    rn_stream_t *s = rn_source(env, "gen", "datagen", "{events: 1000, keys: 4, event_time: ts}");
    s = rn_filter(s, "small", "value < 500");
    s = rn_process(s, "tens", &tens, NULL);
    snprintf(settings, sizeof(settings), "{path: '%s'}", out);
    rn_sink(s, "out", "file", settings);
    rn_job_t *job = rn_env_job(env, NULL, &err);
    ck_assert_msg(job != NULL, "%s", err.msg);
    ck_assert_rn_ok(rn_job_run(job, &err), &err);
    rn_job_destroy(job);
    /* values 0..499 once each (1000 ids, value = id % 1000): 50 tens. */
    ck_assert_int_eq(count_lines(out, NULL), 50);
    ck_assert_int_eq(count_lines(out, "{\"value\":120,\"tens\":12}"), 1);
}
END_TEST

START_TEST(test_datastream_first_mistake_is_reported)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_env_t *env = rn_env_new("ds");
    rn_stream_t *s = rn_source(env, "gen", "datagen", "{events: 10}");
    /* A window on a stream that is not keyed; what follows does nothing. */
    rn_stream_t *w = rn_window(s, "per_key", "{type: tumbling, size: 1s}", "{n: count()}");
    ck_assert_ptr_null(w);
    rn_sink(rn_filter(s, "f", "nope > 1"), "out", "stdout", NULL);
    ck_assert_ptr_null(rn_env_job(env, NULL, &err));
    ck_assert_msg(strstr(err.msg, "per_key: a window needs a keyed stream") != NULL, "%s", err.msg);

    /* Settings that are not YAML: the component and the position. */
    env = rn_env_new("ds");
    rn_source(env, "gen", "datagen", "{events: [1, }");
    ck_assert_ptr_null(rn_env_job(env, NULL, &err));
    ck_assert_msg(strstr(err.msg, "gen settings") != NULL, "%s", err.msg);

    /* The plan's checks, as for a job file: an unknown field. */
    env = rn_env_new("ds");
    s = rn_source(env, "gen", "datagen", "{events: 10}");
    rn_sink(rn_filter(s, "f", "nope > 1"), "out", "stdout", NULL);
    ck_assert_ptr_null(rn_env_job(env, NULL, &err));
    ck_assert_msg(strstr(err.msg, "nope") != NULL, "%s", err.msg);
    rn_env_destroy(NULL);
}
END_TEST

START_TEST(test_datastream_yaml_names_program_function)
{
    const char *dir = fresh_dir("yaml");
    char yaml[2048], out[600];
    snprintf(out, sizeof(out), "%s/out.jsonl", dir);
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_rn_ok(rn_process_fn_register(&tens, &err), &err);
    ck_assert_rn_ok(rn_process_fn_register(&tens, &err), &err); /* again: the same */
    rn_process_fn_t other = tens;
    other.process = other_process;
    ck_assert_int_eq(rn_process_fn_register(&other, &err), RN_EINVAL);
    snprintf(yaml, sizeof(yaml),
             "name: y\nstate: {backend: memory}\n"
             "sources:\n  gen: {type: datagen, events: 100, event_time: ts}\n"
             "operators:\n  t: {type: plugin, inputs: [gen], operator: tens}\n"
             "  u: {type: plugin, inputs: [gen], operator: not_registered}\n"
             "sinks:\n  out: {type: file, inputs: [t], path: '%s'}\n"
             "  out2: {type: file, inputs: [u], path: '%s.2'}\n",
             out, out);
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "job.yaml", &err);
    ck_assert_ptr_nonnull(root);
    rn_graph_t *g = rn_graph_from_conf(root, &err);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_null(rn_job_new(g, NULL, &err));
    ck_assert_msg(strstr(err.msg, "job.yaml:7:") != NULL &&
                      strstr(err.msg, "no process function 'not_registered'") != NULL,
                  "%s", err.msg);
}
END_TEST

/* triple(x) = 3x; maxval(x): the largest value (merge: the larger). */
static int
int_fn_plan(const rn_type_t *args, int n, rn_type_t *ret, rn_error_t *err)
{
    (void)err;
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(args[0], RN_TYPE_INT);
    *ret = RN_TYPE_INT;
    return RN_OK;
}
static void
triple_eval(rn_fn_ctx_t *ctx, const rn_val_t *a, int n, rn_val_t *out)
{
    (void)ctx;
    (void)n;
    out->u.i = 3 * a[0].u.i;
}
static const rn_scalar_fn_t triple = {sizeof(rn_scalar_fn_t), "triple", 1, 1, 0, int_fn_plan,
                                      triple_eval};
static int
maxval_plan(rn_type_t arg, rn_type_t *ret, rn_error_t *err)
{
    (void)err;
    *ret = arg;
    return RN_OK;
}
static void
maxval_add(void *acc, const rn_val_t *v, int64_t ts)
{
    (void)ts;
    int64_t *a = acc; /* a[0]: seen, a[1]: the largest */
    if (a[0] == 0 || v->u.i > a[1])
        a[1] = v->u.i;
    a[0] = 1;
}
static void
maxval_merge(void *dst, const void *src)
{
    const int64_t *s = src;
    if (s[0] != 0)
        maxval_add(dst, &(rn_val_t){.u.i = s[1]}, 0);
}
static void
maxval_result(const void *acc, rn_val_t *out)
{
    const int64_t *a = acc;
    out->null = a[0] == 0;
    out->u.i = a[1];
}
static const rn_aggregate_fn_t maxval = {sizeof(rn_aggregate_fn_t), "maxval", maxval_plan,
                                         maxval_add, maxval_merge, maxval_result};

START_TEST(test_datastream_program_functions)
{
    const char *dir = fresh_dir("fn");
    char settings[1024], out[600], wout[600];
    snprintf(out, sizeof(out), "%s/out.jsonl", dir);
    snprintf(wout, sizeof(wout), "%s/win.jsonl", dir);
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_rn_ok(rn_plugin_register_scalar(NULL, RN_ABI_VERSION, &triple, &err), &err);
    ck_assert_rn_ok(rn_plugin_register_scalar(NULL, RN_ABI_VERSION, &triple, &err), &err);
    ck_assert_rn_ok(rn_plugin_register_aggregate(NULL, RN_ABI_VERSION, &maxval, &err), &err);
    rn_scalar_fn_t other = triple;
    ck_assert_int_eq(rn_plugin_register_scalar(NULL, RN_ABI_VERSION, &other, &err), RN_EINVAL);
    ck_assert_int_eq(rn_plugin_register_scalar(NULL, RN_ABI_VERSION + 1, &triple, &err), RN_EABI);

    rn_env_t *env = rn_env_new("fn");
    rn_env_set(env, "state.backend", "memory");
    rn_stream_t *src = rn_source(env, "gen", "datagen", "{events: 1000, keys: 4, event_time: ts}");
    rn_stream_t *s = rn_filter(src, "big", "triple(value) >= 2970");
    s = rn_map(s, "m", "{value: value, t: 'triple(value)'}");
    snprintf(settings, sizeof(settings), "{path: '%s'}", out);
    rn_sink(s, "out", "file", settings);
    rn_stream_t *w = rn_window(rn_key_by(src, "key"), "w", "{type: tumbling, size: 1h}",
                               "{top: maxval(value)}");
    snprintf(settings, sizeof(settings), "{path: '%s'}", wout);
    rn_sink(w, "wout", "file", settings);
    rn_job_t *job = rn_env_job(env, NULL, &err);
    ck_assert_msg(job != NULL, "%s", err.msg);
    ck_assert_rn_ok(rn_job_run(job, &err), &err);
    rn_job_destroy(job);
    /* values 990..999 (value = id % 1000): triple >= 2970. */
    ck_assert_int_eq(count_lines(out, NULL), 10);
    ck_assert_int_eq(count_lines(out, "{\"value\":995,\"t\":2985}"), 1);
    /* 4 keys, one window each; every key's largest value is 996..999. */
    ck_assert_int_eq(count_lines(wout, NULL), 4);
    ck_assert_int_eq(count_lines(wout, "\"top\":99"), 4);
}
END_TEST

static Suite *
datastream_suite(void)
{
    Suite *s = suite_create("datastream");
    TCase *tc = tcase_create("datastream");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_datastream_runs_a_process_function);
    tcase_add_test(tc, test_datastream_first_mistake_is_reported);
    tcase_add_test(tc, test_datastream_yaml_names_program_function);
    tcase_add_test(tc, test_datastream_program_functions);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(datastream_suite)
