/*
 * connectors/kafka_source.c: the "kafka" source: records of a topic, JSON,
 * CSV, raw or a plugin's format, into rows of a declared schema.
 *
 * Design: partitions are assigned, not subscribed: partition p goes to
 * instance p % parallelism, so that who reads what is decided by the job,
 * not by a group rebalance, and a checkpoint's offsets mean the same after
 * a restart. Offsets live in checkpoints: each instance's position is the
 * next offset of each of its partitions; on restore (also with another
 * parallelism: the positions of every old instance are merged by
 * partition) reading resumes there, and `start` (earliest | latest) only
 * says where a partition without a position begins. When a checkpoint is
 * complete its offsets are committed to the consumer group (`group`,
 * default "runnel.<source>"), for monitoring tools; they are never read
 * back. `bounded: latest` reads up to the end offsets the partitions had
 * when the instance opened and then ends (a backfill, or a test).
 *
 * A record that does not decode follows on_error as in the file source
 * (the side output "errors": error, raw, location); its location is
 * "TOPIC/PARTITION@OFFSET".
 *
 * Watermarks per partition (split_bound): the instance's watermark
 * follows its slowest partition that is neither idle nor finished.
 *
 * Partitions added to the topic while the job runs are found every
 * `partition_discovery` (10 s; 0: never) and read from their start.
 *
 * `metadata` appends fields filled from the record rather than its value:
 * key (string), timestamp (the record's, epoch ms), partition, offset and
 * headers (a JSON object of strings).
 *
 * `format: raw` puts the value as it is into the schema's one string
 * field (a record without a value: null). A plugin's format decodes the
 * value (format_plugin.c): its RN_EDATA is a bad record, any other error
 * stops the job with the record's TOPIC/PARTITION@OFFSET.
 *
 * `brokers: embedded`: kafka_embedded.c. Dead letters to a topic: the
 * kafka sink's `dead_letters` takes the `errors` output.
 *
 * @thread plan: control; an instance: its task.
 */
#include "connectors/decode.h"
#include "connectors/kafka_int.h"

#include <inttypes.h>
#include <stdlib.h>

enum { START_EARLIEST, START_LATEST };
/* The value's format: rn_format_t's, and raw (the value as it is, into the
 * schema's one string field). */
enum { KFORMAT_JSON = RN_FORMAT_JSON, KFORMAT_CSV = RN_FORMAT_CSV, KFORMAT_RAW };

static const char *const format_names[] = {"json", "csv", "raw", NULL};

static const char *const start_names[] = {"earliest", "latest", NULL};
static const char *const bounded_names[] = {"latest", NULL};
static const char *const keys[] = {"brokers",  "topic",      "group",   "start",
                                   "format",   "schema",     "on_error", "properties",
                                   "bounded",  "partition_discovery", "metadata", NULL};

/* Kafka record metadata a job may have as fields (`metadata`), with their
 * types. */
enum { META_KEY, META_TIMESTAMP, META_PARTITION, META_OFFSET, META_HEADERS, META_N };
static const char *const meta_names[] = {"key", "timestamp", "partition", "offset", "headers",
                                         NULL};
static const rn_type_t meta_types[] = {RN_TYPE_STRING, RN_TYPE_TIMESTAMP, RN_TYPE_INT,
                                       RN_TYPE_INT, RN_TYPE_STRING};

/* How long open() waits for the topic's metadata and end offsets. */
#define META_TIMEOUT_MS 30000
/* How long a discovery of new partitions may hold the task up: a broker
 * that does not answer by then is asked again at the next interval. */
#define DISCOVERY_TIMEOUT_MS 500

typedef struct ksrc_plan {
    char *brokers, *topic, *group; /* owned */
    rn_schema_t *payload;          /* the declared schema: what a message's value holds; owned */
    int meta[META_N];              /* output field of each metadata, or -1 */
    rn_kafka_props_t props;
    int format;                /* KFORMAT_* */
    const rn_format_fn_t *ext; /* a plugin's format (format then json), or NULL */
    int start;
    bool bounded;
    int64_t discovery_ms; /* partition_discovery; 0: off */
    int on_error;
    int et_field;    /* event-time field of the main output, or -1 */
    int errors_port; /* side output "errors", or -1 */
    bool embedded;   /* brokers: embedded (brokers is its address) */
} ksrc_plan_t;

typedef struct kpart {
    int32_t id;
    int64_t next;    /* offset of the next record to emit; < 0: from `start` */
    int64_t end;     /* bounded: the end offset at open */
    int64_t max_ts;  /* highest event time read from it (RN_TS_MIN: none yet) */
    int64_t last_ms; /* processing time of its last record (or of open) */
} kpart_t;

typedef struct ksrc {
    const ksrc_plan_t *plan;
    const rn_schema_t *schema; /* main output; borrowed from the plan */
    char what[200];
    rd_kafka_t *rk;
    rd_kafka_queue_t *wakeq; /* the consumer queue whose arrivals wake the task */
    kpart_t *parts; /* this instance's partitions, by id */
    size_t nparts;
    int64_t *snap_next; /* the positions of checkpoint snap_id, for the group commit */
    int64_t snap_id;
    int64_t idle_ms; /* watermark.idle_timeout; 0: never idle */
    int64_t discovered_ms; /* processing time of the last discovery */
    int parallelism, instance;
    int64_t now_ms;  /* processing time of this poll */
    /* Bounded: the ends are read once the job's own sinks to the topic
     * finished (kafka_embedded.c, kafka_writers.c); until then they are
     * open. */
    bool ends_wait;
    rn_csv_dec_t *csv;
    rn_bad_records_t bad;
    char errbuf[RN_ERROR_MSG_MAX];
} ksrc_t;

/* ---- plan ---------------------------------------------------------------- */

static void
ksrc_plan_free(void *p)
{
    ksrc_plan_t *plan = p;
    if (plan == NULL)
        return;
    if (plan->embedded)
        rn__kembed_release();
    rn_free(plan->brokers);
    rn_free(plan->topic);
    rn_free(plan->group);
    rn__schema_destroy(plan->payload);
    rn__kafka_props_fini(&plan->props);
    rn_free(plan);
}

/* `metadata: {key: NAME, timestamp: NAME, partition: NAME, offset: NAME,
 * headers: NAME}`: fields appended to the declared schema, filled from
 * the record rather than its value. */
static rn_code_t
add_metadata(const rn_conf_t *conf, const char *what, ksrc_plan_t *plan, rn_schema_t *schema,
             rn_error_t *err)
{
    for (int k = 0; k < META_N; k++)
        plan->meta[k] = -1;
    const rn_conf_t *map = rn_conf_get(conf, "metadata");
    if (map == NULL)
        return RN_OK;
    if (rn_conf_kind(map) != RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, map,
                            "%s: metadata must be a map of key | timestamp | partition | offset "
                            "| headers: field name",
                            what);
    rn_code_t rc = rn__conf_check_keys(map, meta_names, what, err);
    if (rc != RN_OK)
        return rc;
    for (size_t i = 0; i < rn_conf_len(map); i++) {
        const char *kind = rn_conf_key_at(map, i);
        const char *name = rn_conf_scalar(rn_conf_at(map, i));
        int k = 0;
        while (strcmp(meta_names[k], kind) != 0)
            k++;
        if (name == NULL || *name == '\0')
            return rn__conf_err(err, RN_EINVAL, rn_conf_at(map, i),
                                "%s: metadata %s: give the name of the field", what, kind);
        if (rn__schema_find(schema, name) >= 0)
            return rn__conf_err(err, RN_EINVAL, rn_conf_at(map, i),
                                "%s: metadata %s: field '%s' is in the schema already", what,
                                kind, name);
        if ((rc = rn__schema_add(schema, name, meta_types[k], err)) != RN_OK)
            return rc;
        plan->meta[k] = (int)schema->nfields - 1;
    }
    return RN_OK;
}

static rn_code_t
ksrc_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const char *brokers = NULL, *topic = NULL, *group = NULL;
    int format, start, bounded = -1;
    const rn_format_fn_t *ext;
    char what[160];
    rn_code_t rc;

    rn__conn_what(pc, "kafka source", what, sizeof(what));
    if (rn__conf_require(conf, "brokers", what, err) == NULL ||
        rn__conf_require(conf, "topic", what, err) == NULL)
        return err ? err->code : RN_EINVAL;
    if ((rc = rn__conf_str(conf, "brokers", NULL, &brokers, err)) != RN_OK ||
        (rc = rn__conf_str(conf, "topic", NULL, &topic, err)) != RN_OK ||
        (rc = rn__conf_str(conf, "group", NULL, &group, err)) != RN_OK ||
        (rc = rn__conn_format(conf, what, format_names, KFORMAT_JSON, RN_FMT_DECODE, &format,
                              &ext, err)) != RN_OK ||
        (rc = rn__conf_enum(conf, "start", start_names, START_EARLIEST, &start, err)) != RN_OK ||
        (rc = rn__conf_enum(conf, "bounded", bounded_names, -1, &bounded, err)) != RN_OK)
        return rc;
    int64_t discovery_ms;
    if ((rc = rn__conf_duration_ms(conf, "partition_discovery", 10000, &discovery_ms, err)) !=
        RN_OK)
        return rc;
    if (brokers == NULL || *brokers == '\0')
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "brokers"),
                            "%s: brokers is empty; give host:port[,host:port...]", what);
    if (topic == NULL || *topic == '\0')
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "topic"), "%s: topic is empty",
                            what);
    ksrc_plan_t *plan = rn_xcalloc(1, sizeof(*plan));
    if ((rc = rn__kafka_props_read(conf, what, rn__pc_allow_code_properties(pc), &plan->props,
                                   err)) != RN_OK) {
        rn_free(plan);
        return rc;
    }
    if (strcmp(brokers, "embedded") == 0) {
        if ((plan->brokers = rn__kembed_acquire(&topic, NULL, 1, err)) == NULL) {
            ksrc_plan_free(plan);
            return rn__errctx(err, "%s", what);
        }
        plan->embedded = true;
    } else {
        plan->brokers = rn_xstrdup(brokers);
    }
    plan->payload = rn__conn_schema(conf, what, err);
    if (plan->payload == NULL) {
        ksrc_plan_free(plan);
        return err ? err->code : RN_EINVAL;
    }
    rn_schema_t *schema = rn__schema_copy(plan->payload);
    if ((rc = add_metadata(conf, what, plan, schema, err)) != RN_OK) {
        rn__schema_destroy(schema);
        ksrc_plan_free(plan);
        return rc;
    }
    if ((rc = rn__pc_add_output(pc, NULL, schema, err)) != RN_OK) {
        ksrc_plan_free(plan);
        return rc;
    }
    plan->topic = rn_xstrdup(topic);
    if (group != NULL) {
        plan->group = rn_xstrdup(group);
    } else {
        size_t n = strlen(rn__pc_name(pc)) + 16;
        plan->group = rn_xmalloc(n);
        snprintf(plan->group, n, "runnel.%s", rn__pc_name(pc));
    }
    plan->format = format;
    plan->ext = ext;
    if (format == KFORMAT_RAW &&
        (plan->payload->nfields != 1 || plan->payload->fields[0].type != RN_TYPE_STRING)) {
        ksrc_plan_free(plan);
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "schema"),
                            "%s: format raw needs a schema of one string field (the value)",
                            what);
    }
    plan->start = start;
    plan->bounded = bounded >= 0;
    plan->discovery_ms = plan->bounded ? 0 : discovery_ms; /* bounded: the end is fixed */
    rn__pc_set_plan(pc, plan, ksrc_plan_free);
    if ((rc = rn__bad_plan(pc, &plan->on_error, &plan->errors_port, err)) != RN_OK)
        return rc;
    plan->et_field = rn__conn_event_time_field(pc, schema);
    rn__pc_set_bounded(pc, plan->bounded);
    return RN_OK;
}

/* ---- run time -------------------------------------------------------------- */

static void
ksrc_free(ksrc_t *st)
{
    if (st == NULL)
        return;
    if (st->wakeq != NULL) {
        rd_kafka_queue_cb_event_enable(st->wakeq, NULL, NULL);
        rd_kafka_queue_destroy(st->wakeq);
    }
    if (st->rk != NULL) {
        rd_kafka_consumer_close(st->rk);
        rd_kafka_destroy(st->rk);
    }
    rn_free(st->parts);
    rn_free(st->snap_next);
    rn__csv_dec_destroy(st->csv);
    rn_free(st);
}

static kpart_t *
find_part(ksrc_t *st, int32_t id)
{
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].id == id)
            return &st->parts[i];
    return NULL;
}

/* The restored positions: this instance's own, or on a change of
 * parallelism every old instance's, merged by partition. */
static rn_code_t
restore_positions(rn_op_t *op, ksrc_t *st, rn_error_t *err)
{
    const json_t *all = rn__op_restored_all(op);
    const json_t *own = rn__op_restored(op);
    json_t *list = json_array();
    if (all != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(all, i, v) json_array_append(list, json_object_get(v, "data"));
    } else if (own != NULL) {
        json_array_append(list, (json_t *)own);
    }
    size_t i;
    json_t *data;
    rn_code_t rc = RN_OK;
    json_array_foreach(list, i, data)
    {
        if (json_is_null(data))
            continue;
        const char *topic = json_string_value(json_object_get(data, "topic"));
        json_t *offs = json_object_get(data, "offsets");
        if (topic == NULL || !json_is_object(offs)) {
            rc = rn__errf(err, RN_ECORRUPT, "%s: the checkpoint's position is not one of a "
                                            "kafka source", st->what);
            break;
        }
        if (strcmp(topic, st->plan->topic) != 0) {
            rc = rn__errf(err, RN_EINVAL,
                          "%s: the checkpoint read topic '%s', this job reads '%s': start "
                          "without it, or give the source another name",
                          st->what, topic, st->plan->topic);
            break;
        }
        const char *k;
        json_t *off;
        json_object_foreach(offs, k, off)
        {
            char *end;
            long p = strtol(k, &end, 10);
            if (*end != '\0' || p < 0 || p > INT32_MAX || !json_is_integer(off) ||
                json_integer_value(off) < 0) {
                rc = rn__errf(err, RN_ECORRUPT, "%s: a bad offset in the checkpoint ('%s')",
                              st->what, k);
                break;
            }
            kpart_t *kp = find_part(st, (int32_t)p);
            if (kp != NULL)
                kp->next = json_integer_value(off);
        }
        if (rc != RN_OK)
            break;
    }
    json_decref(list);
    return rc;
}

/* This instance's partitions: p % parallelism == instance. */
static rn_code_t
list_partitions(ksrc_t *st, int instance, int parallelism, rn_error_t *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(st->rk, st->plan->topic, NULL);
    if (rkt == NULL)
        return rn__errf(err, RN_EINVAL, "%s: topic '%s': %s", st->what, st->plan->topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(st->rk, 0, rkt, &md, META_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rn__errf(err, RN_EIO, "%s: no metadata for topic '%s' from %s: %s", st->what,
                        st->plan->topic, st->plan->brokers, rd_kafka_err2str(e));
    rn_code_t rc = RN_OK;
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topics[0].partition_cnt == 0) {
        rc = rn__errf(err, RN_EINVAL, "%s: topic '%s' on %s: %s", st->what, st->plan->topic,
                      st->plan->brokers,
                      md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR
                          ? rd_kafka_err2str(md->topics[0].err)
                          : "no partitions");
    } else {
        int np = md->topics[0].partition_cnt;
        st->parts = rn_xcalloc((size_t)np, sizeof(*st->parts));
        for (int i = 0; i < np; i++) {
            int32_t id = md->topics[0].partitions[i].id;
            if (id % parallelism == instance)
                st->parts[st->nparts++] = (kpart_t){id, -1, -1, RN_TS_MIN, st->now_ms};
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Assigns the partitions at their positions (or `start`); bounded: reads
 * their end offsets first. */
static rn_code_t
assign(ksrc_t *st, rn_error_t *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)st->nparts);
    for (size_t i = 0; i < st->nparts; i++) {
        kpart_t *kp = &st->parts[i];
        if (st->plan->bounded && st->plan->embedded && rn__kembed_writing(st->plan->topic)) {
            st->ends_wait = true;
            kp->end = INT64_MAX;
            if (kp->next < 0)
                kp->next = 0; /* the cluster began empty with the job */
        } else if (st->plan->bounded) {
            /* The job's own sinks to the topic (a real broker) are still
             * writing: the end is taken when they finished (read_ends). */
            bool wait = rn__kwriters_busy(st->plan->brokers, st->plan->topic);
            int64_t lo, hi;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                st->rk, st->plan->topic, kp->id, &lo, &hi, META_TIMEOUT_MS);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                rd_kafka_topic_partition_list_destroy(l);
                return rn__errf(err, RN_EIO, "%s: end offset of %s/%" PRId32 ": %s", st->what,
                                st->plan->topic, kp->id, rd_kafka_err2str(e));
            }
            kp->end = wait ? INT64_MAX : hi;
            st->ends_wait = st->ends_wait || wait;
            /* From a known offset, so that "read up to end" can be told:
             * an empty partition (lo == hi) is read at once. */
            if (kp->next < 0)
                kp->next = st->plan->start == START_LATEST ? hi : lo;
        }
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(l, st->plan->topic, kp->id);
        tp->offset = kp->next >= 0 ? kp->next
                     : st->plan->start == START_LATEST ? RD_KAFKA_OFFSET_END
                                                       : RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(st->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rn__errf(err, RN_EIO, "%s: assign: %s", st->what, rd_kafka_err2str(e));
    return RN_OK;
}

static rn_code_t
open_instance(rn_op_t *op, ksrc_t *st, rn_error_t *err)
{
    const ksrc_plan_t *plan = st->plan;
    rd_kafka_conf_t *c = rn__kafka_conf_new(plan->brokers, &plan->props, st->what, err);
    if (c == NULL)
        return err ? err->code : RN_EINVAL;
    char errstr[512];
    /* Offsets are the checkpoint's: nothing automatic. */
    rn_code_t rc;
    if ((rc = rn__kafka_set(c, "group.id", plan->group, st->what, err)) != RN_OK ||
        (rc = rn__kafka_set(c, "enable.auto.commit", "false", st->what, err)) != RN_OK ||
        (rc = rn__kafka_set(c, "enable.auto.offset.store", "false", st->what, err)) != RN_OK ||
        /* Embedded: a position the cluster's bounded tail no longer
         * holds stops the job (take()) rather than skipping records. */
        (rc = rn__kafka_set(c, "auto.offset.reset",
                            plan->embedded                ? "error"
                            : plan->start == START_LATEST ? "latest"
                                                          : "earliest",
                            st->what, err)) != RN_OK ||
        /* Bounded: the end of a partition is known by the event (take()). */
        (rc = rn__kafka_set(c, "enable.partition.eof", plan->bounded ? "true" : "false",
                            st->what, err)) != RN_OK) {
        rd_kafka_conf_destroy(c);
        return rc;
    }
    st->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    if (st->rk == NULL) {
        rd_kafka_conf_destroy(c);
        return rn__errf(err, RN_EINVAL, "%s: %s", st->what, errstr);
    }
    rd_kafka_poll_set_consumer(st->rk);
    if ((rc = list_partitions(st, rn__op_instance(op), rn__op_parallelism(op), err)) != RN_OK ||
        (rc = restore_positions(op, st, err)) != RN_OK)
        return rc;
    st->snap_next = rn_xcalloc(st->nparts ? st->nparts : 1, sizeof(*st->snap_next));
    st->snap_id = -1;
    return assign(st, err);
}

/* CSV messages have no header: their cells are the declared fields in
 * order, as if a header named them. */
static rn_code_t
csv_open(ksrc_t *st, rn_error_t *err)
{
    const rn_schema_t *p = st->plan->payload;
    if ((st->csv = rn__csv_dec_new(p)) == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    size_t cap = 2, len = 0;
    for (uint32_t i = 0; i < p->nfields; i++)
        cap += 2 * strlen(p->fields[i].name) + 3;
    char *h = rn_xmalloc(cap);
    for (uint32_t i = 0; i < p->nfields; i++) {
        if (i > 0)
            h[len++] = ',';
        h[len++] = '"';
        for (const char *c = p->fields[i].name; *c != '\0'; c++) {
            if (*c == '"')
                h[len++] = '"';
            h[len++] = *c;
        }
        h[len++] = '"';
    }
    rn_code_t rc = rn__csv_dec_header(st->csv, h, len, st->errbuf, sizeof(st->errbuf));
    rn_free(h);
    return rc == RN_OK ? RN_OK : rn__errf(err, rc, "%s: %s", st->what, st->errbuf);
}

static rn_code_t
ksrc_open(rn_op_t *op, rn_error_t *err)
{
    const ksrc_plan_t *plan = rn__op_plan(op);
    ksrc_t *st = rn_calloc(1, sizeof(*st));
    if (st == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    st->plan = plan;
    st->schema = rn__op_schema(op, 0);
    rn__bad_init(&st->bad, plan->on_error, plan->errors_port);
    snprintf(st->what, sizeof(st->what), "kafka source '%s' (instance %d)", rn__op_name(op),
             rn__op_instance(op));
    int64_t ooo;
    rn__op_watermark_conf(op, &ooo, &st->idle_ms);
    st->now_ms = rn__op_now(op);
    st->discovered_ms = st->now_ms;
    st->parallelism = rn__op_parallelism(op);
    st->instance = rn__op_instance(op);
    rn_code_t rc = RN_OK;
    if (plan->format == KFORMAT_CSV)
        rc = csv_open(st, err);
    if (rc == RN_OK)
        rc = open_instance(op, st, err);
    /* close() is not called after a failed open(). */
    if (rc != RN_OK) {
        ksrc_free(st);
        return rc;
    }
    rn__op_set_data(op, st);
    return RN_OK;
}

static void
ksrc_close(rn_op_t *op)
{
    ksrc_t *st = rn__op_data(op);
    if (st != NULL)
        rn__bad_close(op, &st->bad);
    ksrc_free(st);
    rn__op_set_data(op, NULL);
}

/* ---- checkpoints ------------------------------------------------------------ */

/* {"topic": T, "offsets": {"P": next offset, ...}}: partitions not read
 * yet are left out (they start from `start` again). */
static rn_code_t
ksrc_snapshot(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    (void)file;
    ksrc_t *st = rn__op_data(op);
    if (st == NULL)
        return RN_OK;
    json_t *offs = json_object();
    for (size_t i = 0; i < st->nparts; i++) {
        st->snap_next[i] = st->parts[i].next;
        if (st->parts[i].next < 0)
            continue;
        char k[16];
        snprintf(k, sizeof(k), "%" PRId32, st->parts[i].id);
        json_object_set_new(offs, k, json_integer(st->parts[i].next));
    }
    st->snap_id = id;
    *data = json_pack("{s:s, s:o}", "topic", st->plan->topic, "offsets", offs);
    return *data != NULL ? RN_OK : rn__errf(err, RN_ENOMEM, "out of memory");
}

/* Checkpoint id is durable: its offsets go to the consumer group, for
 * monitoring (asynchronously; a failure is only logged). */
static rn_code_t
ksrc_complete(rn_op_t *op, int64_t id, rn_error_t *err)
{
    (void)err;
    ksrc_t *st = rn__op_data(op);
    if (st == NULL || id != st->snap_id)
        return RN_OK;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)st->nparts);
    for (size_t i = 0; i < st->nparts; i++)
        if (st->snap_next[i] >= 0)
            rd_kafka_topic_partition_list_add(l, st->plan->topic, st->parts[i].id)->offset =
                st->snap_next[i];
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(st->rk, l, 1);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            RN_LOG_WARN(rn__op_name(op), "committing checkpoint %lld's offsets to group '%s': %s",
                        (long long)id, st->plan->group, rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
    return RN_OK;
}

/* ---- records ----------------------------------------------------------------- */

/* The headers as a JSON object of strings (a value that is not UTF-8, or
 * absent, is null), into arena. */
static rn_value_t
headers_value(const rd_kafka_message_t *m, rn_arena_t *arena)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == NULL)
        return rn__val_null();
    json_t *o = json_object();
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        json_t *v = val != NULL ? json_stringn(val, size) : NULL;
        json_object_set_new(o, name, v != NULL ? v : json_null());
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (text == NULL)
        return rn__val_null();
    size_t n = strlen(text);
    rn_value_t r = rn__val_str(rn__arena_strdup(arena, text, n), (uint32_t)n);
    free(text);
    return r;
}

/* The metadata fields of row, from m. */
static void
fill_metadata(const ksrc_plan_t *plan, const rd_kafka_message_t *m, rn_value_t *row,
              rn_arena_t *arena)
{
    if (plan->meta[META_KEY] >= 0)
        row[plan->meta[META_KEY]] =
            m->key != NULL ? rn__val_str(rn__arena_strdup(arena, m->key, m->key_len),
                                         (uint32_t)m->key_len)
                           : rn__val_null();
    if (plan->meta[META_TIMESTAMP] >= 0) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        row[plan->meta[META_TIMESTAMP]] = ts >= 0 ? rn__val_int(ts) : rn__val_null();
    }
    if (plan->meta[META_PARTITION] >= 0)
        row[plan->meta[META_PARTITION]] = rn__val_int(m->partition);
    if (plan->meta[META_OFFSET] >= 0)
        row[plan->meta[META_OFFSET]] = rn__val_int(m->offset);
    if (plan->meta[META_HEADERS] >= 0)
        row[plan->meta[META_HEADERS]] = headers_value(m, arena);
}

/* @returns RN_OK, RN_EDATA (a bad record: the reason in st->errbuf) or
 * another error in err (a plugin's format failing: the job stops). */
static rn_code_t
decode(ksrc_t *st, const rd_kafka_message_t *m, rn_value_t *row, rn_arena_t *arena,
       rn_error_t *err)
{
    const ksrc_plan_t *plan = st->plan;
    const char *rec = m->payload != NULL ? m->payload : "";
    size_t len = m->len;
    rn_code_t rc;
    if (plan->format == KFORMAT_RAW) {
        row[0] = m->payload != NULL ? rn__val_str(rn__arena_strdup(arena, rec, len),
                                                  len > UINT32_MAX ? UINT32_MAX : (uint32_t)len)
                                    : rn__val_null();
        rc = RN_OK;
    } else if (plan->ext != NULL) {
        rc = rn__fmt_decode(plan->ext, plan->payload, rec, len, row, arena, st->errbuf,
                            sizeof(st->errbuf), err);
    } else if (plan->format == KFORMAT_CSV)
        rc = rn__csv_dec_record(st->csv, rec, len, row, arena, st->errbuf, sizeof(st->errbuf));
    else
        rc = rn__json_decode_line(plan->payload, rec, len, row, arena, st->errbuf,
                                  sizeof(st->errbuf));
    if (rc != RN_OK)
        return rc;
    fill_metadata(plan, m, row, arena);
    return rn__conn_check_event_time(st->schema, plan->et_field, row, st->errbuf,
                                     sizeof(st->errbuf));
}

/* A record that did not decode (reason in st->errbuf), per on_error. */
static rn_code_t
bad_record(rn_op_t *op, ksrc_t *st, const rd_kafka_message_t *m, rn_error_t *err)
{
    char where[300];
    snprintf(where, sizeof(where), "%s/%" PRId32 "@%" PRId64, st->plan->topic, m->partition,
             m->offset);
    return rn__bad_record(op, &st->bad, st->errbuf, m->payload, m->len, where, err);
}

/* Bounded: every partition reached its end offset. */
static bool
all_read(const ksrc_t *st)
{
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].next < st->parts[i].end)
            return false;
    return true;
}

/* One message or event of the consumer into b. */
static rn_code_t
take(rn_op_t *op, ksrc_t *st, rd_kafka_message_t *m, rn_batch_t *b, rn_error_t *err)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* Read to the end. Past the last record there may be offsets no
         * record is delivered for (a transaction's commit marker, records
         * of aborted transactions under read_committed): the position the
         * event gives counts, or a bounded read of a transactional topic
         * would never finish. */
        kpart_t *kp = find_part(st, m->partition);
        if (kp != NULL && m->offset > kp->next)
            kp->next = m->offset;
        return RN_OK;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Broker connection trouble is retried by librdkafka; anything
         * about the topic or the partitions stops the job. */
        if (m->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
            m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
            m->err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
            RN_LOG_WARN(rn__op_name(op), "%s: %s", st->plan->brokers, rd_kafka_message_errstr(m));
            return RN_OK;
        }
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && st->plan->embedded)
            return rn__errf(err, RN_EIO,
                            "%s: records lost: the embedded cluster keeps a bounded tail of "
                            "each partition and dropped records of %s/%" PRId32
                            " before they were read (%s); use a real broker for this volume",
                            st->what, st->plan->topic, m->partition, rd_kafka_message_errstr(m));
        return rn__errf(err, RN_EIO, "%s: %s", st->what, rd_kafka_message_errstr(m));
    }
    kpart_t *kp = find_part(st, m->partition);
    if (kp == NULL)
        return RN_OK; /* not ours: cannot happen with assign() */
    if (st->plan->bounded && m->offset >= kp->end)
        return RN_OK; /* written after the instance opened */
    kp->next = m->offset + 1;
    kp->last_ms = st->now_ms;
    rn_value_t *row = rn__batch_append(b, 0);
    rn_code_t rc = decode(st, m, row, &b->arena, err);
    if (rc == RN_OK) {
        int64_t ts = st->plan->et_field >= 0 ? row[st->plan->et_field].u.i : 0;
        b->ts[b->n - 1] = ts;
        if (ts > kp->max_ts)
            kp->max_ts = ts;
        return RN_OK;
    }
    b->n--;
    if (rc != RN_EDATA)
        return rn__errctx(err, "%s: %s/%" PRId32 "@%" PRId64, st->what, st->plan->topic,
                          m->partition, m->offset);
    return bad_record(op, st, m, err);
}

/* Partitions added to the topic while the job runs (partition_discovery):
 * this instance's new ones are read from their earliest offset, as in
 * Flink (every record of them is new to the job). A broker that does not
 * answer quickly is asked again at the next interval. */
static rn_code_t
discover(rn_op_t *op, ksrc_t *st, rn_error_t *err)
{
    st->discovered_ms = st->now_ms;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(st->rk, st->plan->topic, NULL);
    if (rkt == NULL)
        return RN_OK;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(st->rk, 0, rkt, &md, DISCOVERY_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return RN_OK;
    rn_code_t rc = RN_OK;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            int32_t id = md->topics[0].partitions[i].id;
            if (id % st->parallelism != st->instance || find_part(st, id) != NULL)
                continue;
            st->parts = rn_xrealloc(st->parts, (st->nparts + 1) * sizeof(*st->parts));
            st->snap_next = rn_xrealloc(st->snap_next, (st->nparts + 1) * sizeof(*st->snap_next));
            st->parts[st->nparts] = (kpart_t){id, -1, -1, RN_TS_MIN, st->now_ms};
            st->snap_next[st->nparts++] = -1;
            if (l == NULL)
                l = rd_kafka_topic_partition_list_new(4);
            rd_kafka_topic_partition_list_add(l, st->plan->topic, id)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            RN_LOG_INFO(rn__op_name(op), "new partition %s/%" PRId32 ", read from its start",
                        st->plan->topic, id);
        }
    }
    rd_kafka_metadata_destroy(md);
    if (l != NULL) {
        rd_kafka_error_t *ke = rd_kafka_incremental_assign(st->rk, l);
        if (ke != NULL) {
            rc = rn__errf(err, RN_EIO, "%s: assigning new partitions: %s", st->what,
                          rd_kafka_error_string(ke));
            rd_kafka_error_destroy(ke);
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    return rc;
}

static rn_code_t poll_batch(rn_op_t *op, ksrc_t *st, bool *done, rn_error_t *err);

/* Per-partition watermarks, as Flink's Kafka source has them: the
 * instance's watermark waits for its slowest partition, leaving out the
 * ones that are finished (bounded) or idle (nothing for idle_timeout). */
static void
split_bound(rn_op_t *op, const ksrc_t *st)
{
    if (st->plan->et_field < 0)
        return;
    int64_t bound = RN_TS_MAX;
    for (size_t i = 0; i < st->nparts; i++) {
        const kpart_t *kp = &st->parts[i];
        if (st->plan->bounded && kp->next >= kp->end)
            continue;
        if (st->idle_ms > 0 && st->now_ms - kp->last_ms >= st->idle_ms)
            continue;
        if (kp->max_ts < bound)
            bound = kp->max_ts;
    }
    rn__op_split_bound(op, bound);
}

/* librdkafka's thread: messages arrived in an empty queue. */
static void
on_arrival(rd_kafka_t *rk, void *opaque)
{
    (void)rk;
    rn__op_wake(opaque);
}

static rn_code_t
ksrc_poll(rn_op_t *op, bool *done, rn_error_t *err)
{
    ksrc_t *st = rn__op_data(op);
    st->now_ms = rn__op_now(op);
    rn_code_t rc;
    if (st->wakeq == NULL) {
        /* A worker with nothing to do sleeps up to 10 ms: end-to-end
         * latency. Woken when messages come instead (enabled here, where
         * the task runs: the worker is known). */
        st->wakeq = rd_kafka_queue_get_consumer(st->rk);
        if (st->wakeq != NULL)
            rd_kafka_queue_cb_event_enable(st->wakeq, on_arrival, op);
    }
    if (st->plan->discovery_ms > 0 && st->now_ms - st->discovered_ms >= st->plan->discovery_ms &&
        (rc = discover(op, st, err)) != RN_OK)
        return rc;
    rc = poll_batch(op, st, done, err);
    split_bound(op, st);
    return rc;
}

/* Bounded: the ends, once no sink of the job writes the topic. */
static rn_code_t
read_ends(ksrc_t *st, rn_error_t *err)
{
    if (st->plan->embedded ? rn__kembed_writing(st->plan->topic)
                           : rn__kwriters_busy(st->plan->brokers, st->plan->topic))
        return RN_OK;
    for (size_t i = 0; i < st->nparts; i++) {
        kpart_t *kp = &st->parts[i];
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            st->rk, st->plan->topic, kp->id, &lo, &hi, META_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            return rn__errf(err, RN_EIO, "%s: end offset of %s/%" PRId32 ": %s", st->what,
                            st->plan->topic, kp->id, rd_kafka_err2str(e));
        kp->end = hi;
    }
    st->ends_wait = false;
    return RN_OK;
}

static rn_code_t
poll_batch(rn_op_t *op, ksrc_t *st, bool *done, rn_error_t *err)
{
    rn_code_t erc;
    if (st->ends_wait && (erc = read_ends(st, err)) != RN_OK)
        return erc;
    if (st->plan->bounded && all_read(st)) {
        *done = true;
        return RN_OK;
    }
    rn_batch_t *b = rn__op_batch(op, 0);
    rn_code_t rc = RN_OK;
    bool any = false;
    while (rc == RN_OK && !rn__batch_full(b)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st->rk, 0);
        if (m == NULL)
            break;
        any = true;
        rc = take(op, st, m, b, err);
        rd_kafka_message_destroy(m);
        if (st->plan->bounded && all_read(st))
            break;
    }
    if (rc != RN_OK) {
        rn__op_free_batch(op, b);
        rn__bad_discard(op, &st->bad);
        return rc;
    }
    if ((rc = rn__bad_flush(op, &st->bad, err)) != RN_OK) {
        rn__op_free_batch(op, b);
        return rc;
    }
    if (b->n == 0) {
        rn__op_free_batch(op, b);
        return any ? RN_OK : RN_EAGAIN;
    }
    return rn__op_emit(op, 0, b, err);
}

const rn_opclass_t rn__src_kafka = {
    .type = "kafka",
    .section = RN_SOURCE,
    .keys = keys,
    .plan = ksrc_plan,
    .open = ksrc_open,
    .poll = ksrc_poll,
    .close = ksrc_close,
    .snapshot = ksrc_snapshot,
    .complete = ksrc_complete,
};
