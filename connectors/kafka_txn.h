/*
 * connectors/kafka_txn.h: the kafka sink's exactly-once delivery
 * (kafka_txn.c; the protocol in docs/kafka.md). Private to connectors/.
 */
#ifndef RN_CONNECTORS_KAFKA_TXN_H
#define RN_CONNECTORS_KAFKA_TXN_H

#include "connectors/kafka_int.h"

/* What an instance needs, all borrowed for its life (the sink's plan). */
typedef struct rn_ktxn_conf {
    const char *brokers;
    const rn_kafka_props_t *props;
    const char *topic;        /* the output */
    const char *dead_topic;   /* dead letters (destination 1), or NULL */
    const char *commit_topic; /* the commit log (created, compacted, when missing) */
    const char *txn_prefix;   /* transactional.id = PREFIX-INSTANCE */
    bool accept_duplicates;   /* resume an older checkpoint than the commit log's */
} rn_ktxn_conf_t;

typedef struct rn_ktxn rn_ktxn_t;

/* Opens the instance's transactional producer (fencing the previous one
 * of its id) and reads what a restored checkpoint holds; the first of
 * the calls below then sends the restored epochs the commit log does not
 * have (also those of old instances it replaces after a rescale), or
 * refuses (RN_EINVAL) a checkpoint older than the commit log's.
 * @returns RN_OK with *out (free with rn__ktxn_close), or an error. */
rn_code_t rn__ktxn_open(const rn_ktxn_conf_t *conf, rn_op_t *op, rn_ktxn_t **out,
                        rn_error_t *err);
/* Keeps a record for the current epoch (copied): dest 0 for the topic,
 * 1 for the dead-letter topic; key NULL: none; hdr, hlen: headers, each
 * u16 name length | name | u32 value length | value (little-endian).
 * The first call (or of the calls below) finishes the recovery begun in
 * open (see kafka_txn.c). @returns RN_OK or an error. */
rn_code_t rn__ktxn_add(rn_ktxn_t *t, int dest, const void *key, size_t klen, const void *val,
                       size_t vlen, const void *hdr, size_t hlen, rn_error_t *err);
/* The sink's snapshot hook: seals the epoch, writes the uncommitted ones
 * to a file the checkpoint keeps. id 0 (finished): the uncommitted ones,
 * the final epoch included, to a file every later checkpoint keeps. */
rn_code_t rn__ktxn_snapshot(rn_ktxn_t *t, int64_t id, json_t **data, char **file,
                            rn_error_t *err);
/* Checkpoint id is durable: commits the epochs it covers; RN_JOB_END
 * (the job ended, every task finished): all of them. */
rn_code_t rn__ktxn_complete(rn_ktxn_t *t, int64_t id, rn_error_t *err);
/* End of input: seals the final epoch, committed by complete(RN_JOB_END)
 * only (the caller asks for it with rn__op_commit_at_end), since another
 * instance may still fail and the job restart from an earlier
 * checkpoint. */
rn_code_t rn__ktxn_finish(rn_ktxn_t *t, rn_error_t *err);
void rn__ktxn_close(rn_ktxn_t *t);

/* Reads the write-ahead file at path as a restore does (every length and
 * header checked) and lets it go: for checks of a checkpoint's files
 * without a broker, and the fuzzer. dead_topic: whether the sink has a
 * dead-letter topic (records for it are refused otherwise).
 * @returns RN_OK with *records (the records of all its epochs), or
 * RN_ECORRUPT / RN_EIO / RN_ENOMEM with err naming the file. */
rn_code_t rn__ktxn_wal_check(const char *path, bool dead_topic, uint64_t *records,
                             rn_error_t *err);

#endif
