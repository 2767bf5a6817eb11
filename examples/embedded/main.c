/*
 * examples/embedded/main.c: a program that links librunnel and builds its
 * job in C instead of YAML: a generator, a filter, a window per key and a
 * JSON-lines file. The same graph as a job file, through the same checks.
 *
 *   cc main.c $(pkg-config --cflags --libs runnel) -o embedded
 *   ./embedded OUT.jsonl
 */
#include <stdio.h>

#include <runnel/runnel.h>

/* Builds a map node from key/value string pairs; NULL-terminated. */
static rn_conf_t *
conf_map(rn_error_t *err, const char *const *kv)
{
    rn_conf_t *map = rn_conf_new_map();
    for (; map != NULL && kv[0] != NULL; kv += 2)
        if (rn_conf_map_set(map, kv[0], rn_conf_new_scalar(kv[1]), err) != RN_OK) {
            rn_conf_destroy(map);
            return NULL;
        }
    return map;
}

static rn_code_t
add_inputs(rn_conf_t *conf, const char *input, rn_error_t *err)
{
    rn_conf_t *inputs = rn_conf_new_seq();
    rn_code_t rc = rn_conf_seq_append(inputs, rn_conf_new_scalar(input), err);
    if (rc != RN_OK) {
        rn_conf_destroy(inputs);
        return rc;
    }
    return rn_conf_map_set(conf, "inputs", inputs, err);
}

int
main(int argc, char **argv)
{
    rn_error_t err = RN_ERROR_INIT;
    const char *out = argc > 1 ? argv[1] : "embedded.jsonl";

    rn_graph_t *g = rn_graph_new("embedded", &err);
    if (g == NULL)
        goto fail;

    const char *const gen[] = {"generator", "sequence", "events", "10000", "keys", "4",
                               "event_time", "ts", NULL};
    if (rn_graph_add(g, RN_SOURCE, "gen", "datagen", conf_map(&err, gen), &err) != RN_OK)
        goto fail;

    const char *const odd[] = {"where", "value % 2 == 1", NULL};
    rn_conf_t *filter = conf_map(&err, odd);
    if (add_inputs(filter, "gen", &err) != RN_OK ||
        rn_graph_add(g, RN_OPERATOR, "odd", "filter", filter, &err) != RN_OK)
        goto fail;

    const char *const win[] = {"key", "key", NULL};
    rn_conf_t *agg = conf_map(&err, win);
    const char *const window[] = {"type", "tumbling", "size", "1s", NULL};
    const char *const aggs[] = {"n", "count()", "total", "sum(value)", NULL};
    if (add_inputs(agg, "odd", &err) != RN_OK ||
        rn_conf_map_set(agg, "window", conf_map(&err, window), &err) != RN_OK ||
        rn_conf_map_set(agg, "aggregates", conf_map(&err, aggs), &err) != RN_OK ||
        rn_graph_add(g, RN_OPERATOR, "per_key", "window_aggregate", agg, &err) != RN_OK)
        goto fail;

    const char *const file[] = {"path", out, "format", "json", NULL};
    rn_conf_t *sink = conf_map(&err, file);
    if (add_inputs(sink, "per_key", &err) != RN_OK ||
        rn_graph_add(g, RN_SINK, "out", "file", sink, &err) != RN_OK)
        goto fail;
    if (rn_graph_set(g, "state.backend", "memory", &err) != RN_OK)
        goto fail;

    rn_job_t *job = rn_job_new(g, NULL, &err); /* consumes g */
    g = NULL;
    if (job == NULL)
        goto fail;
    rn_code_t rc = rn_job_run(job, &err);
    rn_job_stats_t st;
    rn_job_stats(job, &st);
    rn_job_destroy(job);
    if (rc != RN_OK)
        goto fail;
    printf("embedded: %llu events in, %llu windows out, written to %s\n",
           (unsigned long long)st.records_in, (unsigned long long)st.records_out, out);
    return 0;

fail:
    rn_graph_destroy(g);
    fprintf(stderr, "embedded: %s (%s)\n", err.msg, rn_code_name(err.code));
    return 1;
}
