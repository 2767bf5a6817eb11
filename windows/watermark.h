/*
 * windows/watermark.h: watermark generation at sources and the minimum over
 * an operator's inputs.
 *
 * A source instance's watermark is the highest event time it has seen minus
 * max_out_of_orderness minus 1 ms (Flink's BoundedOutOfOrdernessWatermarks).
 * A source instance that has emitted nothing for idle_timeout declares
 * itself idle; an idle input drops out of its consumer's minimum until it
 * emits again. An operator's watermark is the minimum over its live inputs
 * and never goes back.
 *
 * @thread task.
 */
#ifndef RN_WINDOWS_WATERMARK_H
#define RN_WINDOWS_WATERMARK_H

#include "stream/core.h"

typedef struct rn_wmgen {
    int64_t max_ooo_ms;   /* bounded out-of-orderness */
    int64_t idle_ms;      /* 0: never idle */
    int64_t max_ts;       /* highest event time seen */
    /* Set by a source that reads several splits (Kafka partitions): the
     * least over its active splits of the highest event time each has
     * seen; the watermark follows it rather than max_ts, so that a split
     * read ahead of the others does not make their records late.
     * RN_TS_MAX: no splits (the default). */
    int64_t split_bound;
    int64_t emitted;      /* last watermark emitted */
    int64_t last_activity_ms; /* processing time of the last record */
    bool idle;
} rn_wmgen_t;

void rn__wmgen_init(rn_wmgen_t *g, int64_t max_ooo_ms, int64_t idle_ms, int64_t now_ms);
/* Records event times seen in a batch. */
void rn__wmgen_observe(rn_wmgen_t *g, int64_t max_ts_in_batch, int64_t now_ms);
/* @returns the watermark to emit now, or RN_TS_MIN when it has not advanced. */
int64_t rn__wmgen_next(rn_wmgen_t *g);
/* @returns true when the source just became idle (emit an idle marker). */
bool rn__wmgen_check_idle(rn_wmgen_t *g, int64_t now_ms);

/* Per-input-channel tracking at a consumer. */
typedef struct rn_wmchan {
    int64_t wm;
    bool idle;
    bool ended;
} rn_wmchan_t;

typedef struct rn_wmmin {
    uint32_t n;
    rn_wmchan_t *chans; /* owned */
    int64_t current;    /* the operator's watermark, never decreasing */
} rn_wmmin_t;

void rn__wmmin_init(rn_wmmin_t *m, uint32_t nchannels);
void rn__wmmin_fini(rn_wmmin_t *m);
/* Updates one channel; @returns true when the combined watermark advanced
 * (then m->current is the new value). */
bool rn__wmmin_update(rn_wmmin_t *m, uint32_t chan, int64_t wm);
bool rn__wmmin_set_idle(rn_wmmin_t *m, uint32_t chan, bool idle);
bool rn__wmmin_end(rn_wmmin_t *m, uint32_t chan);
/* True when every channel is idle (the operator is idle too). */
bool rn__wmmin_all_idle(const rn_wmmin_t *m);
bool rn__wmmin_all_ended(const rn_wmmin_t *m);

#endif
