/*
 * examples/iot/overheat.c: the `overheat` operator of the IoT example, a
 * runnel plugin with keyed state and an event-time timer
 * (include/runnel/plugin.h, docs/plugins.md).
 *
 * Keyed by machine. Config: max_temp (degrees, default 90) and for_ms
 * (default 120000). When a machine's temperature goes above max_temp, the
 * operator remembers since when (value state "over") and sets a timer at
 * since + for_ms. A reading at or below max_temp before then ends the
 * episode and deletes the timer. The alert {machine, over_since, alert_at}
 * goes out once per episode, with event time alert_at = since + for_ms:
 * from the timer, or from a cooling reading at or after alert_at that
 * arrived before the watermark fired the timer (readings of different
 * partitions move the watermark at their own pace). So the alerts depend
 * on event time only, never on how records were batched or delayed.
 */
#include <runnel/plugin.h>

#include <stdlib.h>
#include <string.h>

typedef struct over {
    int64_t since;   /* the first reading above max_temp of the episode */
    int64_t alerted; /* 1 once the alert went out */
} over_t;

typedef struct oh {
    double max_temp;
    int64_t for_ms;
    rn_pf_value_t *over;
    int f_temp;
    int o_machine, o_since, o_at;
} oh_t;

static int
read_config(const rn_conf_t *c, double *max_temp, int64_t *for_ms, rn_error_t *err)
{
    const char *m = c ? rn_conf_scalar(rn_conf_get(c, "max_temp")) : NULL;
    const char *f = c ? rn_conf_scalar(rn_conf_get(c, "for_ms")) : NULL;
    char *end = NULL;
    *max_temp = m ? strtod(m, &end) : 90.0;
    if (m && *end != '\0')
        return rn_pf_fail(NULL, err, RN_EINVAL, "max_temp '%s' is not a number", m);
    *for_ms = f ? strtoll(f, &end, 10) : 120000;
    if ((f && *end != '\0') || *for_ms <= 0)
        return rn_pf_fail(NULL, err, RN_EINVAL, "for_ms '%s' is not a positive integer", f);
    return RN_OK;
}

static int
oh_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    double m;
    int64_t f;
    rn_type_t t;
    int rc = read_config(rn_pf_plan_config(p), &m, &f, err);
    if (rc != RN_OK)
        return rc;
    if (rn_pf_plan_input_field(p, "temp", &t) < 0 || (t != RN_TYPE_FLOAT && t != RN_TYPE_INT))
        return rn_pf_fail(NULL, err, RN_EINVAL, "overheat needs a number field 'temp'");
    if ((rc = rn_pf_plan_output(p, NULL, "machine", RN_TYPE_STRING, err)) != RN_OK ||
        (rc = rn_pf_plan_output(p, NULL, "over_since", RN_TYPE_TIMESTAMP, err)) != RN_OK)
        return rc;
    return rn_pf_plan_output(p, NULL, "alert_at", RN_TYPE_TIMESTAMP, err);
}

static int
oh_open(rn_pf_t *f, rn_error_t *err)
{
    oh_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    int rc = read_config(rn_pf_config(f), &s->max_temp, &s->for_ms, err);
    if (rc == RN_OK && (s->over = rn_pf_value_state(f, "over", err)) == NULL)
        rc = err->code;
    if (rc != RN_OK) {
        free(s);
        return rc;
    }
    s->f_temp = rn_pf_field(f, "temp");
    s->o_machine = rn_pf_out_field(f, 0, "machine");
    s->o_since = rn_pf_out_field(f, 0, "over_since");
    s->o_at = rn_pf_out_field(f, 0, "alert_at");
    rn_pf_set_data(f, s);
    return RN_OK;
}

static int
alert(rn_pf_t *f, oh_t *s, over_t *o, rn_error_t *err)
{
    size_t len;
    const char *machine = rn_pf_key_string(f, 0, &len);
    int rc = rn_pf_out_begin(f, 0, err);
    if (rc != RN_OK)
        return rc;
    rn_pf_out_set_string(f, s->o_machine, machine, len);
    rn_pf_out_set_int(f, s->o_since, o->since);
    rn_pf_out_set_int(f, s->o_at, o->since + s->for_ms);
    o->alerted = 1;
    return rn_pf_value_put(s->over, o, sizeof(*o), err);
}

/* The machine's episode, or false when it is not over max_temp. */
static bool
episode(oh_t *s, over_t *o, rn_error_t *err, int *rc)
{
    const void *v;
    size_t len;
    *rc = rn_pf_value_get(s->over, &v, &len, err);
    if (*rc == RN_ENOTFOUND) {
        *rc = RN_OK;
        return false;
    }
    if (*rc == RN_OK && len == sizeof(*o)) {
        memcpy(o, v, sizeof(*o));
        return true;
    }
    if (*rc == RN_OK)
        *rc = rn_pf_fail(NULL, err, RN_EINVAL, "state 'over' of %zu bytes", len);
    return false;
}

static int
oh_process(rn_pf_t *f, rn_error_t *err)
{
    oh_t *s = rn_pf_data(f);
    int64_t ts = rn_pf_timestamp(f);
    over_t o;
    int rc;
    bool on = episode(s, &o, err, &rc);
    if (rc != RN_OK)
        return rc;
    if (rn_pf_get_float(f, s->f_temp) > s->max_temp) {
        if (on)
            return RN_OK;
        o = (over_t){ts, 0};
        if ((rc = rn_pf_value_put(s->over, &o, sizeof(o), err)) != RN_OK)
            return rc;
        return rn_pf_timer_register(f, RN_PF_EVENT_TIME, ts + s->for_ms, err);
    }
    if (!on)
        return RN_OK;
    /* Cooled down. Over long enough, but the timer has not fired yet: the
     * alert is due all the same. */
    if (!o.alerted && ts >= o.since + s->for_ms && (rc = alert(f, s, &o, err)) != RN_OK)
        return rc;
    if ((rc = rn_pf_timer_delete(f, RN_PF_EVENT_TIME, o.since + s->for_ms, err)) != RN_OK)
        return rc;
    return rn_pf_value_clear(s->over, err);
}

static int
oh_on_timer(rn_pf_t *f, int64_t time, int domain, rn_error_t *err)
{
    oh_t *s = rn_pf_data(f);
    over_t o;
    int rc;
    (void)domain;
    if (!episode(s, &o, err, &rc) || o.alerted || o.since + s->for_ms != time)
        return rc;
    return alert(f, s, &o, err);
}

static void
oh_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_process_fn_t overheat = {
    .size = sizeof(rn_process_fn_t),
    .name = "overheat",
    .plan = oh_plan,
    .open = oh_open,
    .process = oh_process,
    .close = oh_close,
    .on_timer = oh_on_timer,
};

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    return rn_plugin_register(p, RN_ABI_VERSION, &overheat, err);
}
