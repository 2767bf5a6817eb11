/*
 * connectors/kafka_sink.c: the "kafka" sink: each row a message of a
 * topic, JSON, CSV (no header) or a plugin's format (the bytes its encode
 * writes), keyed by fields; at-least-once here,
 * exactly-once through kafka_txn.c.
 *
 * Design: an idempotent librdkafka producer per instance (no duplicates
 * or reordering from its own retries). Rows are handed to librdkafka as
 * they come; at each checkpoint's barrier the instance waits until every
 * message produced so far is acknowledged (rd_kafka_flush), so that a
 * completed checkpoint never covers a message the broker has not got:
 * after a crash the job replays from the checkpoint, and what was sent
 * after it is sent again (at least once). A message the producer gives up
 * on fails the job. `delivery: exactly-once` keeps each epoch's records
 * in the checkpoint and sends them in a transaction once it completes
 * (kafka_txn.c, docs/kafka.md).
 *
 * The message key: one field, its text; several, a JSON array of their
 * values; none, no key. Partitioning by key with murmur2, as Java clients
 * and Kafka Streams do, so that a key lands where they would put it.
 *
 * `dead_letters: {inputs: [...], topic: NAME}`: rows of those inputs (a
 * source's `errors` output: error, raw, location) go to NAME as the raw
 * record with headers reason, location and, for a Kafka location
 * TOPIC/PARTITION@OFFSET, topic, partition and offset; exactly-once puts
 * them in the same epochs (kafka_txn.c, destination 1).
 *
 * @thread plan: control; an instance: its task (librdkafka's delivery
 * callbacks run inside rd_kafka_poll/flush, on the task too).
 */
#include "connectors/kafka_txn.h"

#include <stdatomic.h>
#include <stdlib.h>

enum { DELIVERY_AT_LEAST_ONCE, DELIVERY_EXACTLY_ONCE };

static const char *const delivery_names[] = {"at-least-once", "exactly-once", NULL};
static const char *const keys[] = {"brokers",    "topic",
                                   "format",     "key",
                                   "delivery",   "properties",
                                   "commit_log", "transactional_id_prefix",
                                   "dead_letters", NULL};

/* The commit log's default name: one topic for every exactly-once sink of
 * a cluster, keyed by transactional.id (like Kafka's own offsets topic). */
#define COMMIT_LOG_DEFAULT "runnel-commits"

/* How long a checkpoint or the end of input waits for acknowledgements
 * before the job fails: librdkafka retries within message.timeout.ms. */
#define FLUSH_TIMEOUT_MS 300000

typedef struct ksink_plan {
    char *brokers, *topic; /* owned */
    bool exactly_once;
    char *commit_log;  /* owned */
    char *txn_prefix;  /* owned; NULL: runnel-JOB-SINK */
    rn_kafka_props_t props;
    rn_text_plan_t text;
    const char **key; /* key field names, owned array (names borrowed from conf) */
    size_t nkey;
    int **keyidx; /* per input: the key fields' indexes, owned */
    /* dead_letters: {inputs: [...], topic: NAME}: rows of those inputs
     * (a source's `errors` side output) go to dead_topic with their
     * reason and origin in headers. */
    char *dead_topic; /* owned; NULL: none */
    struct kdead {
        bool on;
        int error, raw, location; /* field indexes; location -1: none */
    } *dead; /* per input, owned */
    bool embedded;     /* brokers: embedded (brokers is its address) */
    atomic_int *left;  /* embedded, at-least-once: instances counted as
                        * writers (kafka_embedded.c) not yet finished */
} ksink_plan_t;

typedef struct ksink {
    const ksink_plan_t *plan;
    char what[200];
    rd_kafka_t *rk;      /* at-least-once */
    rn_ktxn_t *txn;      /* exactly-once */
    rn_ktxn_conf_t tconf;
    char txn_prefix[512];
    rn_text_out_t out; /* encoders; out.buf is scratch for one row */
    rn_buf_t keybuf;
    rn_buf_t hdrbuf; /* a dead letter's headers, encoded (kafka_txn.h) */
    uint64_t failed; /* messages the producer gave up on */
    char first_fail[RN_ERROR_MSG_MAX];
} ksink_t;

/* ---- plan ---------------------------------------------------------------- */

static void
ksink_plan_free(void *p)
{
    ksink_plan_t *plan = p;
    if (plan == NULL)
        return;
    if (plan->embedded) {
        if (plan->left != NULL)
            rn__kembed_writers(plan->topic, -atomic_load(plan->left));
        rn__kembed_release();
    } else if (plan->left != NULL) {
        rn__kwriters_add(plan->brokers, plan->topic, -atomic_load(plan->left));
    }
    rn_free(plan->left);
    rn_free(plan->dead_topic);
    rn_free(plan->dead);
    rn_free(plan->brokers);
    rn_free(plan->topic);
    rn_free(plan->commit_log);
    rn_free(plan->txn_prefix);
    rn__kafka_props_fini(&plan->props);
    if (plan->keyidx != NULL)
        for (int i = 0; i < plan->text.ninputs; i++)
            rn_free(plan->keyidx[i]);
    rn_free(plan->keyidx);
    rn_free(plan->key);
    rn__text_plan_fini(&plan->text);
    rn_free(plan);
}

/* `dead_letters: {inputs: [PORT, ...], topic: NAME}`. */
static rn_code_t
dead_plan(rn_plan_ctx_t *pc, const rn_conf_t *conf, const char *what, ksink_plan_t *plan,
          rn_error_t *err)
{
    int n = rn__pc_ninputs(pc);
    plan->dead = rn_xcalloc(n > 0 ? (size_t)n : 1, sizeof(*plan->dead));
    const rn_conf_t *dl = rn_conf_get(conf, "dead_letters");
    if (dl == NULL)
        return RN_OK;
    const char *topic = NULL;
    const char **names = NULL;
    size_t nnames = 0;
    rn_code_t rc;
    if (rn_conf_kind(dl) != RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, dl,
                            "%s: dead_letters: give {inputs: [SOURCE.errors], topic: NAME}",
                            what);
    if ((rc = rn__conf_str(dl, "topic", NULL, &topic, err)) != RN_OK ||
        (rc = rn__conf_strlist(dl, "inputs", &names, &nnames, err)) != RN_OK)
        return rc;
    if (topic == NULL || *topic == '\0' || strcmp(topic, plan->topic) == 0 ||
        strcmp(topic, plan->commit_log) == 0 || nnames == 0) {
        rn_free(names);
        return rn__conf_err(err, RN_EINVAL, dl,
                            "%s: dead_letters: give inputs (of this sink's) and a topic other "
                            "than the output and the commit log",
                            what);
    }
    for (size_t k = 0; k < nnames && rc == RN_OK; k++) {
        int found = -1;
        for (int i = 0; i < n; i++) {
            const char *in = rn_conf_scalar(rn__pc_input_node(pc, i));
            if (in != NULL && strcmp(in, names[k]) == 0)
                found = i;
        }
        if (found < 0) {
            rc = rn__conf_err(err, RN_EINVAL, rn_conf_get(dl, "inputs"),
                              "%s: dead_letters: '%s' is not among the sink's inputs", what,
                              names[k]);
            break;
        }
        const rn_schema_t *sc = plan->text.schemas[found];
        struct kdead *d = &plan->dead[found];
        d->error = rn__schema_find(sc, "error");
        d->raw = rn__schema_find(sc, "raw");
        d->location = rn__schema_find(sc, "location");
        if (d->error < 0 || d->raw < 0 || sc->fields[d->error].type != RN_TYPE_STRING ||
            sc->fields[d->raw].type != RN_TYPE_STRING ||
            (d->location >= 0 && sc->fields[d->location].type != RN_TYPE_STRING)) {
            rc = rn__conf_err(err, RN_EINVAL, rn__pc_input_node(pc, found),
                              "%s: dead_letters: '%s' is not a bad-record output (string fields "
                              "error and raw, as a source's `errors` has)",
                              what, names[k]);
            break;
        }
        d->on = true;
    }
    rn_free(names);
    if (rc == RN_OK)
        plan->dead_topic = rn_xstrdup(topic);
    return rc;
}

static rn_code_t
ksink_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const char *brokers = NULL, *topic = NULL, *commit_log = NULL, *prefix = NULL;
    int delivery;
    char what[160];
    rn_code_t rc;

    rn__conn_what(pc, "kafka sink", what, sizeof(what));
    if (rn__conf_require(conf, "brokers", what, err) == NULL ||
        rn__conf_require(conf, "topic", what, err) == NULL)
        return err ? err->code : RN_EINVAL;
    if ((rc = rn__conf_str(conf, "brokers", NULL, &brokers, err)) != RN_OK ||
        (rc = rn__conf_str(conf, "topic", NULL, &topic, err)) != RN_OK ||
        (rc = rn__conf_enum(conf, "delivery", delivery_names, DELIVERY_AT_LEAST_ONCE, &delivery,
                            err)) != RN_OK ||
        (rc = rn__conf_str(conf, "commit_log", COMMIT_LOG_DEFAULT, &commit_log, err)) != RN_OK ||
        (rc = rn__conf_str(conf, "transactional_id_prefix", NULL, &prefix, err)) != RN_OK)
        return rc;
    if (brokers == NULL || *brokers == '\0')
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "brokers"),
                            "%s: brokers: give host:port[,host:port...] or embedded", what);
    if (topic == NULL || *topic == '\0')
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "topic"), "%s: topic is empty",
                            what);
    if (commit_log == NULL || *commit_log == '\0' || strcmp(commit_log, topic) == 0)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "commit_log"),
                            "%s: commit_log: give a topic other than the output", what);
    ksink_plan_t *plan = rn_xcalloc(1, sizeof(*plan));
    rn__pc_set_plan(pc, plan, ksink_plan_free);
    plan->topic = rn_xstrdup(topic);
    plan->exactly_once = delivery == DELIVERY_EXACTLY_ONCE;
    plan->commit_log = rn_xstrdup(commit_log);
    plan->txn_prefix = prefix != NULL ? rn_xstrdup(prefix) : NULL;
    if ((rc = rn__kafka_props_read(conf, what, rn__pc_allow_code_properties(pc), &plan->props,
                                     err)) != RN_OK ||
        (rc = rn__text_plan_init(pc, what, &plan->text, err)) != RN_OK ||
        (rc = rn__conf_strlist(conf, "key", &plan->key, &plan->nkey, err)) != RN_OK)
        return rc;
    if ((rc = dead_plan(pc, conf, what, plan, err)) != RN_OK)
        return rc;
    plan->keyidx = rn_xcalloc((size_t)plan->text.ninputs, sizeof(*plan->keyidx));
    for (int i = 0; i < plan->text.ninputs; i++) {
        plan->keyidx[i] = rn_xcalloc(plan->nkey ? plan->nkey : 1, sizeof(int));
        for (size_t k = 0; k < plan->nkey && !plan->dead[i].on; k++) {
            int f = rn__schema_find(plan->text.schemas[i], plan->key[k]);
            if (f < 0)
                return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "key"),
                                    "%s: key field '%s' is not in input %d", what, plan->key[k],
                                    i + 1);
            plan->keyidx[i][k] = f;
        }
    }
    if (strcmp(brokers, "embedded") == 0) {
        const char *names[3] = {topic};
        int parts[3] = {4};
        size_t n = 1;
        if (plan->exactly_once) {
            names[n] = commit_log;
            parts[n++] = 1; /* one partition, as on a broker */
        }
        if (plan->dead_topic != NULL) {
            names[n] = plan->dead_topic;
            parts[n++] = 4;
        }
        if ((plan->brokers = rn__kembed_acquire(names, parts, n, err)) == NULL)
            return rn__errctx(err, "%s", what);
        plan->embedded = true;
        /* Readers of the topic in this job wait for these instances
         * (an exactly-once sink's output is visible only as checkpoints
         * complete, so it does not count). */
        if (!plan->exactly_once) {
            plan->left = rn_xcalloc(1, sizeof(*plan->left));
            atomic_init(plan->left, rn__pc_parallelism(pc));
            rn__kembed_writers(topic, rn__pc_parallelism(pc));
        }
    } else {
        plan->brokers = rn_xstrdup(brokers);
        /* Bounded readers of the topic in this job wait for these
         * instances too (kafka_writers.c). */
        if (!plan->exactly_once) {
            plan->left = rn_xcalloc(1, sizeof(*plan->left));
            atomic_init(plan->left, rn__pc_parallelism(pc));
            rn__kwriters_add(plan->brokers, topic, rn__pc_parallelism(pc));
        }
    }
    return RN_OK;
}

/* ---- run time ---------------------------------------------------------------- */

/* A delivery report: the producer gave up on a message (after its own
 * retries), which at-least-once cannot accept. */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    ksink_t *s = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (s->failed++ == 0)
        snprintf(s->first_fail, sizeof(s->first_fail), "%s", rd_kafka_err2str(m->err));
}

static void
ksink_free(ksink_t *s)
{
    if (s == NULL)
        return;
    if (s->rk != NULL)
        rd_kafka_destroy(s->rk);
    rn__ktxn_close(s->txn);
    rn__text_out_fini(&s->out);
    rn__buf_fini(&s->keybuf);
    rn__buf_fini(&s->hdrbuf);
    rn_free(s);
}

static rn_code_t
open_producer(ksink_t *s, rn_error_t *err)
{
    const ksink_plan_t *plan = s->plan;
    rd_kafka_conf_t *c = rn__kafka_conf_new(plan->brokers, &plan->props, s->what, err);
    if (c == NULL)
        return err ? err->code : RN_EINVAL;
    rn_code_t rc;
    /* librdkafka waits 5 ms to fill a batch by default: latency at low
     * rates. 1 ms, unless `properties` say otherwise. */
    bool linger = false;
    for (size_t i = 0; i < plan->props.n; i++)
        linger = linger || strcmp(plan->props.names[i], "linger.ms") == 0 ||
                 strcmp(plan->props.names[i], "queue.buffering.max.ms") == 0;
    if ((rc = rn__kafka_set(c, "enable.idempotence", "true", s->what, err)) != RN_OK ||
        (rc = rn__kafka_set(c, "partitioner", "murmur2_random", s->what, err)) != RN_OK ||
        (!linger && (rc = rn__kafka_set(c, "linger.ms", "1", s->what, err)) != RN_OK)) {
        rd_kafka_conf_destroy(c);
        return rc;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, s);
    char errstr[512];
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (s->rk == NULL) {
        rd_kafka_conf_destroy(c);
        return rn__errf(err, RN_EINVAL, "%s: %s", s->what, errstr);
    }
    return RN_OK;
}

static rn_code_t
ksink_open(rn_op_t *op, rn_error_t *err)
{
    const ksink_plan_t *plan = rn__op_plan(op);
    ksink_t *s = rn_calloc(1, sizeof(*s));
    if (s == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    s->plan = plan;
    snprintf(s->what, sizeof(s->what), "kafka sink '%s' (instance %d)", rn__op_name(op),
             rn__op_instance(op));
    rn__buf_init(&s->keybuf);
    rn__buf_init(&s->hdrbuf);
    rn_code_t rc = rn__text_out_init(&s->out, &plan->text, err);
    if (rc == RN_OK && plan->exactly_once) {
        if (!rn__op_checkpointing(op)) {
            rc = rn__errf(err, RN_EINVAL,
                          "%s: delivery: exactly-once needs checkpoints (the job file's "
                          "checkpoints: section): output is committed when they complete",
                          s->what);
        } else {
            if (plan->txn_prefix != NULL)
                snprintf(s->txn_prefix, sizeof(s->txn_prefix), "%s", plan->txn_prefix);
            else
                snprintf(s->txn_prefix, sizeof(s->txn_prefix), "runnel-%s-%s",
                         rn__op_job_name(op), rn__op_name(op));
            s->tconf = (rn_ktxn_conf_t){.brokers = plan->brokers,
                                        .props = &plan->props,
                                        .topic = plan->topic,
                                        .dead_topic = plan->dead_topic,
                                        .commit_topic = plan->commit_log,
                                        .txn_prefix = s->txn_prefix,
                                        .accept_duplicates = rn__op_accept_duplicates(op)};
            rc = rn__ktxn_open(&s->tconf, op, &s->txn, err);
        }
    } else if (rc == RN_OK) {
        rc = open_producer(s, err);
    }
    if (rc != RN_OK) {
        ksink_free(s);
        return rc;
    }
    s->out.buf.len = 0; /* no CSV header: one record per message */
    rn__op_set_data(op, s);
    return RN_OK;
}

/* The failure of any message so far, as the job's error. */
static rn_code_t
check_failed(ksink_t *s, rn_error_t *err)
{
    if (s->failed == 0)
        return RN_OK;
    return rn__errf(err, RN_EIO, "%s: %llu message%s not delivered to '%s': %s", s->what,
                    (unsigned long long)s->failed, s->failed == 1 ? "" : "s", s->plan->topic,
                    s->first_fail);
}

/* Every message produced so far acknowledged (or the job fails). */
static rn_code_t
flush_all(ksink_t *s, rn_error_t *err)
{
    rd_kafka_resp_err_t e = rd_kafka_flush(s->rk, FLUSH_TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rn__errf(err, RN_EIO, "%s: %d messages not acknowledged by %s within %d s: %s",
                        s->what, rd_kafka_outq_len(s->rk), s->plan->brokers,
                        FLUSH_TIMEOUT_MS / 1000, rd_kafka_err2str(e));
    return check_failed(s, err);
}

/* Appends the text of v (of type t) to buf: strings as they are, the
 * others as JSON would print them. */
static rn_code_t
key_text(rn_buf_t *buf, const rn_value_t *v, rn_type_t t, bool json)
{
    char tmp[64];
    const char *p = tmp;
    size_t n;
    if (v->null) {
        p = json ? "null" : "";
        n = strlen(p);
    } else if (t == RN_TYPE_STRING && !json) {
        p = v->u.s;
        n = v->len;
    } else if (t == RN_TYPE_STRING) {
        json_t *j = json_stringn(v->u.s, v->len);
        char *d = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        if (d == NULL)
            return RN_EDATA;
        n = strlen(d);
        rn_code_t rc = rn__buf_reserve(buf, n);
        if (rc == RN_OK) {
            memcpy(buf->data + buf->len, d, n);
            buf->len += n;
        }
        free(d);
        return rc;
    } else if (t == RN_TYPE_FLOAT) {
        n = rn__fmt_double(tmp, v->u.f);
    } else if (t == RN_TYPE_BOOL) {
        p = v->u.b ? "true" : "false";
        n = strlen(p);
    } else {
        n = (size_t)snprintf(tmp, sizeof(tmp), "%lld", (long long)v->u.i);
    }
    rn_code_t rc = rn__buf_reserve(buf, n);
    if (rc != RN_OK)
        return rc;
    memcpy(buf->data + buf->len, p, n);
    buf->len += n;
    return RN_OK;
}

/* The message key of row (of input `input`) into s->keybuf. */
static rn_code_t
make_key(ksink_t *s, int input, const rn_value_t *row)
{
    const ksink_plan_t *plan = s->plan;
    const rn_schema_t *sc = plan->text.schemas[input];
    rn_buf_t *kb = &s->keybuf;
    kb->len = 0;
    bool json = plan->nkey > 1;
    rn_code_t rc = RN_OK;
    if (json && (rc = rn__buf_reserve(kb, 1)) == RN_OK)
        kb->data[kb->len++] = '[';
    for (size_t k = 0; rc == RN_OK && k < plan->nkey; k++) {
        int f = plan->keyidx[input][k];
        if (k > 0 && (rc = rn__buf_reserve(kb, 1)) == RN_OK)
            kb->data[kb->len++] = ',';
        if (rc == RN_OK)
            rc = key_text(kb, &row[f], sc->fields[f].type, json);
    }
    if (rc == RN_OK && json && (rc = rn__buf_reserve(kb, 1)) == RN_OK)
        kb->data[kb->len++] = ']';
    return rc;
}

static rn_code_t
produce(ksink_t *s, const rn_buf_t *val, bool keyed)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(s->plan->topic),
            RD_KAFKA_V_KEY(keyed ? s->keybuf.data : NULL, keyed ? s->keybuf.len : 0),
            RD_KAFKA_V_VALUE(val->data, val->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return RN_OK;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return (rn_code_t)e;
        /* The queue drains as acknowledgements come back: wait for some. */
        rd_kafka_poll(s->rk, 10);
    }
}

/* A dead letter's headers: reason, location and, when the location is a
 * Kafka one (TOPIC/PARTITION@OFFSET), topic, partition and offset. */
typedef struct khdr {
    const char *name;
    const char *val;
    size_t len;
} khdr_t;

static size_t
dead_headers(const struct kdead *d, const rn_value_t *row, khdr_t *h)
{
    size_t n = 0;
    const rn_value_t *e = &row[d->error];
    h[n++] = (khdr_t){"reason", e->null ? "" : e->u.s, e->null ? 0 : e->len};
    if (d->location < 0 || row[d->location].null)
        return n;
    const char *loc = row[d->location].u.s;
    size_t len = row[d->location].len;
    h[n++] = (khdr_t){"location", loc, len};
    const char *at = memrchr(loc, '@', len);
    const char *slash = at != NULL ? memrchr(loc, '/', (size_t)(at - loc)) : NULL;
    if (slash == NULL || slash == loc || at == slash + 1 || at + 1 == loc + len)
        return n;
    h[n++] = (khdr_t){"topic", loc, (size_t)(slash - loc)};
    h[n++] = (khdr_t){"partition", slash + 1, (size_t)(at - slash - 1)};
    h[n++] = (khdr_t){"offset", at + 1, (size_t)(loc + len - at - 1)};
    return n;
}

/* A dead letter (row of input `input`): value the raw record, no key. */
static rn_code_t
dead_letter(ksink_t *s, int input, const rn_value_t *row, rn_error_t *err)
{
    const struct kdead *d = &s->plan->dead[input];
    khdr_t h[5];
    size_t nh = dead_headers(d, row, h);
    const rn_value_t *raw = &row[d->raw];
    const char *val = raw->null ? "" : raw->u.s;
    size_t vlen = raw->null ? 0 : raw->len;
    if (s->txn != NULL) {
        rn_buf_t *b = &s->hdrbuf;
        b->len = 0;
        for (size_t i = 0; i < nh; i++) {
            uint16_t nl = (uint16_t)strlen(h[i].name);
            uint32_t vl = (uint32_t)h[i].len;
            if (rn__buf_reserve(b, 6 + nl + vl) != RN_OK)
                return rn__errf(err, RN_ENOMEM, "%s: out of memory for a dead letter", s->what);
            memcpy(b->data + b->len, &nl, 2);
            memcpy(b->data + b->len + 2, h[i].name, nl);
            memcpy(b->data + b->len + 2 + nl, &vl, 4);
            memcpy(b->data + b->len + 6 + nl, h[i].val, vl);
            b->len += 6 + nl + vl;
        }
        return rn__ktxn_add(s->txn, 1, NULL, 0, val, vlen, b->data, b->len, err);
    }
    rd_kafka_headers_t *hd = rd_kafka_headers_new(nh);
    for (size_t i = 0; i < nh; i++)
        rd_kafka_header_add(hd, h[i].name, -1, h[i].val, (ssize_t)h[i].len);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(s->plan->dead_topic), RD_KAFKA_V_VALUE((void *)val, vlen),
            RD_KAFKA_V_HEADERS(hd), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return RN_OK; /* the message owns hd */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_headers_destroy(hd);
            return rn__errf(err, RN_EIO, "%s: produce to '%s': %s", s->what,
                            s->plan->dead_topic, rd_kafka_err2str(e));
        }
        rd_kafka_poll(s->rk, 10);
    }
}

static rn_code_t
ksink_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    ksink_t *s = rn__op_data(op);
    const rn_encoder_t *enc = s->out.enc[input];
    rn_code_t rc = RN_OK;
    for (uint32_t r = 0; rc == RN_OK && r < b->n; r++) {
        const rn_value_t *row = RN_ROW(b, r);
        if (s->plan->dead[input].on) {
            rc = dead_letter(s, input, row, err);
            continue;
        }
        s->out.buf.len = 0;
        if (enc == NULL) {
            /* A plugin's format: its bytes are the value. */
            if ((rc = rn__fmt_encode(s->out.ext, s->out.schemas[input], row, &s->out.buf,
                                     err)) != RN_OK) {
                rn__errctx(err, "%s", s->what);
                break;
            }
        } else if ((rc = rn__encoder_row(enc, row, &s->out.buf)) != RN_OK) {
            rc = rn__errf(err, rc, "%s: out of memory encoding a row", s->what);
            break;
        }
        if (s->out.buf.len > 0 && s->out.buf.data[s->out.buf.len - 1] == '\n')
            s->out.buf.len--;
        if (s->plan->nkey > 0 && make_key(s, input, row) != RN_OK) {
            rc = rn__errf(err, RN_ENOMEM, "%s: cannot encode a key", s->what);
            break;
        }
        if (s->txn != NULL) {
            bool keyed = s->plan->nkey > 0;
            rc = rn__ktxn_add(s->txn, 0, keyed ? s->keybuf.data : NULL,
                              keyed ? s->keybuf.len : 0, s->out.buf.data, s->out.buf.len, NULL, 0,
                              err);
            continue;
        }
        rn_code_t e = produce(s, &s->out.buf, s->plan->nkey > 0);
        if (e != RN_OK)
            rc = rn__errf(err, RN_EIO, "%s: produce to '%s': %s", s->what, s->plan->topic,
                          rd_kafka_err2str((rd_kafka_resp_err_t)e));
    }
    s->out.records += b->n;
    rn__op_free_batch(op, b);
    if (s->txn != NULL)
        return rc;
    rd_kafka_poll(s->rk, 0); /* delivery reports */
    return rc == RN_OK ? check_failed(s, err) : rc;
}

/* At the barrier: what the checkpoint covers is acknowledged. */
static rn_code_t
ksink_snapshot(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    ksink_t *s = rn__op_data(op);
    if (s != NULL && s->txn != NULL)
        return rn__ktxn_snapshot(s->txn, id, data, file, err);
    return s != NULL ? flush_all(s, err) : RN_OK;
}

static rn_code_t
ksink_complete(rn_op_t *op, int64_t id, rn_error_t *err)
{
    ksink_t *s = rn__op_data(op);
    return s != NULL && s->txn != NULL ? rn__ktxn_complete(s->txn, id, err) : RN_OK;
}

static rn_code_t
ksink_finish(rn_op_t *op, rn_error_t *err)
{
    ksink_t *s = rn__op_data(op);
    if (s->txn != NULL) {
        rn_code_t rc = rn__ktxn_finish(s->txn, err);
        if (rc == RN_OK)
            rn__op_commit_at_end(op); /* the final epoch: at the job's end */
        return rc;
    }
    rn_code_t rc = flush_all(s, err);
    if (rc == RN_OK && s->plan->left != NULL) {
        /* Delivered: bounded readers of the topic may end at its end. */
        atomic_fetch_sub(s->plan->left, 1);
        if (s->plan->embedded)
            rn__kembed_writers(s->plan->topic, -1);
        else
            rn__kwriters_add(s->plan->brokers, s->plan->topic, -1);
    }
    return rc;
}

static void
ksink_close(rn_op_t *op)
{
    ksink_t *s = rn__op_data(op);
    if (s != NULL && s->rk != NULL && rd_kafka_outq_len(s->rk) > 0) {
        /* A failed or cancelled job: what is in flight may or may not
         * arrive; the checkpoint it restarts from sends it again. */
        rd_kafka_flush(s->rk, 5000);
    }
    ksink_free(s);
    rn__op_set_data(op, NULL);
}

const rn_opclass_t rn__sink_kafka = {
    .type = "kafka",
    .section = RN_SINK,
    .keys = keys,
    .plan = ksink_plan,
    .open = ksink_open,
    .process = ksink_process,
    .finish = ksink_finish,
    .close = ksink_close,
    .snapshot = ksink_snapshot,
    .complete = ksink_complete,
};
