/*
 * stream/plugin_state.c: keyed state, timers and the current key for
 * plugin operators (include/runnel/plugin.h), on top of the operator's
 * state backend (state/state.h). Plugin states use no namespace: a
 * plugin keeps per-window data in a map keyed by what it needs, as a
 * Flink ProcessFunction does.
 *
 * @thread task.
 */
#include "stream/plugin_int.h"

/* The instance's state backend, or NULL with err set: state needs `key:`
 * (and a name, for the callers that register one). */
static rn_state_t *
state_named(rn_pf_t *f, const char *name, rn_error_t *err)
{
    if (name == NULL || name[0] == '\0') {
        rn__errf(err, RN_EINVAL, "operator '%s': a state needs a name", rn__op_name(f->op));
        return NULL;
    }
    rn_state_t *st = rn__op_state(f->op);
    if (st == NULL && f->plan->fn == NULL) /* a plugin source or sink */
        rn__errf(err, RN_EINVAL,
                 "%s '%s': keyed state and timers are for operators with `key:`",
                 f->plan->kind, rn__op_name(f->op));
    else if (st == NULL)
        rn__errf(err, RN_EINVAL,
                 "operator '%s' has no key: keyed state and timers need `key:` in the job file",
                 rn__op_name(f->op));
    return st;
}

static rn_state_t *
state_of(rn_pf_t *f, rn_error_t *err)
{
    return state_named(f, "timer", err);
}

rn_pf_value_t *
rn_pf_value_state(rn_pf_t *f, const char *name, rn_error_t *err)
{
    rn_state_t *st = state_named(f, name, err);
    return st ? rn__state_value(st, name, err) : NULL;
}

rn_pf_list_t *
rn_pf_list_state(rn_pf_t *f, const char *name, rn_error_t *err)
{
    rn_state_t *st = state_named(f, name, err);
    return st ? rn__state_list(st, name, err) : NULL;
}

rn_pf_map_t *
rn_pf_map_state(rn_pf_t *f, const char *name, rn_error_t *err)
{
    rn_state_t *st = state_named(f, name, err);
    return st ? rn__state_map(st, name, err) : NULL;
}

rn_pf_value_t *
rn_pf_reducing_state(rn_pf_t *f, const char *name, size_t size, rn_pf_merge_fn merge,
                     rn_error_t *err)
{
    rn_state_t *st = state_named(f, name, err);
    if (st == NULL)
        return NULL;
    if (size == 0 || size > 4096 || merge == NULL) {
        rn__errf(err, RN_EINVAL, "reducing state '%s': needs a size of 1 to 4096 bytes and a "
                 "merge function", name ? name : "?");
        return NULL;
    }
    rn_state_merge_t m = {.size = size, .merge = merge};
    return rn__state_value_merge(st, name, &m, err);
}

int
rn_pf_value_get(rn_pf_value_t *s, const void **val, size_t *len, rn_error_t *err)
{
    return rn__vstate_get(s, NULL, 0, val, len, err);
}

int
rn_pf_value_put(rn_pf_value_t *s, const void *val, size_t len, rn_error_t *err)
{
    return rn__vstate_put(s, NULL, 0, val, len, err);
}

int
rn_pf_value_clear(rn_pf_value_t *s, rn_error_t *err)
{
    return rn__vstate_clear(s, NULL, 0, err);
}

int
rn_pf_reduce(rn_pf_value_t *s, const void *v, rn_error_t *err)
{
    /* The state's own size and merge function; the backend hands out the
     * value, or a zeroed delta it folds in later (RocksDB, uncached), and
     * v is folded into either. */
    const rn_state_merge_t *m = s ? rn__vstate_merge_of(s) : NULL;
    if (m == NULL || v == NULL)
        return rn__errf(err, RN_EINVAL, "rn_pf_reduce: not a reducing state, or no value");
    bool fresh;
    void *dst = rn__vstate_ref_part(s, NULL, 0, m->size, &fresh, err);
    if (dst == NULL)
        return err ? err->code : RN_EIO;
    m->merge(m->ctx, dst, v);
    return RN_OK;
}

/* librunnel's walk callbacks return rn_code_t; the plugin's return int. */
typedef struct each_ctx {
    rn_pf_each_fn fn;
    void *ctx;
    int stopped; /* the plugin's non-zero return */
} each_ctx_t;

static rn_code_t
each_tramp(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    each_ctx_t *e = ctx;
    int rc = e->fn(e->ctx, k, klen, v, vlen);
    if (rc == 0)
        return RN_OK;
    e->stopped = rc;
    return RN_ECANCELED; /* stops the walk; the plugin's code is returned */
}

/* The walk's outcome: the callback's own non-zero code (err says so), or
 * the walk's. */
static int
stopped(const each_ctx_t *e, rn_code_t rc, rn_error_t *err)
{
    if (e->stopped == 0)
        return rc;
    rn__errf(err, e->stopped < 0 ? (rn_code_t)e->stopped : RN_EINVAL,
             "the walk was stopped by its callback (%d)", e->stopped);
    return e->stopped;
}

int
rn_pf_list_add(rn_pf_list_t *s, const void *val, size_t len, rn_error_t *err)
{
    return rn__lstate_add(s, NULL, 0, val, len, err);
}

int
rn_pf_list_each(rn_pf_list_t *s, rn_pf_each_fn fn, void *ctx, rn_error_t *err)
{
    each_ctx_t e = {fn, ctx, 0};
    rn_code_t rc = rn__lstate_each(s, NULL, 0, each_tramp, &e, err);
    return stopped(&e, rc, err);
}

int
rn_pf_list_clear(rn_pf_list_t *s, rn_error_t *err)
{
    return rn__lstate_clear(s, NULL, 0, err);
}

int
rn_pf_map_put(rn_pf_map_t *s, const void *k, size_t klen, const void *v, size_t vlen,
              rn_error_t *err)
{
    return rn__mstate_put(s, NULL, 0, k, klen, v, vlen, err);
}

int
rn_pf_map_get(rn_pf_map_t *s, const void *k, size_t klen, const void **v, size_t *vlen,
              rn_error_t *err)
{
    return rn__mstate_get(s, NULL, 0, k, klen, v, vlen, err);
}

int
rn_pf_map_remove(rn_pf_map_t *s, const void *k, size_t klen, rn_error_t *err)
{
    return rn__mstate_remove(s, NULL, 0, k, klen, err);
}

int
rn_pf_map_each(rn_pf_map_t *s, rn_pf_each_fn fn, void *ctx, rn_error_t *err)
{
    each_ctx_t e = {fn, ctx, 0};
    rn_code_t rc = rn__mstate_each(s, NULL, 0, each_tramp, &e, err);
    return stopped(&e, rc, err);
}

int
rn_pf_map_clear(rn_pf_map_t *s, rn_error_t *err)
{
    return rn__mstate_clear(s, NULL, 0, err);
}

int
rn_pf_timer_register(rn_pf_t *f, int domain, int64_t time, rn_error_t *err)
{
    rn_state_t *st = state_of(f, err);
    if (st == NULL)
        return err ? err->code : RN_EINVAL;
    if (domain != RN_PF_EVENT_TIME && domain != RN_PF_PROCESSING_TIME)
        return rn__errf(err, RN_EINVAL, "timer domain %d: neither event nor processing time",
                        domain);
    return rn__timer_register(st, (rn_time_domain_t)domain, time, NULL, 0, err);
}

int
rn_pf_timer_delete(rn_pf_t *f, int domain, int64_t time, rn_error_t *err)
{
    rn_state_t *st = state_of(f, err);
    if (st == NULL)
        return err ? err->code : RN_EINVAL;
    if (domain != RN_PF_EVENT_TIME && domain != RN_PF_PROCESSING_TIME)
        return rn__errf(err, RN_EINVAL, "timer domain %d: neither event nor processing time",
                        domain);
    return rn__timer_delete(st, (rn_time_domain_t)domain, time, NULL, 0, err);
}

/* Field i of the current key, decoded once per record or timer; NULL when
 * there is no key, no such field, or it is null. */
static const rn_value_t *
key_field(rn_pf_t *f, int i, rn_type_t t1, rn_type_t t2)
{
    rn_state_t *st = rn__op_state(f->op);
    const rn_keyspec_t *ks = rn__op_keyspec(f->op, 0);
    if (st == NULL || ks == NULL || i < 0 || (uint32_t)i >= ks->n)
        return NULL;
    if (!f->key_ok) {
        size_t len;
        const uint8_t *k = rn__state_key(st, &len);
        rn__arena_reset(&f->key_arena);
        if (k == NULL ||
            rn__key_decode(ks->types, ks->n, k, len, &f->key_arena, f->key) != RN_OK)
            return NULL;
        f->key_ok = true;
    }
    if (ks->types[i] != t1 && ks->types[i] != t2)
        return NULL;
    return f->key[i].null ? NULL : &f->key[i];
}

int64_t
rn_pf_key_int(rn_pf_t *f, int i)
{
    const rn_value_t *v = key_field(f, i, RN_TYPE_INT, RN_TYPE_TIMESTAMP);
    return v ? v->u.i : 0;
}

const char *
rn_pf_key_string(rn_pf_t *f, int i, size_t *len)
{
    const rn_value_t *v = key_field(f, i, RN_TYPE_STRING, RN_TYPE_STRING);
    if (len != NULL)
        *len = v ? v->len : 0;
    return v ? v->u.s : NULL;
}
