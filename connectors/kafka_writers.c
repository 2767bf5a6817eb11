/*
 * connectors/kafka_writers.c: which topics of which brokers the job's own
 * at-least-once sinks are still writing, so that a bounded source of the
 * same job reading such a topic (`bounded: latest`) takes its end only
 * once they finished, as it does on the embedded cluster
 * (kafka_embedded.c): a job that fills a topic and reads it back then
 * reads all it wrote, on a real broker too. Keyed by the `brokers` text as
 * the job file gives it and the topic name; process-wide, as jobs are.
 * An exactly-once sink's output becomes visible only as checkpoints
 * complete, so it is not counted.
 *
 * @thread any (a mutex).
 */
#include "connectors/kafka_int.h"

#include <pthread.h>

typedef struct writer {
    char *brokers, *topic;
    int n;
    struct writer *next;
} writer_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static writer_t *writers;

static writer_t **
find(const char *brokers, const char *topic)
{
    writer_t **w = &writers;
    while (*w != NULL && (strcmp((*w)->brokers, brokers) != 0 || strcmp((*w)->topic, topic) != 0))
        w = &(*w)->next;
    return w;
}

void
rn__kwriters_add(const char *brokers, const char *topic, int delta)
{
    pthread_mutex_lock(&lock);
    writer_t **w = find(brokers, topic);
    if (*w == NULL && delta > 0) {
        writer_t *n = rn_xcalloc(1, sizeof(*n));
        n->brokers = rn_xstrdup(brokers);
        n->topic = rn_xstrdup(topic);
        *w = n;
    }
    if (*w != NULL && ((*w)->n += delta) <= 0) {
        writer_t *gone = *w;
        *w = gone->next;
        rn_free(gone->brokers);
        rn_free(gone->topic);
        rn_free(gone);
    }
    pthread_mutex_unlock(&lock);
}

bool
rn__kwriters_busy(const char *brokers, const char *topic)
{
    pthread_mutex_lock(&lock);
    bool busy = *find(brokers, topic) != NULL;
    pthread_mutex_unlock(&lock);
    return busy;
}
