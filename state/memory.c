/*
 * state/memory.c: the in-memory state backend.
 *
 * Design: one open-addressing hash table (linear probing, power-of-two
 * capacity, at most 3/4 full, backward-shift deletion so there are no
 * tombstones) maps the composite key (state id, key, ns[, user key]) to an
 * entry. A slot holds the entry's 64-bit hash next to its pointer, so that a
 * probe touches the entry itself only when the hashes agree: a hit costs one
 * XXH3 of the namespace (the key's hash comes precomputed from the handle),
 * one or two slot reads and one memcmp. Growing rehashes slots only;
 * entries never move when the table grows, only when a value outgrows its
 * entry (put of a longer value, list append).
 *
 * An entry is one block: a fixed header, then key | ns | user key, padded
 * to 8 bytes, then the value, so that rn__vstate_ref hands out 8-aligned
 * memory for accumulator structs. Freed blocks go to free lists by size
 * class (rn__fcache_t), since windows create and drop an entry per key and
 * window all the time.
 *
 * Map state needs "every entry of (key, ns)" for each() and clear(): besides
 * its items (one entry per user key, found by hash for get/put), a map has
 * a head entry per (key, ns) holding a doubly linked list of its items and
 * their count. each() sorts the items by user key on demand; the order
 * only matters for iteration, so keeping the list unsorted makes put O(1).
 * A list state is one entry whose value is the packed sequence
 * [u32 length][bytes]..., grown by doubling.
 *
 * @thread task.
 */
#include "state/snapio.h"
#include "state/state_int.h"
#include "stream/key.h"

/* Inlined: namespaces are a few bytes, where the call costs as much as the
 * hash. */
#define XXH_INLINE_ALL
#include <xxhash.h>

enum { E_VALUE, E_LIST, E_MHEAD, E_MITEM };

typedef struct entry {
    uint32_t state;
    uint32_t kg; /* kept for key-group range snapshots (rescaling) */
    uint32_t keylen;
    uint32_t uklen;
    uint32_t vlen; /* value bytes in use */
    uint32_t vcap; /* value bytes allocated */
    uint8_t nslen;
    uint8_t kind;
    uint8_t pad[6];
    uint8_t data[]; /* key | ns | ukey | pad to 8 | [mlink | mhead] value */
} entry_t;

_Static_assert(sizeof(entry_t) % 8 == 0, "entry header keeps the value 8-aligned");

/* Links of a map item, in front of its value; head never moves (a head's
 * value has a fixed size), so items can point at it. */
typedef struct mlink {
    entry_t *prev;
    entry_t *next;
    entry_t *head;
} mlink_t;

typedef struct mhead {
    entry_t *first;
    uint64_t count;
} mhead_t;

typedef struct slot {
    uint64_t hash;
    entry_t *e; /* NULL: empty */
} slot_t;

typedef struct membe {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t count; /* entries in the table, map heads included */
    uint64_t live; /* values, lists and map items */
    uint64_t bytes; /* entry allocations */
    rn__fcache_t fc; /* recycled entry blocks */
} membe_t;

#define MIN_CAP 64
#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

/* ---- entries ---- */

static inline size_t
voff(const entry_t *e)
{
    return ALIGN8((size_t)e->keylen + e->nslen + e->uklen);
}

static inline size_t
prefix_of(const entry_t *e)
{
    return e->kind == E_MITEM ? sizeof(mlink_t) : e->kind == E_MHEAD ? sizeof(mhead_t) : 0;
}

static inline uint8_t *
vbase(entry_t *e)
{
    return e->data + voff(e);
}

static inline uint8_t *
vptr(entry_t *e)
{
    return vbase(e) + prefix_of(e);
}

static inline mlink_t *
link_of(entry_t *e)
{
    return (mlink_t *)vbase(e);
}

static inline mhead_t *
head_of(entry_t *e)
{
    return (mhead_t *)vbase(e);
}

static inline size_t
alloc_size(const entry_t *e)
{
    return sizeof(entry_t) + voff(e) + prefix_of(e) + e->vcap;
}

static inline uint64_t
hash_item(uint64_t head, const void *ukey, size_t uklen)
{
    return XXH3_64bits_withSeed(ukey, uklen, head ^ 0x9e3779b97f4a7c15ULL);
}

static inline uint64_t
hash_of(const rn__skey_t *k)
{
    uint64_t h = rn__state_hash(k);
    return k->ukey != NULL ? hash_item(h, k->ukey, k->uklen) : h;
}

static inline bool
matches(const entry_t *e, const rn__skey_t *k)
{
    if (e->state != k->state || e->keylen != k->keylen || e->nslen != k->nslen ||
        e->uklen != k->uklen || (e->kind == E_MITEM) != (k->ukey != NULL))
        return false;
    const uint8_t *p = e->data;
    if (memcmp(p, k->key, k->keylen) != 0)
        return false;
    p += k->keylen;
    if (k->nslen && memcmp(p, k->ns, k->nslen) != 0)
        return false;
    return k->uklen == 0 || memcmp(p + k->nslen, k->ukey, k->uklen) == 0;
}

/* @returns a new entry for k of kind with vcap value bytes (zeroed), or
 * NULL. */
static entry_t *
entry_new(membe_t *m, const rn__skey_t *k, int kind, size_t vcap)
{
    entry_t hdr = {.state = k->state,
                   .kg = k->kg,
                   .keylen = k->keylen,
                   .uklen = kind == E_MITEM ? k->uklen : 0,
                   .vlen = 0,
                   .vcap = (uint32_t)vcap,
                   .nslen = (uint8_t)k->nslen,
                   .kind = (uint8_t)kind};
    size_t size = alloc_size(&hdr);
    entry_t *e = rn__fc_alloc(&m->fc, size);
    if (e == NULL)
        return NULL;
    *e = hdr;
    uint8_t *p = e->data;
    memcpy(p, k->key, k->keylen);
    p += k->keylen;
    if (k->nslen)
        memcpy(p, k->ns, k->nslen);
    p += k->nslen;
    if (hdr.uklen)
        memcpy(p, k->ukey, hdr.uklen);
    memset(p + hdr.uklen, 0, size - (size_t)(p + hdr.uklen - (uint8_t *)e));
    m->bytes += rn__fc_round(size);
    return e;
}

/* Frees an entry that never made it into the table. */
static void
entry_discard(membe_t *m, entry_t *e)
{
    m->bytes -= rn__fc_round(alloc_size(e));
    rn__fc_free(&m->fc, e, alloc_size(e));
}

/* ---- the table ---- */

/* @returns the slot of k, or of the empty slot where it would go. */
static inline size_t
find(const membe_t *m, const rn__skey_t *k, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    for (;;) {
        const slot_t *s = &m->slots[i];
        if (s->e == NULL || (s->hash == h && matches(s->e, k)))
            return i;
        i = (i + 1) & mask;
    }
}

static size_t
find_empty(const membe_t *m, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].e != NULL)
        i = (i + 1) & mask;
    return i;
}

static rn_code_t
grow(membe_t *m, rn_error_t *err)
{
    size_t ncap = m->cap * 2;
    slot_t *ns = rn_zalloc(ncap, sizeof(slot_t));
    if (ns == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory growing the state table to %zu slots",
                        ncap);
    slot_t *old = m->slots;
    size_t ocap = m->cap;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].e != NULL)
            m->slots[find_empty(m, old[i].hash)] = old[i];
    rn_free(old);
    return RN_OK;
}

/* Inserts e (hash h, not present) and @returns RN_OK, or RN_ENOMEM with e
 * left to the caller. */
static rn_code_t
insert(membe_t *m, entry_t *e, uint64_t h, rn_error_t *err)
{
    if ((m->count + 1) * 4 > m->cap * 3) {
        rn_code_t rc = grow(m, err);
        if (rc != RN_OK)
            return rc;
    }
    size_t i = find_empty(m, h);
    m->slots[i].hash = h;
    m->slots[i].e = e;
    m->count++;
    return RN_OK;
}

/* Empties slot i, shifting back the entries of its probe run. */
static void
remove_at(membe_t *m, size_t i)
{
    size_t mask = m->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->slots[j].e == NULL)
            break;
        size_t home = m->slots[j].hash & mask;
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].e = NULL;
    m->count--;
}

static void
entry_free(membe_t *m, entry_t *e)
{
    if (e->kind != E_MHEAD)
        m->live--;
    entry_discard(m, e);
}

/* Reallocates the entry in slot i for vcap value bytes, fixing the map
 * links that point at it. @returns the moved entry or NULL (slot intact). */
static entry_t *
entry_resize(membe_t *m, size_t i, size_t vcap)
{
    entry_t *e = m->slots[i].e;
    size_t old = rn__fc_round(alloc_size(e));
    uint32_t ocap = e->vcap;
    e->vcap = (uint32_t)vcap;
    /* Blocks keep their class size, so that rn__fc_free files them right. */
    entry_t *ne = rn_realloc(e, rn__fc_round(alloc_size(e)));
    if (ne == NULL) {
        e->vcap = ocap;
        return NULL;
    }
    m->bytes += rn__fc_round(alloc_size(ne)) - old;
    m->slots[i].e = ne;
    if (ne->kind == E_MITEM) {
        mlink_t *l = link_of(ne);
        if (l->prev != NULL)
            link_of(l->prev)->next = ne;
        else
            head_of(l->head)->first = ne;
        if (l->next != NULL)
            link_of(l->next)->prev = ne;
    }
    return ne;
}

static rn_code_t
nomem(rn_error_t *err, size_t n)
{
    return rn__errf(err, RN_ENOMEM, "out of memory for a state entry of %zu bytes", n);
}

/* ---- backend functions ---- */

static void mem_close(void *be);
static rn_code_t mem_restore(membe_t *m, const char *dir, uint32_t lo, uint32_t hi,
                             rn_error_t *err);
static rn_code_t mem_put(void *be, const rn__skey_t *k, const void *val, size_t len,
                         rn_error_t *err);

static rn_code_t
mem_open(const rn_state_options_t *opts, void **be, rn_error_t *err)
{
    membe_t *m = rn_calloc(1, sizeof(*m));
    if (m == NULL)
        return nomem(err, sizeof(*m));
    m->cap = MIN_CAP;
    m->fc.keep = RN__FC_KEEP_UNBOUNDED;
    m->slots = rn_zalloc(m->cap, sizeof(slot_t));
    if (m->slots == NULL) {
        rn_free(m);
        return nomem(err, MIN_CAP * sizeof(slot_t));
    }
    if (opts->restore_dir != NULL) {
        rn_code_t rc = mem_restore(m, opts->restore_dir, 0, UINT32_MAX, err);
        if (rc != RN_OK) {
            mem_close(m);
            return rc;
        }
    }
    *be = m;
    return RN_OK;
}

static void
mem_close(void *be)
{
    membe_t *m = be;
    for (size_t i = 0; i < m->cap; i++)
        rn_free(m->slots[i].e);
    rn__fc_fini(&m->fc);
    rn_free(m->slots);
    rn_free(m);
}

static rn_code_t
mem_get(void *be, const rn__skey_t *k, const void **val, size_t *len, rn_error_t *err)
{
    membe_t *m = be;
    entry_t *e = m->slots[find(m, k, hash_of(k))].e;
    if (e == NULL || e->kind == E_MHEAD || e->kind == E_LIST)
        return RN_ENOTFOUND;
    *val = vptr(e);
    *len = e->vlen;
    return RN_OK;
}

/* The head of map (key, ns), created when create is set; NULL when absent
 * or out of memory (err set then). */
static entry_t *
map_head(membe_t *m, const rn__skey_t *k, uint64_t hh, bool create, rn_error_t *err)
{
    rn__skey_t hk = *k;
    hk.ukey = NULL;
    hk.uklen = 0;
    entry_t *head = m->slots[find(m, &hk, hh)].e;
    if (head != NULL || !create)
        return head;
    head = entry_new(m, &hk, E_MHEAD, 0);
    if (head == NULL) {
        nomem(err, sizeof(entry_t));
        return NULL;
    }
    if (insert(m, head, hh, err) != RN_OK) {
        entry_discard(m, head);
        return NULL;
    }
    return head;
}

static rn_code_t
map_put_new(membe_t *m, const rn__skey_t *k, uint64_t hh, uint64_t h, const void *val, size_t len,
            rn_error_t *err)
{
    entry_t *head = map_head(m, k, hh, true, err);
    if (head == NULL)
        return err != NULL ? err->code : RN_ENOMEM;
    entry_t *e = entry_new(m, k, E_MITEM, len);
    if (e == NULL)
        return nomem(err, len);
    rn_code_t rc = insert(m, e, h, err);
    if (rc != RN_OK) {
        entry_discard(m, e);
        return rc;
    }
    m->live++;
    memcpy(vptr(e), val, len);
    e->vlen = (uint32_t)len;
    mhead_t *mh = head_of(head);
    mlink_t *l = link_of(e);
    l->head = head;
    l->prev = NULL;
    l->next = mh->first;
    if (mh->first != NULL)
        link_of(mh->first)->prev = e;
    mh->first = e;
    mh->count++;
    return RN_OK;
}

static rn_code_t
mem_put(void *be, const rn__skey_t *k, const void *val, size_t len, rn_error_t *err)
{
    membe_t *m = be;
    if (len > UINT32_MAX / 2)
        return rn__errf(err, RN_EINVAL, "value of %zu bytes is too large", len);
    uint64_t hh = rn__state_hash(k);
    uint64_t h = k->ukey != NULL ? hash_item(hh, k->ukey, k->uklen) : hh;
    size_t i = find(m, k, h);
    entry_t *e = m->slots[i].e;
    if (e == NULL) {
        if (k->ukey != NULL)
            return map_put_new(m, k, hh, h, val, len, err);
        e = entry_new(m, k, E_VALUE, len);
        if (e == NULL)
            return nomem(err, len);
        rn_code_t rc = insert(m, e, h, err);
        if (rc != RN_OK) {
            entry_discard(m, e);
            return rc;
        }
        m->live++;
    } else if (e->vcap < len) {
        e = entry_resize(m, i, len);
        if (e == NULL)
            return nomem(err, len);
    }
    if (len > 0)
        memcpy(vptr(e), val, len);
    e->vlen = (uint32_t)len;
    return RN_OK;
}

static void *
mem_ref(void *be, const rn__skey_t *k, size_t size, bool *created, rn_error_t *err)
{
    membe_t *m = be;
    uint64_t h = hash_of(k);
    size_t i = find(m, k, h);
    entry_t *e = m->slots[i].e;
    if (RN_LIKELY(e != NULL)) {
        if (RN_UNLIKELY(e->vlen != size)) {
            rn__errf(err, RN_EINVAL, "value of %u bytes referenced as %zu bytes", e->vlen, size);
            return NULL;
        }
        *created = false;
        return vptr(e);
    }
    if (size > UINT32_MAX / 2) {
        rn__errf(err, RN_EINVAL, "value of %zu bytes is too large", size);
        return NULL;
    }
    e = entry_new(m, k, E_VALUE, size);
    if (e == NULL) {
        nomem(err, size);
        return NULL;
    }
    if (insert(m, e, h, err) != RN_OK) {
        entry_discard(m, e);
        return NULL;
    }
    m->live++;
    e->vlen = (uint32_t)size;
    *created = true;
    return vptr(e);
}

/* Unlinks map item e (in slot i) from its head, removes the head when it
 * was the last item, and frees e. */
static void
map_item_remove(membe_t *m, size_t i, entry_t *e, uint64_t hh)
{
    mlink_t *l = link_of(e);
    entry_t *head = l->head;
    mhead_t *mh = head_of(head);
    if (l->prev != NULL)
        link_of(l->prev)->next = l->next;
    else
        mh->first = l->next;
    if (l->next != NULL)
        link_of(l->next)->prev = l->prev;
    remove_at(m, i);
    entry_free(m, e);
    if (--mh->count == 0) {
        /* Find the head's slot by pointer along its probe run. */
        size_t mask = m->cap - 1;
        size_t j = hh & mask;
        while (m->slots[j].e != head)
            j = (j + 1) & mask;
        remove_at(m, j);
        entry_free(m, head);
    }
}

static void
map_clear(membe_t *m, const rn__skey_t *k, uint64_t hh)
{
    size_t hi = find(m, k, hh);
    entry_t *head = m->slots[hi].e;
    if (head == NULL)
        return;
    entry_t *e = head_of(head)->first;
    while (e != NULL) {
        entry_t *next = link_of(e)->next;
        uint64_t h = hash_item(hh, e->data + e->keylen + e->nslen, e->uklen);
        size_t mask = m->cap - 1;
        size_t j = h & mask;
        while (m->slots[j].e != e)
            j = (j + 1) & mask;
        remove_at(m, j);
        entry_free(m, e);
        e = next;
    }
    remove_at(m, find(m, k, hh));
    entry_free(m, head);
}

static rn_code_t
mem_del(void *be, const rn__skey_t *k, rn_error_t *err)
{
    membe_t *m = be;
    uint64_t hh = rn__state_hash(k);
    if (k->kind == RN__SK_MAP && k->ukey == NULL) {
        map_clear(m, k, hh);
        return RN_OK;
    }
    uint64_t h = k->ukey != NULL ? hash_item(hh, k->ukey, k->uklen) : hh;
    size_t i = find(m, k, h);
    entry_t *e = m->slots[i].e;
    if (e == NULL)
        return RN_OK;
    if (e->kind == E_MITEM) {
        map_item_remove(m, i, e, hh);
        return RN_OK;
    }
    remove_at(m, i);
    entry_free(m, e);
    return RN_OK;
}

static rn_code_t
mem_take(void *be, const rn__skey_t *k, void *buf, size_t size, size_t *len, rn_error_t *err)
{
    membe_t *m = be;
    size_t i = find(m, k, hash_of(k));
    entry_t *e = m->slots[i].e;
    if (e == NULL || e->kind != E_VALUE)
        return RN_ENOTFOUND;
    *len = e->vlen;
    if (e->vlen > 0)
        memcpy(buf, vptr(e), e->vlen < size ? e->vlen : size);
    remove_at(m, i);
    entry_free(m, e);
    return RN_OK;
}

static rn_code_t
mem_list_add(void *be, const rn__skey_t *k, const void *val, size_t len, rn_error_t *err)
{
    membe_t *m = be;
    if (len > UINT32_MAX / 4)
        return rn__errf(err, RN_EINVAL, "list element of %zu bytes is too large", len);
    uint64_t h = hash_of(k);
    size_t i = find(m, k, h);
    entry_t *e = m->slots[i].e;
    size_t need = 4 + len;
    if (e == NULL) {
        e = entry_new(m, k, E_LIST, need < 56 ? 56 : need);
        if (e == NULL)
            return nomem(err, need);
        rn_code_t rc = insert(m, e, h, err);
        if (rc != RN_OK) {
            entry_discard(m, e);
            return rc;
        }
        m->live++;
    } else if ((size_t)e->vcap - e->vlen < need) {
        size_t ncap = (size_t)e->vcap * 2;
        if (ncap < (size_t)e->vlen + need)
            ncap = (size_t)e->vlen + need;
        if (ncap > UINT32_MAX / 2)
            return rn__errf(err, RN_EINVAL, "list grew past %u bytes", UINT32_MAX / 2);
        e = entry_resize(m, i, ncap);
        if (e == NULL)
            return nomem(err, ncap);
    }
    uint8_t *p = vptr(e) + e->vlen;
    uint32_t l32 = (uint32_t)len;
    memcpy(p, &l32, 4);
    if (len > 0)
        memcpy(p + 4, val, len);
    e->vlen += (uint32_t)need;
    return RN_OK;
}

static rn_code_t
mem_list_each(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx, rn_error_t *err)
{
    membe_t *m = be;
    entry_t *e = m->slots[find(m, k, hash_of(k))].e;
    if (e == NULL)
        return RN_OK;
    /* fn must not change this list (state.h's borrow rule): p stays valid. */
    const uint8_t *p = vptr(e);
    uint32_t end = e->vlen;
    for (uint32_t off = 0; off < end;) {
        uint32_t len;
        memcpy(&len, p + off, 4);
        rn_code_t rc = fn(ctx, NULL, 0, p + off + 4, len);
        if (rc != RN_OK)
            return rc;
        off += 4 + len;
    }
    return RN_OK;
}

static int
cmp_ukey(const void *a, const void *b)
{
    const entry_t *x = *(entry_t *const *)a;
    const entry_t *y = *(entry_t *const *)b;
    size_t n = x->uklen < y->uklen ? x->uklen : y->uklen;
    int c = n ? memcmp(x->data + x->keylen + x->nslen, y->data + y->keylen + y->nslen, n) : 0;
    if (c != 0)
        return c;
    return (x->uklen > y->uklen) - (x->uklen < y->uklen);
}

static rn_code_t
mem_map_each(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx, rn_error_t *err)
{
    membe_t *m = be;
    entry_t *head = m->slots[find(m, k, rn__state_hash(k))].e;
    if (head == NULL)
        return RN_OK;
    mhead_t *mh = head_of(head);
    entry_t **items = rn_malloc(mh->count * sizeof(*items));
    if (items == NULL)
        return nomem(err, mh->count * sizeof(*items));
    size_t n = 0;
    for (entry_t *e = mh->first; e != NULL; e = link_of(e)->next)
        items[n++] = e;
    qsort(items, n, sizeof(*items), cmp_ukey);
    rn_code_t rc = RN_OK;
    for (size_t i = 0; i < n && rc == RN_OK; i++) {
        entry_t *e = items[i];
        rc = fn(ctx, e->data + e->keylen + e->nslen, e->uklen, vptr(e), e->vlen);
    }
    rn_free(items);
    return rc;
}

static void
mem_stats(void *be, rn_state_stats_t *stats)
{
    membe_t *m = be;
    stats->entries += m->live;
    stats->bytes += m->bytes + m->cap * sizeof(slot_t) + sizeof(*m);
}

/* rn__vstate_prefetch: the slot of the value's hash, which a lookup
 * reads first. */
static void
mem_prefetch_key(void *be, const rn__skey_t *k)
{
    const membe_t *m = be;
    __builtin_prefetch(&m->slots[rn__state_hash(k) & (m->cap - 1)]);
}

static size_t
mem_table_bytes(void *be)
{
    return ((const membe_t *)be)->cap * sizeof(slot_t);
}

/* ---- snapshots (checkpoints) ----
 *
 * The file "mem" of a snapshot directory: "RNMS", version (u32), then per
 * value, list or map item: kind (u8: 0 value, 1 list, 2 map item), state
 * id, key group, key length (u32 each), namespace length (u8), user-key
 * length, value length (u32 each), then key, namespace, user key and value
 * bytes; a list's value is its packed elements as they are in memory. Then
 * kind 0xff and the record count (u64). Written synchronously: the cost is
 * a pass over the table (a copy-on-write snapshot would make it
 * asynchronous, as Flink's heap backend does). */

#define SNAP_MAGIC "RNMS"
#define SNAP_VERSION 1u
#define SNAP_END 0xffu

static rn_code_t
mem_snapshot(void *be, const char *dir, rn_state_finish_t *fin, rn_error_t *err)
{
    (void)fin; /* written here: nothing left to finish */
    membe_t *m = be;
    char path[4096];
    rn__snapio_t io;
    snprintf(path, sizeof(path), "%s/mem", dir);
    rn_code_t rc = rn__snapio_open(&io, path, true, SNAP_MAGIC, SNAP_VERSION, NULL, err);
    if (rc != RN_OK)
        return rc;
    uint64_t n = 0;
    for (size_t i = 0; i < m->cap && !io.failed; i++) {
        entry_t *e = m->slots[i].e;
        if (e == NULL || e->kind == E_MHEAD)
            continue;
        rn__snapio_u8(&io, e->kind == E_VALUE ? 0 : e->kind == E_LIST ? 1 : 2);
        rn__snapio_u32(&io, e->state);
        rn__snapio_u32(&io, e->kg);
        rn__snapio_u32(&io, e->keylen);
        rn__snapio_u8(&io, e->nslen);
        rn__snapio_u32(&io, e->uklen);
        rn__snapio_u32(&io, e->vlen);
        rn__snapio_bytes(&io, e->data, (size_t)e->keylen + e->nslen + e->uklen);
        rn__snapio_bytes(&io, vptr(e), e->vlen);
        n++;
    }
    rn__snapio_u8(&io, SNAP_END);
    rn__snapio_u64(&io, n);
    return rn__snapio_close(&io, err);
}

/* Loads the entries of key groups [lo, hi] of the snapshot file path;
 * m NULL: parses and checks it all, loading nothing (rn__state_mem_check). */
static rn_code_t
mem_read(membe_t *m, const char *path, uint32_t lo, uint32_t hi, rn_error_t *err)
{
    rn__snapio_t io;
    rn_code_t rc = rn__snapio_open(&io, path, false, SNAP_MAGIC, SNAP_VERSION,
                                   "a memory state snapshot", err);
    if (rc != RN_OK)
        return rc;
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    uint64_t n = 0;
    while (!io.failed) {
        uint8_t kind = rn__snapio_get_u8(&io);
        if (kind == SNAP_END) {
            if (rn__snapio_get_u64(&io) != n && !io.failed)
                rn__snapio_bad(&io, "record count does not match");
            else if (io.off != io.size)
                rn__snapio_bad(&io, "bytes after the end");
            break;
        }
        if (kind > 2) {
            rn__snapio_bad(&io, "unknown record kind %u", kind);
            break;
        }
        rn__skey_t k;
        memset(&k, 0, sizeof(k));
        k.state = rn__snapio_get_u32(&io);
        k.kg = rn__snapio_get_u32(&io);
        k.keylen = rn__snapio_get_len(&io, RN_KEY_MAX, "a key");
        k.nslen = rn__snapio_get_u8(&io);
        k.uklen = rn__snapio_get_len(&io, UINT32_MAX / 4, "a map key");
        uint32_t vlen = rn__snapio_get_len(&io, UINT32_MAX / 4, "a value");
        if (k.nslen > RN_STATE_NS_MAX)
            rn__snapio_bad(&io, "a namespace of %u bytes", k.nslen);
        /* A registry has at most 0xfffe states (snapshot.c) and key groups
         * stop at 0x7fff: an entry beyond either belongs to nothing, and
         * was dropped in silence. */
        if (k.state >= 0xfffeu || k.kg > 0x7fffu)
            rn__snapio_bad(&io, "an entry of state %u, key group %u", k.state, k.kg);
        if (io.failed)
            break;
        size_t need = (size_t)k.keylen + k.nslen + k.uklen + vlen;
        if (need > io.size - io.off) {
            rn__snapio_bad(&io, "a record longer than the rest of the file");
            break;
        }
        /* Also for a record of no bytes at all: the pointers into buf
         * below must not be offsets from NULL. */
        if (need > bufcap || buf == NULL) {
            bufcap = need + 64;
            rn_free(buf);
            buf = rn_xmalloc(bufcap);
        }
        rn__snapio_get_bytes(&io, buf, need);
        if (io.failed)
            break;
        k.kind = kind == 0 ? RN__SK_VALUE : kind == 1 ? RN__SK_LIST : RN__SK_MAP;
        k.key = buf;
        k.ns = buf + k.keylen;
        k.ukey = kind == 2 ? buf + k.keylen + k.nslen : NULL;
        if (kind != 2)
            k.uklen = 0;
        k.keyhash = XXH3_64bits(k.key, k.keylen);
        const uint8_t *val = buf + k.keylen + k.nslen + (kind == 2 ? k.uklen : 0);
        n++;
        if (m == NULL || k.kg < lo || k.kg > hi)
            continue;
        if (kind == 1) {
            uint64_t h = hash_of(&k);
            entry_t *e = entry_new(m, &k, E_LIST, vlen);
            if (e == NULL) {
                rc = nomem(err, vlen);
                break;
            }
            if ((rc = insert(m, e, h, err)) != RN_OK) {
                entry_discard(m, e);
                break;
            }
            m->live++;
            memcpy(vptr(e), val, vlen);
            e->vlen = vlen;
        } else if ((rc = mem_put(m, &k, val, vlen, err)) != RN_OK) {
            break;
        }
    }
    rn_free(buf);
    rn_code_t crc = rn__snapio_close(&io, err);
    return rc != RN_OK ? rc : crc;
}

/* Loads the entries of key groups [lo, hi] of dir/mem. */
static rn_code_t
mem_restore(membe_t *m, const char *dir, uint32_t lo, uint32_t hi, rn_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/mem", dir);
    return mem_read(m, path, lo, hi, err);
}

rn_code_t
rn__state_mem_check(const char *path, rn_error_t *err)
{
    return mem_read(NULL, path, 0, UINT32_MAX, err);
}

static rn_code_t
mem_import(void *be, const char *dir, uint32_t lo, uint32_t hi, rn_error_t *err)
{
    return mem_restore(be, dir, lo, hi, err);
}

const rn__state_backend_t rn__state_memory_backend = {
    .name = "memory",
    .open = mem_open,
    .close = mem_close,
    .get = mem_get,
    .put = mem_put,
    .ref = mem_ref,
    .del = mem_del,
    .take = mem_take,
    .list_add = mem_list_add,
    .list_each = mem_list_each,
    .map_each = mem_map_each,
    .stats = mem_stats,
    .prefetch_key = mem_prefetch_key,
    .table_bytes = mem_table_bytes,
    .snapshot = mem_snapshot,
    .import = mem_import,
};
