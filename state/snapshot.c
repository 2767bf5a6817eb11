/*
 * state/snapshot.c: the synchronous part of a checkpoint for one state
 * handle, and its restore (docs/checkpoints.md).
 *
 * A snapshot directory holds the backend's files (RocksDB: "db/", a
 * RocksDB checkpoint of hard links; memory: "mem") and "handle": what the
 * handle itself keeps in memory, that is the registry of states and the
 * timers not spilled to the backend. Spilled timers are in the backend's
 * files already.
 *
 * "handle": "RNSH", version (u32); the registry: count (u32), then per
 * state kind (u8), merging (u8), TTL (u64 ms) and name (u32 length,
 * bytes); per domain the earliest spilled time (u64) and the spilled
 * count (u64); then per in-memory timer: domain (u8), time (u64), key
 * group (u32), key length (u32), namespace length (u8), key, namespace;
 * then 0xff and the timer count (u64). Every length is checked before use.
 *
 * The handle file is written by the snapshot's finish, off the task's
 * thread: the synchronous part only pins the timers (an array of pointers
 * to their nodes, which stay as they are until the file is written).
 *
 * @thread task, except the finish (any).
 */
#include "state/snapio.h"
#include "state/state_int.h"
#include "stream/key.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#define H_MAGIC "RNSH"
#define H_VERSION 1u
#define H_END 0xffu
#define NAME_MAX_LEN 1024u
#define STATES_MAX 0xfffeu

typedef struct rn__snapreg {
    uint32_t n;
    struct {
        uint8_t kind;
        uint8_t merging;
        int64_t ttl_ms;
        char *name;
    } *s;
} snapreg_t;

/* The handle file of a snapshot in flight. The synchronous part takes
 * the registry and the in-memory timers (pinned: rn__timers_pin, an array
 * of node pointers); the file is written by the finish, off the task's
 * thread, while the task goes on. The task frees it (and unpins) when
 * done is set: at its next tick, snapshot or on destroy. */
struct rn__hsnap {
    char *path;
    rn_state_finish_t inner; /* the backend's finish */
    uint32_t nstates;
    struct {
        uint8_t kind;
        uint8_t merging;
        int64_t ttl_ms;
        char *name;
    } *s;
    int64_t spill_min[2];
    uint64_t spilled[2];
    rn__tnode_t **nodes[2];
    size_t n[2];
    const char *owner; /* the state's, outlives this */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void
hsnap_free(rn__hsnap_t *hs)
{
    for (uint32_t i = 0; i < hs->nstates; i++)
        rn_free(hs->s[i].name);
    rn_free(hs->s);
    rn_free(hs->nodes[0]);
    rn_free(hs->nodes[1]);
    rn_free(hs->path);
    pthread_mutex_destroy(&hs->lock);
    pthread_cond_destroy(&hs->cond);
    rn_free(hs);
}

/* Ends the snapshot in flight once its finish ran; with wait, waits for
 * that. @returns whether there is none left. @thread task. */
static bool
hsnap_release(rn_state_t *st, bool wait)
{
    rn__hsnap_t *hs = st->hsnap;
    if (hs == NULL)
        return true;
    /* The previous snapshot's finish runs on the coordinator, which may
     * first be waiting in the finish of another state of this thread for
     * its freeze: this thread ends those freezes before it blocks (seen:
     * integration.checkpoint_stop hung at parallelism 2 on one worker). */
    if (wait) {
        pthread_mutex_lock(&hs->lock);
        bool done = hs->done;
        pthread_mutex_unlock(&hs->lock);
        if (!done)
            rn__state_settle_freezes();
    }
    pthread_mutex_lock(&hs->lock);
    while (wait && !hs->done)
        pthread_cond_wait(&hs->cond, &hs->lock);
    bool done = hs->done;
    pthread_mutex_unlock(&hs->lock);
    if (!done)
        return false;
    rn__timers_unpin(&st->timers[0]);
    rn__timers_unpin(&st->timers[1]);
    hsnap_free(hs);
    st->hsnap = NULL;
    return true;
}

void
rn__state_snap_release(rn_state_t *st)
{
    (void)hsnap_release(st, true);
}

/* One timer record: domain, time, kg, key length, ns length, key, ns. */
static void
write_timer(rn__snapio_t *io, uint8_t domain, const rn__tref_t *t)
{
    uint8_t rec[18 + RN_KEY_MAX + 255];
    if (t->keylen > RN_KEY_MAX || t->nslen > 255) {
        rn__snapio_bad(io, "a timer key of %u bytes", (unsigned)t->keylen);
        return;
    }
    rec[0] = domain;
    rn__snapio_le64(rec + 1, (uint64_t)t->time);
    rn__snapio_le32(rec + 9, t->kg);
    rn__snapio_le32(rec + 13, t->keylen);
    rec[17] = (uint8_t)t->nslen;
    memcpy(rec + 18, t->key, t->keylen);
    memcpy(rec + 18 + t->keylen, t->ns, t->nslen);
    rn__snapio_bytes(io, rec, 18 + t->keylen + t->nslen);
}

static rn_code_t
hsnap_write(rn__hsnap_t *hs, rn_error_t *err)
{
    int64_t t0 = rn__mono_ns();
    rn__snapio_t io;
    rn_code_t rc = rn__snapio_open(&io, hs->path, true, H_MAGIC, H_VERSION, NULL, err);
    if (rc != RN_OK)
        return rc;
    rn__snapio_u32(&io, hs->nstates);
    for (uint32_t i = 0; i < hs->nstates; i++) {
        size_t len = strlen(hs->s[i].name);
        rn__snapio_u8(&io, hs->s[i].kind);
        rn__snapio_u8(&io, hs->s[i].merging);
        rn__snapio_u64(&io, (uint64_t)hs->s[i].ttl_ms);
        rn__snapio_u32(&io, (uint32_t)len);
        rn__snapio_bytes(&io, hs->s[i].name, len);
    }
    for (int d = 0; d < 2; d++) {
        rn__snapio_u64(&io, (uint64_t)hs->spill_min[d]);
        rn__snapio_u64(&io, hs->spilled[d]);
    }
    for (int d = 0; d < 2; d++) {
        rn__tnode_t **nodes = hs->nodes[d];
        size_t n = hs->n[d];
        for (size_t j = 0; j < n && !io.failed; j++) {
            /* Nodes lie anywhere in memory: fetch some ahead. */
            if (j + 8 < n)
                __builtin_prefetch(nodes[j + 8]);
            rn__tref_t t;
            rn__timers_node_ref(nodes[j], &t);
            write_timer(&io, (uint8_t)d, &t);
        }
    }
    rn__snapio_u8(&io, H_END);
    rn__snapio_u64(&io, (uint64_t)(hs->n[0] + hs->n[1]));
    rc = rn__snapio_close(&io, err);
    RN_LOG_DEBUG(hs->owner, "snapshot: handle written in %.1f ms (%zu timers)",
                 (double)(rn__mono_ns() - t0) / 1e6, hs->n[0] + hs->n[1]);
    return rc;
}

/* The finish of a snapshot: the handle file, then the backend's finish
 * (always called, keep or not, so that frozen values reach its files). */
static rn_code_t
hsnap_finish(void *ctx, bool keep, rn_error_t *err)
{
    rn__hsnap_t *hs = ctx;
    rn_code_t rc = keep ? hsnap_write(hs, err) : RN_OK;
    if (hs->inner.fn != NULL) {
        rn_error_t e2 = RN_ERROR_INIT;
        rn_code_t irc = hs->inner.fn(hs->inner.ctx, keep && rc == RN_OK,
                                     rc == RN_OK ? err : &e2);
        if (rc == RN_OK)
            rc = irc;
    }
    pthread_mutex_lock(&hs->lock);
    hs->done = true;
    pthread_cond_broadcast(&hs->cond);
    pthread_mutex_unlock(&hs->lock);
    return rc;
}

/* Takes what the handle file holds, the timers pinned. */
static rn__hsnap_t *
hsnap_take(rn_state_t *st, const char *dir, rn_error_t *err)
{
    rn__hsnap_t *hs = rn_calloc(1, sizeof(*hs));
    if (hs == NULL) {
        rn__errf(err, RN_ENOMEM, "%s: out of memory for a snapshot", st->owner);
        return NULL;
    }
    pthread_mutex_init(&hs->lock, NULL);
    pthread_cond_init(&hs->cond, NULL);
    hs->owner = st->owner;
    size_t plen = strlen(dir) + sizeof("/handle");
    hs->path = rn_malloc(plen);
    hs->s = rn_calloc(st->nstates > 0 ? st->nstates : 1, sizeof(*hs->s));
    bool ok = hs->path != NULL && hs->s != NULL;
    if (ok)
        snprintf(hs->path, plen, "%s/handle", dir);
    for (uint32_t i = 0; ok && i < st->nstates; i++) {
        const struct rn_vstate *h = st->states[i];
        hs->s[i].kind = (uint8_t)h->kind;
        hs->s[i].merging = h->merging;
        hs->s[i].ttl_ms = h->ttl_ms;
        hs->s[i].name = rn_xstrdup(h->name);
        hs->nstates = i + 1;
    }
    if (!ok) {
        hsnap_free(hs);
        rn__errf(err, RN_ENOMEM, "%s: out of memory for a snapshot", st->owner);
        return NULL;
    }
    for (int d = 0; d < 2; d++) {
        hs->spill_min[d] = st->spill_min[d];
        hs->spilled[d] = st->spilled[d];
    }
    for (int d = 0; d < 2; d++) {
        if ((hs->nodes[d] = rn__timers_pin(&st->timers[d], &hs->n[d], err)) == NULL) {
            if (d == 1)
                rn__timers_unpin(&st->timers[0]);
            hsnap_free(hs);
            return NULL;
        }
    }
    return hs;
}

rn_code_t
rn__state_snapshot(rn_state_t *st, const char *dir, rn_state_finish_t *fin, rn_error_t *err)
{
    if (fin != NULL)
        fin->fn = NULL;
    if (st->ops->snapshot == NULL)
        return rn__errf(err, RN_EINVAL, "%s: the %s state backend cannot be checkpointed",
                        st->owner, st->ops->name);
    /* The previous snapshot's handle file is written (the backend's
     * snapshot waits for its finish as well). */
    hsnap_release(st, true);
    if (mkdir(dir, 0700) != 0)
        return rn__errf(err, RN_EIO, "%s: snapshot directory '%s': mkdir: %s", st->owner, dir,
                        strerror(errno));
    int64_t t0 = rn__mono_ns();
    rn_state_finish_t inner = {NULL, NULL};
    rn_code_t rc = st->ops->snapshot(st->be, dir, &inner, err);
    if (rc != RN_OK)
        return rn__errctx(err, "%s: snapshot", st->owner);
    int64_t t1 = rn__mono_ns();
    rn__hsnap_t *hs = hsnap_take(st, dir, err);
    if (hs == NULL) {
        if (inner.fn != NULL)
            inner.fn(inner.ctx, false, NULL);
        return rc = RN_ENOMEM;
    }
    hs->inner = inner;
    st->hsnap = hs;
    RN_LOG_DEBUG(st->owner, "snapshot: backend %.1f ms, handle taken in %.1f ms (%zu timers)",
                 (double)(t1 - t0) / 1e6, (double)(rn__mono_ns() - t1) / 1e6,
                 hs->n[0] + hs->n[1]);
    if (fin != NULL) {
        fin->fn = hsnap_finish;
        fin->ctx = hs;
        return RN_OK;
    }
    /* The caller does not take it over: finished here. */
    rc = hsnap_finish(hs, true, err);
    hsnap_release(st, true);
    return rc;
}

static void
snapreg_free(snapreg_t *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        rn_free(r->s[i].name);
    rn_free(r->s);
    rn_free(r);
}

/* Reads the timers of a handle file. mode RESTORE: into memory as they
 * were (none after the earliest spilled one, smin); IMPORT: those of key
 * groups [lo, hi], registered as new ones (memory or store by time);
 * CHECK: parsed and checked as RESTORE does, kept nowhere (st NULL), for
 * `runnel checkpoints --verify`. */
enum { RESTORE, IMPORT, CHECK };

static rn_code_t
read_timers(rn_state_t *st, rn__snapio_t *io, int mode, uint32_t lo, uint32_t hi,
            const int64_t smin[2], rn_error_t *err)
{
    uint8_t buf[RN_KEY_MAX + RN_STATE_NS_MAX];
    uint64_t n = 0;
    while (!io->failed) {
        uint8_t d = rn__snapio_get_u8(io);
        if (d == H_END) {
            if (rn__snapio_get_u64(io) != n && !io->failed)
                rn__snapio_bad(io, "timer count does not match");
            else if (io->off != io->size)
                rn__snapio_bad(io, "bytes after the end");
            break;
        }
        if (d > 1) {
            rn__snapio_bad(io, "timer of unknown domain %u", d);
            break;
        }
        int64_t time = (int64_t)rn__snapio_get_u64(io);
        uint32_t kg = rn__snapio_get_u32(io);
        uint32_t keylen = rn__snapio_get_len(io, RN_KEY_MAX, "a timer's key");
        uint8_t nslen = rn__snapio_get_u8(io);
        if (nslen > RN_STATE_NS_MAX)
            rn__snapio_bad(io, "a timer namespace of %u bytes", nslen);
        rn__snapio_get_bytes(io, buf, (size_t)keylen + (io->failed ? 0 : nslen));
        if (io->failed)
            break;
        n++;
        rn_code_t rc = RN_OK;
        if (mode == IMPORT) {
            if (kg < lo || kg > hi)
                continue;
            rn__state_set_key(st, buf, keylen, kg);
            rc = rn__timer_register(st, (rn_time_domain_t)d, time, buf + keylen, nslen, err);
        } else {
            /* A time spilled in part (rn__timers_spill cuts the earliest
             * bucket when it alone is over the budget, and a load may stop
             * inside a time) is held by both: memory may hold timers at
             * spill_min, never after it. */
            if (time > smin[d]) {
                rn__snapio_bad(io, "an in-memory timer after the earliest spilled one");
                break;
            }
            rn__tkey_t k = {buf, keylen, kg, XXH3_64bits(buf, keylen)};
            if (mode == RESTORE)
                rc = rn__timers_add(&st->timers[d], &k, time, buf + keylen, nslen, err);
        }
        if (rc != RN_OK)
            return rc;
    }
    return RN_OK;
}

/* Reads the handle file of snapshot directory dir, or the file path when
 * dir is NULL: its registry (*reg), spilled-timer bounds and, unless mode
 * is -1, its timers. */
static rn_code_t
read_handle(rn_state_t *st, const char *dir, const char *file, int mode, uint32_t lo,
            uint32_t hi, snapreg_t **out, int64_t spill_min[2], uint64_t spilled[2],
            rn_error_t *err)
{
    char path[4096];
    rn__snapio_t io;
    if (dir != NULL)
        snprintf(path, sizeof(path), "%s/handle", dir);
    else
        snprintf(path, sizeof(path), "%s", file);
    rn_code_t rc = rn__snapio_open(&io, path, false, H_MAGIC, H_VERSION, "a state snapshot", err);
    if (rc != RN_OK)
        return rc;
    uint32_t ns = rn__snapio_get_u32(&io);
    /* Each state takes at least 14 bytes: a count beyond what the rest of
     * the file can hold is damage, found before anything is allocated. */
    if (!io.failed && (ns > STATES_MAX || ns > (io.size - io.off) / 14))
        rn__snapio_bad(&io, "%u states (at most %u, %llu bytes left in the file)", ns,
                       STATES_MAX, (unsigned long long)(io.size - io.off));
    if (io.failed)
        ns = 0;
    snapreg_t *reg = rn_xcalloc(1, sizeof(*reg));
    reg->s = rn_xcalloc(ns ? ns : 1, sizeof(*reg->s));
    for (uint32_t i = 0; i < ns && !io.failed; i++) {
        reg->s[i].kind = rn__snapio_get_u8(&io);
        reg->s[i].merging = rn__snapio_get_u8(&io);
        reg->s[i].ttl_ms = (int64_t)rn__snapio_get_u64(&io);
        if (reg->s[i].kind > RN__SK_MAP || reg->s[i].merging > 1)
            rn__snapio_bad(&io, "state %u of unknown kind %u", i, reg->s[i].kind);
        else if (reg->s[i].ttl_ms < 0)
            rn__snapio_bad(&io, "state %u with a TTL of %lld ms", i,
                           (long long)reg->s[i].ttl_ms);
        uint32_t len = rn__snapio_get_len(&io, NAME_MAX_LEN, "a state name");
        if (io.failed)
            break;
        reg->s[i].name = rn_xmalloc(len + 1);
        rn__snapio_get_bytes(&io, reg->s[i].name, len);
        reg->s[i].name[len] = '\0';
        reg->n = i + 1;
    }
    for (int d = 0; d < 2; d++) {
        spill_min[d] = (int64_t)rn__snapio_get_u64(&io);
        spilled[d] = rn__snapio_get_u64(&io);
    }
    if (mode == RESTORE)
        for (int d = 0; d < 2; d++) {
            st->spill_min[d] = spill_min[d];
            st->spilled[d] = spilled[d];
        }
    if (mode >= 0 && !io.failed)
        rc = read_timers(st, &io, mode, lo, hi, spill_min, err);
    rn_code_t crc = rn__snapio_close(&io, rc == RN_OK ? err : NULL);
    if (rc == RN_OK)
        rc = crc;
    if (rc != RN_OK || out == NULL)
        snapreg_free(reg);
    else
        *out = reg;
    return rc;
}

/* Spilled timers live in the backend's files, which a backend that keeps
 * every timer in memory (no timer_load) does not have: a handle file that
 * says otherwise is damaged or forged (restoring it would make
 * rn__timer_pop call the missing timer_load), and refused as
 * `checkpoints --verify` refuses it (rn__state_check_file). */
static rn_code_t
check_spilled(const rn_state_t *st, const char *dir, const int64_t smin[2], const uint64_t sp[2],
              rn_error_t *err)
{
    for (int d = 0; d < 2; d++)
        if (st->ops->timer_load == NULL && (smin[d] != INT64_MAX || sp[d] != 0))
            return rn__errf(err, RN_ECORRUPT,
                            "%s/handle: spilled timers, which the %s backend never has", dir,
                            st->ops->name);
    return RN_OK;
}

rn_code_t
rn__state_restore_handle(rn_state_t *st, const char *dir, rn_error_t *err)
{
    int64_t smin[2];
    uint64_t sp[2];
    snapreg_t *reg = NULL;
    rn_code_t rc = read_handle(st, dir, NULL, RESTORE, 0, 0, &reg, smin, sp, err);
    if (rc == RN_OK)
        rc = check_spilled(st, dir, smin, sp, err);
    for (int d = 0; d < 2 && rc == RN_OK; d++)
        rc = rn__state_spill_maybe(st, (rn_time_domain_t)d, err);
    if (rc != RN_OK) {
        snapreg_free(reg);
        return rn__errctx(err, "%s: restore", st->owner);
    }
    st->restored = reg;
    st->restoring = true;
    return RN_OK;
}

rn_code_t
rn__state_check_file(const char *path, const char *as, rn_error_t *err)
{
    bool mem = strcmp(as, "handle:memory") == 0;
    if (mem || strcmp(as, "handle") == 0) {
        int64_t smin[2];
        uint64_t sp[2];
        rn_code_t rc = read_handle(NULL, NULL, path, CHECK, 0, 0, NULL, smin, sp, err);
        /* What check_spilled refuses at restore. */
        for (int d = 0; d < 2 && rc == RN_OK && mem; d++)
            if (smin[d] != INT64_MAX || sp[d] != 0)
                rc = rn__errf(err, RN_ECORRUPT,
                              "%s: spilled timers, which the memory backend never has", path);
        return rc;
    }
    if (strcmp(as, "mem") == 0)
        return rn__state_mem_check(path, err);
    return RN_OK;
}

rn_code_t
rn__state_import_prepare(rn_state_t *st, const rn_state_options_t *opts, rn_error_t *err)
{
    st->imports = rn_xcalloc((size_t)opts->nimport + 1, sizeof(char *));
    for (int i = 0; i < opts->nimport; i++)
        st->imports[i] = rn_xstrdup(opts->import_dirs[i]);
    st->nimport = opts->nimport;
    st->kg_lo = opts->kg_first;
    st->kg_hi = opts->kg_last;
    st->restoring = true;
    if (opts->nimport == 0)
        return RN_OK;
    /* The registry to check against: every old instance had the same. */
    int64_t smin[2];
    uint64_t sp[2];
    rn_code_t rc = read_handle(st, opts->import_dirs[0], NULL, -1, 0, 0, &st->restored, smin, sp,
                               err);
    return rc != RN_OK ? rn__errctx(err, "%s: restore", st->owner) : RN_OK;
}

/* Rescaling: the entries and timers of [kg_lo, kg_hi] of each old
 * instance, after the operator registered its states. */
static rn_code_t
import_all(rn_state_t *st, rn_error_t *err)
{
    if (st->ops->import == NULL)
        return rn__errf(err, RN_EINVAL, "the %s backend cannot rescale", st->ops->name);
    rn_code_t rc = RN_OK;
    int64_t smin[2] = {INT64_MAX, INT64_MAX};
    /* Stored timers arrive with the backend's import: the earliest
     * stored time is the least over the old instances, and timers from
     * memory at or after it go to the store (rn__timer_register). */
    for (int i = 0; i < st->nimport && rc == RN_OK; i++) {
        int64_t m[2];
        uint64_t sp[2];
        rc = read_handle(st, st->imports[i], NULL, -1, 0, 0, NULL, m, sp, err);
        if (rc == RN_OK)
            rc = check_spilled(st, st->imports[i], m, sp, err);
        for (int d = 0; d < 2 && rc == RN_OK; d++) {
            if (m[d] < smin[d])
                smin[d] = m[d];
            st->spilled[d] += sp[d];
        }
        if (rc == RN_OK)
            rc = st->ops->import(st->be, st->imports[i], st->kg_lo, st->kg_hi, err);
    }
    for (int d = 0; d < 2; d++)
        st->spill_min[d] = smin[d];
    for (int i = 0; i < st->nimport && rc == RN_OK; i++) {
        int64_t m[2];
        uint64_t sp[2];
        rc = read_handle(st, st->imports[i], NULL, IMPORT, st->kg_lo, st->kg_hi, NULL, m, sp,
                         err);
    }
    return rc;
}

static const char *
kind_name(uint32_t kind)
{
    return kind == RN__SK_VALUE ? "value" : kind == RN__SK_LIST ? "list" : "map";
}

bool
rn__state_tick(rn_state_t *st, bool all)
{
    bool busy = st->ops->tick != NULL && st->ops->tick(st->be, all);
    /* The handle file written: the held timer nodes can go. */
    if (st->hsnap != NULL && hsnap_release(st, false))
        busy = true;
    return busy;
}

rn_code_t
rn__state_ready(rn_state_t *st, rn_error_t *err)
{
    if (!st->restoring)
        return RN_OK;
    snapreg_t *reg = st->restored;
    for (uint32_t i = 0; reg != NULL && i < reg->n; i++) {
        if (i >= st->nstates)
            return rn__errf(err, RN_EINVAL,
                            "%s: the restored state has a state '%s' that the operator no "
                            "longer registers",
                            st->owner, reg->s[i].name);
        const struct rn_vstate *h = st->states[i];
        if (strcmp(h->name, reg->s[i].name) != 0 || h->kind != reg->s[i].kind ||
            h->merging != (bool)reg->s[i].merging)
            return rn__errf(err, RN_EINVAL,
                            "%s: restored state %u is the %s%s state '%s', the operator "
                            "registers the %s%s state '%s' in its place",
                            st->owner, i, reg->s[i].merging ? "merging " : "",
                            kind_name(reg->s[i].kind), reg->s[i].name,
                            h->merging ? "merging " : "", kind_name(h->kind), h->name);
    }
    if (st->imports != NULL && import_all(st, err) != RN_OK)
        return rn__errctx(err, "%s: rescaling", st->owner);
    if (st->ops->ready != NULL && st->ops->ready(st->be, err) != RN_OK)
        return rn__errctx(err, "%s: restore", st->owner);
    st->restoring = false;
    return RN_OK;
}

void
rn__state_restored_free(rn_state_t *st)
{
    snapreg_free(st->restored);
    st->restored = NULL;
    for (int i = 0; i < st->nimport; i++)
        rn_free(st->imports[i]);
    rn_free(st->imports);
    st->imports = NULL;
    st->nimport = 0;
}
