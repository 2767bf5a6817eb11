/*
 * cli/progress.c: the one-line progress report of `runnel run` on a
 * terminal: records in and out per second and the watermark, redrawn once
 * a second on stderr. @thread its own; reads the job's atomic counters.
 */
#include "cli/progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rn_progress {
    rn_job_t *job;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void
human(double v, char *buf, size_t size)
{
    if (v >= 1e9)
        snprintf(buf, size, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, size, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, size, "%.1fk", v / 1e3);
    else
        snprintf(buf, size, "%.0f", v);
}

static void
format_wm(int64_t wm, char *buf, size_t size)
{
    if (wm == INT64_MIN) {
        snprintf(buf, size, "-");
        return;
    }
    if (wm == INT64_MAX) {
        snprintf(buf, size, "end");
        return;
    }
    time_t secs = (time_t)(wm / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + strlen(buf), size - strlen(buf), ".%03dZ", (int)(((wm % 1000) + 1000) % 1000));
}

static void *
progress_main(void *arg)
{
    rn_progress_t *p = arg;
    rn_job_stats_t prev, cur;
    struct timespec t0, t1;

    rn_job_stats(p->job, &prev);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->stop)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&p->cond, &p->lock, &until);
        if (atomic_load(&p->stop))
            break;
        rn_job_stats(p->job, &cur);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        char in[32], out[32], tin[32], tout[32], wm[40];
        human((double)(cur.records_in - prev.records_in) / dt, in, sizeof(in));
        human((double)(cur.records_out - prev.records_out) / dt, out, sizeof(out));
        human((double)cur.records_in, tin, sizeof(tin));
        human((double)cur.records_out, tout, sizeof(tout));
        format_wm(cur.watermark, wm, sizeof(wm));
        fprintf(stderr, "\r\033[Kin %s/s (%s)  out %s/s (%s)  watermark %s", in, tin, out, tout,
                wm);
        fflush(stderr);
        prev = cur;
        t0 = t1;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

rn_progress_t *
rn_progress_start(rn_job_t *job)
{
    if (!isatty(STDERR_FILENO))
        return NULL;
    rn_progress_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->job = job;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void
rn_progress_stop(rn_progress_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    fprintf(stderr, "\r\033[K");
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}
