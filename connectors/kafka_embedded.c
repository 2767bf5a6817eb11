/*
 * connectors/kafka_embedded.c: `brokers: embedded`, an in-process
 * Kafka-protocol cluster (librdkafka's mock cluster, one broker) for demos
 * and examples that need no broker.
 *
 * One cluster per process, shared by every Kafka source and sink that
 * names it: the first plan that needs it creates it, the last plan freed
 * destroys it, and what it held goes with it (it is memory, and holds a
 * bounded tail of each partition: docs/job-file.md). Topics are created
 * with EMBED_PARTITIONS partitions (or as many as the plan asks: the
 * commit log has one) when a plan first names them.
 *
 * Writers: since nothing outside the process can write to the cluster, a
 * bounded source (`bounded: latest`) of an embedded topic can end at the
 * topic's end once the job's own at-least-once sinks to it have finished,
 * rather than at the end it had when it opened (empty, when the job
 * fills the topic itself). Sinks count themselves in at plan time, before
 * any instance opens, and out when an instance finished.
 *
 * @thread any (a mutex).
 */
#include "connectors/kafka_int.h"

#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>

#define EMBED_PARTITIONS 4

typedef struct etopic {
    char *name;
    int writers; /* at-least-once sink instances not finished */
} etopic_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int refs;
static rd_kafka_t *owner; /* the handle the cluster belongs to */
static rd_kafka_mock_cluster_t *cluster;
static char *bootstrap;
static etopic_t *topics;
static size_t ntopics;

static etopic_t *
find(const char *name)
{
    for (size_t i = 0; i < ntopics; i++)
        if (strcmp(topics[i].name, name) == 0)
            return &topics[i];
    return NULL;
}

static rn_code_t
create_cluster(rn_error_t *err)
{
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    /* The owner never connects: its log would only say so. */
    rd_kafka_conf_set(c, "log_level", "0", errstr, sizeof(errstr));
    owner = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (owner == NULL) {
        rd_kafka_conf_destroy(c);
        return rn__errf(err, RN_EIO, "embedded Kafka cluster: %s", errstr);
    }
    cluster = rd_kafka_mock_cluster_new(owner, 1);
    if (cluster == NULL) {
        rd_kafka_destroy(owner);
        owner = NULL;
        return rn__errf(err, RN_EIO, "embedded Kafka cluster: librdkafka could not start it");
    }
    bootstrap = rn_xstrdup(rd_kafka_mock_cluster_bootstraps(cluster));
    RN_LOG_INFO("kafka", "embedded Kafka cluster at %s (in memory, ends with the job)",
                bootstrap);
    return RN_OK;
}

static void
destroy_cluster(void)
{
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(owner);
    cluster = NULL;
    owner = NULL;
    rn_free(bootstrap);
    bootstrap = NULL;
    for (size_t i = 0; i < ntopics; i++)
        rn_free(topics[i].name);
    rn_free(topics);
    topics = NULL;
    ntopics = 0;
}

char *
rn__kembed_acquire(const char *const *names, const int *partitions, size_t n, rn_error_t *err)
{
    pthread_mutex_lock(&lock);
    if (refs == 0 && create_cluster(err) != RN_OK) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    refs++;
    for (size_t i = 0; i < n; i++) {
        if (find(names[i]) != NULL)
            continue;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
            cluster, names[i], partitions != NULL ? partitions[i] : EMBED_PARTITIONS, 1);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            pthread_mutex_unlock(&lock);
            rn__kembed_release();
            rn__errf(err, RN_EIO, "embedded Kafka cluster: topic '%s': %s", names[i],
                     rd_kafka_err2str(e));
            return NULL;
        }
        topics = rn_xrealloc(topics, (ntopics + 1) * sizeof(*topics));
        topics[ntopics++] = (etopic_t){rn_xstrdup(names[i]), 0};
    }
    char *out = rn_xstrdup(bootstrap);
    pthread_mutex_unlock(&lock);
    return out;
}

void
rn__kembed_release(void)
{
    pthread_mutex_lock(&lock);
    rn_assert(refs > 0);
    if (--refs == 0)
        destroy_cluster();
    pthread_mutex_unlock(&lock);
}

rd_kafka_mock_cluster_t *
rn__kembed_cluster(void)
{
    pthread_mutex_lock(&lock);
    rd_kafka_mock_cluster_t *c = cluster;
    pthread_mutex_unlock(&lock);
    return c;
}

void
rn__kembed_writers(const char *topic, int delta)
{
    pthread_mutex_lock(&lock);
    etopic_t *t = find(topic);
    if (t != NULL)
        t->writers += delta;
    pthread_mutex_unlock(&lock);
}

bool
rn__kembed_writing(const char *topic)
{
    pthread_mutex_lock(&lock);
    etopic_t *t = find(topic);
    bool w = t != NULL && t->writers > 0;
    pthread_mutex_unlock(&lock);
    return w;
}
