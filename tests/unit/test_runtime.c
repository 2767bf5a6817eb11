/*
 * tests/unit/test_runtime.c: whole jobs through the public API
 * (include/runnel/graph.h): planning, chaining, the exchange between tasks
 * (rebalance and keyed), watermarks across channels, end of input,
 * backpressure, cancellation and failures.
 *
 * Jobs come from YAML strings (rn_conf_load_string + rn_graph_from_conf)
 * and, once, from C (rn_graph_new + rn_graph_add), which must give the same
 * output as the YAML twin. Outputs go to files under $RN_TEST_TMP; with
 * parallelism > 1 the order of lines is not defined, so lines are sorted
 * before they are compared.
 */
#include "rn_check.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define START_MS 1700000000000LL

/* ---- helpers ---- */

static char tmpdir[512];

/* A fresh directory for this test under $RN_TEST_TMP. */
static const char *
test_dir(const char *name)
{
    const char *base = getenv("RN_TEST_TMP");
    char cmd[1200];

    if (base == NULL || *base == '\0')
        base = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/runtime-%ld-%s", base, (long)getpid(), name);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", tmpdir, tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    return tmpdir;
}

static void
rm_dir(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static rn_job_t *
job_from_yaml(const char *yaml, int workers, rn_error_t *err)
{
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "job.yaml", err);

    ck_assert_msg(root != NULL, "%s", err->msg);
    rn_graph_t *g = rn_graph_from_conf(root, err);
    ck_assert_msg(g != NULL, "%s", err->msg);
    opts.workers = workers;
    return rn_job_new(g, &opts, err);
}

/* Plans, runs and destroys a job that must succeed. */
static void
run_yaml(const char *yaml, int workers, rn_job_stats_t *stats)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_job_t *job = job_from_yaml(yaml, workers, &err);

    ck_assert_msg(job != NULL, "%s", err.msg);
    ck_assert_rn_ok(rn_job_run(job, &err), &err);
    rn_job_stats(job, stats);
    ck_assert(!stats->running);
    rn_job_destroy(job);
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open '%s': %s", path, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)size;
    return buf;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A list of lines, owned. */
typedef struct lines {
    size_t n, cap;
    char **v;
} lines_t;

static void
lines_add(lines_t *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(char *));
        ck_assert_ptr_nonnull(l->v);
    }
    l->v[l->n] = strndup(s, len);
    ck_assert_ptr_nonnull(l->v[l->n]);
    l->n++;
}

static void RN_PRINTF(2, 3)
lines_addf(lines_t *l, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ck_assert(n > 0 && (size_t)n < sizeof(buf));
    lines_add(l, buf, (size_t)n);
}

static void
lines_free(lines_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* The lines of a file, each "\n"-terminated (checked), without the "\n". */
static lines_t
file_lines(const char *path)
{
    lines_t l = {0, 0, NULL};
    size_t len;
    char *text = read_file(path, &len);
    ck_assert_msg(len == 0 || text[len - 1] == '\n', "'%s' does not end with a newline", path);
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        lines_add(&l, p, (size_t)(nl - p));
        p = nl + 1;
    }
    free(text);
    return l;
}

/* Compares two lists of lines after sorting both; prints the first
 * difference. */
static void
ck_same_lines(lines_t *got, lines_t *want, bool sort)
{
    if (sort) {
        qsort(got->v, got->n, sizeof(char *), cmp_str);
        qsort(want->v, want->n, sizeof(char *), cmp_str);
    }
    for (size_t i = 0; i < got->n && i < want->n; i++)
        ck_assert_msg(strcmp(got->v[i], want->v[i]) == 0, "line %zu%s: got '%s', want '%s'",
                      i + 1, sort ? " (sorted)" : "", got->v[i], want->v[i]);
    ck_assert_msg(got->n == want->n, "got %zu lines, want %zu (first extra: '%s')", got->n,
                  want->n,
                  got->n > want->n ? got->v[want->n] : (want->n > got->n ? want->v[got->n] : ""));
}

static bool
exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* True when dir holds a file whose name contains part. */
static bool
dir_has(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool found = false;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, part) != NULL)
            found = true;
    closedir(d);
    return found;
}

/* ---- datagen -> filter -> map -> file ---- */

/* The filter keeps id % 3 != 0 with value < 900; the map reshapes. */
static const char BASIC_YAML[] = "name: rt-basic\n"
                                 "parallelism: %d\n"
                                 "sources:\n"
                                 "  gen:\n"
                                 "    type: datagen\n"
                                 "    generator: sequence\n"
                                 "    events: %d\n"
                                 "    keys: %d\n"
                                 "    event_time: ts\n"
                                 "operators:\n"
                                 "  kept:\n"
                                 "    type: filter\n"
                                 "    inputs: [gen]\n"
                                 "    where: \"id %% 3 != 0 && value < 900\"\n"
                                 "  shaped:\n"
                                 "    type: map\n"
                                 "    inputs: [kept]\n"
                                 "    select:\n"
                                 "      id: id\n"
                                 "      key: upper(key)\n"
                                 "      v2: value * 2\n"
                                 "      ts: ts\n"
                                 "sinks:\n"
                                 "  out:\n"
                                 "    type: file\n"
                                 "    inputs: [shaped]\n"
                                 "    path: %s\n"
                                 "    format: json\n";

static lines_t
basic_expected(int events, int keys, uint64_t *kept)
{
    lines_t l = {0, 0, NULL};
    *kept = 0;
    for (long long id = 0; id < events; id++) {
        if (id % 3 == 0 || id % 1000 >= 900)
            continue;
        lines_addf(&l, "{\"id\":%lld,\"key\":\"K%lld\",\"v2\":%lld,\"ts\":%lld}", id, id % keys,
                   (id % 1000) * 2, START_MS + id);
        (*kept)++;
    }
    return l;
}

static void
run_basic(int parallelism, int events, int keys, const char *path)
{
    char yaml[2048];
    rn_job_stats_t st;
    uint64_t kept;

    snprintf(yaml, sizeof(yaml), BASIC_YAML, parallelism, events, keys, path);
    run_yaml(yaml, 2, &st);
    lines_t want = basic_expected(events, keys, &kept);
    lines_t got = file_lines(path);
    ck_assert_uint_eq(st.records_in, (uint64_t)events);
    ck_assert_uint_eq(st.records_out, kept);
    /* With one instance everywhere the order is the generator's. */
    ck_same_lines(&got, &want, parallelism > 1);
    lines_free(&got);
    lines_free(&want);
}

START_TEST(test_runtime_basic_p1)
{
    const char *dir = test_dir("basic1");
    char path[700];

    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    run_basic(1, 3000, 7, path);
    /* The temporary file is gone once the output is published. */
    ck_assert(!dir_has(dir, ".tmp-"));
    rm_dir(dir);
}
END_TEST

START_TEST(test_runtime_basic_p3)
{
    const char *dir = test_dir("basic3");
    char path[700];

    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    run_basic(3, 3000, 7, path);
    /* Events not a multiple of the parallelism; fewer events than one batch. */
    run_basic(3, 1001, 5, path);
    run_basic(3, 10, 3, path);
    ck_assert(!dir_has(dir, ".tmp-"));
    rm_dir(dir);
}
END_TEST

START_TEST(test_runtime_basic_empty)
{
    const char *dir = test_dir("empty");
    char path[700];
    rn_job_stats_t st;
    char yaml[2048];

    /* events: 0 ends at once and publishes an empty file. */
    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    snprintf(yaml, sizeof(yaml), BASIC_YAML, 2, 0, 3, path);
    run_yaml(yaml, 2, &st);
    ck_assert_uint_eq(st.records_in, 0);
    ck_assert_uint_eq(st.records_out, 0);
    size_t len;
    free(read_file(path, &len));
    ck_assert_uint_eq(len, 0);
    rm_dir(dir);
}
END_TEST

/* ---- the same job built in C ---- */

static void
put(rn_conf_t *map, const char *key, rn_conf_t *value)
{
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_ptr_nonnull(value);
    ck_assert_rn_ok(rn_conf_map_set(map, key, value, &err), &err);
}

static void
put_s(rn_conf_t *map, const char *key, const char *value)
{
    put(map, key, rn_conf_new_scalar(value));
}

static rn_conf_t *
seq_of(const char *item)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *seq = rn_conf_new_seq();
    ck_assert_ptr_nonnull(seq);
    ck_assert_rn_ok(rn_conf_seq_append(seq, rn_conf_new_scalar(item), &err), &err);
    return seq;
}

static rn_job_t *
basic_job_in_c(int events, int keys, const char *path, rn_error_t *err)
{
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    char num[32];
    rn_graph_t *g = rn_graph_new("rt-basic-c", err);

    ck_assert_msg(g != NULL, "%s", err->msg);
    ck_assert_rn_ok(rn_graph_set(g, "parallelism", "1", err), err);

    rn_conf_t *gen = rn_conf_new_map();
    put_s(gen, "generator", "sequence");
    snprintf(num, sizeof(num), "%d", events);
    put_s(gen, "events", num);
    snprintf(num, sizeof(num), "%d", keys);
    put_s(gen, "keys", num);
    put_s(gen, "event_time", "ts");
    ck_assert_rn_ok(rn_graph_add(g, RN_SOURCE, "gen", "datagen", gen, err), err);

    rn_conf_t *kept = rn_conf_new_map();
    put(kept, "inputs", seq_of("gen"));
    put_s(kept, "where", "id % 3 != 0 && value < 900");
    ck_assert_rn_ok(rn_graph_add(g, RN_OPERATOR, "kept", "filter", kept, err), err);

    rn_conf_t *shaped = rn_conf_new_map();
    rn_conf_t *select = rn_conf_new_map();
    put(shaped, "inputs", seq_of("kept"));
    put_s(select, "id", "id");
    put_s(select, "key", "upper(key)");
    put_s(select, "v2", "value * 2");
    put_s(select, "ts", "ts");
    put(shaped, "select", select);
    ck_assert_rn_ok(rn_graph_add(g, RN_OPERATOR, "shaped", "map", shaped, err), err);

    rn_conf_t *out = rn_conf_new_map();
    put(out, "inputs", seq_of("shaped"));
    put_s(out, "path", path);
    put_s(out, "format", "json");
    ck_assert_rn_ok(rn_graph_add(g, RN_SINK, "out", "file", out, err), err);

    /* A second component of the same name is refused (and its conf freed). */
    rn_conf_t *dup = rn_conf_new_map();
    put(dup, "inputs", seq_of("gen"));
    ck_assert_int_eq(rn_graph_add(g, RN_SINK, "out", "discard", dup, err), RN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err->msg, "'out'"));
    *err = (rn_error_t)RN_ERROR_INIT;

    /* The tree is the job file's: the same lookups work on it. */
    const rn_conf_t *root = rn_graph_conf(g);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(root, "name")), "rt-basic-c");
    ck_assert_str_eq(
        rn_conf_scalar(rn_conf_get(rn_conf_get(rn_conf_get(root, "sinks"), "out"), "type")),
        "file");

    opts.workers = 2;
    return rn_job_new(g, &opts, err);
}

START_TEST(test_runtime_c_api_twin)
{
    const char *dir = test_dir("twin");
    char ypath[700], cpath[700], yaml[2048];
    rn_error_t err = RN_ERROR_INIT;
    rn_job_stats_t st;

    snprintf(ypath, sizeof(ypath), "%s/yaml.jsonl", dir);
    snprintf(cpath, sizeof(cpath), "%s/c.jsonl", dir);
    snprintf(yaml, sizeof(yaml), BASIC_YAML, 1, 2500, 11, ypath);
    run_yaml(yaml, 2, &st);

    rn_job_t *job = basic_job_in_c(2500, 11, cpath, &err);
    ck_assert_msg(job != NULL, "%s", err.msg);
    ck_assert_rn_ok(rn_job_run(job, &err), &err);
    rn_job_stats_t cst;
    rn_job_stats(job, &cst);
    rn_job_destroy(job);
    ck_assert_uint_eq(cst.records_in, st.records_in);
    ck_assert_uint_eq(cst.records_out, st.records_out);

    size_t ylen, clen;
    char *y = read_file(ypath, &ylen);
    char *c = read_file(cpath, &clen);
    ck_assert_uint_gt(ylen, 0);
    ck_assert_uint_eq(clen, ylen);
    ck_assert_msg(memcmp(y, c, ylen) == 0, "the C-built job wrote another file");
    free(y);
    free(c);

    /* And both are what the job must write. */
    uint64_t kept;
    lines_t want = basic_expected(2500, 11, &kept);
    lines_t got = file_lines(cpath);
    ck_same_lines(&got, &want, false);
    lines_free(&got);
    lines_free(&want);
    rm_dir(dir);
}
END_TEST

/* ---- keyed exchange and windows ---- */

static const char WINDOW_YAML[] = "name: rt-window\n"
                                  "sources:\n"
                                  "  gen:\n"
                                  "    type: datagen\n"
                                  "    parallelism: 2\n"
                                  "    events: %d\n"
                                  "    keys: %d\n"
                                  "    event_time: ts\n"
                                  "operators:\n"
                                  "  counts:\n"
                                  "    type: window_aggregate\n"
                                  "    parallelism: 4\n"
                                  "    inputs: [gen]\n"
                                  "    key: [key]\n"
                                  "    window: {type: tumbling, size: 1s}\n"
                                  "    aggregates:\n"
                                  "      n: count()\n"
                                  "sinks:\n"
                                  "  out:\n"
                                  "    type: file\n"
                                  "    inputs: [counts]\n"
                                  "    path: %s\n"
                                  "    format: json\n";

/* Adds to counts[key][window] the events 0..events-1 of a sequence datagen
 * with `keys` keys (1 ms apart from START_MS). */
static void
count_events(int64_t *counts, int keys, int windows, int events)
{
    for (int id = 0; id < events; id++) {
        int w = id / 1000;
        ck_assert_int_lt(w, windows);
        counts[(id % keys) * windows + w]++;
    }
}

static lines_t
window_expected(const int64_t *counts, int keys, int windows, uint64_t *n)
{
    lines_t l = {0, 0, NULL};
    *n = 0;
    for (int k = 0; k < keys; k++)
        for (int w = 0; w < windows; w++) {
            if (counts[k * windows + w] == 0)
                continue;
            lines_addf(&l, "{\"key\":\"k%d\",\"window_start\":%lld,\"window_end\":%lld,\"n\":%lld}",
                       k, START_MS + w * 1000LL, START_MS + (w + 1) * 1000LL,
                       (long long)counts[k * windows + w]);
            (*n)++;
        }
    return l;
}

START_TEST(test_runtime_keyed_window)
{
    /* _i: workers 1, 2, 3, 8. */
    static const int workers[] = {1, 2, 3, 8};
    const int events = 10000, keys = 7, windows = 10;
    const char *dir = test_dir("window");
    char path[700], yaml[4096];
    int64_t counts[7 * 10];
    rn_job_stats_t st;
    uint64_t nwin;

    snprintf(path, sizeof(path), "%s/counts.jsonl", dir);
    snprintf(yaml, sizeof(yaml), WINDOW_YAML, events, keys, path);
    run_yaml(yaml, workers[_i], &st);
    memset(counts, 0, sizeof(counts));
    count_events(counts, keys, windows, events);
    lines_t want = window_expected(counts, keys, windows, &nwin);
    lines_t got = file_lines(path);
    ck_same_lines(&got, &want, true);
    ck_assert_uint_eq(st.records_in, (uint64_t)events);
    ck_assert_uint_eq(st.records_out, nwin);
    /* Every window fired: the final watermark reached the sink. */
    ck_assert(st.watermark == INT64_MAX);
    lines_free(&got);
    lines_free(&want);
    rm_dir(dir);
}
END_TEST

START_TEST(test_runtime_keyed_window_two_inputs)
{
    /* The sink reads the window (4 instances) and a second source (3
     * instances) directly: its channels are numbered over both inputs (4 +
     * 3) and it ends only when all seven have ended. */
    const int events = 10000, more_events = 4321, keys = 7, windows = 10;
    const char *dir = test_dir("window2");
    char path[700], yaml[4096];
    int64_t counts[7 * 10];
    rn_job_stats_t st;
    uint64_t nwin;

    snprintf(path, sizeof(path), "%s/counts.jsonl", dir);
    snprintf(yaml, sizeof(yaml),
             "name: rt-window2\n"
             "sources:\n"
             "  gen: {type: datagen, parallelism: 2, events: %d, keys: %d, event_time: ts}\n"
             "  more: {type: datagen, parallelism: 3, events: %d, keys: %d, event_time: ts}\n"
             "operators:\n"
             "  counts:\n"
             "    type: window_aggregate\n"
             "    parallelism: 4\n"
             "    inputs: [gen]\n"
             "    key: [key]\n"
             "    window: {type: tumbling, size: 1s}\n"
             "    aggregates: {n: count()}\n"
             "sinks:\n"
             "  out: {type: file, inputs: [counts, more], path: %s, format: json}\n",
             events, keys, more_events, keys, path);
    run_yaml(yaml, 3, &st);
    memset(counts, 0, sizeof(counts));
    count_events(counts, keys, windows, events);
    lines_t want = window_expected(counts, keys, windows, &nwin);
    for (long long id = 0; id < more_events; id++)
        lines_addf(&want, "{\"id\":%lld,\"key\":\"k%lld\",\"value\":%lld,\"ts\":%lld}", id,
                   id % keys, id % 1000, START_MS + id);
    lines_t got = file_lines(path);
    ck_same_lines(&got, &want, true);
    ck_assert_uint_eq(st.records_in, (uint64_t)(events + more_events));
    ck_assert_uint_eq(st.records_out, nwin + (uint64_t)more_events);
    ck_assert(st.watermark == INT64_MAX);
    lines_free(&got);
    lines_free(&want);
    rm_dir(dir);
}
END_TEST

/* ---- chaining, as rn_job_describe shows it ---- */

static char *
describe_yaml(const char *yaml)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_job_t *job = job_from_yaml(yaml, 1, &err);
    char *text = NULL;
    size_t len = 0;

    ck_assert_msg(job != NULL, "%s", err.msg);
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    rn_job_describe(job, f);
    fclose(f);
    rn_job_destroy(job);
    return text;
}

#define ck_has(text, part)                                                                         \
    ck_assert_msg(strstr((text), (part)) != NULL, "'%s' not in:\n%s", (part), (text))
#define ck_has_not(text, part)                                                                     \
    ck_assert_msg(strstr((text), (part)) == NULL, "'%s' in:\n%s", (part), (text))

START_TEST(test_runtime_describe_chaining)
{
    static const char yaml[] = "name: rt-describe\n"
                               "parallelism: 2\n"
                               "sources:\n"
                               "  gen: {type: datagen, events: 10, keys: 3, event_time: ts}\n"
                               "operators:\n"
                               "  odd: {type: filter, inputs: [gen], where: \"id % 2 == 1\"}\n"
                               "  wide:\n"
                               "    type: map\n"
                               "    inputs: [odd]\n"
                               "    parallelism: 3\n"
                               "    select: {id: id, key: key, ts: ts}\n"
                               "  narrow: {type: map, inputs: [wide], parallelism: 3,\n"
                               "           select: {key: key}}\n"
                               "  counts:\n"
                               "    type: window_aggregate\n"
                               "    inputs: [odd]\n"
                               "    key: [key]\n"
                               "    window: {type: tumbling, size: 1s}\n"
                               "    aggregates: {n: count()}\n"
                               "sinks:\n"
                               "  a: {type: discard, inputs: [gen]}\n"
                               "  b: {type: discard, inputs: [counts]}\n"
                               "  c: {type: discard, inputs: [narrow]}\n"
                               "  d: {type: file, inputs: [odd], path: /nonexistent/x.jsonl}\n";
    char *text = describe_yaml(yaml);

    /* Forward edges of equal parallelism are chained. */
    ck_has(text, "operator odd (filter) x2\n    <- gen (forward, chained)\n");
    ck_has(text, "sink a (discard) x2\n    <- gen (forward, chained)\n");
    ck_has(text, "operator narrow (map) x3\n    <- wide (forward, chained)\n");
    ck_has(text, "sink b (discard) x2\n    <- counts (forward, chained)\n");
    /* Parallelism changes: rebalance, not chained. */
    ck_has(text, "operator wide (map) x3\n    <- odd (rebalance)\n");
    ck_has(text, "sink c (discard) x2\n    <- narrow (rebalance)\n");
    /* The file sink runs as one instance whatever the default. */
    ck_has(text, "sink d (file) x1\n    <- odd (rebalance)\n");
    /* Keyed: by key group, even at equal parallelism; never chained. */
    ck_has(text, "operator counts (window_aggregate) x2 keyed\n    <- odd (keyed)\n");
    ck_has_not(text, "keyed, chained");
    ck_has(text, "source gen (datagen) x2 bounded\n");
    ck_has(text, "job rt-describe: 9 components, default parallelism 2");
    free(text);
}
END_TEST

/* ---- backpressure ---- */

START_TEST(test_runtime_backpressure)
{
    /* _i: workers 1 and 2. A fast source (2 instances) into a map of 3
     * instances over a rebalance exchange: with bounded queues the source
     * waits for the map and nothing is dropped or buffered without bound. */
    static const char yaml[] = "name: rt-backpressure\n"
                               "sources:\n"
                               "  gen: {type: datagen, parallelism: 2, events: 3000000, "
                               "keys: 1000}\n"
                               "operators:\n"
                               "  half: {type: filter, inputs: [gen], parallelism: 2,\n"
                               "         where: \"value < 500\"}\n"
                               "  shaped:\n"
                               "    type: map\n"
                               "    inputs: [half]\n"
                               "    parallelism: 3\n"
                               "    select: {id: id, key: upper(key), x: value * 3 + id}\n"
                               "sinks:\n"
                               "  out: {type: discard, inputs: [shaped], parallelism: 3}\n";
    rn_job_stats_t st;
    struct rusage ru;

    run_yaml(yaml, _i + 1, &st);
    ck_assert_uint_eq(st.records_in, 3000000);
    ck_assert_uint_eq(st.records_out, 1500000);
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    /* 3,000,000 rows of 4 cells are 192 MB; a bounded pipeline holds a few
     * batches. ASan's shadow memory and quarantine need more room. */
#if defined(__SANITIZE_ADDRESS__)
    const long bound_kb = 1024L * 1024;
#else
    const long bound_kb = 200L * 1024;
#endif
    ck_assert_msg(ru.ru_maxrss < bound_kb, "max RSS %ld KB, bound %ld KB", ru.ru_maxrss,
                  bound_kb);
}
END_TEST

/* ---- cancellation ---- */

typedef struct canceller {
    rn_job_t *job;
    int64_t cancelled_ns;
    uint64_t seen_in;
    bool saw_running;
} canceller_t;

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
cancel_when_running(void *arg)
{
    canceller_t *c = arg;
    rn_job_stats_t st;
    struct timespec ms = {0, 1000000};

    /* Wait (at most ~10 s) until records flow, then a little more. */
    for (int i = 0; i < 10000; i++) {
        rn_job_stats(c->job, &st);
        if (st.running && st.records_in > 0)
            break;
        nanosleep(&ms, NULL);
    }
    c->saw_running = st.running;
    struct timespec more = {0, 50 * 1000000};
    nanosleep(&more, NULL);
    rn_job_stats(c->job, &st);
    c->seen_in = st.records_in;
    c->cancelled_ns = mono_ns();
    rn_job_cancel(c->job);
    return NULL;
}

static void
run_and_cancel(const char *yaml, int workers, rn_job_stats_t *st)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_job_t *job = job_from_yaml(yaml, workers, &err);
    canceller_t c = {job, 0, 0, false};
    pthread_t t;

    ck_assert_msg(job != NULL, "%s", err.msg);
    ck_assert_int_eq(pthread_create(&t, NULL, cancel_when_running, &c), 0);
    rn_code_t rc = rn_job_run(job, &err);
    int64_t returned = mono_ns();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(rc == RN_ECANCELED, "rn_job_run: %s: %s", rn_code_name(rc), err.msg);
    ck_assert_int_eq(err.code, RN_ECANCELED);
    ck_assert_ptr_nonnull(strstr(err.msg, "stopped"));
    ck_assert(c.saw_running);
    ck_assert_uint_gt(c.seen_in, 0);
    rn_job_stats(job, st);
    ck_assert(!st->running);
    ck_assert_uint_ge(st->records_in, c.seen_in);
    /* Promptly: the suite's timeout bounds the whole test; this prints how
     * long the job took to stop when it is slow. */
    ck_assert_msg(returned - c.cancelled_ns < 30000000000LL, "stopped %lld ms after the cancel",
                  (long long)((returned - c.cancelled_ns) / 1000000));
    rn_job_destroy(job);
}

START_TEST(test_runtime_cancel_unbounded)
{
    static const char yaml[] = "name: rt-cancel\n"
                               "parallelism: 2\n"
                               "sources:\n"
                               "  gen: {type: datagen, keys: 100, event_time: ts}\n"
                               "operators:\n"
                               "  shaped:\n"
                               "    type: map\n"
                               "    inputs: [gen]\n"
                               "    parallelism: 3\n"
                               "    select: {key: key, v: value + 1}\n"
                               "sinks:\n"
                               "  out: {type: discard, inputs: [shaped]}\n";
    rn_job_stats_t st;
    char *text = describe_yaml(yaml);
    ck_has(text, "source gen (datagen) x2 unbounded\n");
    free(text);
    run_and_cancel(yaml, _i + 1, &st);
}
END_TEST

START_TEST(test_runtime_cancel_leaves_no_file)
{
    const char *dir = test_dir("cancel");
    char path[700], yaml[1024];
    rn_job_stats_t st;

    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    snprintf(yaml, sizeof(yaml),
             "name: rt-cancel-file\n"
             "sources:\n"
             "  gen: {type: datagen, keys: 10, rate: 100000}\n"
             "sinks:\n"
             "  out: {type: file, inputs: [gen], path: %s}\n",
             path);
    run_and_cancel(yaml, 2, &st);
    ck_assert_msg(!exists(path), "'%s' was published by a cancelled job", path);
    ck_assert_msg(!dir_has(dir, ".tmp-"), "a cancelled job left its temporary file");
    rm_dir(dir);
}
END_TEST

/* ---- failures ---- */

START_TEST(test_runtime_sink_failure)
{
    const char *dir = test_dir("sinkfail");
    char path[700], yaml[2048];
    rn_error_t err = RN_ERROR_INIT;

    /* A missing directory is made; a file where the directory should be
     * cannot be. The plan refuses that already (validate does), so the file
     * gets in the way after it: open must fail too. */
    snprintf(path, sizeof(path), "%s/not-a-dir/out.jsonl", dir);
    snprintf(yaml, sizeof(yaml), BASIC_YAML, 2, 5000, 7, path);
    rn_job_t *job = job_from_yaml(yaml, 2, &err);
    ck_assert_msg(job != NULL, "%s", err.msg);
    snprintf(path, sizeof(path), "%s/not-a-dir", dir);
    FILE *in_the_way = fopen(path, "w");
    ck_assert_ptr_nonnull(in_the_way);
    fclose(in_the_way);
    snprintf(path, sizeof(path), "%s/not-a-dir/out.jsonl", dir);
    rn_code_t rc = rn_job_run(job, &err);
    ck_assert_msg(rc != RN_OK && rc != RN_ECANCELED, "rn_job_run: %s", rn_code_name(rc));
    ck_assert_int_eq(err.code, rc);
    /* The message names the sink and the path. */
    ck_assert_msg(strstr(err.msg, "sink 'out'") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "not-a-dir") != NULL, "%s", err.msg);
    rn_job_stats_t st;
    rn_job_stats(job, &st);
    ck_assert(!st.running);
    ck_assert_uint_eq(st.records_out, 0);
    rn_job_destroy(job);
    ck_assert(!exists(path));
    ck_assert(!dir_has(dir, "out.jsonl"));
    rm_dir(dir);
}
END_TEST

START_TEST(test_runtime_sink_failure_path_is_dir)
{
    /* The sink fails at open when its path is a directory: the job fails
     * and writes nothing next to it. The plan refuses such a path already
     * (validate does), so the directory appears after it. */
    const char *dir = test_dir("sinkdir");
    char path[700], yaml[2048];
    rn_error_t err = RN_ERROR_INIT;

    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    snprintf(yaml, sizeof(yaml), BASIC_YAML, 1, 100, 7, path);
    rn_job_t *job = job_from_yaml(yaml, 1, &err);
    ck_assert_msg(job != NULL, "%s", err.msg);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    rn_code_t rc = rn_job_run(job, &err);
    ck_assert_int_ne(rc, RN_OK);
    ck_assert_msg(strstr(err.msg, "sink 'out'") != NULL, "%s", err.msg);
    rn_job_destroy(job);
    ck_assert(!dir_has(dir, ".tmp-"));
    rm_dir(dir);
}
END_TEST

START_TEST(test_runtime_abi_mismatch)
{
    static const char yaml[] = "name: rt-abi\n"
                               "sources:\n"
                               "  gen: {type: datagen, events: 10}\n"
                               "sinks:\n"
                               "  out: {type: discard, inputs: [gen]}\n";
    rn_error_t err = RN_ERROR_INIT;
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;

    for (int bad = 0; bad < 2; bad++) {
        rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "abi.yaml", &err);
        ck_assert_msg(root != NULL, "%s", err.msg);
        rn_graph_t *g = rn_graph_from_conf(root, &err);
        ck_assert_ptr_nonnull(g);
        opts.abi = bad ? 0 : RN_ABI_VERSION + 1;
        /* The graph is consumed on failure too (ASan would see a leak). */
        ck_assert_ptr_null(rn_job_new(g, &opts, &err));
        ck_assert_int_eq(err.code, RN_EABI);
        ck_assert_msg(strstr(err.msg, "ABI") != NULL, "%s", err.msg);
    }

    /* NULL options are the defaults. */
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "abi.yaml", &err);
    rn_graph_t *g = rn_graph_from_conf(root, &err);
    err = (rn_error_t)RN_ERROR_INIT;
    rn_job_t *job = rn_job_new(g, NULL, &err);
    ck_assert_msg(job != NULL, "%s", err.msg);
    ck_assert_rn_ok(rn_job_run(job, &err), &err);
    rn_job_stats_t st;
    rn_job_stats(job, &st);
    ck_assert_uint_eq(st.records_in, 10);
    ck_assert_uint_eq(st.records_out, 10);
    rn_job_destroy(job);
}
END_TEST

START_TEST(test_runtime_plan_errors)
{
    /* rn_job_new reports a bad graph with its position; a NULL graph is
     * refused. */
    static const char yaml[] = "name: rt-bad\n"
                               "sources:\n"
                               "  gen: {type: datagen, events: 10}\n"
                               "operators:\n"
                               "  k: {type: filter, inputs: [gen], where: \"nope > 1\"}\n"
                               "sinks:\n"
                               "  out: {type: discard, inputs: [k]}\n";
    rn_error_t err = RN_ERROR_INIT;

    ck_assert_ptr_null(job_from_yaml(yaml, 1, &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_msg(strncmp(err.msg, "job.yaml:5:", 11) == 0, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "nope") != NULL, "%s", err.msg);

    err = (rn_error_t)RN_ERROR_INIT;
    ck_assert_ptr_null(rn_job_new(NULL, NULL, &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    rn_job_destroy(NULL);
    rn_graph_destroy(NULL);
}
END_TEST

static Suite *
runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc;

    tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_runtime_basic_p1);
    tcase_add_test(tc, test_runtime_basic_p3);
    tcase_add_test(tc, test_runtime_basic_empty);
    tcase_add_test(tc, test_runtime_c_api_twin);
    suite_add_tcase(s, tc);

    tc = tcase_create("keyed");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_runtime_keyed_window, 0, 4);
    tcase_add_test(tc, test_runtime_keyed_window_two_inputs);
    suite_add_tcase(s, tc);

    tc = tcase_create("describe");
    tcase_add_test(tc, test_runtime_describe_chaining);
    suite_add_tcase(s, tc);

    tc = tcase_create("backpressure");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_runtime_backpressure, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_runtime_cancel_unbounded, 0, 2);
    tcase_add_test(tc, test_runtime_cancel_leaves_no_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_runtime_sink_failure);
    tcase_add_test(tc, test_runtime_sink_failure_path_is_dir);
    tcase_add_test(tc, test_runtime_abi_mismatch);
    tcase_add_test(tc, test_runtime_plan_errors);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(runtime_suite)
