/*
 * tests/unit/test_window_reference.c: runnel's event-time windows checked
 * against a reference computed independently, inside this test.
 *
 * Each case generates events deterministically (a fixed-seed xorshift64*),
 * writes them as JSON lines, writes a job file (file source -> keyed
 * window_aggregate -> file sink), runs the real CLI ($RUNNEL run JOB
 * --quiet --set parallelism=P) and compares every window of out.jsonl with
 * the reference: same windows (no duplicate, none missing, none extra) and,
 * for each, the same count, sum, min and max.
 *
 * The reference uses nothing of runnel: only libc here and jansson to read
 * the engine's output. It follows spec/job-file.md and Flink:
 *   - tumbling {size}: the window of ts is [floor(ts/size)*size, +size);
 *   - sliding {size, slide}: every [s, s+size) with s a multiple of slide
 *     that holds ts;
 *   - session {gap}: per key, sorted event times; an event joins the current
 *     session [first, last+gap) when ts <= its end (windows that touch are
 *     merged, as Flink's TimeWindow.intersects does), else starts a new one;
 *   - a source's watermark is the highest event time seen minus the bound
 *     minus 1 ms; an event is late when its window's end - 1 <= watermark.
 *
 * The generators keep the outcome independent of the engine's timing:
 *   - in the main cases every event is out of order by at most the bound,
 *     so none is late, whenever the watermark advances (per record, per
 *     batch, periodically: it can only lag, never lead);
 *   - sessions follow a per-user schedule of bursts and idle periods laid
 *     on one global clock T; an event's time is T - jitter, jitter in
 *     [0, B]. An event that arrives after a session fired is then strictly
 *     after that session's end, so it cannot have merged with it: the
 *     offline grouping is what any correct engine must produce;
 *   - in the late case the late events lie 30 to 50 s behind, far beyond the
 *     window size plus any watermark lag of a few batches; the test checks
 *     that its classification is the same with the watermark per record and
 *     with the watermark lagged by LAG_CHECK records.
 */
#include "rn_check.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NUSERS 50
#define NEVENTS 20000
#define BASE_TS INT64_C(1700000000000)
#define BOUND_MS 200 /* watermark: max_out_of_orderness */
#define STEP_MS 3    /* uniform generator: time step per event */
#define AMOUNT_LO (-500)
#define AMOUNT_HI 1000

#define TUMBLE_SIZE 1000
#define SLIDE_SIZE 2000
#define SLIDE_STEP 500
#define SESSION_GAP 300

#define LATE_FROM 9000  /* late events only from this index on */
#define LATE_EVERY 50   /* about one event in LATE_EVERY is made late */
#define LAG_CHECK 8192  /* watermark lag (records) the late classification must survive */

#define MSG_MAX 4096

enum wkind { W_TUMBLING, W_SLIDING, W_SESSION };

static const char *const kind_names[] = {"tumbling", "sliding", "session"};

typedef struct event {
    int user;
    int64_t amount;
    int64_t ts;
} event_t;

typedef struct win {
    int user;
    int64_t start, end;
    int64_t n, total, lo, hi;
} win_t;

typedef struct winlist {
    win_t *v;
    size_t n, cap;
} winlist_t;

/* ---- deterministic generator ----------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t
rng_next(rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * UINT64_C(2685821657736338717);
}

/* Uniform in [lo, hi], both inclusive. */
static int64_t
rng_range(rng_t *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);
    ck_assert_msg(p != NULL, "out of memory");
    return p;
}

/* t_i = base + i*step - jitter_i, jitter in [0, B]: out of order within the
 * bound, never late. */
static event_t *
gen_uniform(uint64_t seed, size_t *n_out)
{
    rng_t r = {seed};
    event_t *ev = xcalloc(NEVENTS, sizeof(*ev));
    for (size_t i = 0; i < NEVENTS; i++) {
        ev[i].user = (int)rng_range(&r, 0, NUSERS - 1);
        ev[i].amount = rng_range(&r, AMOUNT_LO, AMOUNT_HI);
        ev[i].ts = BASE_TS + (int64_t)i * STEP_MS - rng_range(&r, 0, BOUND_MS);
    }
    *n_out = NEVENTS;
    return ev;
}

typedef struct sched {
    int64_t t; /* schedule time on the global clock */
    int user;
    int seq;
} sched_t;

static int
cmp_sched(const void *a, const void *b)
{
    const sched_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Per-user bursts (spacing 5..280 ms) separated by idle periods (320 ms to
 * 3.5 s, some of them only just over the gap), merged on one clock in
 * schedule order; the time written is schedule - jitter, jitter in [0, B].
 * With the jitter, gaps inside a burst sometimes split a session and gaps
 * between bursts sometimes close: sessions both merge and split. */
static event_t *
gen_sessions(uint64_t seed, size_t *n_out)
{
    rng_t r = {seed};
    const int per_user = NEVENTS / NUSERS;
    sched_t *s = xcalloc(NEVENTS, sizeof(*s));
    size_t k = 0;
    for (int u = 0; u < NUSERS; u++) {
        int64_t t = BASE_TS + rng_range(&r, 0, 3000);
        int left_in_burst = (int)rng_range(&r, 1, 12);
        for (int j = 0; j < per_user; j++) {
            s[k].t = t;
            s[k].user = u;
            s[k].seq = j;
            k++;
            if (--left_in_burst > 0) {
                t += rng_range(&r, 5, 280);
            } else {
                left_in_burst = (int)rng_range(&r, 1, 12);
                t += rng_next(&r) % 4 == 0 ? rng_range(&r, 320, 520) : rng_range(&r, 520, 3500);
            }
        }
    }
    qsort(s, k, sizeof(*s), cmp_sched);
    event_t *ev = xcalloc(k, sizeof(*ev));
    for (size_t i = 0; i < k; i++) {
        ev[i].user = s[i].user;
        ev[i].amount = rng_range(&r, AMOUNT_LO, AMOUNT_HI);
        ev[i].ts = s[i].t - rng_range(&r, 0, BOUND_MS);
    }
    free(s);
    *n_out = k;
    return ev;
}

/* gen_uniform, then about one event in LATE_EVERY from LATE_FROM on moved
 * 30..50 s into the past. */
static event_t *
gen_late(uint64_t seed, size_t *n_out)
{
    event_t *ev = gen_uniform(seed, n_out);
    rng_t r = {seed ^ UINT64_C(0x9e3779b97f4a7c15)};
    for (size_t i = LATE_FROM; i < *n_out; i++)
        if (rng_next(&r) % LATE_EVERY == 0)
            ev[i].ts = BASE_TS + (int64_t)i * STEP_MS - rng_range(&r, 30000, 50000);
    return ev;
}

/* ---- reference ---------------------------------------------------------------- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static void
wl_push(winlist_t *wl, win_t w)
{
    if (wl->n == wl->cap) {
        wl->cap = wl->cap ? wl->cap * 2 : 1024;
        wl->v = realloc(wl->v, wl->cap * sizeof(*wl->v));
        ck_assert_msg(wl->v != NULL, "out of memory");
    }
    wl->v[wl->n++] = w;
}

static int
cmp_win(const void *a, const void *b)
{
    const win_t *x = a, *y = b;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int
cmp_event_user_ts(const void *a, const void *b)
{
    const event_t *x = a, *y = b;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->amount > y->amount) - (x->amount < y->amount);
}

static void
win_add(win_t *w, int64_t amount)
{
    if (w->n == 0 || amount < w->lo)
        w->lo = amount;
    if (w->n == 0 || amount > w->hi)
        w->hi = amount;
    w->n++;
    w->total += amount;
}

/* Tumbling and sliding: one contribution per (event, window), sorted and
 * folded. Events with skip[i] set are left out. */
static winlist_t
ref_aligned(const event_t *ev, size_t n, const unsigned char *skip, int64_t size, int64_t slide)
{
    winlist_t parts = {0}, out = {0};
    for (size_t i = 0; i < n; i++) {
        if (skip != NULL && skip[i])
            continue;
        int64_t last = floor_div(ev[i].ts, slide) * slide;
        for (int64_t s = last; s > ev[i].ts - size; s -= slide) {
            win_t w = {.user = ev[i].user, .start = s, .end = s + size};
            win_add(&w, ev[i].amount);
            wl_push(&parts, w);
        }
    }
    qsort(parts.v, parts.n, sizeof(win_t), cmp_win);
    for (size_t i = 0; i < parts.n; i++) {
        if (out.n > 0 && cmp_win(&out.v[out.n - 1], &parts.v[i]) == 0)
            win_add(&out.v[out.n - 1], parts.v[i].total);
        else
            wl_push(&out, parts.v[i]);
    }
    free(parts.v);
    return out;
}

static winlist_t
ref_sessions(const event_t *ev, size_t n, int64_t gap)
{
    winlist_t out = {0};
    event_t *s = xcalloc(n, sizeof(*s));
    memcpy(s, ev, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_event_user_ts);
    for (size_t i = 0; i < n; i++) {
        win_t *cur = out.n > 0 ? &out.v[out.n - 1] : NULL;
        if (cur != NULL && cur->user == s[i].user && s[i].ts <= cur->end) {
            win_add(cur, s[i].amount);
            if (s[i].ts + gap > cur->end)
                cur->end = s[i].ts + gap;
        } else {
            win_t w = {.user = s[i].user, .start = s[i].ts, .end = s[i].ts + gap};
            win_add(&w, s[i].amount);
            wl_push(&out, w);
        }
    }
    free(s);
    return out;
}

static winlist_t
reference(enum wkind kind, const event_t *ev, size_t n, const unsigned char *skip)
{
    switch (kind) {
    case W_TUMBLING:
        return ref_aligned(ev, n, skip, TUMBLE_SIZE, TUMBLE_SIZE);
    case W_SLIDING:
        return ref_aligned(ev, n, skip, SLIDE_SIZE, SLIDE_STEP);
    case W_SESSION:
    default:
        ck_assert_msg(skip == NULL, "session reference has no late events");
        return ref_sessions(ev, n, SESSION_GAP);
    }
}

/* late[i] = 1 when event i is late for its tumbling window: end - 1 <=
 * watermark, the watermark being (max ts of the first i+1-lag events) -
 * B - 1 (lag 0: the watermark at its arrival, single source instance). */
static size_t
classify_late(const event_t *ev, size_t n, size_t lag, unsigned char *late)
{
    size_t count = 0;
    int64_t max_ts = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (i >= lag && ev[i - lag].ts > max_ts)
            max_ts = ev[i - lag].ts;
        int64_t end = floor_div(ev[i].ts, TUMBLE_SIZE) * TUMBLE_SIZE + TUMBLE_SIZE;
        late[i] = max_ts != INT64_MIN && end - 1 <= max_ts - BOUND_MS - 1;
        count += late[i];
    }
    return count;
}

/* ---- files and the CLI -------------------------------------------------------- */

static void
mkdir_p(const char *path)
{
    char buf[1024];
    ck_assert_msg(strlen(path) < sizeof(buf), "path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
                      strerror(errno));
        *p = '/';
    }
    ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
}

/* A fresh directory under $RN_TEST_TMP (or /tmp). */
static void
make_workdir(char *dir, size_t cap, const char *tag)
{
    const char *base = getenv("RN_TEST_TMP");
    char parent[900];
    if (base == NULL || *base == '\0')
        base = "/tmp";
    snprintf(parent, sizeof(parent), "%s/window_reference", base);
    mkdir_p(parent);
    snprintf(dir, cap, "%s/%s-XXXXXX", parent, tag);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

static void
remove_workdir(const char *dir)
{
    static const char *const files[] = {"input.jsonl", "job.yaml", "out.jsonl", "late.jsonl",
                                        "run.log"};
    char path[1200];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void
write_events(const char *path, const event_t *ev, size_t n)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    for (size_t i = 0; i < n; i++)
        fprintf(f, "{\"user\":\"u%d\",\"amount\":%" PRId64 ",\"ts\":%" PRId64 "}\n", ev[i].user,
                ev[i].amount, ev[i].ts);
    ck_assert_msg(fclose(f) == 0, "write %s: %s", path, strerror(errno));
}

static void
write_job(const char *dir, enum wkind kind, bool with_late)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/job.yaml", dir);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    fprintf(f,
            "name: window-reference\n"
            "parallelism: 1\n"
            "state:\n"
            "  backend: memory\n"
            "sources:\n"
            "  events:\n"
            "    type: file\n"
            "    path: \"%s/input.jsonl\"\n"
            "    format: json\n"
            "    schema:\n"
            "      user: string\n"
            "      amount: int\n"
            "      ts: timestamp\n"
            "    event_time: ts\n"
            "    watermark:\n"
            "      max_out_of_orderness: %dms\n"
            "operators:\n"
            "  per_user:\n"
            "    type: window_aggregate\n"
            "    inputs: [events]\n"
            "    key: [user]\n",
            dir, BOUND_MS);
    switch (kind) {
    case W_TUMBLING:
        fprintf(f, "    window: {type: tumbling, size: %dms}\n", TUMBLE_SIZE);
        break;
    case W_SLIDING:
        fprintf(f, "    window: {type: sliding, size: %dms, slide: %dms}\n", SLIDE_SIZE, SLIDE_STEP);
        break;
    case W_SESSION:
        fprintf(f, "    window: {type: session, gap: %dms}\n", SESSION_GAP);
        break;
    }
    fprintf(f, "    aggregates:\n"
               "      n: count()\n"
               "      total: sum(amount)\n"
               "      lo: min(amount)\n"
               "      hi: max(amount)\n");
    if (with_late)
        fprintf(f, "    allowed_lateness: 0s\n"
                   "    late_output: late\n");
    fprintf(f,
            "sinks:\n"
            "  out:\n"
            "    type: file\n"
            "    inputs: [per_user]\n"
            "    path: \"%s/out.jsonl\"\n"
            "    format: json\n",
            dir);
    if (with_late)
        fprintf(f,
                "  late:\n"
                "    type: file\n"
                "    inputs: [per_user.late]\n"
                "    path: \"%s/late.jsonl\"\n"
                "    format: json\n",
                dir);
    ck_assert_msg(fclose(f) == 0, "write %s: %s", path, strerror(errno));
}

/* The first cap-1 bytes of a file (the whole of a short log), for messages. */
static void
read_head(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
}

/* The state backends every case runs on. */
static const char *const backends[] = {"memory", "rocksdb"};
#define NBACKENDS ((int)(sizeof(backends) / sizeof(backends[0])))

static void
run_job(const char *dir, int par, const char *backend)
{
    const char *runnel = getenv("RUNNEL");
    char cmd[3000], log[1200], logtext[1500];
    ck_assert_msg(runnel != NULL && *runnel != '\0', "RUNNEL is not set (ctest sets it)");
    ck_assert_msg(access(runnel, X_OK) == 0, "RUNNEL=%s is not an executable: %s", runnel,
                  strerror(errno));
    snprintf(log, sizeof(log), "%s/run.log", dir);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && '%s' run '%s/job.yaml' --quiet --set parallelism=%d "
             "--set state.backend=%s --set state.dir='%s/state' >'%s' 2>&1",
             dir, runnel, dir, par, backend, dir, log);
    int st = system(cmd);
    read_head(log, logtext, sizeof(logtext));
    ck_assert_msg(st != -1, "system(%s): %s", cmd, strerror(errno));
    ck_assert_msg(WIFEXITED(st), "runnel run (P=%d) did not exit normally (status 0x%x)\n%s", par,
                  (unsigned)st, logtext);
    ck_assert_msg(WEXITSTATUS(st) == 0, "runnel run (P=%d) exited %d, expected 0; %s:\n%s", par,
                  WEXITSTATUS(st), log, logtext);
}

/* ---- reading the engine's output ---------------------------------------------- */

static int
parse_user(json_t *v, int *user)
{
    const char *s = json_string_value(v);
    char *end;
    if (s == NULL || s[0] != 'u' || s[1] < '0' || s[1] > '9')
        return -1;
    long u = strtol(s + 1, &end, 10);
    if (*end != '\0' || u < 0 || u >= NUSERS)
        return -1;
    *user = (int)u;
    return 0;
}

static int
get_int(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || !json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Reads out.jsonl: one object per line, fields in the contract's order. */
static winlist_t
read_windows(const char *path)
{
    static const char *const order[] = {"user", "window_start", "window_end", "n",
                                        "total", "lo",           "hi"};
    winlist_t wl = {0};
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "the job wrote no %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        ck_assert_msg(o != NULL && json_is_object(o), "%s:%ld: not a JSON object (%s): %s", path,
                      lineno, o == NULL ? jerr.text : "other JSON value", line);
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach(o, key, val)
        {
            ck_assert_msg(k < 7 && strcmp(key, order[k]) == 0,
                          "%s:%ld: field %zu is '%s', expected '%s' (fields must be user, "
                          "window_start, window_end, n, total, lo, hi in that order): %s",
                          path, lineno, k + 1, key, k < 7 ? order[k] : "(none: too many fields)",
                          line);
            k++;
        }
        ck_assert_msg(k == 7, "%s:%ld: %zu fields, expected 7: %s", path, lineno, k, line);
        win_t w;
        ck_assert_msg(parse_user(json_object_get(o, "user"), &w.user) == 0,
                      "%s:%ld: user is not one of u0..u%d: %s", path, lineno, NUSERS - 1, line);
        ck_assert_msg(get_int(o, "window_start", &w.start) == 0 &&
                          get_int(o, "window_end", &w.end) == 0 && get_int(o, "n", &w.n) == 0 &&
                          get_int(o, "total", &w.total) == 0 && get_int(o, "lo", &w.lo) == 0 &&
                          get_int(o, "hi", &w.hi) == 0,
                      "%s:%ld: window_start, window_end, n, total, lo and hi must be JSON "
                      "integers: %s",
                      path, lineno, line);
        json_decref(o);
        wl_push(&wl, w);
    }
    free(line);
    fclose(f);
    return wl;
}

/* Reads late.jsonl: the late records as they came in (user, amount, ts;
 * other fields are ignored). A missing file counts as empty. */
static event_t *
read_late(const char *path, size_t *n_out)
{
    size_t n = 0, cap = 256;
    event_t *ev = xcalloc(cap, sizeof(*ev));
    FILE *f = fopen(path, "r");
    *n_out = 0;
    if (f == NULL)
        return ev;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long lineno = 0;
    while ((len = getline(&line, &lcap, f)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        ck_assert_msg(o != NULL && json_is_object(o), "%s:%ld: not a JSON object (%s): %s", path,
                      lineno, o == NULL ? jerr.text : "other JSON value", line);
        if (n == cap) {
            cap *= 2;
            ev = realloc(ev, cap * sizeof(*ev));
            ck_assert_msg(ev != NULL, "out of memory");
        }
        ck_assert_msg(parse_user(json_object_get(o, "user"), &ev[n].user) == 0 &&
                          get_int(o, "amount", &ev[n].amount) == 0 &&
                          get_int(o, "ts", &ev[n].ts) == 0,
                      "%s:%ld: a late record must hold the input's user, amount (integer) and "
                      "ts (integer epoch ms): %s",
                      path, lineno, line);
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return ev;
}

/* ---- comparison ------------------------------------------------------------------ */

static int
fmt_win(char *buf, size_t cap, const win_t *w)
{
    return snprintf(buf, cap,
                    "user=u%d [%" PRId64 ", %" PRId64 ") n=%" PRId64 " total=%" PRId64
                    " lo=%" PRId64 " hi=%" PRId64,
                    w->user, w->start, w->end, w->n, w->total, w->lo, w->hi);
}

static bool
same_values(const win_t *a, const win_t *b)
{
    return a->n == b->n && a->total == b->total && a->lo == b->lo && a->hi == b->hi;
}

/* Sorts both lists and compares them; fails with the first difference of
 * each kind and the counts. */
static void
compare_windows(const char *what, winlist_t *exp, winlist_t *got)
{
    qsort(exp->v, exp->n, sizeof(win_t), cmp_win);
    qsort(got->v, got->n, sizeof(win_t), cmp_win);

    char msg[MSG_MAX], a[256], b[256];
    size_t dups = 0, missing = 0, extra = 0, wrong = 0;
    char first_dup[300] = "", first_missing[300] = "", first_extra[300] = "",
         first_wrong[600] = "";

    for (size_t i = 1; i < got->n; i++) {
        if (cmp_win(&got->v[i - 1], &got->v[i]) == 0) {
            if (dups++ == 0) {
                fmt_win(a, sizeof(a), &got->v[i - 1]);
                fmt_win(b, sizeof(b), &got->v[i]);
                snprintf(first_dup, sizeof(first_dup), "%s and again %s", a, b);
            }
        }
    }
    size_t i = 0, j = 0;
    while (i < exp->n || j < got->n) {
        int c = i >= exp->n ? 1 : j >= got->n ? -1 : cmp_win(&exp->v[i], &got->v[j]);
        if (c < 0) {
            if (missing++ == 0)
                fmt_win(first_missing, sizeof(first_missing), &exp->v[i]);
            i++;
        } else if (c > 0) {
            if (extra++ == 0)
                fmt_win(first_extra, sizeof(first_extra), &got->v[j]);
            j++;
        } else {
            if (!same_values(&exp->v[i], &got->v[j]) && wrong++ == 0) {
                fmt_win(a, sizeof(a), &exp->v[i]);
                fmt_win(b, sizeof(b), &got->v[j]);
                snprintf(first_wrong, sizeof(first_wrong), "expected %s, got %s", a, b);
            }
            i++;
            /* duplicates of this window in got are counted above */
            while (j + 1 < got->n && cmp_win(&got->v[j], &got->v[j + 1]) == 0)
                j++;
            j++;
        }
    }
    if (dups == 0 && missing == 0 && extra == 0 && wrong == 0)
        return;
    snprintf(msg, sizeof(msg),
             "%s: %zu windows expected, %zu written; %zu duplicated, %zu missing, %zu "
             "unexpected, %zu with wrong values.%s%s%s%s%s%s%s%s",
             what, exp->n, got->n, dups, missing, extra, wrong,
             dups ? "\n  first duplicate: " : "", first_dup,
             missing ? "\n  first missing: " : "", first_missing,
             extra ? "\n  first unexpected (in output, not in reference): " : "", first_extra,
             wrong ? "\n  first wrong values: " : "", first_wrong);
    ck_abort_msg("%s", msg);
}

static int
cmp_event_full(const void *a, const void *b)
{
    return cmp_event_user_ts(a, b);
}

static void
compare_late(const char *what, event_t *exp, size_t nexp, event_t *got, size_t ngot)
{
    qsort(exp, nexp, sizeof(*exp), cmp_event_full);
    qsort(got, ngot, sizeof(*got), cmp_event_full);
    size_t i = 0, j = 0, missing = 0, extra = 0;
    char first_missing[160] = "", first_extra[160] = "";
    while (i < nexp || j < ngot) {
        int c = i >= nexp ? 1 : j >= ngot ? -1 : cmp_event_full(&exp[i], &got[j]);
        if (c < 0) {
            if (missing++ == 0)
                snprintf(first_missing, sizeof(first_missing),
                         "user=u%d amount=%" PRId64 " ts=%" PRId64, exp[i].user, exp[i].amount,
                         exp[i].ts);
            i++;
        } else if (c > 0) {
            if (extra++ == 0)
                snprintf(first_extra, sizeof(first_extra),
                         "user=u%d amount=%" PRId64 " ts=%" PRId64, got[j].user, got[j].amount,
                         got[j].ts);
            j++;
        } else {
            i++;
            j++;
        }
    }
    ck_assert_msg(missing == 0 && extra == 0,
                  "%s: late.jsonl holds %zu records, the reference %zu late events; %zu late "
                  "events missing from it (first: %s), %zu records in it that are not late "
                  "events or appear more than once (first: %s)",
                  what, ngot, nexp, missing, first_missing, extra, first_extra);
}

/* ---- generator sanity --------------------------------------------------------- */

/* No event is late at its arrival (ts > max ts seen before - B - 1), and
 * some are out of order, so the run exercises disorder and not lateness. */
static void
check_in_bound(const event_t *ev, size_t n)
{
    int64_t max_ts = INT64_MIN;
    size_t disorder = 0;
    for (size_t i = 0; i < n; i++) {
        if (max_ts != INT64_MIN) {
            ck_assert_msg(ev[i].ts > max_ts - BOUND_MS - 1,
                          "generator: event %zu (ts %" PRId64 ") is beyond the bound", i, ev[i].ts);
            disorder += ev[i].ts < max_ts;
        }
        if (ev[i].ts > max_ts)
            max_ts = ev[i].ts;
    }
    ck_assert_msg(disorder > n / 4, "generator: only %zu out-of-order events", disorder);
}

static void
check_sessions_shape(const winlist_t *ref)
{
    size_t merged = 0, single = 0;
    int users_split = 0, last_user = -1, per_user = 0;
    for (size_t i = 0; i < ref->n; i++) {
        if (ref->v[i].n > 1)
            merged++;
        else
            single++;
        if (ref->v[i].user != last_user) {
            last_user = ref->v[i].user;
            per_user = 0;
        }
        if (++per_user == 2)
            users_split++;
    }
    ck_assert_msg(merged > 500 && single > 100 && users_split == NUSERS,
                  "generator: sessions do not both merge and split (%zu with several events, "
                  "%zu single, %d users with several sessions)",
                  merged, single, users_split);
}

/* ---- the cases ------------------------------------------------------------------- */

static const uint64_t seeds[] = {UINT64_C(0x5eed0001a11ce5), UINT64_C(0x5eed0002b0b0b0),
                                 UINT64_C(0x5eed0003c0ffee)};

/* (tumbling, sliding, session) x (P=1, P=4) x backends. */
START_TEST(test_windows_match_reference)
{
    enum wkind kind = (enum wkind)((_i % 6) / 2);
    int par = _i % 2 ? 4 : 1;
    const char *backend = backends[_i / 6];
    char dir[1024], path[1200], what[1400];
    size_t n;
    event_t *ev = kind == W_SESSION ? gen_sessions(seeds[kind], &n) : gen_uniform(seeds[kind], &n);
    check_in_bound(ev, n);
    winlist_t exp = reference(kind, ev, n, NULL);
    if (kind == W_SESSION)
        check_sessions_shape(&exp);

    snprintf(path, sizeof(path), "%s-p%d-%s", kind_names[kind], par, backend);
    make_workdir(dir, sizeof(dir), path);
    snprintf(what, sizeof(what), "%s windows, P=%d, %s state (files in %s)", kind_names[kind], par,
             backend, dir);
    snprintf(path, sizeof(path), "%s/input.jsonl", dir);
    write_events(path, ev, n);
    write_job(dir, kind, false);
    run_job(dir, par, backend);

    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    winlist_t got = read_windows(path);
    compare_windows(what, &exp, &got);

    free(got.v);
    free(exp.v);
    free(ev);
    remove_workdir(dir);
}
END_TEST

/* Tumbling windows with late events, P=1 and P=4, each backend (one input file:
 * one source instance reads it, so arrival order is file order). */
START_TEST(test_late_events)
{
    int par = _i % 2 ? 4 : 1;
    char dir[1024], path[1200], what[1400];
    size_t n, nlate_lagged, ngot;
    event_t *ev = gen_late(UINT64_C(0x1a7e1a7e5eed), &n);
    unsigned char *late = xcalloc(n, 1), *late_lagged = xcalloc(n, 1);
    size_t nlate = classify_late(ev, n, 0, late);
    nlate_lagged = classify_late(ev, n, LAG_CHECK, late_lagged);
    ck_assert_msg(nlate > 100, "generator: only %zu late events", nlate);
    ck_assert_msg(nlate == nlate_lagged && memcmp(late, late_lagged, n) == 0,
                  "generator: late classification depends on watermark lag (%zu vs %zu)", nlate,
                  nlate_lagged);

    winlist_t exp = reference(W_TUMBLING, ev, n, late);
    event_t *exp_late = xcalloc(nlate, sizeof(*exp_late));
    for (size_t i = 0, k = 0; i < n; i++)
        if (late[i])
            exp_late[k++] = ev[i];

    snprintf(path, sizeof(path), "late-p%d", par);
    make_workdir(dir, sizeof(dir), path);
    snprintf(what, sizeof(what), "tumbling windows with %zu late events, P=%d (files in %s)", nlate,
             par, dir);
    snprintf(path, sizeof(path), "%s/input.jsonl", dir);
    write_events(path, ev, n);
    write_job(dir, W_TUMBLING, true);
    run_job(dir, par, backends[_i / 2]);

    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    winlist_t got = read_windows(path);
    compare_windows(what, &exp, &got);

    snprintf(path, sizeof(path), "%s/late.jsonl", dir);
    event_t *got_late = read_late(path, &ngot);
    compare_late(what, exp_late, nlate, got_late, ngot);

    free(got_late);
    free(exp_late);
    free(got.v);
    free(exp.v);
    free(late_lagged);
    free(late);
    free(ev);
    remove_workdir(dir);
}
END_TEST

static Suite *
window_reference_suite(void)
{
    Suite *s = suite_create("window_reference");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_windows_match_reference, 0, 6 * NBACKENDS);
    tcase_add_loop_test(tc, test_late_events, 0, 2 * NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(window_reference_suite)
