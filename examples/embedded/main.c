/*
 * examples/embedded/main.c: a program that links librunnel and builds its
 * job in C, the way a Flink DataStream program does (runnel/datastream.h):
 * a generator, a filter, a window per key into a JSON-lines file, and a
 * process function of this program's own (keyed state) that keeps each
 * key's running total of the windows, into a second file. The same checks
 * as a job file; the windows equal those of the same job in YAML
 * (tests/integration/test_install.sh).
 *
 *   cc main.c $(pkg-config --cflags --libs runnel) -o embedded
 *   ./embedded WINDOWS.jsonl RUNNING.jsonl
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <runnel/runnel.h>

/* ---- a process function: each key's running total of window totals ---- */

typedef struct running {
    rn_pf_value_t *sum;
    int f_total, f_end, o_key, o_end, o_running;
} running_t;

static running_t *
state_of(rn_pf_t *f)
{
    return rn_pf_data(f);
}

static int
running_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    int rc = rn_pf_plan_output(p, NULL, "key", RN_TYPE_STRING, err);
    if (rc == RN_OK)
        rc = rn_pf_plan_output(p, NULL, "window_end", RN_TYPE_TIMESTAMP, err);
    if (rc == RN_OK)
        rc = rn_pf_plan_output(p, NULL, "running", RN_TYPE_INT, err);
    return rc;
}

static int
running_open(rn_pf_t *f, rn_error_t *err)
{
    running_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    if ((r->sum = rn_pf_value_state(f, "sum", err)) == NULL) {
        free(r);
        return err->code;
    }
    r->f_total = rn_pf_field(f, "total");
    r->f_end = rn_pf_field(f, "window_end");
    r->o_key = rn_pf_out_field(f, 0, "key");
    r->o_end = rn_pf_out_field(f, 0, "window_end");
    r->o_running = rn_pf_out_field(f, 0, "running");
    rn_pf_set_data(f, r);
    return RN_OK;
}

static int
running_process(rn_pf_t *f, rn_error_t *err)
{
    running_t *r = state_of(f);
    int64_t sum = 0;
    const void *v;
    size_t len;
    int rc = rn_pf_value_get(r->sum, &v, &len, err);
    if (rc == RN_OK && len == sizeof(sum))
        memcpy(&sum, v, sizeof(sum));
    else if (rc != RN_ENOTFOUND)
        return rc;
    sum += rn_pf_get_int(f, r->f_total);
    if ((rc = rn_pf_value_put(r->sum, &sum, sizeof(sum), err)) != RN_OK ||
        (rc = rn_pf_out_begin(f, 0, err)) != RN_OK)
        return rc;
    size_t klen;
    const char *key = rn_pf_key_string(f, 0, &klen);
    rn_pf_out_set_string(f, r->o_key, key, klen);
    rn_pf_out_set_int(f, r->o_end, rn_pf_get_int(f, r->f_end));
    rn_pf_out_set_int(f, r->o_running, sum);
    return RN_OK;
}

static void
running_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_process_fn_t running_total = {
    .size = sizeof(rn_process_fn_t),
    .name = "running_total",
    .plan = running_plan,
    .open = running_open,
    .process = running_process,
    .close = running_close,
};

int
main(int argc, char **argv)
{
    rn_error_t err = RN_ERROR_INIT;
    const char *out = argc > 1 ? argv[1] : "embedded.jsonl";
    const char *running = argc > 2 ? argv[2] : "embedded-running.jsonl";
    char path[1024];

    rn_env_t *env = rn_env_new("embedded");
    rn_env_set(env, "state.backend", "memory");
    rn_stream_t *gen = rn_source(env, "gen", "datagen",
                                 "{generator: sequence, events: 10000, keys: 4, event_time: ts}");
    rn_stream_t *odd = rn_filter(gen, "odd", "value % 2 == 1");
    rn_stream_t *win = rn_window(rn_key_by(odd, "key"), "per_key", "{type: tumbling, size: 1s}",
                                 "{n: count(), total: sum(value)}");
    snprintf(path, sizeof(path), "{path: '%s', format: json}", out);
    rn_sink(win, "out", "file", path);
    rn_stream_t *run = rn_process(rn_key_by(win, "key"), "running", &running_total, NULL);
    snprintf(path, sizeof(path), "{path: '%s'}", running);
    rn_sink(run, "running_out", "file", path);

    rn_job_t *job = rn_env_job(env, NULL, &err); /* consumes env */
    if (job == NULL)
        goto fail;
    rn_code_t rc = rn_job_run(job, &err);
    rn_job_stats_t st;
    rn_job_stats(job, &st);
    rn_job_destroy(job);
    if (rc != RN_OK)
        goto fail;
    printf("embedded: %llu events in, %llu records out, windows in %s, running totals in %s\n",
           (unsigned long long)st.records_in, (unsigned long long)st.records_out, out, running);
    return 0;

fail:
    fprintf(stderr, "embedded: %s (%s)\n", err.msg, rn_code_name(err.code));
    return 1;
}
