/*
 * tests/unit/test_datastream.c: the DataStream-like builder
 * (include/runnel/datastream.h) and process functions a program registers
 * itself (rn_process_fn_register): a job built in C runs and gives the
 * output its process function computes; the first mistake made while
 * building is the one reported, with its component; a YAML job names a
 * program's process function without a library; two functions under one
 * name are refused.
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

static Suite *
datastream_suite(void)
{
    Suite *s = suite_create("datastream");
    TCase *tc = tcase_create("datastream");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_datastream_runs_a_process_function);
    tcase_add_test(tc, test_datastream_first_mistake_is_reported);
    tcase_add_test(tc, test_datastream_yaml_names_program_function);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(datastream_suite)
