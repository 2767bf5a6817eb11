/*
 * connectors/kafka_txn.c: `delivery: exactly-once` for the kafka sink
 * (docs/kafka.md has the protocol and its crash cases).
 *
 * Why not Flink's two-phase commit: librdkafka cannot resume a
 * transaction another process left pre-committed; init_transactions()
 * aborts it. So the records of an epoch (what the sink received between
 * two barriers) are not sent when they come: they are kept (write-ahead)
 * and go into the checkpoint as a file. When the checkpoint is complete,
 * each epoch it covers is sent in one transaction together with a marker
 * in the commit-log topic (key: the instance's transactional.id, value:
 * {"epoch", "count", "hash", "checkpoint"}), and committed. After a crash,
 * the restored checkpoint holds every epoch whose commit was not known
 * done; init_transactions() fences the old producer and aborts what it
 * left open, the commit log (read_committed, to its end) says which epochs
 * were committed, and the others are sent again. Epochs are the sink's own
 * numbers, growing across restarts; the checkpoint records the last one
 * it assigned, so a commit log ahead of it means an older checkpoint is
 * being restored (the newest was damaged): refused unless the operator
 * accepts duplicates. At the end of input the last records become the
 * final epoch, committed only when the whole job has ended (after one
 * more checkpoint, which holds it): until then another instance can fail,
 * and the restart must find nothing committed past its checkpoint. After
 * a rescale each new instance also takes over the old instances it
 * replaces (j >= new parallelism, j % P == i): fences their
 * transactional.ids and sends their uncommitted epochs.
 *
 * @thread the sink instance's task.
 */
#include "connectors/kafka_txn.h"

#include "checkpoint/crash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define TXN_TIMEOUT_MS 60000
#define WAL_MAGIC "RNKW"
#define WAL_VERSION 2u
#define NO_KEY UINT32_MAX

/* One epoch: records back to back, u8 destination (0: the topic, 1: the
 * dead-letter topic) | u32 key length (NO_KEY: none) | key | u32 value
 * length | value | u32 headers length | headers (u16 name length, name,
 * u32 value length, value; repeated). Version 1 files had neither the
 * destination nor the headers: read, they are converted. */
typedef struct kepoch {
    int64_t epoch, ckpt;
    uint64_t count;
    rn_buf_t recs;
} kepoch_t;

/* A write-ahead file a checkpoint refers to, kept until it completes. */
typedef struct kfile {
    char *path;
    int64_t ckpt;
} kfile_t;

struct rn_ktxn {
    const rn_ktxn_conf_t *conf;
    char what[200];
    char txnid[256];
    rd_kafka_t *rk; /* the transactional producer */
    kepoch_t cur;   /* what came since the last barrier */
    kepoch_t *pend; /* sealed, not committed, in epoch order */
    size_t npend, cappend;
    int64_t last_epoch; /* the last epoch number assigned */
    kfile_t *files;
    size_t nfiles;
    char dir[4096]; /* where write-ahead files go (0700) */
    uint64_t failed;
    char first_fail[RN_ERROR_MSG_MAX];
    /* Restored, not yet recovered (recover_finish): the old instances
     * this one answers for. */
    struct kold *old;
    size_t nold;
    int self;
    bool recovered;
};

static uint32_t
rd32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One record of an epoch, parsed. */
typedef struct krec {
    uint8_t dest;
    const uint8_t *key; /* NULL: none */
    uint32_t klen;
    const uint8_t *val;
    uint32_t vlen;
    const uint8_t *hdr;
    uint32_t hlen;
} krec_t;

/* Parses the record at p (left bytes of the epoch from it), of a file of
 * version v. @returns its size, or 0 when it runs past the end or is
 * malformed (untrusted input: a checkpoint's file). */
static size_t
rec_parse(const uint8_t *p, size_t left, uint32_t v, krec_t *r)
{
    size_t off = 0;
    memset(r, 0, sizeof(*r));
    if (v >= 2) {
        if (left < 1 || p[0] > 1)
            return 0;
        r->dest = p[0];
        off = 1;
    }
    if (left - off < 4)
        return 0;
    uint32_t kl = rd32(p + off);
    off += 4;
    size_t k = kl == NO_KEY ? 0 : kl;
    if (k > left - off || left - off - k < 4)
        return 0;
    r->key = kl == NO_KEY ? NULL : p + off;
    r->klen = (uint32_t)k;
    off += k;
    r->vlen = rd32(p + off);
    off += 4;
    if (r->vlen > left - off)
        return 0;
    r->val = p + off;
    off += r->vlen;
    if (v >= 2) {
        if (left - off < 4)
            return 0;
        r->hlen = rd32(p + off);
        off += 4;
        if (r->hlen > left - off)
            return 0;
        r->hdr = p + off;
        off += r->hlen;
    }
    return off;
}

/* The headers of a record (the encoding above) for librdkafka, or NULL
 * when it has none. @returns false when they are malformed. */
static bool
headers_of(const krec_t *r, rd_kafka_headers_t **out)
{
    *out = NULL;
    if (r->hlen == 0)
        return true;
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (size_t off = 0; off < r->hlen;) {
        uint16_t nl;
        if (r->hlen - off < 2)
            goto bad;
        memcpy(&nl, r->hdr + off, 2);
        off += 2;
        if (nl > r->hlen - off || r->hlen - off - nl < 4)
            goto bad;
        const char *name = (const char *)r->hdr + off;
        off += nl;
        uint32_t vl = rd32(r->hdr + off);
        off += 4;
        if (vl > r->hlen - off)
            goto bad;
        rd_kafka_header_add(h, name, nl, r->hdr + off, vl);
        off += vl;
    }
    *out = h;
    return true;
bad:
    rd_kafka_headers_destroy(h);
    return false;
}

static void
epoch_fini(kepoch_t *e)
{
    rn__buf_fini(&e->recs);
}

/* ---- producer ------------------------------------------------------------ */

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    rn_ktxn_t *t = opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && t->failed++ == 0)
        snprintf(t->first_fail, sizeof(t->first_fail), "%s", rd_kafka_err2str(m->err));
}

/* The error of a librdkafka transactional call as err. @param e consumed. */
static rn_code_t
txn_err(rn_ktxn_t *t, const char *call, const char *txnid, rd_kafka_error_t *e, rn_error_t *err)
{
    rn_code_t rc = rn__errf(err, RN_EIO, "%s: %s (transactional.id '%s'): %s%s", t->what, call,
                            txnid, rd_kafka_error_string(e),
                            rd_kafka_error_is_fatal(e) ? " (fatal)" : "");
    rd_kafka_error_destroy(e);
    return rc;
}

/* A transactional producer for txnid, its transactions initialised: the
 * previous producer of that id is fenced and what it left open aborted. */
static rd_kafka_t *
producer_new(rn_ktxn_t *t, const char *txnid, rn_error_t *err)
{
    const rn_ktxn_conf_t *cf = t->conf;
    rd_kafka_conf_t *c = rn__kafka_conf_new(cf->brokers, cf->props, t->what, err);
    if (c == NULL)
        return NULL;
    char tmo[32];
    snprintf(tmo, sizeof(tmo), "%d", TXN_TIMEOUT_MS);
    /* The broker aborts a transaction open longer than this: `properties`
     * may set it (a test pauses the broker past it). */
    bool own_tmo = false;
    for (size_t i = 0; i < cf->props->n; i++)
        own_tmo |= strcmp(cf->props->names[i], "transaction.timeout.ms") == 0;
    if (rn__kafka_set(c, "transactional.id", txnid, t->what, err) != RN_OK ||
        (!own_tmo && rn__kafka_set(c, "transaction.timeout.ms", tmo, t->what, err) != RN_OK) ||
        rn__kafka_set(c, "partitioner", "murmur2_random", t->what, err) != RN_OK) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, t);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(c);
        rn__errf(err, RN_EINVAL, "%s: %s", t->what, errstr);
        return NULL;
    }
    /* Retriable errors (a broker not ready yet) are tried again. */
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(rk, TXN_TIMEOUT_MS);
        if (e == NULL)
            return rk;
        if (rd_kafka_error_is_retriable(e) && tries < 5) {
            RN_LOG_WARN(t->what, "init_transactions: %s; trying again",
                        rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            continue;
        }
        txn_err(t, "init_transactions", txnid, e, err);
        rd_kafka_destroy(rk);
        return NULL;
    }
}

/* hdrs (may be NULL) is taken: by the message, or destroyed. */
static rd_kafka_resp_err_t
produce_one(rd_kafka_t *rk, const char *topic, const void *key, size_t klen, const void *val,
            size_t vlen, rd_kafka_headers_t *hdrs)
{
    for (;;) {
        rd_kafka_resp_err_t e =
            hdrs != NULL
                ? rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen),
                                    RD_KAFKA_V_HEADERS(hdrs),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)
                : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
            return e;
        }
        rd_kafka_poll(rk, 10);
    }
}

/* Sends epoch e and its marker in one transaction of rk (transactional.id
 * txnid) and commits it. An abortable error aborts and sends it all again;
 * a fatal one fails. */
static rn_code_t
send_epoch(rn_ktxn_t *t, rd_kafka_t *rk, const char *txnid, const kepoch_t *e, rn_error_t *err)
{
    const rn_ktxn_conf_t *cf = t->conf;
    char marker[256];
    int mlen = snprintf(marker, sizeof(marker),
                        "{\"epoch\":%lld,\"count\":%llu,\"hash\":\"%016llx\",\"checkpoint\":%lld}",
                        (long long)e->epoch, (unsigned long long)e->count,
                        (unsigned long long)XXH3_64bits(e->recs.data, e->recs.len),
                        (long long)e->ckpt);
    for (int attempt = 0;; attempt++) {
        rd_kafka_error_t *ke = rd_kafka_begin_transaction(rk);
        if (ke != NULL)
            return txn_err(t, "begin_transaction", txnid, ke, err);
        t->failed = 0;
        rd_kafka_resp_err_t pe = RD_KAFKA_RESP_ERR_NO_ERROR;
        const char *to = cf->topic;
        /* Checked when kept or read back (wal_read): whole records. */
        for (size_t off = 0; pe == RD_KAFKA_RESP_ERR_NO_ERROR && off < e->recs.len;) {
            krec_t r;
            size_t n = rec_parse((const uint8_t *)e->recs.data + off, e->recs.len - off,
                                 WAL_VERSION, &r);
            rd_kafka_headers_t *h = NULL;
            bool whole = n > 0 && headers_of(&r, &h);
            rn_assert(whole);
            to = r.dest == 1 ? cf->dead_topic : cf->topic;
            pe = produce_one(rk, to, r.key, r.klen, r.val, r.vlen, h);
            off += n;
        }
        if (pe == RD_KAFKA_RESP_ERR_NO_ERROR) {
            to = cf->commit_topic;
            pe = produce_one(rk, cf->commit_topic, txnid, strlen(txnid), marker, (size_t)mlen,
                             NULL);
        }
        if (pe != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Not queued (an unknown topic, a fatal producer error). */
            rd_kafka_error_t *ae = rd_kafka_abort_transaction(rk, TXN_TIMEOUT_MS);
            if (ae != NULL)
                rd_kafka_error_destroy(ae);
            return rn__errf(err, RN_EIO, "%s: produce to '%s': %s", t->what, to,
                            rd_kafka_err2str(pe));
        }
        rn__crash_point("kafka.before_commit");
        ke = rd_kafka_commit_transaction(rk, TXN_TIMEOUT_MS);
        if (ke == NULL) {
            rn__crash_point("kafka.after_commit");
            RN_LOG_DEBUG(t->what, "epoch %lld committed: %llu records (checkpoint %lld, %s)",
                         (long long)e->epoch, (unsigned long long)e->count, (long long)e->ckpt,
                         marker);
            return RN_OK;
        }
        if (rd_kafka_error_is_retriable(ke) && attempt < 5) {
            /* The outcome is unknown: committing again is what librdkafka
             * asks (it answers at once when the first one got through). */
            RN_LOG_WARN(t->what, "commit of epoch %lld: %s; trying again", (long long)e->epoch,
                        rd_kafka_error_string(ke));
            rd_kafka_error_destroy(ke);
            ke = rd_kafka_commit_transaction(rk, TXN_TIMEOUT_MS);
            if (ke == NULL) {
                rn__crash_point("kafka.after_commit");
                return RN_OK;
            }
        }
        if (rd_kafka_error_txn_requires_abort(ke) && attempt < 5) {
            RN_LOG_WARN(t->what, "epoch %lld: %s; aborted, sending it again",
                        (long long)e->epoch, rd_kafka_error_string(ke));
            rd_kafka_error_destroy(ke);
            ke = rd_kafka_abort_transaction(rk, TXN_TIMEOUT_MS);
            if (ke != NULL)
                return txn_err(t, "abort_transaction", txnid, ke, err);
            continue;
        }
        return txn_err(t, "commit_transaction", txnid, ke, err);
    }
}

/* ---- the commit log ------------------------------------------------------ */

/* Makes sure the commit-log topic exists (one partition, compacted). */
static rn_code_t
commit_topic_ensure(rn_ktxn_t *t, rn_error_t *err)
{
    const rn_ktxn_conf_t *cf = t->conf;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->rk, cf->commit_topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(t->rk, 0, rkt, &md, 10000);
    bool exists = e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
                  md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (exists)
        return RN_OK;
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(cf->commit_topic, 1, -1, errstr,
                                                    sizeof(errstr));
    if (nt == NULL)
        return rn__errf(err, RN_EINVAL, "%s: commit-log topic '%s': %s", t->what,
                        cf->commit_topic, errstr);
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(t->rk);
    rd_kafka_CreateTopics(t->rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    rn_code_t rc = RN_OK;
    if (ev == NULL) {
        rc = rn__errf(err, RN_EIO, "%s: creating the commit-log topic '%s' timed out", t->what,
                      cf->commit_topic);
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n)
                                                 : NULL;
        rd_kafka_resp_err_t te = rd_kafka_event_error(ev);
        if (te == RD_KAFKA_RESP_ERR_NO_ERROR && n == 1)
            te = rd_kafka_topic_result_error(tr[0]);
        if (te != RD_KAFKA_RESP_ERR_NO_ERROR && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = rn__errf(err, RN_EIO, "%s: cannot create the commit-log topic '%s': %s",
                          t->what, cf->commit_topic, rd_kafka_err2str(te));
        else
            RN_LOG_INFO(t->what, "commit-log topic '%s' created (compacted)", cf->commit_topic);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* A consumer of the commit log (not subscribed) with isolation level
 * iso. @returns it or NULL with err set. */
static rd_kafka_t *
log_consumer(rn_ktxn_t *t, const char *iso, rn_error_t *err)
{
    const rn_ktxn_conf_t *cf = t->conf;
    rd_kafka_conf_t *c = rn__kafka_conf_new(cf->brokers, cf->props, t->what, err);
    if (c == NULL)
        return NULL;
    if (rn__kafka_set(c, "isolation.level", iso, t->what, err) != RN_OK ||
        rn__kafka_set(c, "enable.partition.eof", "true", t->what, err) != RN_OK ||
        rn__kafka_set(c, "enable.auto.commit", "false", t->what, err) != RN_OK ||
        rn__kafka_set(c, "group.id", "runnel-commit-log-reader", t->what, err) != RN_OK) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(c);
        rn__errf(err, RN_EINVAL, "%s: %s", t->what, errstr);
    }
    return rk;
}

/* The last committed epoch of each of ids[0..n) in the commit log, read
 * with read_committed to the end the log had when the read began: its
 * high watermark, asked with read_uncommitted (read_committed would say
 * the last stable offset, which stops before a transaction still open,
 * and a marker committed after that would be missed). An open
 * transaction is waited for. last[i]: -1 when none. */
static rn_code_t
commit_log_read(rn_ktxn_t *t, char *const *ids, size_t n, int64_t *last, rn_error_t *err)
{
    const rn_ktxn_conf_t *cf = t->conf;
    for (size_t i = 0; i < n; i++)
        last[i] = -1;
    rn_code_t rc = RN_OK;
    rd_kafka_t *rk = log_consumer(t, "read_committed", err);
    rd_kafka_t *qk = rk != NULL ? log_consumer(t, "read_uncommitted", err) : NULL;
    if (qk == NULL) {
        if (rk != NULL)
            rd_kafka_destroy(rk);
        return err ? err->code : RN_EINVAL;
    }
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, cf->commit_topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    int np = 0;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = rn__errf(err, RN_EIO, "%s: the commit-log topic '%s': %s", t->what,
                      cf->commit_topic,
                      rd_kafka_err2str(e != RD_KAFKA_RESP_ERR_NO_ERROR ? e
                                       : md->topic_cnt == 1 ? md->topics[0].err
                                                            : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    } else {
        np = md->topics[0].partition_cnt;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    int64_t *hi = rc == RN_OK ? rn_xcalloc((size_t)np + 1, sizeof(*hi)) : NULL;
    bool *done = rc == RN_OK ? rn_xcalloc((size_t)np + 1, sizeof(*done)) : NULL;
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(np > 0 ? np : 1);
    int left = 0;
    for (int p = 0; rc == RN_OK && p < np; p++) {
        int64_t lo;
        e = rd_kafka_query_watermark_offsets(qk, cf->commit_topic, p, &lo, &hi[p], 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = rn__errf(err, RN_EIO, "%s: the end of the commit log '%s' [%d]: %s", t->what,
                          cf->commit_topic, p, rd_kafka_err2str(e));
            break;
        }
        done[p] = hi[p] <= lo;
        left += !done[p];
        rd_kafka_topic_partition_list_add(tl, cf->commit_topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    if (rc == RN_OK && left > 0 && (e = rd_kafka_assign(rk, tl)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = rn__errf(err, RN_EIO, "%s: reading the commit log: %s", t->what,
                      rd_kafka_err2str(e));
    int64_t deadline = rn__now_ms() + 2 * TXN_TIMEOUT_MS;
    uint64_t seen = 0;
    while (rc == RN_OK && left > 0) {
        if (rn__now_ms() > deadline) {
            rc = rn__errf(err, RN_EIO, "%s: the commit log '%s' was not read to its end "
                                       "within %d s (a transaction left open?)",
                          t->what, cf->commit_topic, 2 * TXN_TIMEOUT_MS / 1000);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL)
            continue;
        int p = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* Under read_committed the end is the last stable offset: an
             * open transaction before the end we are after holds it back. */
            if (p >= 0 && p < np && !done[p] && m->offset >= hi[p]) {
                done[p] = true;
                left--;
            }
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = rn__errf(err, RN_EIO, "%s: reading the commit log: %s", t->what,
                          rd_kafka_message_errstr(m));
        } else if (m->key != NULL && m->payload != NULL) {
            seen++;
            for (size_t i = 0; i < n; i++) {
                if (m->key_len != strlen(ids[i]) || memcmp(m->key, ids[i], m->key_len) != 0)
                    continue;
                json_error_t je;
                json_t *v = json_loadb(m->payload, m->len, 0, &je);
                json_t *ep = v ? json_object_get(v, "epoch") : NULL;
                if (json_is_integer(ep) && json_integer_value(ep) > last[i])
                    last[i] = json_integer_value(ep);
                json_decref(v);
            }
        }
        rd_kafka_message_destroy(m);
    }
    for (size_t i = 0; i < n; i++)
        RN_LOG_INFO(t->what, "commit log '%s': %llu markers read (end offset %lld); "
                             "'%s' committed up to epoch %lld",
                    cf->commit_topic, (unsigned long long)seen,
                    (long long)(np > 0 ? hi[0] : -1), ids[i], (long long)last[i]);
    rd_kafka_topic_partition_list_destroy(tl);
    rn_free(hi);
    rn_free(done);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    rd_kafka_destroy(qk);
    return rc;
}

/* ---- write-ahead files ----------------------------------------------------- */

static void
put32(rn_buf_t *b, uint32_t v)
{
    memcpy(b->data + b->len, &v, 4);
    b->len += 4;
}

/* Appends a record in this version's layout (key NULL: none). */
static rn_code_t
rec_put(rn_buf_t *b, uint8_t dest, const void *key, size_t klen, const void *val, size_t vlen,
        const void *hdr, size_t hlen)
{
    rn_code_t rc = rn__buf_reserve(b, 13 + klen + vlen + hlen);
    if (rc != RN_OK)
        return rc;
    b->data[b->len++] = (char)dest;
    put32(b, key != NULL ? (uint32_t)klen : NO_KEY);
    if (key != NULL && klen > 0)
        memcpy(b->data + b->len, key, klen);
    b->len += key != NULL ? klen : 0;
    put32(b, (uint32_t)vlen);
    if (vlen > 0)
        memcpy(b->data + b->len, val, vlen);
    b->len += vlen;
    put32(b, (uint32_t)hlen);
    if (hlen > 0)
        memcpy(b->data + b->len, hdr, hlen);
    b->len += hlen;
    return RN_OK;
}

/* Writes n bytes of p to fd, through short writes. @returns 0, or the
 * errno of the failure (ENOSPC for a write that wrote nothing without
 * one, which a full disk does). */
static int
write_full(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        if (w == 0)
            return ENOSPC;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the pending epochs to a new file of checkpoint ckpt. A failure
 * removes the file and leaves the epochs pending: the next checkpoint
 * writes them again. */
static rn_code_t
wal_write(rn_ktxn_t *t, int64_t ckpt, char **path, rn_error_t *err)
{
    char p[4096 + 64];
    snprintf(p, sizeof(p), "%s/epochs-%lld", t->dir, (long long)ckpt);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return rn__errf(err, RN_EIO, "%s: create '%s': %s", t->what, p, strerror(errno));
    rn_buf_t h;
    rn__buf_init(&h);
    rn_code_t rc = rn__buf_reserve(&h, 16 + t->npend * 32);
    int e = rc == RN_OK ? 0 : ENOMEM;
    if (rc == RN_OK) {
        memcpy(h.data, WAL_MAGIC, 4);
        h.len = 4;
        put32(&h, WAL_VERSION);
        put32(&h, (uint32_t)t->npend);
        e = write_full(fd, h.data, h.len);
    }
    for (size_t i = 0; e == 0 && i < t->npend; i++) {
        const kepoch_t *ep = &t->pend[i];
        uint64_t hd[4] = {(uint64_t)ep->epoch, (uint64_t)ep->ckpt, ep->count, ep->recs.len};
        e = write_full(fd, hd, sizeof(hd));
        if (e == 0 && ep->recs.len > 0)
            e = write_full(fd, ep->recs.data, ep->recs.len);
    }
    /* The checkpoint syncs what it stores; this copy only has to be whole
     * (a close that reports a failed write back says it is not). */
    rn__buf_fini(&h);
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        unlink(p);
        return rn__errf(err, RN_EIO, "%s: write '%s': %s", t->what, p, strerror(e));
    }
    *path = rn_xstrdup(p);
    return RN_OK;
}

/* Reads a write-ahead file of a checkpoint (untrusted: every length is
 * checked against the file's size before use) into epochs. */
static rn_code_t
wal_read(rn_ktxn_t *t, const char *path, kepoch_t **out, size_t *nout, rn_error_t *err)
{
    *out = NULL;
    *nout = 0;
    rn_buf_t b;
    rn__buf_init(&b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rn_code_t rc = rn__errf(err, RN_EIO, "%s: open '%s': %s", t->what, path,
                                strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    rn_code_t rc = rn__buf_reserve(&b, (size_t)sb.st_size + 1);
    if (rc == RN_OK && read(fd, b.data, (size_t)sb.st_size) != sb.st_size)
        rc = rn__errf(err, RN_EIO, "%s: read '%s': %s", t->what, path, strerror(errno));
    close(fd);
    size_t len = (size_t)sb.st_size, off = 12;
    uint32_t n = 0, version = len >= 12 ? rd32(b.data + 4) : 0;
    if (rc == RN_OK && (len < 12 || memcmp(b.data, WAL_MAGIC, 4) != 0 || version < 1 ||
                        version > WAL_VERSION || (n = rd32(b.data + 8)) > len / 32))
        rc = rn__errf(err, RN_ECORRUPT, "%s: '%s' is not a write-ahead file of this version",
                      t->what, path);
    kepoch_t *ep = rc == RN_OK && n > 0 ? rn_xcalloc(n, sizeof(*ep)) : NULL;
    size_t got = 0;
    for (; rc == RN_OK && got < n; got++) {
        uint64_t hd[4];
        if (len - off < sizeof(hd)) {
            rc = RN_ECORRUPT;
            break;
        }
        memcpy(hd, b.data + off, sizeof(hd));
        off += sizeof(hd);
        if (hd[3] > len - off) {
            rc = RN_ECORRUPT;
            break;
        }
        kepoch_t *e = &ep[got];
        e->epoch = (int64_t)hd[0];
        e->ckpt = (int64_t)hd[1];
        e->count = hd[2];
        rn__buf_init(&e->recs);
        /* Every record whole, its headers well formed; in this version's
         * layout (a version 1 record gains 5 bytes). */
        const uint8_t *src = (const uint8_t *)b.data + off;
        uint64_t cnt = 0;
        for (size_t r = 0; rc == RN_OK && r < hd[3]; cnt++) {
            krec_t k;
            rd_kafka_headers_t *h = NULL;
            size_t sz = rec_parse(src + r, hd[3] - r, version, &k);
            /* The headers are parsed only to check them: freed before a
             * dead-letter record without a dead-letter topic is refused. */
            bool ok = sz != 0 && headers_of(&k, &h);
            if (h != NULL)
                rd_kafka_headers_destroy(h);
            if (!ok || (k.dest == 1 && t->conf->dead_topic == NULL)) {
                rc = RN_ECORRUPT;
                break;
            }
            rc = rec_put(&e->recs, k.dest, k.key, k.klen, k.val, k.vlen, k.hdr, k.hlen);
            r += sz;
        }
        off += hd[3];
        if (rc == RN_OK && cnt != e->count)
            rc = RN_ECORRUPT;
    }
    rn__buf_fini(&b);
    if (rc == RN_ECORRUPT && (err == NULL || err->code != RN_ECORRUPT))
        rc = rn__errf(err, RN_ECORRUPT, "%s: '%s' is damaged (a length past its end)", t->what,
                      path);
    else if (rc == RN_ENOMEM)
        rc = rn__errf(err, RN_ENOMEM, "%s: out of memory reading '%s'", t->what, path);
    if (rc != RN_OK) {
        for (size_t i = 0; i < n && ep != NULL; i++)
            epoch_fini(&ep[i]);
        rn_free(ep);
        return rc;
    }
    *out = ep;
    *nout = n;
    return RN_OK;
}

/* ---- recovery ---------------------------------------------------------------- */

static void
txnid_of(const rn_ktxn_conf_t *cf, int instance, char *out, size_t size)
{
    snprintf(out, size, "%s-%d", cf->txn_prefix, instance);
}

/* An old instance this one answers for: its id, its part, its epochs. */
typedef struct kold {
    int instance;
    char txnid[256];
    int64_t last_epoch; /* what its checkpoint part says it assigned; -1 */
    kepoch_t *ep;
    size_t nep;
} kold_t;

static rn_code_t
old_load(rn_ktxn_t *t, kold_t *o, const json_t *data, const char *file, rn_error_t *err)
{
    txnid_of(t->conf, o->instance, o->txnid, sizeof(o->txnid));
    o->last_epoch = -1;
    if (data == NULL || json_is_null(data))
        return RN_OK;
    json_t *le = json_object_get(data, "epoch");
    if (!json_is_integer(le))
        return rn__errf(err, RN_ECORRUPT, "%s: the checkpoint's part of instance %d is not "
                                          "one this build wrote",
                        t->what, o->instance);
    o->last_epoch = json_integer_value(le);
    if (file == NULL)
        return RN_OK;
    return wal_read(t, file, &o->ep, &o->nep, err);
}

/* Sends the epochs of o the commit log does not have (committed: its last
 * committed epoch), with producer rk of o's transactional.id. */
static rn_code_t
old_resend(rn_ktxn_t *t, rd_kafka_t *rk, const kold_t *o, int64_t committed, rn_error_t *err)
{
    uint64_t n = 0;
    for (size_t i = 0; i < o->nep; i++) {
        if (o->ep[i].epoch <= committed)
            continue;
        rn__crash_point("kafka.mid_resend");
        rn_code_t rc = send_epoch(t, rk, o->txnid, &o->ep[i], err);
        if (rc != RN_OK)
            return rc;
        n++;
    }
    /* A warning when something is sent again: it follows a crash. */
    if (n > 0)
        RN_LOG_WARN(t->what, "transactional.id '%s': %llu epochs restored, %llu sent again "
                             "(the commit log had up to epoch %lld)",
                    o->txnid, (unsigned long long)o->nep, (unsigned long long)n,
                    (long long)committed);
    else
        RN_LOG_INFO(t->what, "transactional.id '%s': %llu epochs restored, all committed "
                             "(the commit log had up to epoch %lld)",
                    o->txnid, (unsigned long long)o->nep, (long long)committed);
    return RN_OK;
}

static void
olds_free(rn_ktxn_t *t)
{
    for (size_t i = 0; i < t->nold; i++) {
        for (size_t k = 0; k < t->old[i].nep; k++)
            epoch_fini(&t->old[i].ep[k]);
        rn_free(t->old[i].ep);
    }
    rn_free(t->old);
    t->old = NULL;
    t->nold = 0;
}

/* In open(): what was restored, read and checked (the files). */
static rn_code_t
recover_load(rn_ktxn_t *t, rn_op_t *op, rn_error_t *err)
{
    const json_t *all = rn__op_restored_all(op);
    int self = rn__op_instance(op), par = rn__op_parallelism(op);
    size_t nold = 0;
    kold_t *old = rn_xcalloc(all != NULL ? json_array_size(all) + 1 : 1, sizeof(*old));
    rn_code_t rc = RN_OK;
    t->self = self;
    if (all != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(all, i, v) {
            int j = (int)json_integer_value(json_object_get(v, "instance"));
            if (!(j == self || (j >= par && j % par == self)))
                continue;
            old[nold].instance = j;
            json_t *f = json_object_get(v, "file");
            rc = old_load(t, &old[nold++], json_object_get(v, "data"),
                          json_is_string(f) ? json_string_value(f) : NULL, err);
            if (rc != RN_OK)
                break;
        }
    } else {
        old[0].instance = self;
        nold = 1;
        rc = old_load(t, &old[0], rn__op_restored(op), rn__op_restored_file(op), err);
    }
    t->old = old;
    t->nold = nold;
    return rc;
}

/* Before the first epoch is sealed or committed (rn__ktxn_add and the
 * others call it): the commit log read, a resume from an older
 * checkpoint refused, the restored epochs the log lacks sent. Not in
 * open(): every instance must have called init_transactions first, which
 * aborts what the process before left open, since an open transaction
 * holds read_committed readers of the commit log back (the next instance
 * opens only after this one). */
static rn_code_t
recover_finish(rn_ktxn_t *t, rn_error_t *err)
{
    if (t->recovered)
        return RN_OK;
    t->recovered = true;
    kold_t *old = t->old;
    size_t nold = t->nold;
    int self = t->self;
    rn_code_t rc = RN_OK;
    char **ids = rn_xcalloc(nold + 1, sizeof(*ids));
    int64_t *committed = rn_xcalloc(nold + 1, sizeof(*committed));
    for (size_t i = 0; i < nold; i++)
        ids[i] = old[i].txnid;
    if (rc == RN_OK)
        rc = commit_log_read(t, ids, nold, committed, err);
    for (size_t i = 0; rc == RN_OK && i < nold; i++) {
        const kold_t *o = &old[i];
        if (committed[i] > t->last_epoch)
            t->last_epoch = committed[i];
        if (o->last_epoch > t->last_epoch)
            t->last_epoch = o->last_epoch;
        if (o->last_epoch >= 0 && committed[i] > o->last_epoch && !t->conf->accept_duplicates) {
            rc = rn__errf(err, RN_EINVAL,
                          "%s: the commit log '%s' shows epoch %lld of transactional.id '%s' "
                          "committed, newer than the checkpoint being restored (epoch %lld): "
                          "an older checkpoint is being resumed (the newest one damaged?), and "
                          "what was committed after it would be sent again. Restore the newest "
                          "checkpoint, or pass --accept-duplicates to resume anyway",
                          t->what, t->conf->commit_topic, (long long)committed[i], o->txnid,
                          (long long)o->last_epoch);
            break;
        }
        if (o->instance == self) {
            rc = old_resend(t, t->rk, o, committed[i], err);
        } else {
            /* An instance that no longer exists: fence its id, finish its
             * epochs. */
            rd_kafka_t *rk = producer_new(t, o->txnid, err);
            if (rk == NULL) {
                rc = err ? err->code : RN_EIO;
                break;
            }
            rc = old_resend(t, rk, o, committed[i], err);
            rd_kafka_flush(rk, 10000);
            rd_kafka_destroy(rk);
        }
    }
    olds_free(t);
    rn_free(ids);
    rn_free(committed);
    return rc;
}

/* ---- the sink's calls -------------------------------------------------------- */

rn_code_t
rn__ktxn_open(const rn_ktxn_conf_t *conf, rn_op_t *op, rn_ktxn_t **out, rn_error_t *err)
{
    rn_ktxn_t *t = rn_xcalloc(1, sizeof(*t));
    t->conf = conf;
    t->last_epoch = 0;
    snprintf(t->what, sizeof(t->what), "kafka sink '%s' (instance %d)", rn__op_name(op),
             rn__op_instance(op));
    txnid_of(conf, rn__op_instance(op), t->txnid, sizeof(t->txnid));
    rn__buf_init(&t->cur.recs);
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof(t->dir), "%s/runnel-kafka-%d-%s-%d", tmp != NULL ? tmp : "/tmp",
             (int)getpid(), rn__op_name(op), rn__op_instance(op));
    rn_code_t rc = RN_OK;
    if (mkdir(t->dir, 0700) != 0 && errno != EEXIST)
        rc = rn__errf(err, RN_EIO, "%s: mkdir '%s': %s", t->what, t->dir, strerror(errno));
    if (rc == RN_OK && (t->rk = producer_new(t, t->txnid, err)) == NULL)
        rc = err ? err->code : RN_EIO;
    if (rc == RN_OK)
        rc = commit_topic_ensure(t, err);
    if (rc == RN_OK)
        rc = recover_load(t, op, err);
    if (rc != RN_OK) {
        rn__ktxn_close(t);
        return rc;
    }
    *out = t;
    return RN_OK;
}

rn_code_t
rn__ktxn_add(rn_ktxn_t *t, int dest, const void *key, size_t klen, const void *val, size_t vlen,
             const void *hdr, size_t hlen, rn_error_t *err)
{
    rn_code_t rc = recover_finish(t, err);
    if (rc != RN_OK)
        return rc;
    if ((rc = rec_put(&t->cur.recs, (uint8_t)dest, key, klen, val, vlen, hdr, hlen)) != RN_OK)
        return rn__errf(err, rc, "%s: out of memory keeping an epoch's records", t->what);
    t->cur.count++;
    return RN_OK;
}

/* What came since the last barrier becomes the next epoch, pending. */
static void
seal(rn_ktxn_t *t, int64_t ckpt)
{
    if (t->cur.count == 0)
        return;
    if (t->npend == t->cappend) {
        t->cappend = t->cappend ? 2 * t->cappend : 4;
        t->pend = rn_xrealloc(t->pend, t->cappend * sizeof(*t->pend));
    }
    t->cur.epoch = ++t->last_epoch;
    t->cur.ckpt = ckpt;
    t->pend[t->npend++] = t->cur;
    memset(&t->cur, 0, sizeof(t->cur));
    rn__buf_init(&t->cur.recs);
}

rn_code_t
rn__ktxn_snapshot(rn_ktxn_t *t, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    rn_code_t rc0 = recover_finish(t, err);
    if (rc0 != RN_OK)
        return rc0;
    /* id 0: finished. Nothing is committed yet past the checkpoints
     * completed while the instance ran (finish() left the final epoch
     * for the end of the job), so every checkpoint after this one keeps
     * the uncommitted epochs, the final one included: a restart from one
     * of them sends what the commit log lacks. The file stays until the
     * end (complete of RN_JOB_END, or close). */
    int64_t keep = id == 0 ? RN_JOB_END : id;
    if (id != 0)
        seal(t, id);
    if (t->npend > 0) {
        char *path;
        rn_code_t rc = wal_write(t, id, &path, err);
        if (rc != RN_OK)
            return rc;
        t->files = rn_xrealloc(t->files, (t->nfiles + 1) * sizeof(*t->files));
        t->files[t->nfiles].path = path;
        t->files[t->nfiles++].ckpt = keep;
        *file = rn_xstrdup(path);
    }
    *data = id == 0 ? json_pack("{s:I, s:b}", "epoch", (json_int_t)t->last_epoch, "finished", 1)
                    : json_pack("{s:I}", "epoch", (json_int_t)t->last_epoch);
    return RN_OK;
}

/* Commits the pending epochs of checkpoints up to id, in order. */
static rn_code_t
commit_upto(rn_ktxn_t *t, int64_t id, rn_error_t *err)
{
    size_t k = 0;
    rn_code_t rc = RN_OK;
    for (; k < t->npend && t->pend[k].ckpt <= id; k++)
        if ((rc = send_epoch(t, t->rk, t->txnid, &t->pend[k], err)) != RN_OK)
            break;
    for (size_t i = 0; i < k; i++)
        epoch_fini(&t->pend[i]);
    if (k > 0) {
        memmove(t->pend, t->pend + k, (t->npend - k) * sizeof(*t->pend));
        t->npend -= k;
    }
    return rc;
}

rn_code_t
rn__ktxn_complete(rn_ktxn_t *t, int64_t id, rn_error_t *err)
{
    rn_code_t rc = recover_finish(t, err);
    if (rc == RN_OK)
        rc = commit_upto(t, id, err);
    if (rc != RN_OK)
        return rc;
    /* The files of checkpoints up to id are stored (or were aborted). */
    size_t k = 0;
    for (size_t i = 0; i < t->nfiles; i++) {
        if (t->files[i].ckpt <= id) {
            unlink(t->files[i].path);
            rn_free(t->files[i].path);
        } else {
            t->files[k++] = t->files[i];
        }
    }
    t->nfiles = k;
    return RN_OK;
}

rn_code_t
rn__ktxn_finish(rn_ktxn_t *t, rn_error_t *err)
{
    rn_code_t rc = recover_finish(t, err);
    if (rc != RN_OK)
        return rc;
    /* Not committed here: another instance of the job may still fail,
     * and the restart would then find this one's final epoch committed
     * past the checkpoint it resumes from, with its input replayed. */
    seal(t, RN_JOB_END);
    return RN_OK;
}

void
rn__ktxn_close(rn_ktxn_t *t)
{
    if (t == NULL)
        return;
    if (t->rk != NULL)
        rd_kafka_destroy(t->rk); /* an open transaction is aborted by the next init */
    epoch_fini(&t->cur);
    for (size_t i = 0; i < t->npend; i++)
        epoch_fini(&t->pend[i]);
    rn_free(t->pend);
    for (size_t i = 0; i < t->nfiles; i++) {
        unlink(t->files[i].path);
        rn_free(t->files[i].path);
    }
    rn_free(t->files);
    olds_free(t);
    rmdir(t->dir);
    rn_free(t);
}

rn_code_t
rn__ktxn_wal_check(const char *path, bool dead_topic, uint64_t *records, rn_error_t *err)
{
    rn_ktxn_conf_t cf = {.dead_topic = dead_topic ? "dead letters" : NULL};
    rn_ktxn_t t = {.conf = &cf};
    kepoch_t *ep = NULL;
    size_t n = 0;
    snprintf(t.what, sizeof(t.what), "kafka sink");
    rn_code_t rc = wal_read(&t, path, &ep, &n, err);
    *records = 0;
    for (size_t i = 0; i < n; i++) {
        *records += ep[i].count;
        epoch_fini(&ep[i]);
    }
    rn_free(ep);
    return rc;
}
