/*
 * bench/bench_kafka_latency.c: end-to-end latency of a Kafka -> Kafka job
 * at a fixed rate below saturation. Produces RATE JSON records a second
 * for SECONDS to topic IN, each carrying the time it was handed to
 * librdkafka (`sent_us`, this process's monotonic clock), while reading
 * topic OUT (from its end, read_committed: what an exactly-once sink has
 * committed) and taking, for each record that comes back, now - sent_us.
 * The job in between (runnel, started by bench/kafka.sh) copies the
 * field through. Prints p50, p99 and max over the records seen after a
 * warm-up of 10 s (the broker and clients settle), how many came back, and
 * the machine.
 * Usage: bench_kafka_latency BOOTSTRAP IN OUT RATE SECONDS
 */
#include "bench_common.h"

#include <librdkafka/rdkafka.h>

static void
die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_kafka_latency: %s: %s\n", what, msg);
    exit(1);
}

static int64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char errstr[512];
    if (rd_kafka_conf_set(c, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        die(k, errstr);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_kafka_latency BOOTSTRAP IN OUT RATE SECONDS\n");
        return 2;
    }
    const char *bootstrap = argv[1], *in = argv[2], *out = argv[3];
    long rate = atol(argv[4]), secs = atol(argv[5]);
    long total = rate * secs;
    char errstr[512];

    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    set(pc, "bootstrap.servers", bootstrap);
    set(pc, "linger.ms", "0"); /* the job's latency, not this producer's batching */
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr));
    if (prod == NULL)
        die("producer", errstr);

    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    set(cc, "bootstrap.servers", bootstrap);
    set(cc, "group.id", "bench-latency");
    set(cc, "enable.auto.commit", "false");
    set(cc, "auto.offset.reset", "latest");
    set(cc, "isolation.level", "read_committed");
    set(cc, "fetch.wait.max.ms", "5");
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof(errstr));
    if (cons == NULL)
        die("consumer", errstr);
    rd_kafka_poll_set_consumer(cons);
    /* Every partition of OUT from its end as it is now. */
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(cons, out, NULL);
    if (rd_kafka_metadata(cons, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("metadata", out);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(tl, out, md->topics[0].partitions[p].id)->offset =
            RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (rd_kafka_assign(cons, tl) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("assign", out);
    rd_kafka_topic_partition_list_destroy(tl);
    /* Let the assignment take effect (the first fetch finds the end). */
    for (int i = 0; i < 20; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (m != NULL)
            rd_kafka_message_destroy(m);
    }

    int64_t *lat = calloc((size_t)total + 1, sizeof(*lat));
    /* The worst latency of the records sent in each second, on stderr:
     * where a tail comes from (a stall, or all along). */
    int64_t *worst = calloc((size_t)secs + 1, sizeof(*worst));
    long nlat = 0, seen = 0, sent = 0;
    int64_t t0 = now_us(), warm = t0 + 10000000;
    int64_t end = t0 + (int64_t)secs * 1000000;
    int64_t drain = end + 15000000; /* a few checkpoint intervals for exactly-once */
    char buf[256];
    while (now_us() < drain && (sent < total || seen < total)) {
        int64_t now = now_us();
        /* Produce what is due by now. */
        long due = now >= end ? total : (long)((now - t0) * rate / 1000000);
        while (sent < due && sent < total) {
            int n = snprintf(buf, sizeof(buf),
                             "{\"id\":%ld,\"key\":\"k%ld\",\"value\":%ld,\"ts\":%ld,\"sent_us\":%lld}",
                             sent, sent % 100, sent % 1000, 1700000000000L + sent,
                             (long long)now_us());
            rd_kafka_resp_err_t e = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(in), RD_KAFKA_V_VALUE(buf, (size_t)n),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
                die("produce", rd_kafka_err2str(e));
            sent++;
        }
        rd_kafka_poll(prod, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 1);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->payload != NULL) {
            int64_t got = now_us();
            const char *p = memmem(m->payload, m->len, "\"sent_us\":", 10);
            if (p != NULL) {
                long long s = atoll(p + 10);
                seen++;
                if (s >= warm && s < end && nlat <= total)
                    lat[nlat++] = got - s;
                long sec = (long)((s - t0) / 1000000);
                if (sec >= 0 && sec <= secs && got - s > worst[sec])
                    worst[sec] = got - s;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_flush(prod, 10000);
    for (long i = 0; i < secs; i++)
        fprintf(stderr, "second %ld: worst %.1f ms\n", i, worst[i] / 1e3);
    free(worst);
    bench_print_machine();
    if (nlat == 0) {
        fprintf(stderr, "bench_kafka_latency: no record came back (%ld sent)\n", sent);
        return 1;
    }
    qsort(lat, (size_t)nlat, sizeof(*lat), cmp_i64);
    printf("kafka latency: %ld records a second for %ld s, %ld sent, %ld came back; "
           "after a 10 s warm-up, %ld measured: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           rate, secs, sent, seen, nlat, lat[nlat / 2] / 1e3, lat[nlat * 99 / 100] / 1e3,
           lat[nlat - 1] / 1e3);
    printf("RESULT sent=%ld\nRESULT seen=%ld\n", sent, seen);
    printf("RESULT p50_ms=%.1f\nRESULT p99_ms=%.1f\nRESULT max_ms=%.1f\n", lat[nlat / 2] / 1e3,
           lat[nlat * 99 / 100] / 1e3, lat[nlat - 1] / 1e3);
    free(lat);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    return 0;
}
