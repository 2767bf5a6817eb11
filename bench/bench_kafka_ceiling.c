/*
 * bench/bench_kafka_ceiling.c: the ceiling a Kafka -> Kafka job can reach
 * here: plain librdkafka, no runnel, consuming every message of topic IN
 * (all partitions, from the start) and producing each value to OUT with
 * an idempotent producer, as runnel's source and at-least-once sink do,
 * until N messages are through and acknowledged. Prints messages per
 * second, MB/s of values, and the machine (bench/kafka.sh runs it).
 *
 * With --relay SECONDS it is the latency floor instead: from the end of
 * IN, with the producer's linger.ms at 1 as runnel's sink has it, it
 * passes on what comes for SECONDS (bench_kafka_latency measures it the
 * way it measures the job).
 * Usage: bench_kafka_ceiling BOOTSTRAP IN OUT N [--relay SECONDS]
 */
#include "bench_common.h"

#include <librdkafka/rdkafka.h>

static void
die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_kafka_ceiling: %s: %s\n", what, msg);
    exit(1);
}

static rd_kafka_t *
client(rd_kafka_type_t type, const char *bootstrap, bool relay)
{
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        die("bootstrap.servers", errstr);
    if (type == RD_KAFKA_CONSUMER) {
        if (rd_kafka_conf_set(c, "group.id", "bench-ceiling", errstr, sizeof(errstr)) !=
                RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, sizeof(errstr)) !=
                RD_KAFKA_CONF_OK)
            die("consumer", errstr);
    } else if (rd_kafka_conf_set(c, "enable.idempotence", "true", errstr, sizeof(errstr)) !=
                   RD_KAFKA_CONF_OK ||
               (relay && rd_kafka_conf_set(c, "linger.ms", "1", errstr, sizeof(errstr)) !=
                             RD_KAFKA_CONF_OK)) {
        die("producer", errstr);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, errstr, sizeof(errstr));
    if (rk == NULL)
        die("rd_kafka_new", errstr);
    return rk;
}

int
main(int argc, char **argv)
{
    bool relay = argc == 7 && strcmp(argv[5], "--relay") == 0;
    if (argc != 5 && !relay) {
        fprintf(stderr, "usage: bench_kafka_ceiling BOOTSTRAP IN OUT N [--relay SECONDS]\n");
        return 2;
    }
    long long n = atoll(argv[4]);
    double until = relay ? atof(argv[6]) : 0;
    rd_kafka_t *cons = client(RD_KAFKA_CONSUMER, argv[1], relay);
    rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, argv[1], relay);
    rd_kafka_poll_set_consumer(cons);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(cons, argv[2], NULL);
    if (rd_kafka_metadata(cons, 0, rkt, &md, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        die(argv[2], "no such topic");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, argv[2], md->topics[0].partitions[i].id)->offset =
            relay ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (rd_kafka_assign(cons, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("assign", argv[2]);
    rd_kafka_topic_partition_list_destroy(l);

    bench_print_machine();
    double t0 = bench_now();
    long long done = 0, bytes = 0;
    while (done < n && (!relay || bench_now() - t0 < until)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, relay ? 10 : 100);
        rd_kafka_poll(prod, 0); /* delivery reports, also when nothing comes */
        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            continue;
        }
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(argv[3]), RD_KAFKA_V_VALUE(m->payload, m->len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                die("produce", rd_kafka_err2str(e));
            rd_kafka_poll(prod, 10);
        }
        rd_kafka_poll(prod, 0);
        bytes += (long long)m->len;
        done++;
        rd_kafka_message_destroy(m);
    }
    if (rd_kafka_flush(prod, 300000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush", "messages not acknowledged");
    double wall = bench_now() - t0;
    printf("kafka ceiling: plain librdkafka consume %s -> produce %s: %lld messages (%.1f MB) in "
           "%.3f s\n",
           argv[2], argv[3], done, (double)bytes / 1e6, wall);
    printf("RESULT events_per_sec=%.0f\n", (double)done / wall);
    printf("RESULT mb_per_sec=%.1f\n", (double)bytes / 1e6 / wall);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    return 0;
}
