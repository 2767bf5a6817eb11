/*
 * examples/churn/churn.c: the `churn` operator of the telecom churn
 * example, a runnel plugin with keyed state and timers
 * (include/runnel/plugin.h, docs/plugins.md).
 *
 * Keyed by customer, over one stream of the customer's events (`kind`:
 * call, data, support, payment). It keeps what the features need in
 * keyed state: the times of dropped calls, of support contacts, the data
 * records of the last 14 days (map states, time -> value) and the last
 * payment's time (a value state). From them, at time T:
 *
 *   dropped_24h         dropped calls in (T - 24 h, T]
 *   support_7d          support contacts in (T - 7 d, T]
 *   data_change         (MB in (T - 7 d, T] - MB in (T - 14 d, T - 7 d])
 *                       / max(1, the latter)
 *   days_since_payment  (T - the last payment) in days; 60 before any
 *
 * the same as train.sh computes offline. It scores p = 1 / (1 + exp(-(bias
 * + w . x))) with the weights of the model file (config `model`) after each
 * event and once a day (an event-time timer at midnight, so that a
 * customer who has gone quiet is still scored as the days since the last
 * payment grow; timers stop a day after the customer's last event), from
 * the customer's 14th day on (the features compare two weeks). The
 * first time p passes `threshold` (default 0.8) it emits an alert, the
 * stand-in for the SMS or CRM action: {customer, p, and the four features},
 * with event time T. One alert per customer.
 */
#include <runnel/plugin.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

typedef struct model {
    double bias, w[4];
} model_t;

typedef struct cust {
    int64_t first_event, last_event, timer_at, alerted;
} cust_t;

typedef struct churn {
    model_t m;
    double threshold;
    rn_pf_map_t *drops, *support, *data;
    rn_pf_value_t *last_pay, *cust;
    int f_kind, f_dropped, f_mb;
    int o_customer, o_p, o_x[4];
} churn_t;

static const char *const features[4] = {"dropped_24h", "support_7d", "data_change",
                                        "days_since_payment"};

/* Reads the model file of config `model`. */
static int
load_model(const rn_conf_t *c, model_t *m, double *threshold, rn_error_t *err)
{
    const char *path = c ? rn_conf_scalar(rn_conf_get(c, "model")) : NULL;
    const char *th = c ? rn_conf_scalar(rn_conf_get(c, "threshold")) : NULL;
    char *end = NULL;
    *threshold = th ? strtod(th, &end) : 0.8;
    if ((th && *end != '\0') || *threshold <= 0 || *threshold >= 1)
        return rn_pf_fail(NULL, err, RN_EINVAL, "threshold '%s' is not a probability", th);
    if (path == NULL)
        return rn_pf_fail(NULL, err, RN_EINVAL, "churn needs config model (a file from train.sh)");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return rn_pf_fail(NULL, err, RN_EINVAL, "model %s cannot be read", path);
    char line[256], name[64];
    double v;
    int seen = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || sscanf(line, "%63s %lf", name, &v) != 2)
            continue;
        if (strcmp(name, "bias") == 0) {
            m->bias = v;
            seen |= 1;
        }
        for (int i = 0; i < 4; i++)
            if (strcmp(name, features[i]) == 0) {
                m->w[i] = v;
                seen |= 2 << i;
            }
    }
    fclose(f);
    if (seen != 31)
        return rn_pf_fail(NULL, err, RN_EINVAL,
                          "model %s lacks a weight: it needs bias and the four features", path);
    return RN_OK;
}

static int
churn_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    model_t m;
    double th;
    rn_type_t t;
    int rc = load_model(rn_pf_plan_config(p), &m, &th, err);
    if (rc != RN_OK)
        return rc;
    if (rn_pf_plan_input_field(p, "kind", &t) < 0 || t != RN_TYPE_STRING ||
        rn_pf_plan_input_field(p, "dropped", &t) < 0 || t != RN_TYPE_BOOL ||
        rn_pf_plan_input_field(p, "mb", &t) < 0 || t != RN_TYPE_INT)
        return rn_pf_fail(NULL, err, RN_EINVAL, "churn needs fields kind, dropped, mb");
    if ((rc = rn_pf_plan_output(p, NULL, "customer", RN_TYPE_STRING, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "p", RN_TYPE_FLOAT, err)) != RN_OK)
        return rc;
    for (int i = 0; i < 4; i++)
        if ((rc = rn_pf_plan_output(p, NULL, features[i], RN_TYPE_FLOAT, err)) != RN_OK)
            return rc;
    return RN_OK;
}

static int
churn_open(rn_pf_t *f, rn_error_t *err)
{
    churn_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    int rc = load_model(rn_pf_config(f), &s->m, &s->threshold, err);
    if (rc == RN_OK && ((s->drops = rn_pf_map_state(f, "drops", err)) == NULL ||
                        (s->support = rn_pf_map_state(f, "support", err)) == NULL ||
                        (s->data = rn_pf_map_state(f, "data", err)) == NULL ||
                        (s->last_pay = rn_pf_value_state(f, "last_pay", err)) == NULL ||
                        (s->cust = rn_pf_value_state(f, "cust", err)) == NULL))
        rc = err->code;
    if (rc != RN_OK) {
        free(s);
        return rc;
    }
    s->f_kind = rn_pf_field(f, "kind");
    s->f_dropped = rn_pf_field(f, "dropped");
    s->f_mb = rn_pf_field(f, "mb");
    s->o_customer = rn_pf_out_field(f, 0, "customer");
    s->o_p = rn_pf_out_field(f, 0, "p");
    for (int i = 0; i < 4; i++)
        s->o_x[i] = rn_pf_out_field(f, 0, features[i]);
    rn_pf_set_data(f, s);
    return RN_OK;
}

static void
be64(unsigned char *p, int64_t v)
{
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        p[i] = (unsigned char)(v & 0xff);
}

static int64_t
from_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

/* Adds v to the map's entry of time ts. */
static int
add_at(rn_pf_map_t *m, int64_t ts, int64_t v, rn_error_t *err)
{
    unsigned char k[8];
    const void *old;
    size_t len;
    int64_t n = 0;
    be64(k, ts);
    int rc = rn_pf_map_get(m, k, 8, &old, &len, err);
    if (rc == RN_OK && len == 8)
        memcpy(&n, old, 8);
    else if (rc != RN_OK && rc != RN_ENOTFOUND)
        return rc;
    n += v;
    return rn_pf_map_put(m, k, 8, &n, 8, err);
}

/* Sums of a time map over two ranges, (a0, a1] and (b0, b1]; collects
 * keys at or before `drop` to remove. */
typedef struct sums {
    int64_t a0, a1, b0, b1, drop;
    double a, b;
    unsigned char (*old)[8];
    size_t nold, cap;
} sums_t;

static int
sum_range(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    sums_t *s = ctx;
    int64_t t, n;
    if (klen != 8 || vlen != 8)
        return RN_EINVAL;
    t = from_be64(k);
    memcpy(&n, v, 8);
    if (t > s->a0 && t <= s->a1)
        s->a += (double)n;
    if (t > s->b0 && t <= s->b1)
        s->b += (double)n;
    if (t <= s->drop) {
        if (s->nold == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 16;
            void *o = realloc(s->old, s->cap * 8);
            if (o == NULL)
                return RN_ENOMEM;
            s->old = o;
        }
        memcpy(s->old[s->nold++], k, 8);
    }
    return 0;
}

/* The sums of m over (a0, a1] and (b0, b1]; entries at or before drop
 * are removed (no later score can count them). */
static int
sums(rn_pf_map_t *m, sums_t *s, rn_error_t *err)
{
    int rc = rn_pf_map_each(m, sum_range, s, err);
    for (size_t i = 0; rc == RN_OK && i < s->nold; i++)
        rc = rn_pf_map_remove(m, s->old[i], 8, err);
    free(s->old);
    s->old = NULL;
    return rc;
}

/* Scores the current customer at time T and alerts once over threshold. */
static int
score(rn_pf_t *f, churn_t *s, int64_t T, cust_t *c, rn_error_t *err)
{
    double x[4];
    /* Entries leave the maps once no later score can need them: behind
     * the watermark by a window (records can come ahead of a timer, so T
     * itself is not safe for that). */
    int64_t wm = rn_pf_watermark(f);
    int64_t safe = wm < T ? wm : T;
    if (safe < INT64_MIN + 14 * DAY_MS)
        safe = INT64_MIN + 14 * DAY_MS;
    sums_t d = {T - DAY_MS, T, 0, 0, safe - DAY_MS, 0, 0, NULL, 0, 0};
    sums_t u = {T - 7 * DAY_MS, T, 0, 0, safe - 7 * DAY_MS, 0, 0, NULL, 0, 0};
    sums_t m = {T - 7 * DAY_MS, T, T - 14 * DAY_MS, T - 7 * DAY_MS, safe - 14 * DAY_MS, 0, 0, NULL, 0, 0};
    int rc;
    if ((rc = sums(s->drops, &d, err)) != RN_OK || (rc = sums(s->support, &u, err)) != RN_OK ||
        (rc = sums(s->data, &m, err)) != RN_OK)
        return rc;
    x[0] = d.a;
    x[1] = u.a;
    x[2] = (m.a - m.b) / (m.b > 1 ? m.b : 1);
    const void *v;
    size_t len;
    int64_t paid;
    rc = rn_pf_value_get(s->last_pay, &v, &len, err);
    if (rc == RN_OK && len == 8) {
        memcpy(&paid, v, 8);
        /* A payment after T (read before the watermark reached T): paid now. */
        x[3] = paid > T ? 0.0 : (double)(T - paid) / (double)DAY_MS;
    } else if (rc == RN_ENOTFOUND) {
        x[3] = 60;
    } else {
        return rc;
    }
    double z = s->m.bias;
    for (int i = 0; i < 4; i++)
        z += s->m.w[i] * x[i];
    double p = 1 / (1 + exp(-z));
    /* The features compare two weeks: not before the customer has them. */
    if (c->alerted || p <= s->threshold || T - c->first_event < 14 * DAY_MS)
        return RN_OK;
    c->alerted = 1;
    size_t klen;
    const char *customer = rn_pf_key_string(f, 0, &klen);
    if ((rc = rn_pf_out_begin(f, 0, err)) != RN_OK)
        return rc;
    rn_pf_out_set_string(f, s->o_customer, customer, klen);
    rn_pf_out_set_float(f, s->o_p, p);
    for (int i = 0; i < 4; i++)
        rn_pf_out_set_float(f, s->o_x[i], x[i]);
    return RN_OK;
}

static int
get_cust(churn_t *s, cust_t *c, rn_error_t *err)
{
    const void *v;
    size_t len;
    memset(c, 0, sizeof(*c));
    int rc = rn_pf_value_get(s->cust, &v, &len, err);
    if (rc == RN_OK && len == sizeof(*c))
        memcpy(c, v, sizeof(*c));
    return rc == RN_ENOTFOUND ? RN_OK : rc;
}

static int
churn_process(rn_pf_t *f, rn_error_t *err)
{
    churn_t *s = rn_pf_data(f);
    int64_t ts = rn_pf_timestamp(f);
    size_t klen;
    const char *kind = rn_pf_get_string(f, s->f_kind, &klen);
    int rc = RN_OK;
    if (kind == NULL)
        return RN_OK;
    if (klen == 4 && memcmp(kind, "call", 4) == 0 && rn_pf_get_bool(f, s->f_dropped))
        rc = add_at(s->drops, ts, 1, err);
    else if (klen == 7 && memcmp(kind, "support", 7) == 0)
        rc = add_at(s->support, ts, 1, err);
    else if (klen == 4 && memcmp(kind, "data", 4) == 0)
        rc = add_at(s->data, ts, rn_pf_get_int(f, s->f_mb), err);
    else if (klen == 7 && memcmp(kind, "payment", 7) == 0)
        rc = rn_pf_value_put(s->last_pay, &ts, 8, err);
    cust_t c;
    if (rc != RN_OK || (rc = get_cust(s, &c, err)) != RN_OK)
        return rc;
    if (ts > c.last_event)
        c.last_event = ts;
    if (c.first_event == 0 || ts < c.first_event)
        c.first_event = ts;
    int64_t midnight = (ts / DAY_MS + 1) * DAY_MS;
    if (c.timer_at < midnight && c.timer_at <= ts) {
        if ((rc = rn_pf_timer_register(f, RN_PF_EVENT_TIME, midnight, err)) != RN_OK)
            return rc;
        c.timer_at = midnight;
    }
    if ((rc = score(f, s, ts, &c, err)) != RN_OK)
        return rc;
    return rn_pf_value_put(s->cust, &c, sizeof(c), err);
}

static int
churn_on_timer(rn_pf_t *f, int64_t time, int domain, rn_error_t *err)
{
    churn_t *s = rn_pf_data(f);
    cust_t c;
    int rc = get_cust(s, &c, err);
    (void)domain;
    if (rc != RN_OK || (rc = score(f, s, time, &c, err)) != RN_OK)
        return rc;
    /* Another day while the customer's events flow (data comes daily):
     * not on and on after the input ended. */
    if (time - c.last_event < DAY_MS) {
        if ((rc = rn_pf_timer_register(f, RN_PF_EVENT_TIME, time + DAY_MS, err)) != RN_OK)
            return rc;
        c.timer_at = time + DAY_MS;
    }
    return rn_pf_value_put(s->cust, &c, sizeof(c), err);
}

static void
churn_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_process_fn_t churn = {
    .size = sizeof(rn_process_fn_t),
    .name = "churn",
    .plan = churn_plan,
    .open = churn_open,
    .process = churn_process,
    .close = churn_close,
    .on_timer = churn_on_timer,
};

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    return rn_plugin_register(p, RN_ABI_VERSION, &churn, err);
}
