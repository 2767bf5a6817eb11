/*
 * bench/bench_common.h: what every benchmark prints besides its figure:
 * the machine it ran on, and the time of a job run.
 */
#ifndef RN_BENCH_COMMON_H
#define RN_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <runnel/runnel.h>

static inline void
bench_print_machine(void)
{
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

#endif
