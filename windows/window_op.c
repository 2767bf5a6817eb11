/*
 * windows/window_op.c: run time of the window_aggregate operator (plan
 * time is window_plan.c).
 *
 * Design (Flink's WindowOperator with an AggregateFunction and the default
 * EventTimeTrigger): for each record, set the state key from the row,
 * assign its windows, and fold the record into each window's accumulator
 * in place: one state value per (key, window) holding an array of
 * rn_acc_cell_t (namespace: the window, 16 bytes, window_int.h). When a
 * window's accumulator is created, a timer is registered at end - 1 (the
 * window fires when the watermark reaches it) and, with allowed lateness L,
 * a cleanup timer at end - 1 + L; with L = 0 they are one timer that fires
 * and cleans. A record whose every window is past its cleanup time is
 * late: it goes to late_output, or is dropped and counted. A record for a
 * window that already fired but is within lateness re-fires the window at
 * once with the updated result, as Flink's trigger does.
 *
 * Strings (min/max/first/last of a string field) keep their bytes in the
 * value state "str" under namespace window + aggregate index, compared
 * through the prefix in the cell first; count_distinct keeps its seen
 * values in the map state "distinct" under the same kind of namespace.
 * When neither is used (the common case), a record costs one state lookup
 * per window and no allocation.
 *
 * Session windows (Flink's MergingWindowSet): the value state "sessions"
 * holds, per key, the sorted list of its sessions, each with the window
 * under which its accumulator is stored (its state window). A record makes
 * [ts, ts + gap), which absorbs every session it intersects; the first
 * absorbed session keeps its state window and the others' accumulators are
 * merged into it, so that a growing session does not move its state. The
 * timers of a session use its actual window as namespace.
 *
 * Output rows (the key fields, window_start, window_end, the aggregates)
 * carry the event time end - 1 and collect in one batch per instance,
 * emitted when full and after each watermark.
 *
 * @thread task.
 */
#include "windows/window_int.h"

typedef struct sess {
    rn_win_t win;   /* the session */
    rn_win_t state; /* the namespace of its accumulator */
} sess_t;

typedef struct win_op {
    rn_op_t *op;
    const rn_win_plan_t *plan;
    rn_state_t *st;
    rn_vstate_t *acc;      /* (key, window): rn_acc_cell_t[naggs] */
    rn_vstate_t *str;      /* (key, window + agg): string bytes */
    rn_mstate_t *seen;     /* (key, window + agg): count_distinct values -> "" */
    rn_vstate_t *sessions; /* (key): sess_t[], sorted by start */
    size_t acc_size;
    /* acc is a merging state (numeric aggregates of tumbling and sliding
     * windows): on time, records fold into it without reading it. */
    bool merging;
    rn_batch_t *out;  /* current output batch, or NULL */
    rn_batch_t *late; /* current late batch, or NULL */
    uint64_t late_dropped;
    uint64_t late_sent;
    rn_win_t *wins;        /* scratch: a record's windows */
    rn_acc_cell_t *cells;  /* scratch: one accumulator */
    rn_acc_cell_t *cells2; /* scratch: another (merges) */
    sess_t *sess;          /* scratch: the key's sessions */
    rn_win_t *swins;       /* scratch: their windows */
    bool *hit;             /* scratch: which ones a record's session absorbs */
    size_t sesscap;
    uint8_t *buf; /* scratch: strings and distinct values in flight */
    size_t bufcap;
} win_op_t;

#define NS_AGG_LEN (RN_WIN_NS_LEN + 1)

static void
ns_agg(const uint8_t ns[RN_WIN_NS_LEN], uint32_t agg, uint8_t out[NS_AGG_LEN])
{
    memcpy(out, ns, RN_WIN_NS_LEN);
    out[RN_WIN_NS_LEN] = (uint8_t)agg;
}

static uint8_t *
scratch(win_op_t *w, size_t n)
{
    if (n > w->bufcap) {
        w->bufcap = n < 256 ? 256 : n * 2;
        w->buf = rn_xrealloc(w->buf, w->bufcap);
    }
    return w->buf;
}

static int64_t
fire_time(rn_win_t win)
{
    return win.end - 1;
}

static int64_t
cleanup_time(const win_op_t *w, rn_win_t win)
{
    return rn__win_add_sat(win.end - 1, w->plan->lateness);
}

/* ---- output ---- */

static rn_code_t
flush(win_op_t *w, rn_error_t *err)
{
    rn_code_t rc = RN_OK;
    if (w->out != NULL && w->out->n > 0) {
        rc = rn__op_emit(w->op, 0, w->out, err);
        w->out = NULL;
    }
    if (rc == RN_OK && w->late != NULL && w->late->n > 0) {
        rc = rn__op_emit(w->op, w->plan->late_port, w->late, err);
        w->late = NULL;
    }
    return rc;
}

static rn_code_t
out_row(win_op_t *w, int64_t ts, rn_value_t **row, rn_error_t *err)
{
    if (w->out != NULL && rn__batch_full(w->out)) {
        rn_code_t rc = rn__op_emit(w->op, 0, w->out, err);
        w->out = NULL;
        if (rc != RN_OK)
            return rc;
    }
    if (w->out == NULL)
        w->out = rn__op_batch(w->op, 0);
    *row = rn__batch_append(w->out, ts);
    return RN_OK;
}

/* Emits the result of window win of the current key, whose accumulator is
 * cells (a copy) stored under namespace ns. */
static rn_code_t
emit_window(win_op_t *w, rn_win_t win, const uint8_t ns[RN_WIN_NS_LEN],
            const rn_acc_cell_t *cells, rn_error_t *err)
{
    const rn_win_plan_t *plan = w->plan;
    rn_value_t *row;
    size_t klen;
    rn_code_t rc = out_row(w, fire_time(win), &row, err);
    if (rc != RN_OK)
        return rc;
    const uint8_t *key = rn__state_key(w->st, &klen);
    if (rn__key_decode(plan->ktypes, plan->nkeys, key, klen, &w->out->arena, row) != RN_OK)
        return rn__errf(err, RN_ECORRUPT, "operator '%s': a key in state does not decode",
                        rn__op_name(w->op));
    rn__win_set_int(&row[plan->nkeys], win.start);
    rn__win_set_int(&row[plan->nkeys + 1], win.end);
    rn_value_t *aggs = row + plan->nkeys + 2;
    for (uint32_t i = 0; i < plan->naggs; i++) {
        const rn_agg_t *agg = &plan->aggs[i];
        if (!agg->is_string) {
            rn__acc_result_to(agg, &cells[i], &aggs[i]);
            continue;
        }
        uint8_t nsa[NS_AGG_LEN];
        const void *s;
        size_t len;
        ns_agg(ns, i, nsa);
        rc = cells[i].n > 0 ? rn__vstate_get(w->str, nsa, sizeof(nsa), &s, &len, err)
                            : RN_ENOTFOUND;
        if (rc == RN_ENOTFOUND) {
            aggs[i] = rn__val_null();
            continue;
        }
        if (rc != RN_OK)
            return rc;
        aggs[i] = rn__val_str(rn__arena_strdup(&w->out->arena, s, len), (uint32_t)len);
    }
    return RN_OK;
}

/* ---- accumulating ---- */

/* Folds a string value into cell c of aggregate i. */
static rn_code_t
add_string(win_op_t *w, uint32_t i, rn_acc_cell_t *c, const uint8_t ns[RN_WIN_NS_LEN],
           const rn_value_t *v, int64_t ts, rn_error_t *err)
{
    const rn_agg_t *agg = &w->plan->aggs[i];
    uint8_t nsa[NS_AGG_LEN];
    rn_code_t rc;

    ns_agg(ns, i, nsa);
    rn_acc_str_t d = rn__acc_str_decide(agg, c, v->u.s, v->len, ts);
    if (d == RN_ACC_COMPARE) {
        const void *s;
        size_t len;
        rc = rn__vstate_get(w->str, nsa, sizeof(nsa), &s, &len, err);
        if (rc != RN_OK && rc != RN_ENOTFOUND)
            return rc;
        d = rc == RN_ENOTFOUND || rn__acc_str_beats(agg, v->u.s, v->len, s, len)
                ? RN_ACC_REPLACE
                : RN_ACC_KEEP;
    }
    if (d == RN_ACC_REPLACE) {
        if ((rc = rn__vstate_put(w->str, nsa, sizeof(nsa), v->u.s, v->len, err)) != RN_OK)
            return rc;
        rn__acc_str_set(c, v->u.s, v->len, ts);
    }
    c->n++;
    return RN_OK;
}

static rn_code_t
add_distinct(win_op_t *w, uint32_t i, rn_acc_cell_t *c, const uint8_t ns[RN_WIN_NS_LEN],
             const rn_value_t *v, rn_error_t *err)
{
    uint8_t nsa[NS_AGG_LEN], buf[8];
    const uint8_t *p;
    const void *val;
    size_t vlen;

    ns_agg(ns, i, nsa);
    size_t len = rn__acc_distinct_bytes(w->plan->aggs[i].in, v, buf, &p);
    rn_code_t rc = rn__mstate_get(w->seen, nsa, sizeof(nsa), p, len, &val, &vlen, err);
    if (rc == RN_OK)
        return RN_OK;
    if (rc != RN_ENOTFOUND)
        return rc;
    c->n++;
    return rn__mstate_put(w->seen, nsa, sizeof(nsa), p, len, "", 0, err);
}

/* Registers (add) or deletes the fire and cleanup timers of win. */
static rn_code_t
win_timers(win_op_t *w, rn_win_t win, int64_t wm, bool add, rn_error_t *err)
{
    uint8_t ns[RN_WIN_NS_LEN];
    int64_t fire = fire_time(win), clean = cleanup_time(w, win);
    rn_code_t rc = RN_OK;

    rn__win_ns_encode(win, ns);
    if (!add) {
        rc = rn__timer_delete(w->st, RN_TIME_EVENT, fire, ns, sizeof(ns), err);
        if (rc == RN_OK && clean != fire)
            rc = rn__timer_delete(w->st, RN_TIME_EVENT, clean, ns, sizeof(ns), err);
        return rc;
    }
    /* A window already due fires at once (accumulate()); only its cleanup
     * waits for the watermark. */
    if (fire > wm)
        rc = rn__timer_register(w->st, RN_TIME_EVENT, fire, ns, sizeof(ns), err);
    if (rc == RN_OK && clean != fire)
        rc = rn__timer_register(w->st, RN_TIME_EVENT, clean, ns, sizeof(ns), err);
    return rc;
}

/* Folds row into the accumulator of window win of the current key, stored
 * under state window sw. timers: register win's timers when the
 * accumulator is new (tumbling and sliding; sessions manage theirs). */
static rn_code_t
accumulate(win_op_t *w, rn_win_t win, rn_win_t sw, const rn_value_t *row, int64_t ts, int64_t wm,
           bool timers, rn_error_t *err)
{
    const rn_win_plan_t *plan = w->plan;
    uint8_t ns[RN_WIN_NS_LEN];
    bool created;
    rn_code_t rc = RN_OK;

    rn__win_ns_encode(sw, ns);
    /* A record on time only folds into the accumulator, which therefore
     * need not be read (RocksDB reads it once, when the window fires). A
     * late one (allowed lateness) fires the window again at once and needs
     * it whole. Fresh rather than created: the timers are registered again
     * whenever the accumulator was not in memory, which is harmless. */
    rn_acc_cell_t *cells =
        w->merging && timers && fire_time(win) > wm
            ? rn__vstate_ref_part(w->acc, ns, sizeof(ns), w->acc_size, &created, err)
            : rn__vstate_ref(w->acc, ns, sizeof(ns), w->acc_size, &created, err);
    if (cells == NULL)
        return err != NULL ? err->code : RN_EINVAL;
    if (created && timers && (rc = win_timers(w, win, wm, true, err)) != RN_OK)
        return rc;
    if (!plan->has_strings && !plan->has_distinct) {
        /* The hot path: numeric aggregates, updated in place. */
        for (uint32_t i = 0; i < plan->naggs; i++) {
            const rn_agg_t *agg = &plan->aggs[i];
            rn__acc_add(agg, &cells[i], agg->arg >= 0 ? &row[agg->arg] : row, ts);
        }
    } else {
        /* Other state calls may move the accumulator: work on a copy and
         * write it back. */
        memcpy(w->cells, cells, w->acc_size);
        for (uint32_t i = 0; i < plan->naggs && rc == RN_OK; i++) {
            const rn_agg_t *agg = &plan->aggs[i];
            const rn_value_t *v = agg->arg >= 0 ? &row[agg->arg] : row;
            if (agg->fn == RN_AGG_COUNT_DISTINCT) {
                if (!v->null)
                    rc = add_distinct(w, i, &w->cells[i], ns, v, err);
            } else if (agg->is_string) {
                if (!v->null)
                    rc = add_string(w, i, &w->cells[i], ns, v, ts, err);
            } else {
                rn__acc_add(agg, &w->cells[i], v, ts);
            }
        }
        if (rc != RN_OK)
            return rc;
        if ((rc = rn__vstate_put(w->acc, ns, sizeof(ns), w->cells, w->acc_size, err)) != RN_OK)
            return rc;
        cells = w->cells;
    }
    if (fire_time(win) <= wm) {
        /* Late but within allowed lateness: Flink's trigger fires again. */
        if (cells != w->cells)
            memcpy(w->cells, cells, w->acc_size);
        return emit_window(w, win, ns, w->cells, err);
    }
    return RN_OK;
}

/* Removes everything stored for the state window of namespace ns of the
 * current key; the accumulator too unless the caller took it already (acc
 * false). */
static rn_code_t
clear_window(win_op_t *w, const uint8_t ns[RN_WIN_NS_LEN], bool acc, rn_error_t *err)
{
    uint8_t nsa[NS_AGG_LEN];
    rn_code_t rc = RN_OK;

    if (acc && (rc = rn__vstate_clear(w->acc, ns, RN_WIN_NS_LEN, err)) != RN_OK)
        return rc;
    if (!w->plan->has_strings && !w->plan->has_distinct)
        return RN_OK;
    for (uint32_t i = 0; i < w->plan->naggs && rc == RN_OK; i++) {
        ns_agg(ns, i, nsa);
        if (w->plan->aggs[i].is_string)
            rc = rn__vstate_clear(w->str, nsa, sizeof(nsa), err);
        else if (w->plan->aggs[i].fn == RN_AGG_COUNT_DISTINCT)
            rc = rn__mstate_clear(w->seen, nsa, sizeof(nsa), err);
    }
    return rc;
}

/* ---- sessions ---- */

/* Loads the current key's sessions into w->sess (with room for one more)
 * and their windows into w->swins. */
static rn_code_t
sessions_load(win_op_t *w, size_t *n, rn_error_t *err)
{
    const void *v;
    size_t len;
    rn_code_t rc = rn__vstate_get(w->sessions, NULL, 0, &v, &len, err);
    *n = 0;
    if (rc != RN_OK && rc != RN_ENOTFOUND)
        return rc;
    if (rc == RN_OK)
        *n = len / sizeof(sess_t);
    if (*n + 1 > w->sesscap) {
        w->sesscap = (*n + 1) * 2;
        w->sess = rn_xrealloc(w->sess, w->sesscap * sizeof(sess_t));
        w->swins = rn_xrealloc(w->swins, w->sesscap * sizeof(rn_win_t));
        w->hit = rn_xrealloc(w->hit, w->sesscap * sizeof(bool));
    }
    if (*n > 0)
        memcpy(w->sess, v, *n * sizeof(sess_t));
    for (size_t i = 0; i < *n; i++)
        w->swins[i] = w->sess[i].win;
    return RN_OK;
}

static rn_code_t
sessions_save(win_op_t *w, size_t n, rn_error_t *err)
{
    if (n == 0)
        return rn__vstate_clear(w->sessions, NULL, 0, err);
    return rn__vstate_put(w->sessions, NULL, 0, w->sess, n * sizeof(sess_t), err);
}

typedef struct merge_ctx {
    win_op_t *w;
    size_t used;
} merge_ctx_t;

/* Collects a distinct set's values into w->buf as [u32 len][bytes]. */
static rn_code_t
collect_seen(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    merge_ctx_t *mc = ctx;
    uint32_t l32 = (uint32_t)klen;
    size_t used = mc->used;
    uint8_t *p = scratch(mc->w, used + 4 + klen);
    memcpy(p + used, &l32, 4);
    if (klen > 0)
        memcpy(p + used + 4, k, klen);
    mc->used = used + 4 + klen;
    return RN_OK;
}

/* Merges the distinct set of aggregate i from nsa_src into nsa_dst. */
static rn_code_t
merge_distinct(win_op_t *w, const uint8_t *src, const uint8_t *dst, rn_acc_cell_t *c,
               rn_error_t *err)
{
    merge_ctx_t mc = {w, 0};
    const void *v;
    size_t vlen;
    rn_code_t rc = rn__mstate_each(w->seen, src, NS_AGG_LEN, collect_seen, &mc, err);
    for (size_t off = 0; rc == RN_OK && off < mc.used;) {
        uint32_t len;
        memcpy(&len, w->buf + off, 4);
        const uint8_t *k = w->buf + off + 4;
        off += 4 + len;
        rc = rn__mstate_get(w->seen, dst, NS_AGG_LEN, k, len, &v, &vlen, err);
        if (rc == RN_ENOTFOUND) {
            c->n++;
            rc = rn__mstate_put(w->seen, dst, NS_AGG_LEN, k, len, "", 0, err);
        }
    }
    if (rc == RN_OK)
        rc = rn__mstate_clear(w->seen, src, NS_AGG_LEN, err);
    return rc;
}

static rn_code_t
merge_string(win_op_t *w, uint32_t i, const uint8_t *src, const uint8_t *dst, rn_acc_cell_t *dc,
             const rn_acc_cell_t *sc, rn_error_t *err)
{
    const rn_agg_t *agg = &w->plan->aggs[i];
    const void *s, *d;
    size_t slen, dlen;
    rn_code_t rc;

    rn_acc_str_t decision = rn__acc_merge_str_decide(agg, dc, sc);
    if (decision == RN_ACC_KEEP)
        goto done;
    if ((rc = rn__vstate_get(w->str, src, NS_AGG_LEN, &s, &slen, err)) != RN_OK)
        return rc == RN_ENOTFOUND ? RN_OK : rc;
    uint8_t *copy = scratch(w, slen + 1);
    memcpy(copy, s, slen);
    if (decision == RN_ACC_COMPARE) {
        rc = rn__vstate_get(w->str, dst, NS_AGG_LEN, &d, &dlen, err);
        if (rc != RN_OK && rc != RN_ENOTFOUND)
            return rc;
        if (rc == RN_OK && !rn__acc_str_beats(agg, (const char *)copy, slen, d, dlen))
            goto done;
    }
    if ((rc = rn__vstate_put(w->str, dst, NS_AGG_LEN, copy, slen, err)) != RN_OK)
        return rc;
    dc->v = sc->v;
    dc->ts = sc->ts;
done:
    dc->n += sc->n;
    return rn__vstate_clear(w->str, src, NS_AGG_LEN, err);
}

/* Merges the accumulator of state window from into state window into, and
 * removes from's. */
static rn_code_t
merge_state(win_op_t *w, rn_win_t from, rn_win_t into, rn_error_t *err)
{
    uint8_t fns[RN_WIN_NS_LEN], ins[RN_WIN_NS_LEN], fa[NS_AGG_LEN], ia[NS_AGG_LEN];
    const void *v;
    size_t len;
    bool created;
    rn_code_t rc;

    rn__win_ns_encode(from, fns);
    rn__win_ns_encode(into, ins);
    rc = rn__vstate_get(w->acc, fns, sizeof(fns), &v, &len, err);
    if (rc == RN_ENOTFOUND)
        return RN_OK;
    if (rc != RN_OK)
        return rc;
    memcpy(w->cells2, v, w->acc_size);
    void *dst = rn__vstate_ref(w->acc, ins, sizeof(ins), w->acc_size, &created, err);
    if (dst == NULL)
        return err != NULL ? err->code : RN_EINVAL;
    memcpy(w->cells, dst, w->acc_size);
    for (uint32_t i = 0; i < w->plan->naggs; i++) {
        const rn_agg_t *agg = &w->plan->aggs[i];
        ns_agg(fns, i, fa);
        ns_agg(ins, i, ia);
        if (agg->fn == RN_AGG_COUNT_DISTINCT)
            rc = merge_distinct(w, fa, ia, &w->cells[i], err);
        else if (agg->is_string)
            rc = merge_string(w, i, fa, ia, &w->cells[i], &w->cells2[i], err);
        else
            rn__acc_merge(agg, &w->cells[i], &w->cells2[i]);
        if (rc != RN_OK)
            return rc;
    }
    if ((rc = rn__vstate_put(w->acc, ins, sizeof(ins), w->cells, w->acc_size, err)) != RN_OK)
        return rc;
    return rn__vstate_clear(w->acc, fns, sizeof(fns), err);
}

/* Adds [ts, ts + gap) to the current key's sessions, merging as needed, and
 * folds row in. *late is set when the resulting session is past cleanup. */
static rn_code_t
add_session(win_op_t *w, const rn_value_t *row, int64_t ts, int64_t wm, bool *late,
            rn_error_t *err)
{
    rn_win_t add, merged;
    size_t n, nhit, first = SIZE_MAX;
    rn_code_t rc;

    rn__win_assign(&w->plan->spec, ts, &add);
    if ((rc = sessions_load(w, &n, err)) != RN_OK)
        return rc;
    bool *hit = w->hit;
    nhit = rn__win_session_merge(w->swins, n, add, &merged, hit);
    *late = cleanup_time(w, merged) <= wm;
    if (*late)
        return RN_OK;
    for (size_t i = 0; i < n && first == SIZE_MAX; i++)
        if (hit[i])
            first = i;
    if (nhit == 1 && w->sess[first].win.start == merged.start &&
        w->sess[first].win.end == merged.end)
        return accumulate(w, merged, w->sess[first].state, row, ts, wm, false, err);

    rn_win_t sw = merged;
    if (nhit > 0) {
        sw = w->sess[first].state;
        for (size_t i = 0; i < n && rc == RN_OK; i++) {
            if (!hit[i])
                continue;
            rc = win_timers(w, w->sess[i].win, wm, false, err);
            if (rc == RN_OK && i != first)
                rc = merge_state(w, w->sess[i].state, sw, err);
        }
        if (rc != RN_OK)
            return rc;
    }
    /* Drop the absorbed sessions, then insert the merged one in start
     * order (sessions_load left room for it). */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!hit[i])
            w->sess[m++] = w->sess[i];
    size_t pos = 0;
    while (pos < m && w->sess[pos].win.start < merged.start)
        pos++;
    memmove(&w->sess[pos + 1], &w->sess[pos], (m - pos) * sizeof(sess_t));
    w->sess[pos] = (sess_t){merged, sw};
    m++;
    if ((rc = sessions_save(w, m, err)) != RN_OK)
        return rc;
    if ((rc = win_timers(w, merged, wm, true, err)) != RN_OK)
        return rc;
    return accumulate(w, merged, sw, row, ts, wm, false, err);
}

/* ---- the operator ---- */

static rn_code_t
late_record(win_op_t *w, const rn_value_t *row, int64_t ts, rn_error_t *err)
{
    if (w->plan->late_port < 0) {
        w->late_dropped++;
        return RN_OK;
    }
    if (w->late != NULL && rn__batch_full(w->late)) {
        rn_code_t rc = rn__op_emit(w->op, w->plan->late_port, w->late, err);
        w->late = NULL;
        if (rc != RN_OK)
            return rc;
    }
    if (w->late == NULL)
        w->late = rn__op_batch(w->op, w->plan->late_port);
    rn__batch_copy_row(w->late, row, ts);
    w->late_sent++;
    return RN_OK;
}

/* What acc_merge needs, copied by the state backend. */
typedef struct merge_spec {
    uint32_t naggs;
    rn_agg_t aggs[];
} merge_spec_t;

/* The merge function of the accumulator state: folds src into dst, cell
 * by cell (rn__acc_merge: zero cells are its identity, dst the older). */
static void
acc_merge(const void *ctx, void *dst, const void *src)
{
    const merge_spec_t *m = ctx;
    rn_acc_cell_t *d = dst;
    const rn_acc_cell_t *s = src;
    for (uint32_t i = 0; i < m->naggs; i++)
        rn__acc_merge(&m->aggs[i], &d[i], &s[i]);
}

static rn_vstate_t *
acc_state(win_op_t *w, rn_error_t *err)
{
    const rn_win_plan_t *plan = w->plan;
    /* Strings and distinct values live in other states, and sessions merge
     * and move accumulators: those read and write whole values. */
    w->merging =
        !plan->has_strings && !plan->has_distinct && plan->spec.kind != RN_WIN_SESSION;
    /* Partial accumulators folded later need every aggregate's merge. */
    for (uint32_t i = 0; i < plan->naggs; i++)
        if (plan->aggs[i].fn == RN_AGG_PLUGIN && plan->aggs[i].ext->merge == NULL)
            w->merging = false;
    if (!w->merging)
        return rn__state_value(w->st, "acc", err);
    size_t len = sizeof(merge_spec_t) + plan->naggs * sizeof(rn_agg_t);
    merge_spec_t *spec = rn_xcalloc(1, len);
    spec->naggs = plan->naggs;
    memcpy(spec->aggs, plan->aggs, plan->naggs * sizeof(rn_agg_t));
    rn_state_merge_t m = {.size = w->acc_size, .merge = acc_merge, .ctx = spec, .ctxlen = len};
    rn_vstate_t *vs = rn__state_value_merge(w->st, "acc", &m, err);
    rn_free(spec);
    /* A timer fires the window of its own namespace: its accumulator is
     * what each timer reads (sessions keep theirs elsewhere). */
    if (vs != NULL)
        rn__state_read_on_timer(vs);
    return vs;
}

rn_code_t
rn__win_open(rn_op_t *op, rn_error_t *err)
{
    const rn_win_plan_t *plan = rn__op_plan(op);
    rn_state_t *st = rn__op_state(op);
    rn_assert(st != NULL); /* keyed: the plan set a key */
    win_op_t *w = rn_xcalloc(1, sizeof(*w));

    w->op = op;
    w->plan = plan;
    w->st = st;
    w->acc_size = plan->naggs * sizeof(rn_acc_cell_t);
    if ((w->acc = acc_state(w, err)) == NULL ||
        (plan->has_strings && (w->str = rn__state_value(st, "str", err)) == NULL) ||
        (plan->has_distinct && (w->seen = rn__state_map(st, "distinct", err)) == NULL) ||
        (plan->spec.kind == RN_WIN_SESSION &&
         (w->sessions = rn__state_value(st, "sessions", err)) == NULL)) {
        rn_free(w);
        return err != NULL ? err->code : RN_EINVAL;
    }
    w->wins = rn_xcalloc(rn__win_max_windows(&plan->spec), sizeof(rn_win_t));
    w->cells = rn_xcalloc(plan->naggs, sizeof(rn_acc_cell_t));
    w->cells2 = rn_xcalloc(plan->naggs, sizeof(rn_acc_cell_t));
    rn__op_set_data(op, w);
    return RN_OK;
}

static rn_code_t
process_row(win_op_t *w, int input, const rn_value_t *row, int64_t ts, int64_t wm,
            rn_error_t *err)
{
    const rn_win_plan_t *plan = w->plan;
    bool late = true;
    rn_code_t rc = rn__op_set_key_from_row(w->op, input, row, NULL, NULL, err);
    if (rc != RN_OK)
        return rc;
    if (plan->spec.kind == RN_WIN_SESSION) {
        rc = add_session(w, row, ts, wm, &late, err);
    } else {
        size_t n = rn__win_assign(&plan->spec, ts, w->wins);
        for (size_t i = 0; i < n && rc == RN_OK; i++) {
            if (cleanup_time(w, w->wins[i]) <= wm)
                continue;
            late = false;
            rc = accumulate(w, w->wins[i], w->wins[i], row, ts, wm, true, err);
        }
    }
    if (rc == RN_OK && late)
        rc = late_record(w, row, ts, err);
    return rc;
}

/* Rows a batch is looked ahead: about the latency of a cache miss in
 * records. */
#define LOOKAHEAD 4

/* Starts loading the state of the first window of a row LOOKAHEAD rows
 * ahead: with a million keys, the state table's slot of each record was a
 * cache miss, a quarter of the run. */
static void
prefetch_row(win_op_t *w, int input, const rn_value_t *row, int64_t ts)
{
    uint64_t h;
    rn_win_t win[1];
    uint8_t ns[RN_WIN_NS_LEN];
    if (!rn__op_row_key_hash(w->op, input, row, &h) || rn__win_assign(&w->plan->spec, ts, win) != 1)
        return;
    rn__win_ns_encode(win[0], ns);
    rn__vstate_prefetch(w->acc, h, ns, sizeof(ns));
}

rn_code_t
rn__win_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    win_op_t *w = rn__op_data(op);
    int64_t wm = rn__op_watermark(op);
    rn_code_t rc = RN_OK;

    bool ahead = w->merging && rn__win_max_windows(&w->plan->spec) == 1 &&
                 rn__state_prefetch_pays(w->st);
    for (uint32_t r = 0; r < b->n && rc == RN_OK; r++) {
        if (ahead && r + LOOKAHEAD < b->n)
            prefetch_row(w, input, RN_ROW(b, r + LOOKAHEAD), b->ts[r + LOOKAHEAD]);
        rc = process_row(w, input, RN_ROW(b, r), b->ts[r], wm, err);
    }
    rn__op_free_batch(op, b);
    if (rc != RN_OK)
        return rn__errctx(err, "operator '%s'", rn__op_name(op));
    /* Late re-fires and late records do not wait for the next watermark. */
    return flush(w, err);
}

rn_code_t
rn__win_on_timer(rn_op_t *op, const rn_timer_t *t, rn_error_t *err)
{
    win_op_t *w = rn__op_data(op);
    const void *v;
    size_t len, n = 0, at = SIZE_MAX;
    rn_code_t rc;

    if (t->domain != RN_TIME_EVENT || t->nslen != RN_WIN_NS_LEN)
        return RN_OK;
    rn_win_t win = rn__win_ns_decode(t->ns), sw = win;
    if (w->plan->spec.kind == RN_WIN_SESSION) {
        if ((rc = sessions_load(w, &n, err)) != RN_OK)
            return rc;
        for (size_t i = 0; i < n && at == SIZE_MAX; i++)
            if (w->sess[i].win.start == win.start && w->sess[i].win.end == win.end)
                at = i;
        if (at == SIZE_MAX)
            return RN_OK; /* merged away since; its timers were deleted */
        sw = w->sess[at].state;
    }
    /* The state window's namespace: the timer's own unless a session
     * keeps its state under another window. */
    uint8_t sns[RN_WIN_NS_LEN];
    const uint8_t *ns = t->ns;
    if (at != SIZE_MAX) {
        rn__win_ns_encode(sw, sns);
        ns = sns;
    }
    bool fire = t->time == fire_time(win), clean = t->time == cleanup_time(w, win);
    if (fire) {
        /* Without lateness the window fires and cleans at once: take the
         * accumulator in one lookup rather than get, then clear. */
        if (clean) {
            rc = rn__vstate_take(w->acc, ns, RN_WIN_NS_LEN, w->cells, w->acc_size, &len, err);
        } else if ((rc = rn__vstate_get(w->acc, ns, RN_WIN_NS_LEN, &v, &len, err)) == RN_OK) {
            memcpy(w->cells, v, w->acc_size);
        }
        if (rc == RN_OK)
            rc = emit_window(w, win, ns, w->cells, err);
        if (rc != RN_OK && rc != RN_ENOTFOUND)
            return rc;
    }
    if (clean) {
        if ((rc = clear_window(w, ns, !fire, err)) != RN_OK)
            return rc;
        if (at != SIZE_MAX) {
            memmove(&w->sess[at], &w->sess[at + 1], (n - at - 1) * sizeof(sess_t));
            if ((rc = sessions_save(w, n - 1, err)) != RN_OK)
                return rc;
        }
    }
    return RN_OK;
}

rn_code_t
rn__win_on_watermark(rn_op_t *op, int64_t wm, rn_error_t *err)
{
    return flush(rn__op_data(op), err);
}

void
rn__win_close(rn_op_t *op)
{
    win_op_t *w = rn__op_data(op);
    if (w == NULL)
        return;
    if (w->late_dropped > 0)
        RN_LOG_INFO(rn__op_name(op), "instance %d dropped %llu late records",
                    rn__op_instance(op), (unsigned long long)w->late_dropped);
    if (w->out != NULL)
        rn__op_free_batch(op, w->out);
    if (w->late != NULL)
        rn__op_free_batch(op, w->late);
    rn_free(w->wins);
    rn_free(w->cells);
    rn_free(w->cells2);
    rn_free(w->sess);
    rn_free(w->swins);
    rn_free(w->hit);
    rn_free(w->buf);
    rn_free(w);
    rn__op_set_data(op, NULL);
}
