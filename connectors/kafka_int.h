/*
 * connectors/kafka_int.h: what the Kafka connectors share (kafka_conf.c):
 * the job file's `properties` and a librdkafka configuration made of them.
 * Private to connectors/.
 */
#ifndef RN_CONNECTORS_KAFKA_INT_H
#define RN_CONNECTORS_KAFKA_INT_H

#include "connectors/connector_int.h"

#include <librdkafka/rdkafka.h>

/* `properties`, with ${NAME} replaced from the environment. */
typedef struct rn_kafka_props {
    char **names;  /* owned */
    char **values; /* owned */
    size_t n;
} rn_kafka_props_t;

/* Reads conf's `properties` (absent: none) into props; refuses the ones
 * that run commands or load code, and unset variables. what names the
 * component in messages. On failure props holds nothing to free. */
rn_code_t rn__kafka_props_read(const rn_conf_t *conf, const char *what, bool allow_code,
                               rn_kafka_props_t *props, rn_error_t *err);
void rn__kafka_props_fini(rn_kafka_props_t *props);

/* A librdkafka configuration with bootstrap.servers and props set.
 * @returns it (owned by the caller until rd_kafka_new takes it), or NULL
 * with err set (librdkafka's message for a bad property). */
rd_kafka_conf_t *rn__kafka_conf_new(const char *brokers, const rn_kafka_props_t *props,
                                    const char *what, rn_error_t *err);
/* Sets one property. @returns RN_OK or RN_EINVAL with librdkafka's reason. */
rn_code_t rn__kafka_set(rd_kafka_conf_t *c, const char *name, const char *value, const char *what,
                        rn_error_t *err);

/* ---- brokers: embedded (kafka_embedded.c) ---- */

/* Takes a reference to the process's embedded cluster (created by the
 * first) and creates the n topics it lacks, with partitions[i] partitions
 * (partitions NULL: 4 each). @returns its bootstrap address (rn_free), or
 * NULL with err set. */
char *rn__kembed_acquire(const char *const *names, const int *partitions, size_t n,
                         rn_error_t *err);
/* Gives the reference back; the last one destroys the cluster and what it
 * held. */
void rn__kembed_release(void);
/* The cluster, for tests that inject errors (rd_kafka_mock_push_request_
 * errors); valid while the caller holds a reference. */
struct rd_kafka_mock_cluster_s *rn__kembed_cluster(void);
/* Counts at-least-once sink instances to topic in (delta > 0, at plan) or
 * out (delta < 0, finished). */
void rn__kembed_writers(const char *topic, int delta);
/* @returns whether a sink instance of this process still writes to topic. */
bool rn__kembed_writing(const char *topic);

/* The same for topics of real brokers, keyed by the job file's `brokers`
 * text (kafka_writers.c): delta more (or fewer) instances of at-least-once
 * sinks write topic; busy while any does. */
void rn__kwriters_add(const char *brokers, const char *topic, int delta);
bool rn__kwriters_busy(const char *brokers, const char *topic);

#endif
