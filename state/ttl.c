/*
 * state/ttl.c: time-to-live of keyed state (Flink's StateTtlConfig).
 *
 * A state registered with a TTL keeps, in front of each value, list element
 * or map entry, the processing time at which it expires: 8 bytes,
 * big-endian epoch milliseconds, so that the stored bytes are the same on
 * every machine (savepoints move between them) and a RocksDB compaction
 * filter can read them without knowing the state's value type. Writes
 * (put, ref, list add) set the expiry to now + TTL; with refresh_on_read,
 * reads do too (Flink's OnReadAndWrite). Expired entries are never
 * returned: a read that meets one removes it and answers RN_ENOTFOUND, and
 * iteration skips them. Entries nobody reads again stay until their key is
 * cleared or the backend drops them (see docs/state.md).
 *
 * Everything here is backend-agnostic: it wraps the backend calls of
 * state.c, which branches here only for states with a TTL, so that states
 * without one pay a single predictable branch.
 *
 * @thread task.
 */
#include "state/state_int.h"

#define TTL_HDR 8

static inline void
put_expiry(uint8_t *p, int64_t t)
{
    uint64_t u = (uint64_t)t;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)u;
        u >>= 8;
    }
}

static inline int64_t
get_expiry(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return (int64_t)u;
}

static inline int64_t
now_ms(const rn_state_t *st)
{
    return st->clock_ms != NULL ? st->clock_ms() : rn__now_ms();
}

static inline int64_t
expiry(const struct rn_vstate *h)
{
    int64_t now = now_ms(h->st);
    return now > INT64_MAX - h->ttl_ms ? INT64_MAX : now + h->ttl_ms;
}

static uint8_t *
scratch(rn_state_t *st, size_t n)
{
    if (n > st->scratchcap) {
        st->scratchcap = n < 256 ? 256 : n * 2;
        st->scratch = rn_xrealloc(st->scratch, st->scratchcap);
    }
    return st->scratch;
}

static rn_code_t
corrupt(const struct rn_vstate *h, rn_error_t *err)
{
    return rn__errf(err, RN_ECORRUPT, "%s: state '%s': an entry is shorter than its TTL header",
                    h->st->owner, h->name);
}

rn_code_t
rn__ttl_put(struct rn_vstate *h, const rn__skey_t *k, const void *val, size_t len,
            rn_error_t *err)
{
    uint8_t *buf = scratch(h->st, len + TTL_HDR);
    put_expiry(buf, expiry(h));
    if (len > 0)
        memcpy(buf + TTL_HDR, val, len);
    return h->st->ops->put(h->st->be, k, buf, len + TTL_HDR, err);
}

rn_code_t
rn__ttl_get(struct rn_vstate *h, const rn__skey_t *k, const void **val, size_t *len,
            rn_error_t *err)
{
    const rn__state_backend_t *ops = h->st->ops;
    const void *v;
    size_t n;
    rn_code_t rc = ops->get(h->st->be, k, &v, &n, err);

    if (rc != RN_OK)
        return rc;
    if (n < TTL_HDR)
        return corrupt(h, err);
    if (get_expiry(v) <= now_ms(h->st)) {
        rc = ops->del(h->st->be, k, err);
        return rc == RN_OK ? RN_ENOTFOUND : rc;
    }
    if (h->ttl_on_read) {
        /* Refreshing rewrites the entry, which may move it: copy first. */
        uint8_t *buf = scratch(h->st, n);
        memcpy(buf, v, n);
        put_expiry(buf, expiry(h));
        if ((rc = ops->put(h->st->be, k, buf, n, err)) != RN_OK)
            return rc;
        if ((rc = ops->get(h->st->be, k, &v, &n, err)) != RN_OK)
            return rc;
    }
    *val = (const uint8_t *)v + TTL_HDR;
    *len = n - TTL_HDR;
    return RN_OK;
}

void *
rn__ttl_ref(struct rn_vstate *h, const rn__skey_t *k, size_t size, bool *created,
            rn_error_t *err)
{
    uint8_t *p = h->st->ops->ref(h->st->be, k, size + TTL_HDR, created, err);
    if (p == NULL)
        return NULL;
    if (!*created && get_expiry(p) <= now_ms(h->st)) {
        /* Expired: as good as absent, so the caller starts afresh. */
        memset(p + TTL_HDR, 0, size);
        *created = true;
    }
    /* A ref is a write: whatever the caller does through it is fresh. */
    put_expiry(p, expiry(h));
    return p + TTL_HDR;
}

rn_code_t
rn__ttl_list_add(struct rn_vstate *h, const rn__skey_t *k, const void *val, size_t len,
                 rn_error_t *err)
{
    uint8_t *buf = scratch(h->st, len + TTL_HDR);
    put_expiry(buf, expiry(h));
    if (len > 0)
        memcpy(buf + TTL_HDR, val, len);
    return h->st->ops->list_add(h->st->be, k, buf, len + TTL_HDR, err);
}

typedef struct each_ctx {
    rn_state_each_fn fn;
    void *ctx;
    int64_t now;
    bool short_entry;
} each_ctx_t;

static rn_code_t
each_live(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
    each_ctx_t *c = arg;
    if (vlen < TTL_HDR) {
        c->short_entry = true;
        return RN_ECORRUPT;
    }
    if (get_expiry(v) <= c->now)
        return RN_OK;
    return c->fn(c->ctx, k, klen, (const uint8_t *)v + TTL_HDR, vlen - TTL_HDR);
}

rn_code_t
rn__ttl_each(struct rn_vstate *h, const rn__skey_t *k, rn_state_each_fn fn, void *ctx,
             rn_error_t *err)
{
    each_ctx_t c = {fn, ctx, now_ms(h->st), false};
    const rn__state_backend_t *ops = h->st->ops;
    rn_code_t rc = h->kind == RN__SK_LIST ? ops->list_each(h->st->be, k, each_live, &c, err)
                                          : ops->map_each(h->st->be, k, each_live, &c, err);
    if (c.short_entry)
        return corrupt(h, err);
    return rc;
}
