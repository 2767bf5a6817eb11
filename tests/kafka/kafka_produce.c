/*
 * tests/kafka/kafka_produce.c: writes the lines of stdin to a topic, one
 * message each, line i to partition i % PARTITIONS, and exits 0 only when
 * the broker acknowledged every one (idempotent producer: no duplicates
 * on retries). For the Kafka tests; librdkafka only.
 *
 * Usage: kafka_produce BOOTSTRAP TOPIC PARTITIONS [FIRST] < lines
 * (FIRST: line i goes to partition FIRST + i % PARTITIONS; default 0).
 * A line "KEY<TAB>VALUE" has a key; every message has the header
 * n = its line number (from 0).
 */
#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long failed;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (failed++ == 0)
            fprintf(stderr, "kafka_produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

int
main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: kafka_produce BOOTSTRAP TOPIC PARTITIONS [FIRST] < lines\n");
        return 2;
    }
    int np = atoi(argv[3]);
    int first = argc == 5 ? atoi(argv[4]) : 0;
    if (np <= 0 || first < 0) {
        fprintf(stderr, "kafka_produce: PARTITIONS must be a positive number\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "enable.idempotence", "true", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "linger.ms", "5", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_produce: %s\n", errstr);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka_produce: %s\n", errstr);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long i = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            n--;
        char *val = line, *tab = memchr(line, '\t', (size_t)n);
        size_t klen = 0;
        if (tab != NULL) {
            klen = (size_t)(tab - line);
            val = tab + 1;
        }
        size_t vlen = (size_t)n - (size_t)(val - line);
        char num[32];
        snprintf(num, sizeof(num), "%ld", i);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION((int32_t)(first + i % np)),
                RD_KAFKA_V_KEY(tab != NULL ? line : NULL, klen), RD_KAFKA_V_VALUE(val, vlen),
                RD_KAFKA_V_HEADER("n", num, (ssize_t)strlen(num)),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 100); /* the queue drains as deliveries come back */
                continue;
            }
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "kafka_produce: line %ld: %s\n", i + 1, rd_kafka_err2str(e));
                return 1;
            }
            break;
        }
        rd_kafka_poll(rk, 0);
        i++;
    }
    free(line);
    rd_kafka_resp_err_t e = rd_kafka_flush(rk, 60000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_produce: flush: %s (%d messages not delivered)\n",
                rd_kafka_err2str(e), rd_kafka_outq_len(rk));
        return 1;
    }
    rd_kafka_destroy(rk);
    if (failed > 0) {
        fprintf(stderr, "kafka_produce: %ld of %ld messages failed\n", failed, i);
        return 1;
    }
    fprintf(stderr, "kafka_produce: %ld messages to %s\n", i, argv[2]);
    return 0;
}
