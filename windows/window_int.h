/*
 * windows/window_int.h: what the files of window_aggregate share, private
 * to windows/: window assignment and session merging (assign.c), aggregate
 * parsing and accumulators (accum.c), and the plan shared by the operator's
 * files (window_plan.c, window_op.c).
 *
 * assign.c and accum.c touch neither the runtime nor state, so that the
 * window arithmetic and every aggregate can be unit-tested on their own
 * (tests/unit/test_windows.c).
 *
 * Windows follow Flink's TimeWindow: [start, end), start inclusive, end
 * exclusive; the window's last timestamp (maxTimestamp) is end - 1.
 *
 * @thread any for assign.c and accum.c; plan and run time as component.h.
 */
#ifndef RN_WINDOWS_WINDOW_INT_H
#define RN_WINDOWS_WINDOW_INT_H

#include <runnel/functions.h>

#include "stream/component.h"

/* ---- windows (assign.c) ---- */

typedef enum rn_win_kind {
    RN_WIN_TUMBLING = 0,
    RN_WIN_SLIDING = 1,
    RN_WIN_SESSION = 2,
} rn_win_kind_t;

typedef struct rn_win_spec {
    rn_win_kind_t kind;
    int64_t size;  /* tumbling, sliding; ms > 0 */
    int64_t slide; /* sliding; ms > 0 */
    int64_t gap;   /* session; ms > 0 */
} rn_win_spec_t;

typedef struct rn_win {
    int64_t start;
    int64_t end;
} rn_win_t;

/* The start of the window of length size (> 0) that holds ts, aligned to
 * the epoch (Flink's TimeWindow.getWindowStartWithOffset, offset 0);
 * correct for negative ts. */
int64_t rn__win_start(int64_t ts, int64_t size);

/* The most windows one timestamp can fall in: 1, or ceil(size / slide). */
size_t rn__win_max_windows(const rn_win_spec_t *spec);

/* The windows ts belongs to, written to out (room for
 * rn__win_max_windows(spec) windows). Sliding windows come latest start
 * first (as Flink's SlidingEventTimeWindows); a session gets [ts, ts+gap).
 * Ends that would pass INT64_MAX are clamped to it.
 * @returns how many. */
size_t rn__win_assign(const rn_win_spec_t *spec, int64_t ts, rn_win_t *out);

/* Flink's TimeWindow.intersects: a.start <= b.end && b.start <= a.end
 * (touching windows intersect, so adjacent sessions merge). */
static inline bool
rn__win_intersects(rn_win_t a, rn_win_t b)
{
    return a.start <= b.end && b.start <= a.end;
}

static inline rn_win_t
rn__win_cover(rn_win_t a, rn_win_t b)
{
    rn_win_t c = {a.start < b.start ? a.start : b.start, a.end > b.end ? a.end : b.end};
    return c;
}

/* a + b without overflow (clamped to INT64_MIN..INT64_MAX). */
int64_t rn__win_add_sat(int64_t a, int64_t b);

/* Session merging. wins[0..n) are the key's current sessions: sorted by
 * start and pairwise non-intersecting. Computes the session that add
 * produces: *merged = add covered with every session it intersects (and,
 * transitively, every session those reach), and sets hit[i] for each
 * session of wins that *merged absorbs. @returns how many were absorbed. */
size_t rn__win_session_merge(const rn_win_t *wins, size_t n, rn_win_t add, rn_win_t *merged,
                             bool *hit);

/* Namespaces: a window as 16 bytes, start then end, each big-endian with
 * the sign bit flipped, so that namespaces order as windows do. */
#define RN_WIN_NS_LEN 16
void rn__win_ns_encode(rn_win_t w, uint8_t ns[RN_WIN_NS_LEN]);
rn_win_t rn__win_ns_decode(const uint8_t ns[RN_WIN_NS_LEN]);

/* ---- aggregates (accum.c) ---- */

typedef enum rn_agg_fn {
    RN_AGG_COUNT = 0,
    RN_AGG_SUM,
    RN_AGG_MIN,
    RN_AGG_MAX,
    RN_AGG_AVG,
    RN_AGG_COUNT_DISTINCT,
    RN_AGG_FIRST,
    RN_AGG_LAST,
    RN_AGG_PLUGIN, /* a plugin's aggregate function (ext) */
} rn_agg_fn_t;

typedef struct rn_agg {
    rn_agg_fn_t fn;
    int arg;         /* input field, -1 for count() */
    rn_type_t in;    /* the argument's type (RN_TYPE_NULL for count()) */
    rn_type_t out;   /* the result's type */
    bool is_string;  /* min/max/first/last of a string: bytes live in state */
    const struct rn_aggregate_fn *ext; /* RN_AGG_PLUGIN: the registry's table */
} rn_agg_t;

/* Parses "fn(arg)" (spaces allowed around tokens) and type-checks it
 * against schema. On failure fills msg (msgsize bytes) and *off with the
 * byte offset of the problem in text. @returns RN_OK or RN_EINVAL. */
rn_code_t rn__agg_parse(const char *text, const rn_schema_t *schema, rn_agg_t *agg, size_t *off,
                        char *msg, size_t msgsize);
const char *rn__agg_fn_name(rn_agg_fn_t fn);

/*
 * The accumulator of one aggregate in one window: a fixed-size cell, one
 * per aggregate, laid out as an array in one state value per (key,
 * window). n counts the non-null values seen (the rows, for count());
 * v holds the sum, extreme, first or last value (ints and timestamps in
 * v.i, floats in v.f, bools as 0/1 in v.i); ts the event time of
 * first/last. For a string min/max/first/last, v holds the first 8 bytes
 * of the current string (zero-padded) so that most comparisons need not
 * read the string itself, kept beside in state. count_distinct keeps its
 * seen values in a map state; n is their number.
 */
typedef struct rn_acc_cell {
    union {
        int64_t i;
        double f;
        uint8_t prefix[8];
    } v;
    int64_t n;
    int64_t ts;
} rn_acc_cell_t;

_Static_assert(sizeof(rn_acc_cell_t) == 24, "accumulator cell layout");
/* A plugin's aggregate owns its whole cell (runnel/functions.h). */
_Static_assert(sizeof(rn_acc_cell_t) == RN_AGG_ACC_SIZE, "a plugin's accumulator is a cell");

/* What to do with a string candidate. */
typedef enum rn_acc_str {
    RN_ACC_KEEP = 0,    /* the stored string stays */
    RN_ACC_REPLACE = 1, /* the candidate wins: store it (rn__acc_str_set) */
    RN_ACC_COMPARE = 2, /* undecided by prefix: compare with the stored bytes */
} rn_acc_str_t;

/* Adds a non-string value (non-null or null: nulls count for count() only)
 * of event time ts to cell. Not for count_distinct (the operator owns the
 * seen set) nor string min/max/first/last. */
void rn__acc_add(const rn_agg_t *agg, rn_acc_cell_t *c, const rn_value_t *v, int64_t ts);

/* String min/max/first/last: decides, from the cell alone, whether the
 * candidate s (len bytes) at event time ts replaces the stored string. */
rn_acc_str_t rn__acc_str_decide(const rn_agg_t *agg, const rn_acc_cell_t *c, const char *s,
                                size_t len, int64_t ts);
/* Decides RN_ACC_COMPARE with the stored bytes: true when s beats stored. */
bool rn__acc_str_beats(const rn_agg_t *agg, const char *s, size_t len, const char *stored,
                       size_t stored_len);
/* Records that s (of event time ts) is now the stored string. */
void rn__acc_str_set(rn_acc_cell_t *c, const char *s, size_t len, int64_t ts);

/* Merges src into dst for a non-string, non-distinct aggregate (session
 * windows). String aggregates: use rn__acc_merge_str_decide. */
void rn__acc_merge(const rn_agg_t *agg, rn_acc_cell_t *dst, const rn_acc_cell_t *src);
/* For a string aggregate: whether src's string replaces dst's; COMPARE
 * asks for rn__acc_str_beats(src bytes, dst bytes). When it does, copy the
 * src cell over dst. */
rn_acc_str_t rn__acc_merge_str_decide(const rn_agg_t *agg, const rn_acc_cell_t *dst,
                                      const rn_acc_cell_t *src);

/* The result of a non-string aggregate (null when no value was seen,
 * except counts: 0). */
rn_value_t rn__acc_result(const rn_agg_t *agg, const rn_acc_cell_t *c);
/* rn__acc_result written into *out, field by field: a 16-byte value built
 * on the stack and copied costs a store-forwarding stall per aggregate. */
void rn__acc_result_to(const rn_agg_t *agg, const rn_acc_cell_t *c, rn_value_t *out);

/* Sets *v to the int i in place (rn__val_int without the stall). */
static inline void
rn__win_set_int(rn_value_t *v, int64_t i)
{
    v->u.i = i;
    v->len = 0;
    v->null = 0;
    memset(v->pad, 0, sizeof(v->pad));
}

/* The bytes that identify a non-null value for count_distinct, into buf
 * (at least 8 bytes) or, for a string, its own bytes. @returns the length;
 * *p points at the bytes. -0.0 counts as 0.0. */
size_t rn__acc_distinct_bytes(rn_type_t type, const rn_value_t *v, uint8_t buf[8],
                              const uint8_t **p);

/* ---- the operator's plan (window_plan.c), shared with window_op.c ---- */

typedef struct rn_win_plan {
    rn_win_spec_t spec;
    int64_t lateness;  /* allowed_lateness, ms >= 0 */
    int late_port;     /* port of late_output, or -1 */
    uint32_t nkeys;
    rn_type_t ktypes[8];
    uint32_t naggs;
    rn_agg_t *aggs;    /* owned */
    bool has_strings;  /* some aggregate keeps its value in the "str" state */
    bool has_distinct; /* some count_distinct */
} rn_win_plan_t;

void rn__win_plan_free(void *plan);

/* The run-time half of the operator class (window_op.c). */
rn_code_t rn__win_open(rn_op_t *op, rn_error_t *err);
rn_code_t rn__win_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err);
rn_code_t rn__win_on_timer(rn_op_t *op, const rn_timer_t *t, rn_error_t *err);
rn_code_t rn__win_on_watermark(rn_op_t *op, int64_t wm, rn_error_t *err);
void rn__win_close(rn_op_t *op);

#endif
