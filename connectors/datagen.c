/*
 * connectors/datagen.c: the "datagen" source: deterministic generated
 * events for tests, demos and benchmarks (Flink's datagen).
 *
 * Generator "sequence": event id has the fields
 *   id int, key string ('k' + id % keys), value int (id % 1000),
 *   ts timestamp (start + id * interval).
 * Instance i of p generates ids i, i + p, i + 2p, ... below `events`
 * (forever when events is absent), so that the union over instances is
 * 0 .. events - 1 whatever the parallelism.
 *
 * Design, for speed (this source feeds the throughput benchmark): the key
 * strings are made once per instance into one table that outlives every
 * batch, so a key cell is a 16-byte copy of a precomputed cell pointing
 * into it; a poll fills a whole batch in one loop that keeps id % keys and
 * id % 1000 as counters stepped by p instead of dividing per row, and
 * writes cells directly rather than through rn__batch_append. With `rate`,
 * an instance compares the events it has made with what rate / p allows
 * since its first poll on the monotonic clock and answers RN_EAGAIN when
 * ahead.
 *
 * @thread plan: control; an instance: its task.
 */
#include "connectors/connector_int.h"

#include <errno.h>
#include <math.h>

#define MAX_KEYS ((int64_t)1 << 28)

/* Event times are kept to the years RFC 3339 can write, 0000-01-01 to
 * 9999-12-31 (epoch milliseconds), which also keeps start + id * interval
 * and the windows built on it far from int64 overflow. */
#define TS_LO (-62167219200000LL)
#define TS_HI 253402300799999LL

/* "schema" is listed only to be refused by plan() with a better message
 * than "unknown key". */
static const char *const keys[] = {"generator", "events",   "rate",   "keys",
                                   "start",     "interval", "schema", NULL};
static const char *const generators[] = {"sequence", NULL};

enum { F_ID, F_KEY, F_VALUE, F_TS, NFIELDS };

typedef struct dg_plan {
    int64_t events; /* INT64_MAX when unbounded */
    double rate;    /* events per second for the whole source; 0: no limit */
    int64_t keys;
    int64_t start;
    int64_t interval; /* event-time step, microseconds */
    int64_t max_id;   /* the last id whose event time is <= TS_HI */
} dg_plan_t;

typedef struct dg {
    const dg_plan_t *plan;
    rn_value_t *keycells; /* keys cells pointing into keytext; owned */
    char *keytext;        /* "k0k1k2..." in the same allocation */
    int64_t id;           /* next id */
    int64_t step;         /* parallelism */
    int64_t key;          /* id % keys */
    int64_t key_step;     /* step % keys */
    int64_t value;        /* id % 1000 */
    int64_t value_step;   /* step % 1000 */
    /* Restored from a savepoint of another parallelism: the ids the old
     * instances made are skipped. A generation is the old parallelism n
     * and each old instance's next id: id was made when id < next[id % n].
     * Several generations when a rescaled job is rescaled again before it
     * passed the earlier one's positions. Ids from skip_until on were
     * made by none. Checkpoints carry the generations until the instance
     * passed them, so that a restore skips the same ids. */
    int64_t skip_until;
    int64_t *gens; /* n0, next0[n0], n1, next1[n1], ...; owned */
    size_t ngens_len;
    /* Rate limiting. */
    double rate; /* this instance's events per second; 0: no limit */
    int64_t t0;  /* monotonic ns of the first poll, 0 before it */
    int64_t made;
} dg_t;

/* ---- plan ---------------------------------------------------------------- */

static rn_schema_t *
sequence_schema(void)
{
    rn_schema_t *s = rn__schema_new();
    rn__schema_add(s, "id", RN_TYPE_INT, NULL);
    rn__schema_add(s, "key", RN_TYPE_STRING, NULL);
    rn__schema_add(s, "value", RN_TYPE_INT, NULL);
    rn__schema_add(s, "ts", RN_TYPE_TIMESTAMP, NULL);
    return s;
}

static rn_code_t
read_generator(const rn_conf_t *conf, const char *what, rn_error_t *err)
{
    const char *name = NULL;
    int which;
    rn_code_t rc;

    if ((rc = rn__conf_str(conf, "generator", "sequence", &name, err)) != RN_OK)
        return rc;
    if (name != NULL && strcmp(name, "nexmark") == 0)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "generator"),
                            "%s: generator 'nexmark' is not available yet; use 'sequence'",
                            what);
    return rn__conf_enum(conf, "generator", generators, 0, &which, err);
}

/* The event-time step: a duration, or microseconds ("250us") so that a
 * generator can stand for more than 1000 events per second of event time. */
static rn_code_t
read_interval_us(const rn_conf_t *conf, int64_t *out, rn_error_t *err)
{
    const rn_conf_t *node = rn_conf_get(conf, "interval");
    const char *text = rn_conf_scalar(node);
    int64_t ms = 1;
    size_t len;

    if (text != NULL && (len = strlen(text)) > 2 && strcmp(text + len - 2, "us") == 0) {
        char *end;
        errno = 0;
        long long us = strtoll(text, &end, 10);
        if (end != text + len - 2 || us < 0 || errno == ERANGE)
            return rn__conf_err(err, RN_EINVAL, node,
                                "key 'interval': expected a duration such as 1ms or 250us, "
                                "got '%s'", text);
        *out = us;
        return RN_OK;
    }
    rn_code_t rc = rn__conf_duration_ms(conf, "interval", 1, &ms, err);
    if (rc == RN_OK && ms > INT64_MAX / 1000)
        return rn__conf_err(err, RN_EINVAL, node, "key 'interval': too large");
    *out = ms * 1000;
    return rc;
}

/* start, and the time of the last event: within TS_LO..TS_HI. Sets
 * plan->max_id, the last id a generator without `events` may make. */
static rn_code_t
check_times(const rn_conf_t *conf, const char *what, dg_plan_t *plan, rn_error_t *err)
{
    if (plan->start < TS_LO || plan->start > TS_HI)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "start"),
                            "%s: start must be an event time from 0000-01-01 to 9999-12-31 "
                            "(epoch milliseconds %lld to %lld), got %lld",
                            what, TS_LO, TS_HI, (long long)plan->start);
    /* id * interval (us) / 1000 <= TS_HI - start, with no product formed:
     * the bound in microseconds fits (TS_HI - TS_LO < 2^59 / 1000). */
    int64_t room_us = (TS_HI - plan->start) * 1000 + 999;
    plan->max_id = plan->interval == 0 ? INT64_MAX : room_us / plan->interval;
    if (rn_conf_get(conf, "events") != NULL && plan->events > 0 &&
        plan->events - 1 > plan->max_id)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "events"),
                            "%s: %lld events from start %lld at this interval would end past "
                            "9999-12-31; at most %lld fit",
                            what, (long long)plan->events, (long long)plan->start,
                            (long long)plan->max_id + 1);
    return RN_OK;
}

static rn_code_t
dg_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    dg_plan_t plan = {INT64_MAX, 0, 1000, 1700000000000LL, 1000, INT64_MAX};
    char what[160];
    rn_code_t rc;

    rn__conn_what(pc, "datagen source", what, sizeof(what));
    if (rn_conf_get(conf, "schema") != NULL)
        return rn__conf_err(err, RN_EINVAL, rn__conf_key_node(conf, "schema"),
                            "%s: the schema of generator 'sequence' is fixed (id int, key "
                            "string, value int, ts timestamp); remove 'schema'",
                            what);
    if ((rc = read_generator(conf, what, err)) != RN_OK ||
        (rc = rn__conf_int(conf, "events", plan.events, &plan.events, err)) != RN_OK ||
        (rc = rn__conf_float(conf, "rate", 0, &plan.rate, err)) != RN_OK ||
        (rc = rn__conf_int(conf, "keys", plan.keys, &plan.keys, err)) != RN_OK ||
        (rc = rn__conf_int(conf, "start", plan.start, &plan.start, err)) != RN_OK ||
        (rc = read_interval_us(conf, &plan.interval, err)) != RN_OK)
        return rc;
    if (plan.events < 0)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "events"),
                            "%s: events must be 0 or more (leave it out for no end)", what);
    if (!(plan.rate >= 0) || isinf(plan.rate))
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "rate"),
                            "%s: rate must be events per second, 0 or more (0: no limit)", what);
    if (plan.keys < 1 || plan.keys > MAX_KEYS)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "keys"),
                            "%s: keys must be between 1 and %lld", what, (long long)MAX_KEYS);
    if (plan.interval < 0)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "interval"),
                            "%s: interval must not be negative", what);
    if ((rc = check_times(conf, what, &plan, err)) != RN_OK)
        return rc;
    if ((rc = rn__pc_add_output(pc, NULL, sequence_schema(), err)) != RN_OK)
        return rc;
    dg_plan_t *p = rn_xmalloc(sizeof(*p));
    *p = plan;
    rn__pc_set_plan(pc, p, rn_free);
    rn__pc_set_bounded(pc, rn_conf_get(conf, "events") != NULL);
    return RN_OK;
}

/* ---- run ------------------------------------------------------------------ */

static size_t
put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0, o = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        p[o++] = tmp[--n];
    return o;
}

/* Builds the key table: cells and their text in one allocation. */
static rn_code_t
make_keys(dg_t *g, int64_t nkeys, rn_error_t *err)
{
    size_t ncells = (size_t)nkeys, text = 0;

    /* 'k' plus the digits of each key number. */
    for (int64_t lo = 0, width = 1, hi = 10; lo < nkeys; lo = hi, hi *= 10, width++)
        text += (size_t)((hi < nkeys ? hi : nkeys) - lo) * (size_t)(1 + width);
    g->keycells = rn_malloc(ncells * sizeof(rn_value_t) + text);
    if (g->keycells == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for a table of %lld keys",
                        (long long)nkeys);
    g->keytext = (char *)(g->keycells + ncells);
    char *p = g->keytext;
    for (size_t k = 0; k < ncells; k++) {
        size_t len = 1;
        p[0] = 'k';
        len += put_u64(p + 1, k);
        g->keycells[k] = rn__val_str(p, (uint32_t)len);
        p += len;
    }
    return RN_OK;
}

/* Appends generation NEXTS (a JSON array: the next id of each instance of
 * that parallelism) to g->gens, unless an equal one is there. */
static rn_code_t
add_gen(dg_t *g, const json_t *nexts, rn_error_t *err)
{
    size_t n = json_array_size(nexts);
    if (n == 0 || n > (1u << 15) || g->ngens_len + n + 1 > (1u << 20))
        return rn__errf(err, RN_ECORRUPT, "the generator positions are not those of a "
                                          "parallelism (%zu)", n);
    int64_t *gens = rn_realloc(g->gens, (g->ngens_len + n + 1) * sizeof(int64_t));
    if (gens == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    g->gens = gens;
    int64_t *gen = gens + g->ngens_len;
    gen[0] = (int64_t)n;
    for (size_t j = 0; j < n; j++) {
        const json_t *e = json_array_get(nexts, j);
        json_int_t v = json_integer_value(e);
        if (!json_is_integer(e) || v < (json_int_t)j || (v - (json_int_t)j) % (json_int_t)n != 0)
            return rn__errf(err, RN_ECORRUPT, "the generator positions are not those of %zu "
                                              "instances", n);
        gen[1 + j] = v;
        if (v > g->skip_until)
            g->skip_until = v;
    }
    for (size_t o = 0; o < g->ngens_len; o += (size_t)g->gens[o] + 1)
        if (g->gens[o] == (int64_t)n && memcmp(g->gens + o, gen, (n + 1) * sizeof(int64_t)) == 0)
            return RN_OK;
    g->ngens_len += n + 1;
    return RN_OK;
}

/* Adds the generations a checkpoint's data carries ("made"), if any. */
static rn_code_t
add_gens(dg_t *g, const json_t *data, rn_error_t *err)
{
    const json_t *made = json_object_get(data, "made");
    size_t i;
    json_t *e;
    if (made != NULL && !json_is_array(made))
        return rn__errf(err, RN_ECORRUPT, "the generator's earlier positions are not a list");
    json_array_foreach(made, i, e)
    {
        if (add_gen(g, e, err) != RN_OK)
            return err != NULL ? err->code : RN_ECORRUPT;
    }
    return RN_OK;
}

/* Another parallelism than the savepoint's: this instance makes its ids
 * (inst + k * par) from the least old position on, skipping those the
 * old instances made, and those the generations before them made that
 * the old instances were still skipping. */
static rn_code_t
rescale(dg_t *g, const json_t *all, int64_t inst, int64_t par, rn_error_t *err)
{
    size_t n = json_array_size(all);
    if (n == 0 || n > (1u << 15))
        return rn__errf(err, RN_ECORRUPT, "the savepoint has no generator positions");
    json_t *nexts = json_array();
    bool *seen = rn_xcalloc(n, sizeof(bool));
    for (size_t j = 0; j < n; j++)
        json_array_append_new(nexts, json_integer(-1));
    int64_t lo = INT64_MAX;
    rn_code_t rc = RN_OK;
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        json_int_t j = json_integer_value(json_object_get(e, "instance"));
        const json_t *data = json_object_get(e, "data");
        json_t *next = json_object_get(data, "next");
        if (j < 0 || (size_t)j >= n || seen[j] || !json_is_integer(next)) {
            rc = rn__errf(err, RN_ECORRUPT, "the savepoint's generator positions are not "
                                            "those of %zu instances", n);
            break;
        }
        seen[j] = true;
        json_array_set(nexts, (size_t)j, next);
        json_int_t v = json_integer_value(next);
        lo = v < lo ? v : lo;
        if ((rc = add_gens(g, data, err)) != RN_OK)
            break;
    }
    if (rc == RN_OK)
        rc = add_gen(g, nexts, err);
    json_decref(nexts);
    rn_free(seen);
    if (rc != RN_OK)
        return rc;
    /* Ids below lo were all made; from skip_until on, none. */
    int64_t id = lo - ((lo % par) - inst + par) % par;
    if (id < lo)
        id += par;
    g->id = id;
    g->key = id % g->plan->keys;
    g->value = id % 1000;
    return RN_OK;
}

static bool
made_before(const dg_t *g, int64_t id)
{
    if (id >= g->skip_until)
        return false;
    for (size_t o = 0; o < g->ngens_len; o += (size_t)g->gens[o] + 1)
        if (id < g->gens[o + 1 + id % g->gens[o]])
            return true;
    return false;
}

static rn_code_t
dg_open(rn_op_t *op, rn_error_t *err)
{
    const dg_plan_t *plan = rn__op_plan(op);
    int64_t inst = rn__op_instance(op), par = rn__op_parallelism(op);
    dg_t *g = rn_calloc(1, sizeof(*g));

    if (g == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    rn__op_set_data(op, g);
    g->plan = plan;
    g->id = inst;
    g->step = par;
    g->key = inst % plan->keys;
    g->key_step = par % plan->keys;
    g->value = inst % 1000;
    g->value_step = par % 1000;
    g->rate = plan->rate / (double)par;
    /* Restoring: continue at the id the checkpoint recorded (one of this
     * instance's: inst + k * par). */
    const json_t *snap = rn__op_restored(op);
    if (rn__op_restored_all(op) != NULL && rescale(g, rn__op_restored_all(op), inst, par, err) != RN_OK) {
        rn_free(g);
        rn__op_set_data(op, NULL);
        return err != NULL ? err->code : RN_EINVAL;
    }
    if (snap != NULL) {
        json_t *next = json_object_get(snap, "next");
        json_int_t id = json_integer_value(next);
        /* Its first id at or past the end at most: a position beyond
         * would end the source with events never made; and there when
         * it had ended. */
        if (!json_is_integer(next) || id < inst || (id - inst) % par != 0 ||
            id - par >= plan->events ||
            (rn__op_restored_finished(op) && id < plan->events)) {
            rn_free(g);
            rn__op_set_data(op, NULL);
            return rn__errf(err, RN_ECORRUPT,
                            "the checkpoint's position of this generator (data.next %lld) is "
                            "not one of its ids (instance %lld of %lld, %lld events)",
                            (long long)id, (long long)inst, (long long)par,
                            (long long)plan->events);
        }
        g->id = id;
        g->key = id % plan->keys;
        g->value = id % 1000;
        if (add_gens(g, snap, err) != RN_OK) {
            rn_free(g->gens);
            rn_free(g);
            rn__op_set_data(op, NULL);
            return err != NULL ? err->code : RN_ECORRUPT;
        }
    }
    if (make_keys(g, plan->keys, err) != RN_OK) {
        /* close() is not called after a failed open(). */
        rn_free(g);
        rn__op_set_data(op, NULL);
        return RN_ENOMEM;
    }
    return RN_OK;
}

static void
dg_close(rn_op_t *op)
{
    dg_t *g = rn__op_data(op);
    if (g == NULL)
        return;
    rn_free(g->keycells);
    rn_free(g->gens);
    rn_free(g);
    rn__op_set_data(op, NULL);
}

/* How many events this poll may make under the rate limit (0: none yet). */
static int64_t
rate_allowance(dg_t *g)
{
    int64_t now = rn__mono_ns();
    if (g->t0 == 0)
        g->t0 = now;
    /* The first event is due at once, the next one 1/rate later, ... */
    double due = floor((double)(now - g->t0) * g->rate / 1e9) + 1 - (double)g->made;
    /* A huge rate makes due huge (or infinite): converting that to an
     * integer would be undefined; a poll never makes more than a batch. */
    return due >= (double)RN_BATCH_ROWS ? RN_BATCH_ROWS : due >= 1 ? (int64_t)due : 0;
}

static rn_code_t
dg_poll(rn_op_t *op, bool *done, rn_error_t *err)
{
    dg_t *g = rn__op_data(op);
    const dg_plan_t *plan = g->plan;
    int64_t n, left;

    /* Past ids the old instances of a savepoint made. */
    while (g->id < g->skip_until && made_before(g, g->id)) {
        g->id += g->step;
        g->key = g->id % plan->keys;
        g->value = g->id % 1000;
    }
    if (g->id >= plan->events) {
        *done = true;
        return RN_OK;
    }
    /* Only a generator without `events` gets here (plan() checked that the
     * last of `events` fits). */
    if (g->id > plan->max_id)
        return rn__errf(err, RN_EINVAL,
                        "event %lld would have an event time past 9999-12-31 (start %lld, "
                        "interval %lld us); set events or a smaller interval",
                        (long long)g->id, (long long)plan->start, (long long)plan->interval);
    int64_t last = plan->events - 1 < plan->max_id ? plan->events - 1 : plan->max_id;
    left = (last - g->id) / g->step + 1;
    n = RN_BATCH_ROWS;
    if (g->rate > 0) {
        int64_t allowed = rate_allowance(g);
        if (allowed == 0)
            return RN_EAGAIN;
        n = allowed < n ? allowed : n;
    }
    rn_batch_t *b = rn__op_batch(op, 0);
    n = n < left ? n : left;
    n = n < (int64_t)(b->cap - b->n) ? n : (int64_t)(b->cap - b->n);
    /* Near the savepoint's positions, one row at a time: the old instances
     * made some of these ids (the skip above runs before each). */
    if (g->id < g->skip_until)
        n = 1;

    /* The hot loop: local copies so that the compiler keeps them in
     * registers rather than reloading through g. */
    const rn_value_t *keycells = g->keycells;
    const int64_t keys_n = plan->keys, step = g->step, key_step = g->key_step,
                  value_step = g->value_step;
    /* Every id of this poll is at most max_id, so their times in
     * microseconds fit; the step is formed only when a second id follows
     * (for one id it could be past int64 with a huge interval). */
    const int64_t us_step = n > 1 ? step * plan->interval : 0;
    int64_t id = g->id, key = g->key, value = g->value, us = id * plan->interval, ts;
    rn_value_t *row = RN_ROW(b, b->n);
    int64_t *tsv = b->ts + b->n;
    const uint32_t width = b->width;

    /* Compound literals rather than rn__val_int(): its memset and copy
     * went through the stack and stalled store forwarding. */
    for (int64_t j = 0; j < n; j++) {
        row[F_ID] = (rn_value_t){.u.i = id};
        row[F_KEY] = keycells[key];
        row[F_VALUE] = (rn_value_t){.u.i = value};
        ts = plan->start + us / 1000;
        row[F_TS] = (rn_value_t){.u.i = ts};
        tsv[j] = ts;
        row += width;
        id += step;
        us += us_step;
        key += key_step;
        if (key >= keys_n)
            key -= keys_n;
        value += value_step;
        if (value >= 1000)
            value -= 1000;
    }
    b->n += (uint32_t)n;
    g->id = id;
    g->key = key;
    g->value = value;
    g->made += n;
    if (g->id >= plan->events)
        *done = true;
    return rn__op_emit(op, 0, b, err);
}

/* The position: the next id to make, and ("made") the generations whose
 * ids it has still to skip. */
static rn_code_t
dg_snapshot(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    dg_t *g = rn__op_data(op);
    *data = json_pack("{s:I}", "next", (json_int_t)g->id);
    if (*data == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    if (g->id >= g->skip_until)
        return RN_OK;
    json_t *made = json_array();
    for (size_t o = 0; made != NULL && o < g->ngens_len; o += (size_t)g->gens[o] + 1) {
        json_t *gen = json_array();
        bool ahead = false;
        for (int64_t j = 0; gen != NULL && j < g->gens[o]; j++) {
            ahead = ahead || g->gens[o + 1 + j] > g->id;
            json_array_append_new(gen, json_integer(g->gens[o + 1 + j]));
        }
        /* A generation wholly behind this instance skips nothing more. */
        if (ahead)
            json_array_append(made, gen);
        json_decref(gen);
    }
    if (made == NULL || json_object_set_new(*data, "made", made) != 0) {
        json_decref(*data);
        *data = NULL;
        return rn__errf(err, RN_ENOMEM, "out of memory");
    }
    return RN_OK;
}

const rn_opclass_t rn__src_datagen = {
    .type = "datagen",
    .section = RN_SOURCE,
    .keys = keys,
    .plan = dg_plan,
    .open = dg_open,
    .poll = dg_poll,
    .close = dg_close,
    .snapshot = dg_snapshot,
};
