/*
 * bench/bench_common.h: what every benchmark prints besides its figure:
 * the machine it ran on, and the time of a job run.
 */
#ifndef RN_BENCH_COMMON_H
#define RN_BENCH_COMMON_H

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <runnel/runnel.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Also sets up malloc as the runnel program does (cli/main.c: no glibc
 * fast bins), so that the figures are those of `runnel run`. */
static inline void
bench_print_machine(void)
{
#ifdef __GLIBC__
    mallopt(M_MXFAST, 0);
#endif
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof(model), "%s", c + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    struct utsname u;
    uname(&u);
    printf("machine: %s, %ld online CPUs, %s %s %s\n", model, sysconf(_SC_NPROCESSORS_ONLN),
           u.sysname, u.release, u.machine);
}

static inline double
bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds used by the process so far (user + system). */
static inline double
bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Loads a job from YAML text, runs it and reports wall and CPU seconds.
 * @returns 0, or 1 after printing the error. */
static inline int
bench_run_yaml(const char *yaml, int workers, double *wall, double *cpu, uint64_t *records)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "bench", &err);
    if (root == NULL) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    rn_graph_t *g = rn_graph_from_conf(root, &err);
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    opts.workers = workers;
    rn_job_t *job = g ? rn_job_new(g, &opts, &err) : NULL;
    if (job == NULL) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double c0 = bench_cpu(), t0 = bench_now();
    rn_code_t rc = rn_job_run(job, &err);
    *wall = bench_now() - t0;
    *cpu = bench_cpu() - c0;
    rn_job_stats_t st;
    rn_job_stats(job, &st);
    *records = st.records_in;
    rn_job_destroy(job);
    if (rc != RN_OK) {
        fprintf(stderr, "bench: job failed: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* ---- the peak size of a directory during a run (state on disk) ---- */

typedef struct bench_du {
    const char *dir;
    atomic_bool stop;
    unsigned long long peak; /* bytes */
    pthread_t thread;
} bench_du_t;

static _Thread_local unsigned long long bench_du_sum;

static int
bench_du_add(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        bench_du_sum += (unsigned long long)sb->st_size;
    return 0;
}

static void *
bench_du_main(void *arg)
{
    bench_du_t *d = arg;
    while (!atomic_load(&d->stop)) {
        bench_du_sum = 0;
        nftw(d->dir, bench_du_add, 16, FTW_PHYS);
        if (bench_du_sum > d->peak)
            d->peak = bench_du_sum;
        usleep(100 * 1000);
    }
    return NULL;
}

/* Samples the size of dir's files every 100 ms until bench_du_stop. */
static inline void
bench_du_start(bench_du_t *d, const char *dir)
{
    d->dir = dir;
    atomic_init(&d->stop, false);
    d->peak = 0;
    pthread_create(&d->thread, NULL, bench_du_main, d);
}

/* @returns the peak size seen, in bytes. */
static inline unsigned long long
bench_du_stop(bench_du_t *d)
{
    atomic_store(&d->stop, true);
    pthread_join(d->thread, NULL);
    return d->peak;
}

/* Peak resident memory of the process, MB. */
static inline double
bench_peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

#endif
