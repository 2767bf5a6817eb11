/*
 * windows/watermark.c: see watermark.h.
 * @thread task.
 */
#include "windows/watermark.h"

void
rn__wmgen_init(rn_wmgen_t *g, int64_t max_ooo_ms, int64_t idle_ms, int64_t now_ms)
{
    g->max_ooo_ms = max_ooo_ms;
    g->idle_ms = idle_ms;
    g->max_ts = RN_TS_MIN;
    g->split_bound = RN_TS_MAX;
    g->emitted = RN_TS_MIN;
    g->last_activity_ms = now_ms;
    g->idle = false;
}

void
rn__wmgen_observe(rn_wmgen_t *g, int64_t max_ts_in_batch, int64_t now_ms)
{
    if (max_ts_in_batch > g->max_ts)
        g->max_ts = max_ts_in_batch;
    g->last_activity_ms = now_ms;
    g->idle = false;
}

int64_t
rn__wmgen_next(rn_wmgen_t *g)
{
    int64_t base = g->max_ts < g->split_bound ? g->max_ts : g->split_bound;
    if (base == RN_TS_MIN)
        return RN_TS_MIN;
    /* Saturating: an event time near INT64_MIN must not wrap. */
    int64_t wm = base < RN_TS_MIN + g->max_ooo_ms + 1 ? RN_TS_MIN + 1 : base - g->max_ooo_ms - 1;
    if (wm <= g->emitted)
        return RN_TS_MIN;
    g->emitted = wm;
    return wm;
}

bool
rn__wmgen_check_idle(rn_wmgen_t *g, int64_t now_ms)
{
    if (g->idle || g->idle_ms <= 0)
        return false;
    if (now_ms - g->last_activity_ms >= g->idle_ms) {
        g->idle = true;
        return true;
    }
    return false;
}

void
rn__wmmin_init(rn_wmmin_t *m, uint32_t nchannels)
{
    m->n = nchannels;
    m->chans = rn_xcalloc(nchannels ? nchannels : 1, sizeof(rn_wmchan_t));
    for (uint32_t i = 0; i < nchannels; i++)
        m->chans[i].wm = RN_TS_MIN;
    m->current = RN_TS_MIN;
}

void
rn__wmmin_fini(rn_wmmin_t *m)
{
    rn_free(m->chans);
    m->chans = NULL;
}

/* Recomputes the minimum over live channels. Idle channels are left out;
 * ended channels can hold nothing back. With no live channel that is not
 * idle the watermark holds, unless every channel has ended: then it is
 * +infinity. */
static bool
recompute(rn_wmmin_t *m)
{
    int64_t min = RN_TS_MAX;
    bool any_active = false, all_ended = true;

    for (uint32_t i = 0; i < m->n; i++) {
        const rn_wmchan_t *c = &m->chans[i];
        if (c->ended)
            continue;
        all_ended = false;
        if (c->idle)
            continue;
        any_active = true;
        if (c->wm < min)
            min = c->wm;
    }
    if (!any_active && !all_ended)
        return false;
    if (min <= m->current)
        return false;
    m->current = min;
    return true;
}

bool
rn__wmmin_update(rn_wmmin_t *m, uint32_t chan, int64_t wm)
{
    rn_wmchan_t *c = &m->chans[chan];
    c->idle = false;
    if (wm > c->wm)
        c->wm = wm;
    return recompute(m);
}

bool
rn__wmmin_set_idle(rn_wmmin_t *m, uint32_t chan, bool idle)
{
    m->chans[chan].idle = idle;
    return recompute(m);
}

bool
rn__wmmin_end(rn_wmmin_t *m, uint32_t chan)
{
    m->chans[chan].ended = true;
    m->chans[chan].wm = RN_TS_MAX;
    return recompute(m);
}

bool
rn__wmmin_all_idle(const rn_wmmin_t *m)
{
    bool any_idle = false;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->chans[i].ended)
            continue;
        if (!m->chans[i].idle)
            return false;
        any_idle = true;
    }
    return any_idle;
}

bool
rn__wmmin_all_ended(const rn_wmmin_t *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (!m->chans[i].ended)
            return false;
    return true;
}
