/*
 * tests/unit/test_watermark.c: watermark generation at sources (rn_wmgen)
 * and the minimum over an operator's input channels (rn_wmmin), from
 * windows/watermark.c.
 *
 * Processing time is passed in explicitly, so idleness is tested without
 * sleeping.
 */
#include "rn_check.h"

#include "windows/watermark.h"

/* ---- rn_wmgen ---- */

START_TEST(test_watermark_gen_bounded_ooo)
{
    rn_wmgen_t g;

    rn__wmgen_init(&g, 5000, 0, 0);
    /* Nothing seen: nothing to emit. */
    ck_assert(rn__wmgen_next(&g) == RN_TS_MIN);

    rn__wmgen_observe(&g, 100000, 1);
    ck_assert_int_eq(rn__wmgen_next(&g), 100000 - 5000 - 1);
    /* Not advanced: nothing new to emit. */
    ck_assert(rn__wmgen_next(&g) == RN_TS_MIN);

    rn__wmgen_observe(&g, 100001, 2);
    ck_assert_int_eq(rn__wmgen_next(&g), 100001 - 5000 - 1);

    /* Zero out-of-orderness: the highest event time minus 1 ms. */
    rn__wmgen_init(&g, 0, 0, 0);
    rn__wmgen_observe(&g, 1700000000000LL, 0);
    ck_assert_int_eq(rn__wmgen_next(&g), 1700000000000LL - 1);
}
END_TEST

START_TEST(test_watermark_gen_never_back)
{
    rn_wmgen_t g;

    rn__wmgen_init(&g, 10, 0, 0);
    rn__wmgen_observe(&g, 1000, 0);
    ck_assert_int_eq(rn__wmgen_next(&g), 989);
    /* Older events (out of order, or late) do not move it back. */
    rn__wmgen_observe(&g, 500, 0);
    ck_assert(rn__wmgen_next(&g) == RN_TS_MIN);
    rn__wmgen_observe(&g, 999, 0);
    ck_assert(rn__wmgen_next(&g) == RN_TS_MIN);
    ck_assert_int_eq(g.emitted, 989);
    rn__wmgen_observe(&g, 1000, 0);
    ck_assert(rn__wmgen_next(&g) == RN_TS_MIN);
    rn__wmgen_observe(&g, 1011, 0);
    ck_assert_int_eq(rn__wmgen_next(&g), 1000);

    /* A sequence of observations: the emitted values strictly increase
     * and each is the running maximum minus 11. */
    int64_t last = 1000, max = 1011;
    for (int i = 0; i < 1000; i++) {
        int64_t ts = 1000 + (i * 7919) % 2000; /* jumps back and forth */
        rn__wmgen_observe(&g, ts, i);
        if (ts > max)
            max = ts;
        int64_t wm = rn__wmgen_next(&g);
        if (wm != RN_TS_MIN) {
            ck_assert_int_gt(wm, last);
            ck_assert_int_eq(wm, max - 11);
            last = wm;
        } else {
            ck_assert_int_eq(max - 11, last);
        }
    }
}
END_TEST

START_TEST(test_watermark_gen_saturates)
{
    rn_wmgen_t g;

    /* An event time near the bottom of the range must not wrap around. */
    rn__wmgen_init(&g, 1000, 0, 0);
    rn__wmgen_observe(&g, RN_TS_MIN + 5, 0);
    int64_t wm = rn__wmgen_next(&g);
    ck_assert(wm != RN_TS_MIN);
    ck_assert(wm < RN_TS_MIN + 5);
    ck_assert(wm > RN_TS_MIN);

    /* Negative event times (before 1970) are ordinary. */
    rn__wmgen_init(&g, 0, 0, 0);
    rn__wmgen_observe(&g, -1000, 0);
    ck_assert_int_eq(rn__wmgen_next(&g), -1001);
}
END_TEST

START_TEST(test_watermark_gen_idle)
{
    rn_wmgen_t g;

    rn__wmgen_init(&g, 0, 100, 1000);
    ck_assert(!g.idle);
    /* Idle after idle_ms without a record, once. */
    ck_assert(!rn__wmgen_check_idle(&g, 1050));
    ck_assert(!rn__wmgen_check_idle(&g, 1099));
    ck_assert(rn__wmgen_check_idle(&g, 1100));
    ck_assert(g.idle);
    ck_assert(!rn__wmgen_check_idle(&g, 1200));
    ck_assert(g.idle);

    /* A record makes it active again, and the clock restarts from it. */
    rn__wmgen_observe(&g, 5000, 1300);
    ck_assert(!g.idle);
    ck_assert(!rn__wmgen_check_idle(&g, 1399));
    ck_assert_int_eq(rn__wmgen_next(&g), 4999);
    ck_assert(rn__wmgen_check_idle(&g, 1400));
    ck_assert(g.idle);

    /* Becoming idle does not change the watermark. */
    ck_assert(rn__wmgen_next(&g) == RN_TS_MIN);
    ck_assert_int_eq(g.emitted, 4999);
}
END_TEST

START_TEST(test_watermark_gen_never_idle)
{
    rn_wmgen_t g;

    /* idle_ms 0: no idle timeout, however long the source is quiet. */
    rn__wmgen_init(&g, 0, 0, 0);
    ck_assert(!rn__wmgen_check_idle(&g, 1000000000));
    ck_assert(!g.idle);
}
END_TEST

/* ---- rn_wmmin ---- */

START_TEST(test_watermark_min_over_channels)
{
    rn_wmmin_t m;

    rn__wmmin_init(&m, 3);
    ck_assert(m.current == RN_TS_MIN);
    /* Channels 1 and 2 have not reported: no advance. */
    ck_assert(!rn__wmmin_update(&m, 0, 100));
    ck_assert(!rn__wmmin_update(&m, 1, 50));
    ck_assert(m.current == RN_TS_MIN);
    ck_assert(rn__wmmin_update(&m, 2, 70));
    ck_assert_int_eq(m.current, 50);
    /* The slowest channel moves: min of 100, 60, 70. */
    ck_assert(rn__wmmin_update(&m, 1, 60));
    ck_assert_int_eq(m.current, 60);
    /* A faster channel moving changes nothing. */
    ck_assert(!rn__wmmin_update(&m, 0, 200));
    ck_assert_int_eq(m.current, 60);
    ck_assert(rn__wmmin_update(&m, 1, 1000));
    ck_assert_int_eq(m.current, 70);
    /* A channel going back is ignored: its watermark never decreases. */
    ck_assert(!rn__wmmin_update(&m, 2, 10));
    ck_assert_int_eq(m.current, 70);
    ck_assert_int_eq(m.chans[2].wm, 70);
    ck_assert(rn__wmmin_update(&m, 2, 150));
    ck_assert_int_eq(m.current, 150);
    ck_assert(!rn__wmmin_all_idle(&m));
    ck_assert(!rn__wmmin_all_ended(&m));
    rn__wmmin_fini(&m);
    ck_assert_ptr_null(m.chans);
}
END_TEST

START_TEST(test_watermark_min_idle_left_out)
{
    rn_wmmin_t m;

    rn__wmmin_init(&m, 3);
    rn__wmmin_update(&m, 0, 100);
    rn__wmmin_update(&m, 1, 200);
    ck_assert(m.current == RN_TS_MIN);
    /* Channel 2 never reported; once idle it is left out of the minimum. */
    ck_assert(rn__wmmin_set_idle(&m, 2, true));
    ck_assert_int_eq(m.current, 100);
    ck_assert(!rn__wmmin_all_idle(&m));
    ck_assert(rn__wmmin_set_idle(&m, 0, true));
    ck_assert_int_eq(m.current, 200);

    /* An idle channel that comes back behind the current watermark does
     * not pull it back. */
    ck_assert(!rn__wmmin_update(&m, 0, 150));
    ck_assert(!m.chans[0].idle);
    ck_assert_int_eq(m.current, 200);
    /* ... and holds it until it catches up. */
    ck_assert(!rn__wmmin_update(&m, 1, 300));
    ck_assert_int_eq(m.current, 200);
    ck_assert(rn__wmmin_update(&m, 0, 250));
    ck_assert_int_eq(m.current, 250);

    /* set_idle(false) puts a channel back in. */
    ck_assert(!rn__wmmin_set_idle(&m, 2, false));
    ck_assert_int_eq(m.current, 250);
    ck_assert(!rn__wmmin_update(&m, 0, 400));
    ck_assert(!rn__wmmin_update(&m, 1, 400));
    ck_assert_int_eq(m.current, 250);
    ck_assert(rn__wmmin_update(&m, 2, 390));
    ck_assert_int_eq(m.current, 390);
    rn__wmmin_fini(&m);
}
END_TEST

START_TEST(test_watermark_min_all_idle_holds)
{
    rn_wmmin_t m;

    rn__wmmin_init(&m, 2);
    rn__wmmin_update(&m, 0, 100);
    ck_assert(rn__wmmin_update(&m, 1, 80));
    ck_assert_int_eq(m.current, 80);
    ck_assert(rn__wmmin_set_idle(&m, 1, true));
    ck_assert_int_eq(m.current, 100);
    ck_assert(!rn__wmmin_all_idle(&m));
    /* Every channel idle: the watermark holds where it is. */
    ck_assert(!rn__wmmin_set_idle(&m, 0, true));
    ck_assert_int_eq(m.current, 100);
    ck_assert(rn__wmmin_all_idle(&m));
    /* Idle markers repeated change nothing. */
    ck_assert(!rn__wmmin_set_idle(&m, 0, true));
    ck_assert_int_eq(m.current, 100);
    /* One channel active again. */
    ck_assert(rn__wmmin_update(&m, 1, 120));
    ck_assert_int_eq(m.current, 120);
    ck_assert(!rn__wmmin_all_idle(&m));
    rn__wmmin_fini(&m);

    /* Idle from the start: nothing to hold but RN_TS_MIN. */
    rn__wmmin_init(&m, 2);
    ck_assert(!rn__wmmin_set_idle(&m, 0, true));
    ck_assert(!rn__wmmin_set_idle(&m, 1, true));
    ck_assert(m.current == RN_TS_MIN);
    ck_assert(rn__wmmin_all_idle(&m));
    rn__wmmin_fini(&m);
}
END_TEST

START_TEST(test_watermark_min_end)
{
    rn_wmmin_t m;

    rn__wmmin_init(&m, 3);
    rn__wmmin_update(&m, 0, 100);
    rn__wmmin_update(&m, 1, 200);
    ck_assert(rn__wmmin_update(&m, 2, 300));
    ck_assert_int_eq(m.current, 100);
    /* An ended channel counts as +infinity. */
    ck_assert(rn__wmmin_end(&m, 0));
    ck_assert_int_eq(m.current, 200);
    ck_assert(!rn__wmmin_all_ended(&m));
    /* Idle next to ended: the idle channel is left out, the minimum is
     * over the live one. all_idle looks at channels that have not ended. */
    ck_assert(rn__wmmin_set_idle(&m, 1, true));
    ck_assert_int_eq(m.current, 300);
    ck_assert(!rn__wmmin_all_idle(&m));
    ck_assert(!rn__wmmin_set_idle(&m, 1, false));
    ck_assert_int_eq(m.current, 300);
    ck_assert(!rn__wmmin_end(&m, 1));
    ck_assert_int_eq(m.current, 300);
    /* All ended: INT64_MAX, and all_ended. */
    ck_assert(rn__wmmin_end(&m, 2));
    ck_assert(m.current == INT64_MAX);
    ck_assert(rn__wmmin_all_ended(&m));
    /* Nothing moves it after that. */
    ck_assert(!rn__wmmin_update(&m, 2, 5));
    ck_assert(!rn__wmmin_end(&m, 2));
    ck_assert(m.current == INT64_MAX);
    rn__wmmin_fini(&m);
}
END_TEST

/* Regression: with one channel ended and every other one idle, the
 * watermark used to jump to +infinity (ended channels counted as live), so
 * every window fired while an idle source could still send records. */
START_TEST(test_watermark_min_ended_and_idle_holds)
{
    rn_wmmin_t m;

    rn__wmmin_init(&m, 2);
    rn__wmmin_update(&m, 0, 100);
    rn__wmmin_update(&m, 1, 100);
    ck_assert(!rn__wmmin_end(&m, 0));
    ck_assert_int_eq(m.current, 100);
    ck_assert(!rn__wmmin_set_idle(&m, 1, true));
    ck_assert_int_eq(m.current, 100);
    /* Active again and moving: it follows the live channel. */
    ck_assert(rn__wmmin_update(&m, 1, 150));
    ck_assert_int_eq(m.current, 150);
    rn__wmmin_fini(&m);
}
END_TEST

START_TEST(test_watermark_min_all_ended_at_once)
{
    rn_wmmin_t m;

    /* Channels that end without ever sending a watermark (an empty bounded
     * source) still give INT64_MAX. */
    rn__wmmin_init(&m, 4);
    ck_assert(!rn__wmmin_end(&m, 3));
    ck_assert(!rn__wmmin_end(&m, 1));
    ck_assert(!rn__wmmin_end(&m, 0));
    ck_assert(m.current == RN_TS_MIN);
    ck_assert(!rn__wmmin_all_ended(&m));
    ck_assert(rn__wmmin_end(&m, 2));
    ck_assert(m.current == INT64_MAX);
    ck_assert(rn__wmmin_all_ended(&m));
    rn__wmmin_fini(&m);

    /* One channel. */
    rn__wmmin_init(&m, 1);
    ck_assert(rn__wmmin_update(&m, 0, 7));
    ck_assert_int_eq(m.current, 7);
    ck_assert(rn__wmmin_end(&m, 0));
    ck_assert(m.current == INT64_MAX);
    rn__wmmin_fini(&m);
}
END_TEST

START_TEST(test_watermark_min_never_decreases)
{
    rn_wmmin_t m;
    const uint32_t n = 5;
    int64_t chan_max[5];
    uint32_t seed = 12345;

    rn__wmmin_init(&m, n);
    for (uint32_t c = 0; c < n; c++)
        chan_max[c] = RN_TS_MIN;
    int64_t prev = m.current;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t c = (seed >> 16) % n;
        uint32_t what = (seed >> 8) % 10;
        bool moved;
        if (what == 0) {
            moved = rn__wmmin_set_idle(&m, c, true);
        } else if (what == 1) {
            moved = rn__wmmin_set_idle(&m, c, false);
        } else {
            /* Mostly forward, sometimes back. */
            int64_t wm = step * 10 - (int64_t)((seed >> 4) % 500);
            moved = rn__wmmin_update(&m, c, wm);
            if (wm > chan_max[c])
                chan_max[c] = wm;
            ck_assert_int_eq(m.chans[c].wm, chan_max[c]);
        }
        ck_assert(m.current >= prev);
        ck_assert(moved == (m.current > prev));
        /* Never past a live channel that is not idle. */
        for (uint32_t k = 0; k < n; k++)
            if (!m.chans[k].idle && m.chans[k].wm != RN_TS_MIN && m.current != RN_TS_MIN)
                ck_assert_msg(m.current <= m.chans[k].wm || m.chans[k].wm < prev,
                              "step %d: %lld past channel %u at %lld", step,
                              (long long)m.current, k, (long long)m.chans[k].wm);
        prev = m.current;
    }
    rn__wmmin_fini(&m);
}
END_TEST

static Suite *
watermark_suite(void)
{
    Suite *s = suite_create("watermark");
    TCase *tc;

    tc = tcase_create("gen");
    tcase_add_test(tc, test_watermark_gen_bounded_ooo);
    tcase_add_test(tc, test_watermark_gen_never_back);
    tcase_add_test(tc, test_watermark_gen_saturates);
    tcase_add_test(tc, test_watermark_gen_idle);
    tcase_add_test(tc, test_watermark_gen_never_idle);
    suite_add_tcase(s, tc);

    tc = tcase_create("min");
    tcase_add_test(tc, test_watermark_min_over_channels);
    tcase_add_test(tc, test_watermark_min_idle_left_out);
    tcase_add_test(tc, test_watermark_min_all_idle_holds);
    tcase_add_test(tc, test_watermark_min_end);
    tcase_add_test(tc, test_watermark_min_ended_and_idle_holds);
    tcase_add_test(tc, test_watermark_min_all_ended_at_once);
    tcase_add_test(tc, test_watermark_min_never_decreases);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(watermark_suite)
