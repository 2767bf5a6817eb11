/*
 * examples/clv/clv.c: the `clv` operator of the customer-lifetime-value
 * example, a runnel plugin with keyed state (include/runnel/plugin.h).
 *
 * Keyed by customer. For each order it updates the customer's totals
 * (value state: orders, revenue, cost, first and last order time) and
 * emits the customer's lifetime value as it stands, Gupta's simple form:
 *
 *   CLV = APV x PF x CL x GM
 *   APV  average purchase value: revenue / orders
 *   PF   purchase frequency: orders per week over the customer's active
 *        span (first to last order, at least one week)
 *   CL   expected customer lifespan in weeks: config `lifespan_weeks`
 *        (default 104), a business assumption rather than data
 *   GM   gross margin: (revenue - cost) / revenue
 *
 * Output {customer, orders, apv, pf, gm, clv} with the order's event time:
 * a changelog of each customer's value, newest last.
 */
#include <runnel/plugin.h>

#include <stdlib.h>
#include <string.h>

#define WEEK_MS (7 * 86400000LL)

typedef struct totals {
    int64_t orders, first, last;
    double revenue, cost;
} totals_t;

typedef struct clv {
    double lifespan_weeks;
    rn_pf_value_t *totals;
    int f_amount, f_cost;
    int o_customer, o_orders, o_apv, o_pf, o_gm, o_clv;
} clv_t;

static int
lifespan(const rn_conf_t *c, double *out, rn_error_t *err)
{
    const char *v = c ? rn_conf_scalar(rn_conf_get(c, "lifespan_weeks")) : NULL;
    char *end = NULL;
    *out = v ? strtod(v, &end) : 104.0;
    if ((v && *end != '\0') || *out <= 0)
        return rn_pf_fail(NULL, err, RN_EINVAL, "lifespan_weeks '%s' is not a positive number", v);
    return RN_OK;
}

static int
clv_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    double l;
    rn_type_t t;
    int rc = lifespan(rn_pf_plan_config(p), &l, err);
    if (rc != RN_OK)
        return rc;
    if (rn_pf_plan_input_field(p, "amount", &t) < 0 || t != RN_TYPE_FLOAT ||
        rn_pf_plan_input_field(p, "cost", &t) < 0 || t != RN_TYPE_FLOAT)
        return rn_pf_fail(NULL, err, RN_EINVAL, "clv needs float fields amount and cost");
    static const char *const names[] = {"orders", "apv", "pf", "gm", "clv"};
    if ((rc = rn_pf_plan_output(p, NULL, "customer", RN_TYPE_STRING, err)) != RN_OK)
        return rc;
    for (size_t i = 0; i < 5; i++)
        if ((rc = rn_pf_plan_output(p, NULL, names[i], i == 0 ? RN_TYPE_INT : RN_TYPE_FLOAT,
                                    err)) != RN_OK)
            return rc;
    return RN_OK;
}

static int
clv_open(rn_pf_t *f, rn_error_t *err)
{
    clv_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    int rc = lifespan(rn_pf_config(f), &s->lifespan_weeks, err);
    if (rc == RN_OK && (s->totals = rn_pf_value_state(f, "totals", err)) == NULL)
        rc = err->code;
    if (rc != RN_OK) {
        free(s);
        return rc;
    }
    s->f_amount = rn_pf_field(f, "amount");
    s->f_cost = rn_pf_field(f, "cost");
    s->o_customer = rn_pf_out_field(f, 0, "customer");
    s->o_orders = rn_pf_out_field(f, 0, "orders");
    s->o_apv = rn_pf_out_field(f, 0, "apv");
    s->o_pf = rn_pf_out_field(f, 0, "pf");
    s->o_gm = rn_pf_out_field(f, 0, "gm");
    s->o_clv = rn_pf_out_field(f, 0, "clv");
    rn_pf_set_data(f, s);
    return RN_OK;
}

static int
clv_process(rn_pf_t *f, rn_error_t *err)
{
    clv_t *s = rn_pf_data(f);
    int64_t ts = rn_pf_timestamp(f);
    totals_t t = {0, ts, ts, 0.0, 0.0};
    const void *v;
    size_t len;
    int rc = rn_pf_value_get(s->totals, &v, &len, err);
    if (rc == RN_OK && len == sizeof(t))
        memcpy(&t, v, sizeof(t));
    else if (rc != RN_ENOTFOUND)
        return rc != RN_OK ? rc : rn_pf_fail(f, err, RN_EINVAL, "totals of %zu bytes", len);
    t.orders++;
    t.revenue += rn_pf_get_float(f, s->f_amount);
    t.cost += rn_pf_get_float(f, s->f_cost);
    if (ts < t.first)
        t.first = ts;
    if (ts > t.last)
        t.last = ts;
    if ((rc = rn_pf_value_put(s->totals, &t, sizeof(t), err)) != RN_OK)
        return rc;

    double weeks = (double)(t.last - t.first) / (double)WEEK_MS;
    double apv = t.revenue / (double)t.orders;
    double pf = (double)t.orders / (weeks < 1.0 ? 1.0 : weeks);
    double gm = t.revenue > 0 ? (t.revenue - t.cost) / t.revenue : 0.0;
    size_t klen;
    const char *customer = rn_pf_key_string(f, 0, &klen);
    if ((rc = rn_pf_out_begin(f, 0, err)) != RN_OK)
        return rc;
    rn_pf_out_set_string(f, s->o_customer, customer, klen);
    rn_pf_out_set_int(f, s->o_orders, t.orders);
    rn_pf_out_set_float(f, s->o_apv, apv);
    rn_pf_out_set_float(f, s->o_pf, pf);
    rn_pf_out_set_float(f, s->o_gm, gm);
    rn_pf_out_set_float(f, s->o_clv, apv * pf * s->lifespan_weeks * gm);
    return RN_OK;
}

static void
clv_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_process_fn_t clv = {
    .size = sizeof(rn_process_fn_t),
    .name = "clv",
    .plan = clv_plan,
    .open = clv_open,
    .process = clv_process,
    .close = clv_close,
};

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    return rn_plugin_register(p, RN_ABI_VERSION, &clv, err);
}
