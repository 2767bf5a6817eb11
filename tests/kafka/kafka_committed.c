/*
 * tests/kafka/kafka_committed.c: prints the offsets a consumer group has
 * committed for the partitions of a topic, one "PARTITION OFFSET" line
 * each (OFFSET -1 when the group has committed none), through librdkafka's
 * OffsetFetch. It does not join the group, so it moves nothing. For the
 * Kafka tests; librdkafka only.
 *
 * Usage: kafka_committed BOOTSTRAP GROUP TOPIC PARTITIONS
 */
#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: kafka_committed BOOTSTRAP GROUP TOPIC PARTITIONS\n");
        return 2;
    }
    int np = atoi(argv[4]);
    if (np <= 0) {
        fprintf(stderr, "kafka_committed: PARTITIONS must be positive\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", argv[2], err, sizeof(err)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_committed: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) { /* conf is still ours when rd_kafka_new fails */
        fprintf(stderr, "kafka_committed: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(l, argv[3], p);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
    int rc = 0;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_committed: %s\n", rd_kafka_err2str(e));
        rc = 1;
    } else {
        for (int i = 0; i < l->cnt; i++) {
            if (l->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "kafka_committed: partition %d: %s\n", (int)l->elems[i].partition,
                        rd_kafka_err2str(l->elems[i].err));
                rc = 1;
            }
            printf("%d %lld\n", (int)l->elems[i].partition,
                   l->elems[i].offset < 0 ? -1LL : (long long)l->elems[i].offset);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return rc;
}
