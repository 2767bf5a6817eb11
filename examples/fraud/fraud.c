/*
 * examples/fraud/fraud.c: the `fraud` operator of the card-fraud example,
 * a runnel plugin with keyed state and event-time timers
 * (include/runnel/plugin.h, docs/plugins.md).
 *
 * Keyed by card. Each transaction is checked against three rules, and
 * each rule that fires emits {tx_id, card, reason, amount, country}:
 *
 *   burst          the burst_count-th payment within burst_ms (the first
 *                  that completes a burst, not every one after it);
 *   spike          an amount over spike_factor times the card's average,
 *                  once the card has min_history payments;
 *   two_countries  a country other than the previous payment's, less than
 *                  country_ms after it.
 *
 * State per card: a map of recent payment times (8-byte big-endian time
 * -> count), a value with the count and sum of amounts, a value with the
 * last payment's time and country. A timer burst_ms after each payment
 * takes its time out of the map again; the rule itself counts only times
 * within burst_ms of the payment, so timers firing later than records
 * change nothing but memory. The flags depend on event time only.
 */
#include <runnel/plugin.h>

#include <stdlib.h>
#include <string.h>

typedef struct conf {
    int64_t burst_count, burst_ms, min_history, country_ms;
    double spike_factor;
} conf_t;

typedef struct stats {
    int64_t n;
    double sum;
} stats_t;

typedef struct last {
    int64_t ts;
    char country[8];
} last_t;

typedef struct fraud {
    conf_t c;
    rn_pf_map_t *recent;
    rn_pf_value_t *stats, *last;
    int f_tx, f_amount, f_country;
    int o_tx, o_card, o_reason, o_amount, o_country;
} fraud_t;

static int
num(const rn_conf_t *c, const char *key, double dflt, double *out, rn_error_t *err)
{
    const char *v = c ? rn_conf_scalar(rn_conf_get(c, key)) : NULL;
    char *end = NULL;
    *out = v ? strtod(v, &end) : dflt;
    if ((v && *end != '\0') || *out <= 0)
        return rn_pf_fail(NULL, err, RN_EINVAL, "%s '%s' is not a positive number", key, v);
    return RN_OK;
}

static int
read_conf(const rn_conf_t *c, conf_t *out, rn_error_t *err)
{
    double bc, bm, mh, cm;
    int rc = num(c, "burst_count", 5, &bc, err);
    if (rc == RN_OK)
        rc = num(c, "burst_ms", 120000, &bm, err);
    if (rc == RN_OK)
        rc = num(c, "spike_factor", 5, &out->spike_factor, err);
    if (rc == RN_OK)
        rc = num(c, "min_history", 3, &mh, err);
    if (rc == RN_OK)
        rc = num(c, "country_ms", 600000, &cm, err);
    out->burst_count = (int64_t)bc;
    out->burst_ms = (int64_t)bm;
    out->min_history = (int64_t)mh;
    out->country_ms = (int64_t)cm;
    return rc;
}

static int
fraud_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    conf_t c;
    rn_type_t t;
    int rc = read_conf(rn_pf_plan_config(p), &c, err);
    if (rc != RN_OK)
        return rc;
    if (rn_pf_plan_input_field(p, "amount", &t) < 0 || t != RN_TYPE_FLOAT ||
        rn_pf_plan_input_field(p, "country", &t) < 0 || t != RN_TYPE_STRING ||
        rn_pf_plan_input_field(p, "tx_id", &t) < 0 || t != RN_TYPE_INT)
        return rn_pf_fail(NULL, err, RN_EINVAL,
                          "fraud needs fields tx_id (int), amount (float), country (string)");
    if ((rc = rn_pf_plan_output(p, NULL, "tx_id", RN_TYPE_INT, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "card", RN_TYPE_STRING, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "reason", RN_TYPE_STRING, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "amount", RN_TYPE_FLOAT, err)) != RN_OK)
        return rc;
    return rn_pf_plan_output(p, NULL, "country", RN_TYPE_STRING, err);
}

static int
fraud_open(rn_pf_t *f, rn_error_t *err)
{
    fraud_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    int rc = read_conf(rn_pf_config(f), &s->c, err);
    if (rc == RN_OK && ((s->recent = rn_pf_map_state(f, "recent", err)) == NULL ||
                        (s->stats = rn_pf_value_state(f, "stats", err)) == NULL ||
                        (s->last = rn_pf_value_state(f, "last", err)) == NULL))
        rc = err->code;
    if (rc != RN_OK) {
        free(s);
        return rc;
    }
    s->f_tx = rn_pf_field(f, "tx_id");
    s->f_amount = rn_pf_field(f, "amount");
    s->f_country = rn_pf_field(f, "country");
    s->o_tx = rn_pf_out_field(f, 0, "tx_id");
    s->o_card = rn_pf_out_field(f, 0, "card");
    s->o_reason = rn_pf_out_field(f, 0, "reason");
    s->o_amount = rn_pf_out_field(f, 0, "amount");
    s->o_country = rn_pf_out_field(f, 0, "country");
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

static int
flag(rn_pf_t *f, fraud_t *s, const char *reason, rn_error_t *err)
{
    size_t clen, klen;
    const char *country = rn_pf_get_string(f, s->f_country, &clen);
    const char *card = rn_pf_key_string(f, 0, &klen);
    int rc = rn_pf_out_begin(f, 0, err);
    if (rc != RN_OK)
        return rc;
    rn_pf_out_set_int(f, s->o_tx, rn_pf_get_int(f, s->f_tx));
    rn_pf_out_set_string(f, s->o_card, card, klen);
    rn_pf_out_set_string(f, s->o_reason, reason, strlen(reason));
    rn_pf_out_set_float(f, s->o_amount, rn_pf_get_float(f, s->f_amount));
    rn_pf_out_set_string(f, s->o_country, country, clen);
    return RN_OK;
}

typedef struct window {
    int64_t from, to; /* (from, to] */
    int64_t count;
} window_t;

static int
count_recent(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    window_t *w = ctx;
    int64_t t, n;
    if (klen != 8 || vlen != 8)
        return RN_EINVAL;
    t = from_be64(k);
    memcpy(&n, v, 8);
    if (t > w->from && t <= w->to)
        w->count += n;
    return 0;
}

static int
fraud_process(rn_pf_t *f, rn_error_t *err)
{
    fraud_t *s = rn_pf_data(f);
    int64_t ts = rn_pf_timestamp(f);
    double amount = rn_pf_get_float(f, s->f_amount);
    size_t clen;
    const char *country = rn_pf_get_string(f, s->f_country, &clen);
    const void *v;
    size_t len;
    int rc;
    if (country == NULL) { /* null: no country to compare */
        country = "";
        clen = 0;
    }

    /* burst: this payment and those of the burst_ms before it. */
    unsigned char k[8];
    int64_t n = 0;
    be64(k, ts);
    if ((rc = rn_pf_map_get(s->recent, k, 8, &v, &len, err)) == RN_OK && len == 8)
        memcpy(&n, v, 8);
    else if (rc != RN_OK && rc != RN_ENOTFOUND)
        return rc;
    n++;
    if ((rc = rn_pf_map_put(s->recent, k, 8, &n, 8, err)) != RN_OK ||
        (rc = rn_pf_timer_register(f, RN_PF_EVENT_TIME, ts + s->c.burst_ms, err)) != RN_OK)
        return rc;
    window_t w = {ts - s->c.burst_ms, ts, 0};
    if ((rc = rn_pf_map_each(s->recent, count_recent, &w, err)) != RN_OK)
        return rc;
    if (w.count == s->c.burst_count && (rc = flag(f, s, "burst", err)) != RN_OK)
        return rc;

    /* spike: against the average of the payments before this one. */
    stats_t st = {0, 0.0};
    if ((rc = rn_pf_value_get(s->stats, &v, &len, err)) == RN_OK && len == sizeof(st))
        memcpy(&st, v, sizeof(st));
    else if (rc != RN_OK && rc != RN_ENOTFOUND)
        return rc;
    if (st.n >= s->c.min_history && amount > s->c.spike_factor * (st.sum / (double)st.n) &&
        (rc = flag(f, s, "spike", err)) != RN_OK)
        return rc;
    st.n++;
    st.sum += amount;
    if ((rc = rn_pf_value_put(s->stats, &st, sizeof(st), err)) != RN_OK)
        return rc;

    /* two countries within country_ms. */
    last_t last;
    if ((rc = rn_pf_value_get(s->last, &v, &len, err)) == RN_OK && len == sizeof(last)) {
        memcpy(&last, v, sizeof(last));
        if (ts - last.ts < s->c.country_ms &&
            (strlen(last.country) != clen || memcmp(last.country, country, clen) != 0) &&
            (rc = flag(f, s, "two_countries", err)) != RN_OK)
            return rc;
    } else if (rc != RN_OK && rc != RN_ENOTFOUND) {
        return rc;
    }
    memset(&last, 0, sizeof(last));
    last.ts = ts;
    memcpy(last.country, country, clen < sizeof(last.country) - 1 ? clen : sizeof(last.country) - 1);
    return rn_pf_value_put(s->last, &last, sizeof(last), err);
}

/* burst_ms after a payment: its time leaves the recent map. */
static int
fraud_on_timer(rn_pf_t *f, int64_t time, int domain, rn_error_t *err)
{
    fraud_t *s = rn_pf_data(f);
    unsigned char k[8];
    (void)domain;
    be64(k, time - s->c.burst_ms);
    int rc = rn_pf_map_remove(s->recent, k, 8, err);
    return rc == RN_ENOTFOUND ? RN_OK : rc;
}

static void
fraud_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_process_fn_t fraud = {
    .size = sizeof(rn_process_fn_t),
    .name = "fraud",
    .plan = fraud_plan,
    .open = fraud_open,
    .process = fraud_process,
    .close = fraud_close,
    .on_timer = fraud_on_timer,
};

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    return rn_plugin_register(p, RN_ABI_VERSION, &fraud, err);
}
