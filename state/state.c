/*
 * state/state.c: the keyed state handle of one operator instance.
 *
 * What it does: picks a backend by name, keeps the current key (a copy, its
 * hash and key group), resolves state names to ids and kinds, and turns
 * each state call into one backend call carrying the full composite key
 * (state id, key group, key, namespace[, user key]); see state_int.h.
 *
 * Design: the handle does the bookkeeping that every backend would
 * otherwise repeat (registry, key copy, argument checks), so that a backend
 * is a plain byte store. The hash of the current key is computed once per
 * rn__state_set_key, since a record usually touches several states and
 * timers under one key. Timers live here rather than in the backend: the
 * handle keeps them in memory (as Flink's heap timer service does). A
 * backend with a timer store (the timer_* hooks: RocksDB) bounds that
 * memory: when the timers of both domains pass ops->timer_budget, the
 * latest times, then part of the earliest one, go to the store in one
 * batch, and pop loads them back with one range scan when they are the
 * earliest left. Every in-memory timer is at or before spill_min, every
 * stored one at or after it (at spill_min, never in both), so that time
 * order and dedup stay exact: a timer after spill_min lives in the store,
 * one before it in memory, one at it wherever memory does not hold it
 * (docs/state.md, Timers).
 *
 * @thread task: one rn_state_t per operator instance.
 */
#include "state/state_int.h"

#include <xxhash.h>

/* Timers whose state values are read ahead in one batch
 * (rn__state_read_on_timer): a few data blocks' worth of windows. */
#define PREFETCH_BATCH 256

static const char *const kind_names[] = {"value", "list", "map"};

rn_state_t *
rn__state_new(const rn_state_options_t *opts, rn_error_t *err)
{
    const char *name = opts != NULL && opts->backend != NULL ? opts->backend : "rocksdb";
    const rn__state_backend_t *ops = NULL;
    rn_state_options_t dflt;

    if (strcmp(name, "memory") == 0) {
        ops = &rn__state_memory_backend;
    } else if (strcmp(name, "rocksdb") == 0) {
        ops = &rn__state_rocksdb_backend;
    } else {
        rn__errf(err, RN_EINVAL, "unknown state backend '%s' (expected memory or rocksdb)", name);
        return NULL;
    }
    if (opts == NULL) {
        memset(&dflt, 0, sizeof(dflt));
        opts = &dflt;
    }

    rn_state_t *st = rn_calloc(1, sizeof(*st));
    if (st == NULL) {
        rn__errf(err, RN_ENOMEM, "state: out of memory");
        return NULL;
    }
    st->ops = ops;
    st->owner = rn_xstrdup(opts->owner != NULL ? opts->owner : "state");
    st->clock_ms = opts->clock_ms;
    rn__timers_init(&st->timers[RN_TIME_EVENT]);
    rn__timers_init(&st->timers[RN_TIME_PROCESSING]);
    st->spill_min[0] = st->spill_min[1] = INT64_MAX;
    st->pf_state = UINT32_MAX;
    if (ops->open(opts, &st->be, err) != RN_OK) {
        rn__errctx(err, "%s", st->owner);
        rn__state_destroy(st);
        return NULL;
    }
    if (ops->timer_budget != NULL && ops->timer_write != NULL) {
        const uint64_t *bytes[2] = {&st->timers[0].bytes, &st->timers[1].bytes};
        st->spill_budget = ops->timer_budget(st->be, bytes);
    }
    if (st->spill_budget == 0) /* timers without a bound keep what they free */
        st->timers[0].fc.keep = st->timers[1].fc.keep = RN__FC_KEEP_UNBOUNDED;
    /* An empty current key, so that calls before the first set_key address
     * a well-defined key rather than garbage. */
    rn__state_set_key(st, "", 0, 0);
    if (opts->restore_dir != NULL && rn__state_restore_handle(st, opts->restore_dir, err) != RN_OK) {
        rn__state_destroy(st);
        return NULL;
    }
    if (opts->import_dirs != NULL && opts->restore_dir == NULL &&
        rn__state_import_prepare(st, opts, err) != RN_OK) {
        rn__state_destroy(st);
        return NULL;
    }
    return st;
}

void
rn__state_destroy(rn_state_t *st)
{
    if (st == NULL)
        return;
    if (st->spill_writes > 0)
        RN_LOG_DEBUG(st->owner, "timers: %llu written to the store, %llu loaded back",
                     (unsigned long long)st->spill_writes, (unsigned long long)st->spill_loads);
    if (st->be != NULL)
        st->ops->close(st->be);
    rn__state_snap_release(st); /* the coordinator ends first */
    for (uint32_t i = 0; i < st->nstates; i++) {
        rn_free(st->states[i]->name);
        rn_free(st->states[i]);
    }
    rn_free(st->states);
    rn_free(st->pf_keys);
    rn__timers_fini(&st->timers[RN_TIME_EVENT]);
    rn__timers_fini(&st->timers[RN_TIME_PROCESSING]);
    rn__state_restored_free(st);
    rn_free(st->key);
    rn_free(st->scratch);
    rn_free(st->owner);
    rn_free(st);
}

void
rn__state_set_key(rn_state_t *st, const void *key, size_t len, uint32_t key_group)
{
    rn__state_set_key_hashed(st, key, len, key_group, XXH3_64bits(key, len));
}

void
rn__state_set_key_hashed(rn_state_t *st, const void *key, size_t len, uint32_t key_group,
                         uint64_t hash)
{
    /* Keys are bounded by RN_KEY_MAX upstream; an oversized one here is a
     * programming error that would corrupt lengths. */
    rn_assert(len <= UINT32_MAX / 2);
    if (len > st->keycap) {
        uint32_t cap = st->keycap ? st->keycap : 64;
        while (cap < len)
            cap *= 2;
        st->key = rn_xrealloc(st->key, cap);
        st->keycap = cap;
    }
    if (len > 0)
        memcpy(st->key, key, len);
    st->keylen = (uint32_t)len;
    st->kg = key_group;
    st->keyhash = hash;
}

const void *
rn__state_key(const rn_state_t *st, size_t *len)
{
    *len = st->keylen;
    return st->key;
}

uint32_t
rn__state_key_group(const rn_state_t *st)
{
    return st->kg;
}

static struct rn_vstate *
state_register(rn_state_t *st, const char *name, rn__skind_t kind, const rn_state_ttl_t *ttl,
               const rn_state_merge_t *merge, rn_error_t *err)
{
    int64_t ttl_ms = ttl != NULL ? ttl->ttl_ms : 0;
    bool on_read = ttl != NULL && ttl->refresh_on_read;

    if (ttl_ms < 0) {
        rn__errf(err, RN_EINVAL, "%s: state '%s': a TTL cannot be negative", st->owner, name);
        return NULL;
    }
    for (uint32_t i = 0; i < st->nstates; i++) {
        struct rn_vstate *h = st->states[i];
        if (strcmp(h->name, name) != 0)
            continue;
        if (h->kind != kind) {
            rn__errf(err, RN_EINVAL, "%s: state '%s' is a %s state, not a %s state", st->owner,
                     name, kind_names[h->kind], kind_names[kind]);
            return NULL;
        }
        /* Its stored layout depends on the TTL: one name, one setting. */
        if (h->ttl_ms != ttl_ms || h->ttl_on_read != on_read) {
            rn__errf(err, RN_EINVAL, "%s: state '%s' is already registered with another TTL",
                     st->owner, name);
            return NULL;
        }
        /* So is a merging state's: deltas vs whole values. */
        if (h->merging != (merge != NULL)) {
            rn__errf(err, RN_EINVAL, "%s: state '%s' is already registered %s a merge function",
                     st->owner, name, h->merging ? "with" : "without");
            return NULL;
        }
        return h;
    }
    if (ttl_ms > 0 && st->ops->ttl_state != NULL &&
        st->ops->ttl_state(st->be, st->nstates, kind, err) != RN_OK)
        return NULL;
    if (merge != NULL) {
        if (merge->merge == NULL || merge->size == 0) {
            rn__errf(err, RN_EINVAL, "%s: state '%s': a merging state needs a function and a size",
                     st->owner, name);
            return NULL;
        }
        if (st->ops->merge_state != NULL &&
            st->ops->merge_state(st->be, st->nstates, merge, err) != RN_OK)
            return NULL;
    }
    if (st->nstates == st->capstates) {
        st->capstates = st->capstates ? st->capstates * 2 : 4;
        st->states = rn_xrealloc(st->states, st->capstates * sizeof(*st->states));
    }
    /* All three handle structs have the layout of struct rn_vstate. */
    struct rn_vstate *h = rn_xcalloc(1, sizeof(struct rn_mstate));
    h->st = st;
    h->id = st->nstates;
    h->kind = kind;
    h->name = rn_xstrdup(name);
    h->ttl_ms = ttl_ms;
    h->ttl_on_read = on_read;
    h->merging = merge != NULL;
    if (merge != NULL) {
        h->merge = *merge;
        h->merge.ctx = NULL; /* the backend keeps its own copy of the bytes */
        h->merge.ctxlen = 0;
    }
    st->states[st->nstates++] = h;
    return h;
}

rn_vstate_t *
rn__state_value(rn_state_t *st, const char *name, rn_error_t *err)
{
    return state_register(st, name, RN__SK_VALUE, NULL, NULL, err);
}

rn_lstate_t *
rn__state_list(rn_state_t *st, const char *name, rn_error_t *err)
{
    return (rn_lstate_t *)state_register(st, name, RN__SK_LIST, NULL, NULL, err);
}

rn_mstate_t *
rn__state_map(rn_state_t *st, const char *name, rn_error_t *err)
{
    return (rn_mstate_t *)state_register(st, name, RN__SK_MAP, NULL, NULL, err);
}

rn_vstate_t *
rn__state_value_ttl(rn_state_t *st, const char *name, const rn_state_ttl_t *ttl,
                    rn_error_t *err)
{
    return state_register(st, name, RN__SK_VALUE, ttl, NULL, err);
}

rn_lstate_t *
rn__state_list_ttl(rn_state_t *st, const char *name, const rn_state_ttl_t *ttl, rn_error_t *err)
{
    return (rn_lstate_t *)state_register(st, name, RN__SK_LIST, ttl, NULL, err);
}

rn_mstate_t *
rn__state_map_ttl(rn_state_t *st, const char *name, const rn_state_ttl_t *ttl, rn_error_t *err)
{
    return (rn_mstate_t *)state_register(st, name, RN__SK_MAP, ttl, NULL, err);
}

rn_vstate_t *
rn__state_value_merge(rn_state_t *st, const char *name, const rn_state_merge_t *m,
                      rn_error_t *err)
{
    return state_register(st, name, RN__SK_VALUE, NULL, m, err);
}

/* Fills *k for handle h and namespace ns. @returns false when ns is too
 * long (err set). */
static inline bool
skey_init(rn__skey_t *k, const struct rn_vstate *h, const void *ns, size_t nslen,
          rn_error_t *err)
{
    const rn_state_t *st = h->st;
    if (RN_UNLIKELY(nslen > RN_STATE_NS_MAX)) {
        rn__errf(err, RN_EINVAL, "%s: state '%s': namespace of %zu bytes (at most %d)",
                 st->owner, h->name, nslen, RN_STATE_NS_MAX);
        return false;
    }
    k->state = h->id;
    k->kind = h->kind;
    k->kg = st->kg;
    k->keylen = st->keylen;
    k->nslen = (uint32_t)nslen;
    k->uklen = 0;
    k->keyhash = st->keyhash;
    k->key = st->key;
    k->ns = ns;
    k->ukey = NULL;
    return true;
}

static rn_code_t
state_ctx(rn_code_t rc, const struct rn_vstate *h, rn_error_t *err)
{
    if (rc != RN_OK && rc != RN_ENOTFOUND)
        rn__errctx(err, "%s: state '%s'", h->st->owner, h->name);
    return rc;
}

/* ---- value state ---- */

rn_code_t
rn__vstate_get(rn_vstate_t *vs, const void *ns, size_t nslen, const void **val, size_t *len,
               rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, vs, ns, nslen, err))
        return RN_EINVAL;
    if (RN_UNLIKELY(vs->ttl_ms > 0))
        return state_ctx(rn__ttl_get(vs, &k, val, len, err), vs, err);
    return state_ctx(vs->st->ops->get(vs->st->be, &k, val, len, err), vs, err);
}

rn_code_t
rn__vstate_put(rn_vstate_t *vs, const void *ns, size_t nslen, const void *val, size_t len,
               rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, vs, ns, nslen, err))
        return RN_EINVAL;
    if (RN_UNLIKELY(vs->ttl_ms > 0))
        return state_ctx(rn__ttl_put(vs, &k, val, len, err), vs, err);
    return state_ctx(vs->st->ops->put(vs->st->be, &k, val, len, err), vs, err);
}

void *
rn__vstate_ref(rn_vstate_t *vs, const void *ns, size_t nslen, size_t size, bool *created,
               rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, vs, ns, nslen, err))
        return NULL;
    void *p = RN_UNLIKELY(vs->ttl_ms > 0) ? rn__ttl_ref(vs, &k, size, created, err)
                                           : vs->st->ops->ref(vs->st->be, &k, size, created, err);
    if (p == NULL)
        state_ctx(err != NULL ? err->code : RN_EINVAL, vs, err);
    return p;
}

void
rn__vstate_prefetch(rn_vstate_t *vs, uint64_t keyhash, const void *ns, size_t nslen)
{
    const rn__state_backend_t *ops = vs->st->ops;
    if (ops->prefetch_key == NULL || nslen > RN_STATE_NS_MAX)
        return;
    rn__skey_t k = {.state = vs->id,
                    .kind = vs->kind,
                    .kg = 0,
                    .keylen = 0,
                    .nslen = (uint32_t)nslen,
                    .keyhash = keyhash,
                    .key = NULL,
                    .ns = ns};
    ops->prefetch_key(vs->st->be, &k);
}

/* Tables smaller than this stay in the CPU's caches (about an L2). */
#define PREFETCH_MIN_TABLE (1u << 20)

bool
rn__state_prefetch_pays(rn_state_t *st)
{
    return st->ops->prefetch_key != NULL && st->ops->table_bytes(st->be) > PREFETCH_MIN_TABLE;
}

void *
rn__vstate_ref_part(rn_vstate_t *vs, const void *ns, size_t nslen, size_t size, bool *fresh,
                    rn_error_t *err)
{
    const rn__state_backend_t *ops = vs->st->ops;
    if (!vs->merging || ops->ref_part == NULL)
        return rn__vstate_ref(vs, ns, nslen, size, fresh, err);
    rn__skey_t k;
    if (!skey_init(&k, vs, ns, nslen, err))
        return NULL;
    void *p = ops->ref_part(vs->st->be, &k, size, fresh, err);
    if (p == NULL)
        state_ctx(err != NULL ? err->code : RN_EINVAL, vs, err);
    return p;
}

rn_code_t
rn__vstate_clear(rn_vstate_t *vs, const void *ns, size_t nslen, rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, vs, ns, nslen, err))
        return RN_EINVAL;
    return state_ctx(vs->st->ops->del(vs->st->be, &k, err), vs, err);
}

rn_code_t
rn__vstate_take(rn_vstate_t *vs, const void *ns, size_t nslen, void *buf, size_t size,
                size_t *len, rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, vs, ns, nslen, err))
        return RN_EINVAL;
    const rn__state_backend_t *ops = vs->st->ops;
    if (RN_UNLIKELY(vs->ttl_ms > 0)) {
        const void *v;
        rn_code_t rc = rn__ttl_get(vs, &k, &v, len, err);
        if (rc != RN_OK)
            return state_ctx(rc, vs, err);
        if (*len > 0)
            memcpy(buf, v, *len < size ? *len : size);
        return state_ctx(ops->del(vs->st->be, &k, err), vs, err);
    }
    if (ops->take != NULL)
        return state_ctx(ops->take(vs->st->be, &k, buf, size, len, err), vs, err);
    const void *v;
    rn_code_t rc = ops->get(vs->st->be, &k, &v, len, err);
    if (rc != RN_OK)
        return state_ctx(rc, vs, err);
    /* Copy before del: v is borrowed from the entry that del frees. */
    if (*len > 0)
        memcpy(buf, v, *len < size ? *len : size);
    return state_ctx(ops->del(vs->st->be, &k, err), vs, err);
}

/* ---- list state ---- */

rn_code_t
rn__lstate_add(rn_lstate_t *ls, const void *ns, size_t nslen, const void *val, size_t len,
               rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, &ls->h, ns, nslen, err))
        return RN_EINVAL;
    if (RN_UNLIKELY(ls->h.ttl_ms > 0))
        return state_ctx(rn__ttl_list_add(&ls->h, &k, val, len, err), &ls->h, err);
    return state_ctx(ls->h.st->ops->list_add(ls->h.st->be, &k, val, len, err), &ls->h, err);
}

rn_code_t
rn__lstate_each(rn_lstate_t *ls, const void *ns, size_t nslen, rn_state_each_fn fn, void *ctx,
                rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, &ls->h, ns, nslen, err))
        return RN_EINVAL;
    /* fn's own error codes pass through untouched. */
    if (RN_UNLIKELY(ls->h.ttl_ms > 0))
        return rn__ttl_each(&ls->h, &k, fn, ctx, err);
    return ls->h.st->ops->list_each(ls->h.st->be, &k, fn, ctx, err);
}

rn_code_t
rn__lstate_clear(rn_lstate_t *ls, const void *ns, size_t nslen, rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, &ls->h, ns, nslen, err))
        return RN_EINVAL;
    return state_ctx(ls->h.st->ops->del(ls->h.st->be, &k, err), &ls->h, err);
}

/* ---- map state ---- */

static inline bool
mkey_init(rn__skey_t *k, rn_mstate_t *ms, const void *ns, size_t nslen, const void *ukey,
          size_t uklen, rn_error_t *err)
{
    if (!skey_init(k, &ms->h, ns, nslen, err))
        return false;
    if (RN_UNLIKELY(uklen > UINT32_MAX / 2)) {
        rn__errf(err, RN_EINVAL, "%s: state '%s': user key of %zu bytes", ms->h.st->owner,
                 ms->h.name, uklen);
        return false;
    }
    /* A non-NULL pointer marks "one entry" even for an empty user key. */
    k->ukey = ukey != NULL ? ukey : (const uint8_t *)"";
    k->uklen = (uint32_t)uklen;
    return true;
}

rn_code_t
rn__mstate_put(rn_mstate_t *ms, const void *ns, size_t nslen, const void *ukey, size_t uklen,
               const void *val, size_t vlen, rn_error_t *err)
{
    rn__skey_t k;
    if (!mkey_init(&k, ms, ns, nslen, ukey, uklen, err))
        return RN_EINVAL;
    if (RN_UNLIKELY(ms->h.ttl_ms > 0))
        return state_ctx(rn__ttl_put(&ms->h, &k, val, vlen, err), &ms->h, err);
    return state_ctx(ms->h.st->ops->put(ms->h.st->be, &k, val, vlen, err), &ms->h, err);
}

rn_code_t
rn__mstate_get(rn_mstate_t *ms, const void *ns, size_t nslen, const void *ukey, size_t uklen,
               const void **val, size_t *vlen, rn_error_t *err)
{
    rn__skey_t k;
    if (!mkey_init(&k, ms, ns, nslen, ukey, uklen, err))
        return RN_EINVAL;
    if (RN_UNLIKELY(ms->h.ttl_ms > 0))
        return state_ctx(rn__ttl_get(&ms->h, &k, val, vlen, err), &ms->h, err);
    return state_ctx(ms->h.st->ops->get(ms->h.st->be, &k, val, vlen, err), &ms->h, err);
}

rn_code_t
rn__mstate_remove(rn_mstate_t *ms, const void *ns, size_t nslen, const void *ukey, size_t uklen,
                  rn_error_t *err)
{
    rn__skey_t k;
    if (!mkey_init(&k, ms, ns, nslen, ukey, uklen, err))
        return RN_EINVAL;
    return state_ctx(ms->h.st->ops->del(ms->h.st->be, &k, err), &ms->h, err);
}

rn_code_t
rn__mstate_each(rn_mstate_t *ms, const void *ns, size_t nslen, rn_state_each_fn fn, void *ctx,
                rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, &ms->h, ns, nslen, err))
        return RN_EINVAL;
    if (RN_UNLIKELY(ms->h.ttl_ms > 0))
        return rn__ttl_each(&ms->h, &k, fn, ctx, err);
    return ms->h.st->ops->map_each(ms->h.st->be, &k, fn, ctx, err);
}

rn_code_t
rn__mstate_clear(rn_mstate_t *ms, const void *ns, size_t nslen, rn_error_t *err)
{
    rn__skey_t k;
    if (!skey_init(&k, &ms->h, ns, nslen, err))
        return RN_EINVAL;
    return state_ctx(ms->h.st->ops->del(ms->h.st->be, &k, err), &ms->h, err);
}

/* ---- timers ---- */

static rn__timers_t *
timers_of(rn_state_t *st, rn_time_domain_t domain)
{
    rn_assert(domain == RN_TIME_EVENT || domain == RN_TIME_PROCESSING);
    return &st->timers[domain];
}

static rn_code_t
check_ns(const rn_state_t *st, size_t nslen, rn_error_t *err)
{
    if (RN_UNLIKELY(nslen > RN_STATE_NS_MAX))
        return rn__errf(err, RN_EINVAL, "%s: timer namespace of %zu bytes (at most %d)",
                        st->owner, nslen, RN_STATE_NS_MAX);
    return RN_OK;
}

/* The store's callbacks for one domain. */
typedef struct spill_ctx {
    rn_state_t *st;
    rn_time_domain_t domain;
} spill_ctx_t;

static rn_code_t
spill_write(void *ctx, const rn__tref_t *t, size_t n, rn_error_t *err)
{
    spill_ctx_t *sc = ctx;
    rn_state_t *st = sc->st;
    rn_code_t rc = n > 0 ? st->ops->timer_write(st->be, sc->domain, t, n, err) : RN_OK;
    if (rc == RN_OK) {
        st->spilled[sc->domain] += n;
        st->spill_writes += n;
    }
    return rc;
}

static rn_code_t
spill_load_one(void *ctx, const rn__tref_t *t)
{
    spill_ctx_t *sc = ctx;
    rn_state_t *st = sc->st;
    rn__tkey_t k = {t->key, t->keylen, t->kg, XXH3_64bits(t->key, t->keylen)};
    rn_code_t rc = rn__timers_add(timers_of(st, sc->domain), &k, t->time, t->ns, t->nslen, NULL);
    if (rc == RN_OK) {
        if (st->spilled[sc->domain] > 0)
            st->spilled[sc->domain]--;
        st->spill_loads++;
    }
    return rc;
}

/* Spills the latest times of domain when the timers of both domains pass
 * the budget together, down to 3/4 of it, so that rounds are rare. */
rn_code_t
rn__state_spill_maybe(rn_state_t *st, rn_time_domain_t domain, rn_error_t *err)
{
    rn__timers_t *tm = timers_of(st, domain);
    uint64_t both = st->timers[0].bytes + st->timers[1].bytes;
    if (st->spill_budget == 0 || both <= st->spill_budget)
        return RN_OK;
    uint64_t over = both - st->spill_budget / 4 * 3;
    uint64_t target = tm->bytes > over ? tm->bytes - over : 0;
    spill_ctx_t sc = {st, domain};
    uint64_t before = st->spill_writes;
    rn_code_t rc = rn__timers_spill(tm, target, spill_write, &sc, &st->spill_min[domain], err);
    if (rc == RN_OK && st->spill_writes > before)
        RN_LOG_DEBUG(st->owner, "timers: %llu spilled to the store, from time %lld on",
                     (unsigned long long)(st->spill_writes - before),
                     (long long)st->spill_min[domain]);
    return rc;
}

rn_code_t
rn__timer_register(rn_state_t *st, rn_time_domain_t domain, int64_t time, const void *ns,
                   size_t nslen, rn_error_t *err)
{
    rn__tkey_t k = {st->key, st->keylen, st->kg, st->keyhash};
    rn_code_t rc = check_ns(st, nslen, err);
    if (rc != RN_OK)
        return rc;
    rn__timers_t *tm = timers_of(st, domain);
    int64_t smin = st->spill_min[domain];
    /* After the earliest stored time: the store's range. At it: memory may
     * hold part of that time (a bucket spilled in part), so the store only
     * when memory does not have it. */
    if (smin != INT64_MAX &&
        (time > smin || (time == smin && !rn__timers_has(tm, &k, time, ns, nslen)))) {
        /* A blind write, since writing a stored timer again changes
         * nothing (one key per timer) and a read first would cost a
         * RocksDB lookup per registration; spilled[] may count such a
         * timer twice. */
        rn__tref_t t = {time, st->kg, st->keylen, (uint32_t)nslen, st->key, ns};
        spill_ctx_t sc = {st, domain};
        rc = spill_write(&sc, &t, 1, err);
    } else {
        rc = rn__timers_add(tm, &k, time, ns, nslen, err);
        if (rc == RN_OK)
            rc = rn__state_spill_maybe(st, domain, err);
    }
    if (rc != RN_OK)
        rn__errctx(err, "%s", st->owner);
    return rc;
}

rn_code_t
rn__timer_delete(rn_state_t *st, rn_time_domain_t domain, int64_t time, const void *ns,
                 size_t nslen, rn_error_t *err)
{
    rn__tkey_t k = {st->key, st->keylen, st->kg, st->keyhash};
    rn_code_t rc = check_ns(st, nslen, err);
    if (rc != RN_OK)
        return rc;
    (void)timers_of(st, domain);
    int64_t *smin = &st->spill_min[domain];
    if (time <= *smin) /* at *smin, memory may hold it as well as the store */
        rn__timers_del(timers_of(st, domain), &k, time, ns, nslen);
    if (time < *smin || *smin == INT64_MAX) /* INT64_MAX: nothing stored */
        return RN_OK;
    rn__tref_t t = {time, st->kg, st->keylen, (uint32_t)nslen, st->key, ns};
    bool existed = false;
    rc = st->ops->timer_del(st->be, domain, &t, &existed, err);
    if (rc == RN_OK && existed) {
        if (st->spilled[domain] > 0)
            st->spilled[domain]--;
        /* The earliest stored time may have gone: seek the next one, so
         * that next() stays exact. */
        if (time == *smin)
            rc = st->ops->timer_load(st->be, domain, time, INT64_MIN, 0, spill_load_one, NULL,
                                     smin, err);
    }
    if (rc != RN_OK)
        rn__errctx(err, "%s", st->owner);
    return rc;
}

/* How many stored timers one load brings back at most: a quarter of the
 * budget, at about 200 bytes per timer in memory (node, bucket slot and
 * index slot, with the growth slack of the last two). */
static size_t
load_max(const rn_state_t *st)
{
    uint64_t n = st->spill_budget / 4 / 200;
    return n > 16 ? (size_t)n : 16;
}

rn_code_t
rn__timer_pop(rn_state_t *st, rn_time_domain_t domain, int64_t upto, rn_timer_t *t,
              rn_error_t *err)
{
    rn__timers_t *tm = timers_of(st, domain);
    int64_t *smin = &st->spill_min[domain];
    /* In-memory timers are all at or before *smin: the store's turn comes
     * when memory has none up to it. */
    if (*smin <= upto && rn__timers_next(tm) > *smin) {
        spill_ctx_t sc = {st, domain};
        rn_code_t rc = st->ops->timer_load(st->be, domain, *smin, upto, load_max(st),
                                           spill_load_one, &sc, smin, err);
        if (rc != RN_OK) {
            rn__errctx(err, "%s", st->owner);
            return rc;
        }
    }
    if (domain == RN_TIME_EVENT && st->pf_state != UINT32_MAX) {
        if (st->pf_left == 0) {
            size_t n = rn__timers_peek(tm, upto, PREFETCH_BATCH, st->pf_keys);
            for (size_t i = 0; i < n; i++) {
                st->pf_keys[i].state = st->pf_state;
                st->pf_keys[i].kind = RN__SK_VALUE;
            }
            if (n > 0)
                st->ops->prefetch(st->be, st->pf_keys, n);
            st->pf_left = (uint32_t)n;
        }
        if (st->pf_left > 0)
            st->pf_left--;
    }
    rn_code_t rc = rn__timers_pop(tm, st, upto, t);
    if (rc == RN_OK)
        t->domain = domain;
    return rc;
}

void
rn__state_read_on_timer(rn_vstate_t *vs)
{
    rn_state_t *st = vs->st;
    /* TTL values carry a header the backend's batch read does not strip. */
    if (st->ops->prefetch == NULL || vs->ttl_ms > 0)
        return;
    if (st->pf_keys == NULL)
        st->pf_keys = rn_xcalloc(PREFETCH_BATCH, sizeof(*st->pf_keys));
    st->pf_state = vs->id;
    st->pf_left = 0;
}

int64_t
rn__timer_next(rn_state_t *st, rn_time_domain_t domain)
{
    int64_t m = rn__timers_next(timers_of(st, domain));
    return m < st->spill_min[domain] ? m : st->spill_min[domain];
}

void
rn__state_stats(rn_state_t *st, rn_state_stats_t *stats)
{
    memset(stats, 0, sizeof(*stats));
    st->ops->stats(st->be, stats);
    for (int d = 0; d < 2; d++) {
        stats->timers += st->timers[d].live + st->spilled[d];
        stats->bytes += st->timers[d].bytes;
    }
    stats->bytes += sizeof(*st) + st->keycap + st->capstates * sizeof(*st->states);
}

const rn_state_merge_t *
rn__vstate_merge_of(const rn_vstate_t *vs)
{
    return vs->merging ? &vs->merge : NULL;
}
