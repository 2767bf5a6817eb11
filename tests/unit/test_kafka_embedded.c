/*
 * tests/unit/test_kafka_embedded.c: the exactly-once Kafka sink under
 * request errors that a real broker cannot be made to give: librdkafka's
 * mock cluster (brokers: embedded) answers InitProducerId,
 * AddPartitionsToTxn, Produce and EndTxn with injected errors. Each
 * error is handled as what it is: retriable ones are tried again,
 * abortable ones abort the transaction and send the epoch again, fatal
 * ones stop the job, and the next run resumes from its checkpoint. In
 * every case a read_committed reader of the topic afterwards sees every
 * generated record exactly once.
 *
 * The bounded tail: a reader that falls behind what the cluster keeps of
 * a partition stops the job with "records lost", made certain by slowing
 * the broker's answers (its RTT) while records are written past the tail.
 *
 * The mixed case: one sink reaches the end of its input while another
 * still runs and then fails fatally. The finished one must not commit its
 * last records before the job has ended (the restart would find its
 * commit log ahead of the checkpoint it resumes from); the restart sends
 * them, once.
 */
#include "rn_check.h"
#include "checkpoint/ckpt.h"
#include "connectors/kafka_int.h"

#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* Kafka protocol API keys (librdkafka's rdkafka_protocol.h is private). */
enum { API_PRODUCE = 0, API_INIT_PRODUCER_ID = 22, API_ADD_PARTITIONS_TO_TXN = 24,
       API_END_TXN = 26 };

#define NEVENTS 3000
#define NSHORT 300
#define NLONG 40000

typedef struct inj {
    const char *name;
    int16_t api;
    rd_kafka_resp_err_t code;
    int count;
    bool fatal; /* the first run fails; the second resumes */
} inj_t;

static const inj_t cases[] = {
    {"init-retriable", API_INIT_PRODUCER_ID, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, 3,
     false},
    {"addparts-retriable", API_ADD_PARTITIONS_TO_TXN, RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
     3, false},
    {"addparts-abortable", API_ADD_PARTITIONS_TO_TXN,
     RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 1, false},
    {"produce-retriable", API_PRODUCE, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 3, false},
    {"endtxn-retriable", API_END_TXN, RD_KAFKA_RESP_ERR_NOT_COORDINATOR, 2, false},
    {"endtxn-fatal", API_END_TXN, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, 1, true},
};

static rn_code_t
run_job(const inj_t *c, const char *dir, rn_error_t *err)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "name: inj-%s\n"
             "parallelism: 2\n"
             "checkpoints: {interval: 200ms, dir: '%s/ck'}\n"
             "sources:\n"
             "  gen: {type: datagen, generator: sequence, events: %d, rate: 3000, keys: 7,"
             " interval: 1ms, event_time: ts}\n"
             "sinks:\n"
             "  k: {type: kafka, inputs: [gen], brokers: embedded, topic: 'out-%s',"
             " format: json, delivery: exactly-once, key: [key]}\n",
             c->name, dir, NEVENTS, c->name);
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "job.yaml", err);
    ck_assert_msg(root != NULL, "%s", err->msg);
    rn_graph_t *g = rn_graph_from_conf(root, err);
    ck_assert_msg(g != NULL, "%s", err->msg);
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    opts.workers = 2;
    rn_job_t *job = rn_job_new(g, &opts, err);
    ck_assert_msg(job != NULL, "%s", err->msg);
    rn_code_t rc = rn_job_run(job, err);
    rn_job_destroy(job);
    return rc;
}

/* Reads the topic read_committed to its end: counts[id] += 1 per record,
 * ids below nids. */
static void
read_back(const char *bootstrap, const char *topic, int *counts, long nids)
{
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    ck_assert_int_eq(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(c, "group.id", "inj-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(c, "isolation.level", "read_committed", errstr, sizeof(errstr));
    rd_kafka_conf_set(c, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    ck_assert_msg(rk != NULL, "%s", errstr);
    rd_kafka_poll_set_consumer(rk);
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    ck_assert_int_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    int eofs = 0;
    for (int idle = 0; eofs < nparts && idle < 300;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL) {
            idle++;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else {
            ck_assert_msg(m->err == RD_KAFKA_RESP_ERR_NO_ERROR, "%s",
                          rd_kafka_message_errstr(m));
            char buf[256];
            size_t n = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
            memcpy(buf, m->payload, n);
            buf[n] = '\0';
            const char *p = strstr(buf, "\"id\":");
            ck_assert_msg(p != NULL, "a record without an id: %s", buf);
            long id = strtol(p + 5, NULL, 10);
            ck_assert_msg(id >= 0 && id < nids, "id %ld", id);
            counts[id]++;
        }
        rd_kafka_message_destroy(m);
    }
    ck_assert_int_eq(eofs, nparts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

START_TEST(test_injected_errors)
{
    const inj_t *c = &cases[_i];
    rn_error_t err = RN_ERROR_INIT;
    char topic[128], dir[512], cmd[1100];
    snprintf(topic, sizeof(topic), "out-%s", c->name);
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/kinj-%s-%d", tmp ? tmp : "/tmp", c->name, (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p -m 700 '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    /* A reference of the test's own: the cluster outlives the jobs. */
    const char *name = topic;
    char *bootstrap = rn__kembed_acquire(&name, NULL, 1, &err);
    ck_assert_msg(bootstrap != NULL, "%s", err.msg);
    rd_kafka_mock_cluster_t *mc = rn__kembed_cluster();
    rd_kafka_resp_err_t errs[8];
    for (int i = 0; i < c->count; i++)
        errs[i] = c->code;
    rd_kafka_mock_push_request_errors_array(mc, c->api, (size_t)c->count, errs);

    rn_code_t rc = run_job(c, dir, &err);
    if (c->fatal) {
        ck_assert_msg(rc != RN_OK, "%s: the job went on after a fatal error", c->name);
        ck_assert_msg(strstr(err.msg, "fatal") != NULL, "%s: %s", c->name, err.msg);
        rd_kafka_mock_clear_request_errors(mc, c->api);
        err = (rn_error_t)RN_ERROR_INIT;
        rc = run_job(c, dir, &err); /* resumes from the checkpoint */
    }
    ck_assert_msg(rc == RN_OK, "%s: %s", c->name, err.msg);
    /* Every injected error was taken. */
    rd_kafka_mock_clear_request_errors(mc, c->api);

    int *counts = rn_xcalloc(NEVENTS, sizeof(int));
    read_back(bootstrap, topic, counts, NEVENTS);
    int missing = 0, twice = 0;
    for (int i = 0; i < NEVENTS; i++) {
        missing += counts[i] == 0;
        twice += counts[i] > 1;
    }
    ck_assert_msg(missing == 0 && twice == 0, "%s: %d records missing, %d more than once",
                  c->name, missing, twice);
    rn_free(counts);
    rn_free(bootstrap);
    rn__kembed_release();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- one sink finished, another fails ------------------------------------ */

static rn_job_t *
mixed_job(const char *dir, rn_error_t *err)
{
    char yaml[2048];
    /* short ends at once; long is held to 2000 records a second (20 s),
     * so it runs on well after short finished, whatever the load. */
    snprintf(yaml, sizeof(yaml),
             "name: mixed\n"
             "checkpoints: {interval: 500ms, dir: '%s/ck'}\n"
             "sources:\n"
             "  short: {type: datagen, generator: sequence, events: %d, keys: 7, interval: 1ms,"
             " event_time: ts}\n"
             "  long: {type: datagen, generator: sequence, events: %d, rate: 2000, keys: 7,"
             " interval: 1ms, event_time: ts}\n"
             "sinks:\n"
             "  k: {type: kafka, inputs: [short], brokers: embedded, topic: mixed-short,"
             " format: json, delivery: exactly-once, key: [key]}\n"
             "  b: {type: kafka, inputs: [long], brokers: embedded, topic: mixed-long,"
             " format: json, delivery: exactly-once, key: [key]}\n",
             dir, NSHORT, NLONG);
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "job.yaml", err);
    ck_assert_msg(root != NULL, "%s", err->msg);
    rn_graph_t *g = rn_graph_from_conf(root, err);
    ck_assert_msg(g != NULL, "%s", err->msg);
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    opts.workers = 2;
    rn_job_t *job = rn_job_new(g, &opts, err);
    ck_assert_msg(job != NULL, "%s", err->msg);
    return job;
}

typedef struct runner {
    rn_job_t *job;
    rn_error_t err;
    rn_code_t rc;
    _Atomic int done;
} runner_t;

static void *
run_thread(void *arg)
{
    runner_t *r = arg;
    r->rc = rn_job_run(r->job, &r->err);
    r->done = 1;
    return NULL;
}

/* Whether a completed checkpoint in dir/ck records sink k as finished. */
static bool
k_finished_in_a_checkpoint(const char *dir)
{
    char root[600];
    snprintf(root, sizeof(root), "%s/ck", dir);
    int64_t *ids = NULL, max_seen = 0;
    size_t n = 0;
    rn_error_t err = RN_ERROR_INIT;
    bool found = false;
    if (rn__ckpt_list(root, &ids, &n, &max_seen, &err) != RN_OK)
        return false;
    for (size_t i = 0; i < n && !found; i++) {
        json_t *meta = rn__ckpt_read_meta(root, ids[i], &err);
        size_t k;
        json_t *part;
        json_array_foreach(json_object_get(meta, "parts"), k, part) {
            found = found || (strcmp(json_string_value(json_object_get(part, "node")), "k") == 0 &&
                              json_is_true(json_object_get(part, "finished")));
        }
        json_decref(meta);
    }
    rn_free(ids);
    return found;
}

static int
count_ids(const int *counts, int n, int *twice)
{
    int seen = 0;
    *twice = 0;
    for (int i = 0; i < n; i++) {
        seen += counts[i] > 0;
        *twice += counts[i] > 1;
    }
    return seen;
}

START_TEST(test_finished_sink_waits_for_the_job)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512], cmd[1100];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/kmixed-%d", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p -m 700 '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *names[2] = {"mixed-short", "mixed-long"};
    char *bootstrap = rn__kembed_acquire(names, NULL, 2, &err);
    ck_assert_msg(bootstrap != NULL, "%s", err.msg);
    rd_kafka_mock_cluster_t *mc = rn__kembed_cluster();

    runner_t r = {.job = mixed_job(dir, &err), .err = RN_ERROR_INIT};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_thread, &r), 0);
    /* short finished and a checkpoint recorded it, while long runs on. A
     * deadline for a hang only. */
    for (int i = 0; i < 6000 && !r.done && !k_finished_in_a_checkpoint(dir); i++) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(!r.done, "the job ended before its short sink was seen finished: %s",
                  r.err.msg);
    ck_assert_msg(k_finished_in_a_checkpoint(dir), "no checkpoint recorded sink k finished");
    /* Its last records (after its last barrier: at least the last batch,
     * which comes with the end) are not visible yet. */
    int *counts = rn_xcalloc(NLONG, sizeof(int));
    int twice;
    read_back(bootstrap, "mixed-short", counts, NLONG);
    int visible = count_ids(counts, NSHORT, &twice);
    ck_assert_msg(visible < NSHORT,
                  "sink k committed all its %d records at the end of its input while sink b "
                  "could still fail",
                  visible);
    /* Now b fails fatally at its next commit. */
    rd_kafka_mock_push_request_errors(mc, API_END_TXN, 1, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
    pthread_join(th, NULL);
    rn_job_destroy(r.job);
    ck_assert_msg(r.rc != RN_OK && strstr(r.err.msg, "fatal") != NULL,
                  "the job did not fail fatally: %s", r.err.msg);
    rd_kafka_mock_clear_request_errors(mc, API_END_TXN);

    /* The restart resumes from the last checkpoint (k finished in it) and
     * sends what the commit log lacks: every record once, of both. */
    rn_job_t *job = mixed_job(dir, &err);
    err = (rn_error_t)RN_ERROR_INIT;
    rn_code_t rc = rn_job_run(job, &err);
    rn_job_destroy(job);
    ck_assert_msg(rc == RN_OK, "the restart: %s", err.msg);
    memset(counts, 0, NLONG * sizeof(int));
    read_back(bootstrap, "mixed-short", counts, NLONG);
    visible = count_ids(counts, NSHORT, &twice);
    ck_assert_msg(visible == NSHORT && twice == 0, "sink k: %d of %d records, %d twice", visible,
                  NSHORT, twice);
    memset(counts, 0, NLONG * sizeof(int));
    read_back(bootstrap, "mixed-long", counts, NLONG);
    visible = count_ids(counts, NLONG, &twice);
    ck_assert_msg(visible == NLONG && twice == 0, "sink b: %d of %d records, %d twice", visible,
                  NLONG, twice);
    rn_free(counts);
    rn_free(bootstrap);
    rn__kembed_release();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- the bounded tail ------------------------------------------------------ */

static void
produce_json(rd_kafka_t *p, int from, int n, size_t pad)
{
    char *buf = rn_xmalloc(pad + 200);
    for (int i = from; i < from + n; i++) {
        int len = snprintf(buf, 200, "{\"id\":%d,\"key\":\"k%d\",\"value\":1,\"ts\":%lld,\"pad\":\"",
                           i, i % 5, 1700000000000LL + i);
        memset(buf + len, 'x', pad);
        len += (int)pad;
        len += snprintf(buf + len, 8, "\"}");
        ck_assert_int_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("tail"), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE(buf, (size_t)len),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rn_free(buf);
}

START_TEST(test_bounded_tail_loss_stops_the_job)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512], cmd[1100], yaml[1024], errstr[512];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/ktail-%d", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p -m 700 '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *name = "tail";
    int one = 1;
    char *bootstrap = rn__kembed_acquire(&name, &one, 1, &err);
    ck_assert_msg(bootstrap != NULL, "%s", err.msg);
    rd_kafka_mock_cluster_t *mc = rn__kembed_cluster();

    /* A writer of its own that keeps many requests in flight: while the
     * broker answers slowly, it still puts megabytes into the partition
     * (a request is appended when it arrives, answered an RTT later). */
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    ck_assert_int_eq(rd_kafka_conf_set(pc, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(pc, "max.in.flight.requests.per.connection", "1000",
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(pc, "linger.ms", "50", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr));
    ck_assert_msg(p != NULL, "%s", errstr);
    produce_json(p, 0, 10, 0);
    ck_assert_int_eq(rd_kafka_flush(p, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);

    snprintf(yaml, sizeof(yaml),
             "name: tail\n"
             "sources:\n"
             "  in: {type: kafka, brokers: embedded, topic: tail,"
             " schema: {id: int, key: string, value: int, ts: timestamp}, event_time: ts}\n"
             "sinks:\n"
             "  out: {type: file, inputs: [in], path: '%s/out.jsonl'}\n",
             dir);
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "job.yaml", &err);
    ck_assert_msg(root != NULL, "%s", err.msg);
    rn_graph_t *g = rn_graph_from_conf(root, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    runner_t r = {.job = rn_job_new(g, &opts, &err), .err = RN_ERROR_INIT};
    ck_assert_msg(r.job != NULL, "%s", err.msg);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_thread, &r), 0);
    /* The reader has the first records (deadlines catch hangs only). */
    rn_job_stats_t st;
    struct timespec ms20 = {0, 20 * 1000000};
    for (int i = 0; i < 6000 && !r.done; i++) {
        rn_job_stats(r.job, &st);
        if (st.records_in >= 10)
            break;
        nanosleep(&ms20, NULL);
    }
    ck_assert_msg(!r.done, "the reader ended: %s", r.err.msg);
    /* Each fetch of the reader now takes 3 s; 20 MB of records go in
     * meanwhile, four times the tail the cluster keeps of a partition. */
    ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(mc, 1, 3000), RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_json(p, 10, 2000, 10000);
    ck_assert_int_eq(rd_kafka_flush(p, 120000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 6000 && !r.done; i++)
        nanosleep(&ms20, NULL);
    if (!r.done)
        rn_job_cancel(r.job);
    pthread_join(th, NULL);
    ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(mc, 1, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rn_job_destroy(r.job);
    rd_kafka_destroy(p);
    ck_assert_msg(r.rc != RN_OK &&
                      strstr(r.err.msg, "records lost: the embedded cluster keeps a bounded tail") !=
                          NULL,
                  "a reader behind the tail: %s (%s)", rn_code_name(r.rc), r.err.msg);
    rn_free(bootstrap);
    rn__kembed_release();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *
kafka_embedded_suite(void)
{
    Suite *s = suite_create("kafka_embedded");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_injected_errors, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    suite_add_tcase(s, tc);
    TCase *mixed = tcase_create("mixed");
    tcase_set_timeout(mixed, 300);
    tcase_add_test(mixed, test_finished_sink_waits_for_the_job);
    suite_add_tcase(s, mixed);
    TCase *tail = tcase_create("tail");
    tcase_set_timeout(tail, 300);
    tcase_add_test(tail, test_bounded_tail_loss_stops_the_job);
    suite_add_tcase(s, tail);
    return s;
}

RN_CHECK_MAIN(kafka_embedded_suite)
