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
 */
#include "rn_check.h"
#include "connectors/kafka_int.h"

#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

/* Kafka protocol API keys (librdkafka's rdkafka_protocol.h is private). */
enum { API_PRODUCE = 0, API_INIT_PRODUCER_ID = 22, API_ADD_PARTITIONS_TO_TXN = 24,
       API_END_TXN = 26 };

#define NEVENTS 3000

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

/* Reads the topic read_committed to its end: counts[id] += 1 per record. */
static void
read_back(const char *bootstrap, const char *topic, int *counts)
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
            ck_assert_msg(id >= 0 && id < NEVENTS, "id %ld", id);
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
    read_back(bootstrap, topic, counts);
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

static Suite *
kafka_embedded_suite(void)
{
    Suite *s = suite_create("kafka_embedded");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_injected_errors, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(kafka_embedded_suite)
