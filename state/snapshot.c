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
 * @thread task.
 */
#include "state/snapio.h"
#include "state/state_int.h"
#include "stream/key.h"

#include <errno.h>
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

typedef struct tw_ctx {
    rn__snapio_t *io;
    uint8_t domain;
    uint64_t n;
} tw_ctx_t;

static rn_code_t
write_timer(void *ctx, const rn__tref_t *t)
{
    tw_ctx_t *c = ctx;
    /* One record, one write: domain, time, kg, key length, ns length,
     * key, ns (hundreds of thousands of timers in a checkpoint's
     * synchronous part). */
    uint8_t rec[18 + RN_KEY_MAX + 255];
    if (t->keylen > RN_KEY_MAX || t->nslen > 255) {
        rn__snapio_bad(c->io, "a timer key of %u bytes", (unsigned)t->keylen);
        return RN_EIO;
    }
    rec[0] = c->domain;
    rn__snapio_le64(rec + 1, (uint64_t)t->time);
    rn__snapio_le32(rec + 9, t->kg);
    rn__snapio_le32(rec + 13, t->keylen);
    rec[17] = (uint8_t)t->nslen;
    memcpy(rec + 18, t->key, t->keylen);
    memcpy(rec + 18 + t->keylen, t->ns, t->nslen);
    rn__snapio_bytes(c->io, rec, 18 + t->keylen + t->nslen);
    c->n++;
    return c->io->failed ? RN_EIO : RN_OK;
}

rn_code_t
rn__state_snapshot(rn_state_t *st, const char *dir, rn_state_finish_t *fin, rn_error_t *err)
{
    rn_state_finish_t local = {NULL, NULL};
    rn_state_finish_t *f = fin != NULL ? fin : &local;
    f->fn = NULL;
    if (st->ops->snapshot == NULL)
        return rn__errf(err, RN_EINVAL, "%s: the %s state backend cannot be checkpointed",
                        st->owner, st->ops->name);
    if (mkdir(dir, 0700) != 0)
        return rn__errf(err, RN_EIO, "%s: snapshot directory '%s': mkdir: %s", st->owner, dir,
                        strerror(errno));
    int64_t t0 = rn__mono_ns();
    rn_code_t rc = st->ops->snapshot(st->be, dir, f, err);
    if (rc != RN_OK)
        return rn__errctx(err, "%s: snapshot", st->owner);
    int64_t t1 = rn__mono_ns();

    char path[4096];
    rn__snapio_t io;
    snprintf(path, sizeof(path), "%s/handle", dir);
    if ((rc = rn__snapio_open(&io, path, true, H_MAGIC, H_VERSION, NULL, err)) != RN_OK) {
        if (f->fn != NULL)
            f->fn(f->ctx, false, NULL);
        f->fn = NULL;
        return rc;
    }
    rn__snapio_u32(&io, st->nstates);
    for (uint32_t i = 0; i < st->nstates; i++) {
        const struct rn_vstate *h = st->states[i];
        size_t len = strlen(h->name);
        rn__snapio_u8(&io, (uint8_t)h->kind);
        rn__snapio_u8(&io, h->merging);
        rn__snapio_u64(&io, (uint64_t)h->ttl_ms);
        rn__snapio_u32(&io, (uint32_t)len);
        rn__snapio_bytes(&io, h->name, len);
    }
    for (int d = 0; d < 2; d++) {
        rn__snapio_u64(&io, (uint64_t)st->spill_min[d]);
        rn__snapio_u64(&io, st->spilled[d]);
    }
    tw_ctx_t c = {&io, 0, 0};
    for (int d = 0; d < 2 && !io.failed; d++) {
        c.domain = (uint8_t)d;
        rn__timers_each(&st->timers[d], write_timer, &c);
    }
    rn__snapio_u8(&io, H_END);
    rn__snapio_u64(&io, c.n);
    rc = rn__snapio_close(&io, err);
    RN_LOG_DEBUG(st->owner, "snapshot: backend %.1f ms, handle %.1f ms (%llu timers)",
                 (double)(t1 - t0) / 1e6, (double)(rn__mono_ns() - t1) / 1e6,
                 (unsigned long long)c.n);
    /* Finished here when the caller does not take it over; also after a
     * failure, so that the frozen values reach RocksDB. */
    if (f == &local && local.fn != NULL) {
        rn_error_t e2 = RN_ERROR_INIT;
        rn_code_t frc = local.fn(local.ctx, rc == RN_OK, rc == RN_OK ? err : &e2);
        if (rc == RN_OK)
            rc = frc;
    } else if (rc != RN_OK && f->fn != NULL) {
        f->fn(f->ctx, false, NULL);
        f->fn = NULL;
    }
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
 * were (each must be before the spilled ones); IMPORT: those of key
 * groups [lo, hi], registered as new ones (memory or store by time). */
enum { RESTORE, IMPORT };

static rn_code_t
read_timers(rn_state_t *st, rn__snapio_t *io, int mode, uint32_t lo, uint32_t hi,
            rn_error_t *err)
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
        rn_code_t rc;
        if (mode == IMPORT) {
            if (kg < lo || kg > hi)
                continue;
            rn__state_set_key(st, buf, keylen, kg);
            rc = rn__timer_register(st, (rn_time_domain_t)d, time, buf + keylen, nslen, err);
        } else {
            if (time >= st->spill_min[d]) {
                rn__snapio_bad(io, "an in-memory timer at or after the spilled ones");
                break;
            }
            rn__tkey_t k = {buf, keylen, kg, XXH3_64bits(buf, keylen)};
            rc = rn__timers_add(&st->timers[d], &k, time, buf + keylen, nslen, err);
        }
        if (rc != RN_OK)
            return rc;
    }
    return RN_OK;
}

/* Reads dir's handle file: its registry (*reg), spilled-timer bounds and,
 * unless mode is -1, its timers. */
static rn_code_t
read_handle(rn_state_t *st, const char *dir, int mode, uint32_t lo, uint32_t hi, snapreg_t **out,
            int64_t spill_min[2], uint64_t spilled[2], rn_error_t *err)
{
    char path[4096];
    rn__snapio_t io;
    snprintf(path, sizeof(path), "%s/handle", dir);
    rn_code_t rc = rn__snapio_open(&io, path, false, H_MAGIC, H_VERSION, "a state snapshot", err);
    if (rc != RN_OK)
        return rc;
    uint32_t ns = rn__snapio_get_u32(&io);
    if (!io.failed && (ns > STATES_MAX || ns > io.size - io.off))
        rn__snapio_bad(&io, "%u states", ns);
    snapreg_t *reg = rn_xcalloc(1, sizeof(*reg));
    reg->s = rn_xcalloc(ns ? ns : 1, sizeof(*reg->s));
    for (uint32_t i = 0; i < ns && !io.failed; i++) {
        reg->s[i].kind = rn__snapio_get_u8(&io);
        reg->s[i].merging = rn__snapio_get_u8(&io);
        reg->s[i].ttl_ms = (int64_t)rn__snapio_get_u64(&io);
        if (reg->s[i].kind > RN__SK_MAP || reg->s[i].merging > 1)
            rn__snapio_bad(&io, "state %u of unknown kind %u", i, reg->s[i].kind);
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
        rc = read_timers(st, &io, mode, lo, hi, err);
    rn_code_t crc = rn__snapio_close(&io, rc == RN_OK ? err : NULL);
    if (rc == RN_OK)
        rc = crc;
    if (rc != RN_OK || out == NULL)
        snapreg_free(reg);
    else
        *out = reg;
    return rc;
}

rn_code_t
rn__state_restore_handle(rn_state_t *st, const char *dir, rn_error_t *err)
{
    int64_t smin[2];
    uint64_t sp[2];
    snapreg_t *reg = NULL;
    rn_code_t rc = read_handle(st, dir, RESTORE, 0, 0, &reg, smin, sp, err);
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
    rn_code_t rc = read_handle(st, opts->import_dirs[0], -1, 0, 0, &st->restored, smin, sp, err);
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
        rc = read_handle(st, st->imports[i], -1, 0, 0, NULL, m, sp, err);
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
        rc = read_handle(st, st->imports[i], IMPORT, st->kg_lo, st->kg_hi, NULL, m, sp, err);
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
    return st->ops->tick != NULL && st->ops->tick(st->be, all);
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
