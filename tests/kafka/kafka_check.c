/*
 * tests/kafka/kafka_check.c: does the machine's librdkafka (Debian's 2.0.2)
 * work with the test broker (tests/kafka/broker.sh) for what runnel needs,
 * balanced consumer groups and transactions? A standalone program that uses
 * librdkafka only, no runnel code, so that a failure here is the broker's or
 * the library's and never the engine's.
 *
 *   kafka_check BOOTSTRAP TOPIC [COMMITTED [ABORTED]]
 *
 * 1. A transactional producer (transactional.id set, so idempotent too)
 *    produces COMMITTED messages (default 100) in one transaction and
 *    commits it.
 * 2. It produces ABORTED more (default 20) in a second transaction, waits
 *    until the broker has acknowledged every one of them (they are in the
 *    log), and aborts it. Without that wait librdkafka could drop them
 *    before sending, and step 3 would pass without testing anything.
 * 3. A consumer in a new group (subscribe: JoinGroup/SyncGroup, the
 *    balanced consumer) with isolation.level=read_committed reads the topic
 *    from its beginning to the end of every partition. It must see each
 *    committed message exactly once, in production order within its
 *    partition (Kafka orders per partition only), and no aborted one. It
 *    then commits its positions and reads them back (OffsetCommit and
 *    OffsetFetch), as a source that keeps its position in the group would.
 *
 * Every message carries this run's id, so messages that other runs left in
 * the topic are counted and otherwise ignored: the check can run again on a
 * live broker. The keys spread the messages over the partitions, so that a
 * transaction spans several of them.
 *
 * Prints what it saw; exits 0 only when every check holds, 1 otherwise,
 * 2 on a usage error.
 *
 * One thread (librdkafka's own threads aside). Plain calloc/free: this
 * program links no runnel code, so runnel's allocator hooks are not there.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

/* Generous: the first transaction creates the transaction state topic and
 * the first group the offsets topic, on a 2-core machine shared with tests. */
#define TXN_TIMEOUT_MS 60000
#define CONSUME_TIMEOUT_MS 60000
#define MAX_MESSAGES 1000000

/* What the consumer saw of one partition. */
struct part {
    int count;        /* committed messages of this run */
    long first_index; /* of the first one, -1 before it */
    long last_index;  /* of the last one, -1 before it */
    int64_t next;     /* offset after the last message of this run, -1 before it */
    bool eof;         /* reached the end of the partition */
};

struct check {
    const char *bootstrap;
    const char *topic;
    char run[64]; /* this run's id, in every message */
    long committed;
    long aborted;
    int nparts;
    /* Producer: delivery reports of the current transaction. */
    long delivered;
    long failed;
    /* Consumer. */
    struct part *parts;     /* nparts of them */
    unsigned char *seen;    /* committed entries, one per committed index */
    long seen_committed;    /* distinct committed messages of this run */
    long seen_aborted;      /* aborted messages of this run: must stay 0 */
    long seen_foreign;      /* messages of other runs, ignored */
    long bad;               /* duplicates, out of order, unparseable */
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints a transactional API error with its kind and destroys it.
 * @param error consumed. @returns false, for `return txn_failed(...)`. */
static bool
txn_failed(const char *what, rd_kafka_error_t *error)
{
    fprintf(stderr, "kafka_check: %s: %s: %s%s%s\n", what, rd_kafka_error_name(error),
            rd_kafka_error_string(error), rd_kafka_error_is_fatal(error) ? " (fatal)" : "",
            rd_kafka_error_is_retriable(error) ? " (retriable)" : "");
    rd_kafka_error_destroy(error);
    return false;
}

/* Sets one property; false (message printed) when librdkafka refuses it. */
static bool
conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_check: config %s=%s: %s\n", name, value, errstr);
        return false;
    }
    return true;
}

/* Called from rd_kafka_poll()/flush() on this thread. */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct check *ck = opaque;

    (void)rk;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ck->delivered++;
        return;
    }
    /* Only the first few: one cause usually fails every message. */
    if (ck->failed++ < 5) {
        fprintf(stderr, "kafka_check: delivery to %s [%" PRId32 "] failed: %s\n", ck->topic,
                rkm->partition, rd_kafka_err2str(rkm->err));
    }
}

/* Creates the handle; conf is consumed on success and on failure. */
static rd_kafka_t *
new_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));

    if (rk == NULL) {
        /* rd_kafka_new consumes conf only on success. */
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kafka_check: creating the %s: %s\n",
                type == RD_KAFKA_PRODUCER ? "producer" : "consumer", errstr);
    }
    return rk;
}

/* @returns a transactional producer (free with rd_kafka_destroy()), or NULL. */
static rd_kafka_t *
new_producer(struct check *ck)
{
    char txn_id[96];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    snprintf(txn_id, sizeof(txn_id), "kafka_check-%s", ck->run);
    if (!conf_set(conf, "bootstrap.servers", ck->bootstrap) ||
        !conf_set(conf, "transactional.id", txn_id) ||
        !conf_set(conf, "transaction.timeout.ms", "60000")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, ck);
    return new_handle(RD_KAFKA_PRODUCER, conf);
}

/* Sets ck->nparts from the broker's metadata: the topic must exist (the
 * test broker does not create topics on first use). */
static bool
read_partitions(struct check *ck, rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, ck->topic, NULL);
    rd_kafka_resp_err_t err;
    bool ok = false;

    if (rkt == NULL) {
        fprintf(stderr, "kafka_check: topic handle for %s: %s\n", ck->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return false;
    }
    err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_check: metadata of %s from %s: %s\n", ck->topic, ck->bootstrap,
                rd_kafka_err2str(err));
    } else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_check: topic %s: %s (create it first: broker.sh topic)\n",
                ck->topic,
                rd_kafka_err2str(md->topic_cnt == 1 ? md->topics[0].err
                                                    : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    } else if (md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "kafka_check: topic %s has no partitions\n", ck->topic);
    } else {
        ck->nparts = md->topics[0].partition_cnt;
        ok = true;
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return ok;
}

/* Produces messages first..first+n-1 of kind 'c' (committed) or 'a'
 * (aborted) into the open transaction. */
static bool
produce_range(struct check *ck, rd_kafka_t *rk, char kind, long n)
{
    for (long i = 0; i < n; i++) {
        char key[32];
        char value[128];
        rd_kafka_resp_err_t err;

        snprintf(key, sizeof(key), "k%ld", i);
        snprintf(value, sizeof(value), "%s %c %ld", ck->run, kind, i);
        do {
            err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(ck->topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                /* Serves delivery reports, which frees room in the queue. */
                rd_kafka_poll(rk, 100);
            }
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka_check: producing message %c %ld to %s: %s\n", kind, i,
                    ck->topic, rd_kafka_err2str(err));
            return false;
        }
    }
    return true;
}

/* Steps 1 and 2: one committed transaction, then one aborted after its
 * messages reached the broker. */
static bool
produce_transactions(struct check *ck, rd_kafka_t *rk)
{
    rd_kafka_error_t *error;
    rd_kafka_resp_err_t err;

    if ((error = rd_kafka_init_transactions(rk, TXN_TIMEOUT_MS)) != NULL) {
        return txn_failed("init_transactions", error);
    }
    if ((error = rd_kafka_begin_transaction(rk)) != NULL) {
        return txn_failed("begin_transaction (committed one)", error);
    }
    if (!produce_range(ck, rk, 'c', ck->committed)) {
        return false;
    }
    /* Flushes the messages and waits for the broker's commit marker. */
    if ((error = rd_kafka_commit_transaction(rk, TXN_TIMEOUT_MS)) != NULL) {
        return txn_failed("commit_transaction", error);
    }
    rd_kafka_poll(rk, 0); /* the last delivery reports */
    if (ck->delivered != ck->committed || ck->failed != 0) {
        fprintf(stderr, "kafka_check: committed transaction: %ld of %ld delivered, %ld failed\n",
                ck->delivered, ck->committed, ck->failed);
        return false;
    }
    printf("kafka_check: committed a transaction of %ld messages to %s (%d partitions)\n",
           ck->committed, ck->topic, ck->nparts);

    ck->delivered = 0;
    if ((error = rd_kafka_begin_transaction(rk)) != NULL) {
        return txn_failed("begin_transaction (aborted one)", error);
    }
    if (!produce_range(ck, rk, 'a', ck->aborted)) {
        return false;
    }
    err = rd_kafka_flush(rk, TXN_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || ck->delivered != ck->aborted || ck->failed != 0) {
        fprintf(stderr,
                "kafka_check: transaction to abort: %ld of %ld messages acknowledged, %ld failed"
                " (%s)\n",
                ck->delivered, ck->aborted, ck->failed, rd_kafka_err2str(err));
        return false;
    }
    if ((error = rd_kafka_abort_transaction(rk, TXN_TIMEOUT_MS)) != NULL) {
        return txn_failed("abort_transaction", error);
    }
    printf("kafka_check: aborted a transaction of %ld messages, all of them in the log first\n",
           ck->aborted);
    return true;
}

/* @returns a read_committed consumer in a new group, subscribed to the
 * topic (free with rd_kafka_destroy() after rd_kafka_consumer_close()), or
 * NULL. */
static rd_kafka_t *
new_consumer(struct check *ck)
{
    char group[96];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk;

    snprintf(group, sizeof(group), "kafka_check-%s", ck->run);
    if (!conf_set(conf, "bootstrap.servers", ck->bootstrap) ||
        !conf_set(conf, "group.id", group) ||
        !conf_set(conf, "isolation.level", "read_committed") ||
        !conf_set(conf, "auto.offset.reset", "earliest") ||
        !conf_set(conf, "enable.auto.commit", "false") ||
        /* The end of each partition is how the consumer knows it saw all. */
        !conf_set(conf, "enable.partition.eof", "true")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if ((rk = new_handle(RD_KAFKA_CONSUMER, conf)) == NULL) {
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, ck->topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_check: subscribe to %s: %s\n", ck->topic, rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* Records one message and checks it against what was produced. */
static void
see_message(struct check *ck, const rd_kafka_message_t *rkm)
{
    char text[128];
    char run[64];
    char kind;
    long index;
    struct part *p;

    if (rkm->partition < 0 || rkm->partition >= ck->nparts || rkm->len >= sizeof(text)) {
        ck->seen_foreign++;
        return;
    }
    memcpy(text, rkm->payload, rkm->len);
    text[rkm->len] = '\0';
    if (sscanf(text, "%63s %c %ld", run, &kind, &index) != 3 || strcmp(run, ck->run) != 0) {
        ck->seen_foreign++;
        return;
    }
    if (kind == 'a') {
        fprintf(stderr, "kafka_check: read_committed returned aborted message %ld at %s [%" PRId32
                "] offset %" PRId64 "\n", index, ck->topic, rkm->partition, rkm->offset);
        ck->seen_aborted++;
        return;
    }
    p = &ck->parts[rkm->partition];
    if (kind != 'c' || index < 0 || index >= ck->committed || ck->seen[index]) {
        fprintf(stderr, "kafka_check: unexpected or repeated message '%s' at %s [%" PRId32
                "] offset %" PRId64 "\n", text, ck->topic, rkm->partition, rkm->offset);
        ck->bad++;
        return;
    }
    if (index <= p->last_index) {
        fprintf(stderr, "kafka_check: %s [%" PRId32 "]: message %ld after %ld: out of order\n",
                ck->topic, rkm->partition, index, p->last_index);
        ck->bad++;
    }
    ck->seen[index] = 1;
    ck->seen_committed++;
    if (p->count++ == 0) {
        p->first_index = index;
    }
    p->last_index = index;
    p->next = rkm->offset + 1;
}

static bool
all_eof(const struct check *ck)
{
    for (int i = 0; i < ck->nparts; i++) {
        if (!ck->parts[i].eof) {
            return false;
        }
    }
    return true;
}

/* Step 3: reads until every partition reported its end, or times out. */
static bool
consume_all(struct check *ck, rd_kafka_t *rk)
{
    int64_t deadline = now_ms() + CONSUME_TIMEOUT_MS;

    while (!all_eof(ck)) {
        rd_kafka_message_t *rkm;

        if (now_ms() > deadline) {
            fprintf(stderr, "kafka_check: consumer did not reach the end of every partition"
                            " of %s within %d ms\n", ck->topic, CONSUME_TIMEOUT_MS);
            return false;
        }
        if ((rkm = rd_kafka_consumer_poll(rk, 500)) == NULL) {
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (rkm->partition >= 0 && rkm->partition < ck->nparts) {
                ck->parts[rkm->partition].eof = true;
            }
        } else if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Mostly transient (a coordinator still loading): reported and
             * left to the deadline, unless librdkafka calls it fatal. */
            fprintf(stderr, "kafka_check: consumer: %s\n", rd_kafka_message_errstr(rkm));
            if (rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                rd_kafka_message_destroy(rkm);
                return false;
            }
        } else {
            see_message(ck, rkm);
        }
        rd_kafka_message_destroy(rkm);
    }
    return true;
}

/* @returns a list of the topic's partitions (free with
 * rd_kafka_topic_partition_list_destroy()). */
static rd_kafka_topic_partition_list_t *
partition_list(const struct check *ck)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(ck->nparts);

    for (int i = 0; i < ck->nparts; i++) {
        rd_kafka_topic_partition_list_add(parts, ck->topic, i);
    }
    return parts;
}

/* Commits the consumer's positions and reads them back from the group:
 * each partition's committed offset must be the consumer's position, and
 * lie after this run's last message there. (The position, not that
 * message's offset + 1: at the end of a partition librdkafka moves it past
 * the transaction markers and aborted messages that follow.) */
static bool
check_group_offsets(struct check *ck, rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *pos = partition_list(ck);
    rd_kafka_topic_partition_list_t *committed = partition_list(ck);
    rd_kafka_resp_err_t err;
    bool ok = false;

    if ((err = rd_kafka_commit(rk, NULL, 0)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_check: committing the group's offsets: %s\n",
                rd_kafka_err2str(err));
    } else if ((err = rd_kafka_position(rk, pos)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_check: the consumer's positions: %s\n", rd_kafka_err2str(err));
    } else if ((err = rd_kafka_committed(rk, committed, 10000)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_check: reading the group's offsets: %s\n", rd_kafka_err2str(err));
    } else {
        ok = true;
    }
    for (int i = 0; ok && i < ck->nparts; i++) {
        const rd_kafka_topic_partition_t *tp = &committed->elems[i];
        int64_t want = pos->elems[i].offset;

        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR || tp->offset != want ||
            tp->offset < ck->parts[i].next) {
            fprintf(stderr, "kafka_check: %s [%d]: committed offset %" PRId64 ", expected %" PRId64
                    " (the position), at least %" PRId64 " (%s)\n", ck->topic, i, tp->offset,
                    want, ck->parts[i].next, rd_kafka_err2str(tp->err));
            ok = false;
        }
    }
    if (ok) {
        printf("kafka_check: committed the group's offsets and read them back:");
        for (int i = 0; i < ck->nparts; i++) {
            printf(" [%d] %" PRId64, i, committed->elems[i].offset);
        }
        printf("\n");
    }
    rd_kafka_topic_partition_list_destroy(pos);
    rd_kafka_topic_partition_list_destroy(committed);
    return ok;
}

/* Prints what the consumer saw; true when it is exactly what was committed. */
static bool
report(const struct check *ck)
{
    for (int i = 0; i < ck->nparts; i++) {
        const struct part *p = &ck->parts[i];

        printf("kafka_check: %s [%d]: %d committed messages of this run", ck->topic, i, p->count);
        if (p->count > 0) {
            printf(", indexes %ld..%ld, next offset %" PRId64, p->first_index, p->last_index,
                   p->next);
        }
        printf("\n");
    }
    printf("kafka_check: saw %ld of %ld committed messages, %ld of %ld aborted ones, %ld bad,"
           " %ld of other runs\n", ck->seen_committed, ck->committed, ck->seen_aborted,
           ck->aborted, ck->bad, ck->seen_foreign);
    return ck->seen_committed == ck->committed && ck->seen_aborted == 0 && ck->bad == 0;
}

static bool
parse_count(const char *arg, const char *what, long min, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < min || v > MAX_MESSAGES) {
        fprintf(stderr, "kafka_check: %s must be a number from %ld to %d, not '%s'\n", what, min,
                MAX_MESSAGES, arg);
        return false;
    }
    *out = v;
    return true;
}

/* Produces, then consumes and checks. @returns true when every check held. */
static bool
run_check(struct check *ck)
{
    rd_kafka_t *rk;
    bool ok;

    if ((rk = new_producer(ck)) == NULL) {
        return false;
    }
    ok = read_partitions(ck, rk) && produce_transactions(ck, rk);
    rd_kafka_destroy(rk);
    if (!ok) {
        return false;
    }
    ck->parts = calloc((size_t)ck->nparts, sizeof(*ck->parts));
    ck->seen = calloc((size_t)ck->committed, 1);
    if (ck->parts == NULL || ck->seen == NULL) {
        fprintf(stderr, "kafka_check: out of memory\n");
        return false;
    }
    for (int i = 0; i < ck->nparts; i++) {
        ck->parts[i] = (struct part){.first_index = -1, .last_index = -1, .next = -1};
    }
    if ((rk = new_consumer(ck)) == NULL) {
        return false;
    }
    ok = consume_all(ck, rk);
    ok = report(ck) && ok;
    ok = ok && check_group_offsets(ck, rk);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok;
}

int
main(int argc, char **argv)
{
    struct check ck = {.committed = 100, .aborted = 20};
    bool ok;

    /* Line by line, so that in a test's log (a file or pipe) what it saw
     * stays in order with librdkafka's and its own errors on stderr. A
     * failure would only cost that order, hence the (void). */
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: kafka_check BOOTSTRAP TOPIC [COMMITTED [ABORTED]]\n");
        return 2;
    }
    ck.bootstrap = argv[1];
    ck.topic = argv[2];
    if ((argc > 3 && !parse_count(argv[3], "COMMITTED", 1, &ck.committed)) ||
        (argc > 4 && !parse_count(argv[4], "ABORTED", 0, &ck.aborted))) {
        return 2;
    }
    snprintf(ck.run, sizeof(ck.run), "%lld-%ld", (long long)time(NULL), (long)getpid());
    printf("kafka_check: librdkafka %s, broker %s, topic %s, run %s\n", rd_kafka_version_str(),
           ck.bootstrap, ck.topic, ck.run);
    ok = run_check(&ck);
    free(ck.parts);
    free(ck.seen);
    printf("kafka_check: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
