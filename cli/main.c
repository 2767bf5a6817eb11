/*
 * cli/main.c: the `runnel` command.
 *
 *   runnel run JOB.yaml [--set key.path=value]... [--workers N] [--quiet]
 *              [--from-savepoint DIR [--allow-non-restored-state]]
 *              [--accept-duplicates] [--allow-code-properties]
 *   runnel validate JOB.yaml [--set key.path=value]...
 *   runnel savepoint ADDR [DIR]
 *   runnel stop ADDR [--savepoint DIR]
 *   runnel checkpoints DIR [--verify]
 *   runnel version
 *
 * Exit status (docs/job-file.md, runnel --help):
 *   0  done: the job finished, or stopped at a checkpoint or savepoint
 *      it resumes from; the other commands did what was asked
 *   1  usage: bad arguments or a bad job file; nothing was run
 *   2  the job failed or cannot go on: a restore refused (damaged or
 *      mismatched checkpoint), a failed write, a task's error, or it was
 *      cancelled before its end (a second signal, or no checkpoints)
 *
 * Signals: SIGINT and SIGTERM are blocked first thing in main and caught
 * before anything else runs, so that one arriving while the job file is
 * read, the state opened or a checkpoint restored is not lost: the first
 * stops the job with a final checkpoint as soon as it exists, a second
 * one cancels it (or, before the job exists, ends the process with 2).
 *
 * A finished run ends with one line on stderr (unless --quiet):
 *   runnel: job finished: N records in, M out, T s, peak memory X MB
 * where peak memory is the process's peak resident set (getrusage
 * ru_maxrss, RocksDB's and every thread's memory included) in MiB; tests
 * read it to check the state backend's memory bound.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <runnel/runnel.h>

#include "cli/commands.h"
#include "cli/progress.h"

/* Set with SIGINT and SIGTERM blocked (publish_job), read by the handler. */
static rn_job_t *volatile running_job;
static volatile sig_atomic_t signals_seen;
/* Where `run` is: 0 making the job, 1 running it, 2 closing it (the job
 * ended with exit status closing_code; only freeing is left). */
static volatile sig_atomic_t phase;
static volatile sig_atomic_t closing_code;

/* The first SIGINT or SIGTERM stops the job cleanly (a final checkpoint
 * when it takes checkpoints); a second one cancels it at once. Before the
 * job exists they are counted (publish_job acts on them), except that a
 * second one ends the process: nothing was written yet that a restart
 * would miss. After the job ended, a second one ends the process with the
 * job's status, skipping the teardown. Only async-signal-safe calls:
 * rn_job_stop and rn_job_cancel are atomic stores, which workers and the
 * coordinator look at every few milliseconds and before each file a
 * checkpoint copies. */
static void
on_signal(int sig)
{
    (void)sig;
    int n = ++signals_seen;
    if (phase == 1) {
        if (n == 1)
            rn_job_stop(running_job);
        else
            rn_job_cancel(running_job);
    } else if (n >= 2 && phase == 2) {
        _exit(closing_code);
    } else if (n >= 2) {
        static const char msg[] = "runnel: stopped before the job started\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(2);
    }
}

static void
term_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* Makes job the one signals act on, and acts on those that came while it
 * was being made. */
static void
publish_job(rn_job_t *job)
{
    sigset_t set, old;
    term_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    running_job = job;
    phase = 1;
    int n = signals_seen;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (n >= 1)
        rn_job_stop(job);
    if (n >= 2)
        rn_job_cancel(job);
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: runnel run JOB.yaml [--set key.path=value]... [--workers N] [--quiet]\n"
               "                  [--from-savepoint DIR [--allow-non-restored-state]]\n"
               "                  [--accept-duplicates] [--allow-code-properties]\n"
               "       runnel validate JOB.yaml [--set key.path=value]...\n"
               "       runnel savepoint ADDR [DIR]\n"
               "       runnel stop ADDR [--savepoint DIR]\n"
               "       runnel checkpoints DIR [--verify]\n"
               "       runnel version\n"
               "\n"
               "  run          runs the job until its sources end; SIGINT/SIGTERM stop it\n"
               "               with a final checkpoint (a second one at once); resumes from\n"
               "               the newest checkpoint in checkpoints.dir, or --from-savepoint\n"
               "  validate     checks the job file and prints the planned graph\n"
               "  savepoint    takes a savepoint of the running job whose rest.listen is ADDR\n"
               "               into DIR, a new directory directly in checkpoints.savepoints\n"
               "               (default: a new name there); prints its path\n"
               "  stop         stops that job: with a savepoint into DIR (path printed), or\n"
               "               with a final checkpoint\n"
               "  checkpoints  lists checkpoints and savepoints in DIR (--verify: every file)\n"
               "  --set     overrides one value of the job file, e.g. --set parallelism=4\n"
               "  --workers worker threads (default: one per CPU)\n"
               "  --quiet   no progress line\n"
               "\n"
               "exit status: 0 done (finished, or stopped at a checkpoint or savepoint it\n"
               "             resumes from); 1 bad arguments or job file, nothing run;\n"
               "             2 the job failed or cannot go on (restore refused, write\n"
               "             failed, cancelled before its end)\n");
}

typedef struct args {
    const char *cmd;
    const char *job;
    const char **sets;
    int nsets;
    int workers;
    int quiet;
    const char *from_savepoint;
    const char *savepoint; /* stop --savepoint DIR */
    const char *arg2;      /* a second positional argument */
    bool allow_non_restored;
    bool accept_duplicates;
    bool allow_code_properties;
    bool verify;
} args_t;

static int
parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->sets = calloc((size_t)argc, sizeof(char *));
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    a->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--set") == 0 && i + 1 < argc) {
            a->sets[a->nsets++] = argv[++i];
        } else if (strncmp(s, "--set=", 6) == 0) {
            a->sets[a->nsets++] = s + 6;
        } else if (strcmp(s, "--workers") == 0 && i + 1 < argc) {
            char *end;
            long w = strtol(argv[++i], &end, 10);
            if (*end != '\0' || w < 1 || w > 1024) {
                fprintf(stderr, "runnel: --workers takes a number from 1 to 1024\n");
                return 1;
            }
            a->workers = (int)w;
        } else if (strcmp(s, "--from-savepoint") == 0 && i + 1 < argc) {
            a->from_savepoint = argv[++i];
        } else if (strcmp(s, "--savepoint") == 0 && i + 1 < argc) {
            a->savepoint = argv[++i];
        } else if (strcmp(s, "--allow-non-restored-state") == 0) {
            a->allow_non_restored = true;
        } else if (strcmp(s, "--accept-duplicates") == 0) {
            a->accept_duplicates = true;
        } else if (strcmp(s, "--allow-code-properties") == 0) {
            a->allow_code_properties = true;
        } else if (strcmp(s, "--verify") == 0) {
            a->verify = true;
        } else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
            a->quiet = 1;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (s[0] == '-') {
            fprintf(stderr, "runnel: unknown option '%s' (see runnel --help)\n", s);
            return 1;
        } else if (a->job == NULL) {
            a->job = s;
        } else if (a->arg2 == NULL && strcmp(a->cmd, "savepoint") == 0) {
            a->arg2 = s;
        } else {
            fprintf(stderr, "runnel: unexpected argument '%s'\n", s);
            return 1;
        }
    }
    return 0;
}

/* Loads the job file and applies --set overrides.
 * @param plan_only plan the job only (validate): nothing on disk is touched.
 * @param code set to the exit status when NULL is returned: 1 for the job
 * file or arguments, 2 for what the job found at start (a checkpoint to
 * restore, its state directory).
 * @returns a job (free with rn_job_destroy()) or NULL after printing. */
static rn_job_t *
load_job(const args_t *a, bool plan_only, int *code)
{
    *code = 1;
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root;
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;

    if (a->job == NULL) {
        fprintf(stderr, "runnel: %s needs a job file (runnel %s JOB.yaml)\n", a->cmd, a->cmd);
        return NULL;
    }
    if ((root = rn_conf_load_file(a->job, &err)) == NULL) {
        fprintf(stderr, "runnel: %s\n", err.msg);
        return NULL;
    }
    for (int i = 0; i < a->nsets; i++) {
        const char *eq = strchr(a->sets[i], '=');
        if (eq == NULL || eq == a->sets[i]) {
            fprintf(stderr, "runnel: --set '%s': expected key.path=value\n", a->sets[i]);
            rn_conf_destroy(root);
            return NULL;
        }
        char *path = strndup(a->sets[i], (size_t)(eq - a->sets[i]));
        rn_code_t rc = rn_conf_set_path(root, path, eq + 1, &err);
        free(path);
        if (rc != RN_OK) {
            fprintf(stderr, "runnel: --set '%s': %s\n", a->sets[i], err.msg);
            rn_conf_destroy(root);
            return NULL;
        }
    }
    rn_graph_t *g = rn_graph_from_conf(root, &err);
    if (g == NULL) {
        fprintf(stderr, "runnel: %s\n", err.msg);
        return NULL;
    }
    opts.workers = a->workers;
    opts.from_savepoint = a->from_savepoint;
    opts.allow_non_restored_state = a->allow_non_restored;
    opts.accept_duplicates = a->accept_duplicates;
    opts.allow_code_properties = a->allow_code_properties;
    /* validate plans only: it must not touch the disk (state, checkpoints). */
    rn_job_t *job = plan_only ? rn_job_plan(g, &opts, &err) : rn_job_new(g, &opts, &err);
    if (job == NULL) {
        fprintf(stderr, "runnel: %s\n", err.msg);
        if (!(err.flags & RN_ERR_DEFINITION))
            *code = 2;
    }
    return job;
}

/* The process's peak resident set so far, in MiB; 0 when unknown. Linux
 * reports ru_maxrss in KiB. */
static double
peak_rss_mb(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss / 1024.0;
}

static int
cmd_run(const args_t *a)
{
    rn_error_t err = RN_ERROR_INIT;
    int code;
    rn_job_t *job = load_job(a, false, &code);
    struct timespec t0, t1;

    if (job == NULL)
        return code;
    publish_job(job);
    rn_job_stats_t st0;
    rn_job_stats(job, &st0);
    if (st0.restored_from > 0)
        fprintf(stderr, "runnel: resuming from %s %lld\n",
                a->from_savepoint != NULL ? "savepoint" : "checkpoint",
                (long long)st0.restored_from);
    rn_progress_t *p = a->quiet ? NULL : rn_progress_start(job);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rn_code_t rc = rn_job_run(job, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rn_progress_stop(p);

    rn_job_stats_t st;
    rn_job_stats(job, &st);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (rc == RN_OK && st.stopped_at > 0) {
        fprintf(stderr,
                "runnel: job stopped at checkpoint %lld (%llu records in, %llu out); "
                "runnel run continues from it\n",
                (long long)st.stopped_at, (unsigned long long)st.records_in,
                (unsigned long long)st.records_out);
    } else if (rc == RN_OK) {
        if (!a->quiet)
            fprintf(stderr,
                    "runnel: job finished: %llu records in, %llu out, %.2f s, "
                    "peak memory %.1f MB\n",
                    (unsigned long long)st.records_in, (unsigned long long)st.records_out, secs,
                    peak_rss_mb());
    } else if (rc == RN_ECANCELED) {
        fprintf(stderr, "runnel: job stopped before its end (%llu records in, %llu out); "
                        "output not committed by a checkpoint was not written\n",
                (unsigned long long)st.records_in, (unsigned long long)st.records_out);
    } else {
        fprintf(stderr, "runnel: job failed: %s\n", err.msg);
    }
    if (!a->quiet && (st.checkpoints_completed > 0 || st.checkpoints_failed > 0))
        fprintf(stderr,
                "runnel: checkpoints: %lld completed, %lld failed; pauses p50 %.1f ms, "
                "p99 %.1f ms, max %.1f ms\n",
                (long long)st.checkpoints_completed, (long long)st.checkpoints_failed,
                (double)st.checkpoint_pause_p50_us / 1000.0,
                (double)st.checkpoint_pause_p99_us / 1000.0,
                (double)st.checkpoint_pause_max_us / 1000.0);
    /* What is printed above is out; from here a second signal need not
     * wait for the teardown. */
    closing_code = rc == RN_OK ? 0 : 2;
    phase = 2;
    if (rc == RN_ECANCELED && signals_seen >= 2) {
        /* Cancelled by a second signal: out at once. The operators are
         * closed already; what is left is freeing memory, closing the
         * state's RocksDB and removing its working directory, which
         * takes seconds with large state and is not needed: the next
         * start removes a dead process's directory. */
        fflush(NULL);
        _exit(2);
    }
    rn_job_destroy(job);
    return rc == RN_OK ? 0 : 2;
}

static int
cmd_validate(const args_t *a)
{
    int code;
    rn_job_t *job = load_job(a, true, &code);
    if (job == NULL)
        return code;
    rn_job_describe(job, stdout);
    printf("%s: ok\n", a->job);
    rn_job_destroy(job);
    return 0;
}

int
main(int argc, char **argv)
{
    args_t a;
    int rc;
    sigset_t term;
    struct sigaction sa;

    /* Before anything else: a SIGTERM from here on is never the default
     * death (exit 143, no final checkpoint). Blocked while the handler is
     * installed; every thread made later inherits the handler. */
    term_signals(&term);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    /* Reads and writes go on after the handler (the job file being read
     * when the signal comes, a FIFO or a slow disk: was EINTR). */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

#ifdef __GLIBC__
    /* No fast bins: glibc gathers freed small blocks there and merges
     * them all at the next large allocation, which took a task 50 ms in
     * a checkpoint's pause after a few hundred thousand timers fired
     * (docs/checkpoints.md). Throughput is the same without them. */
    mallopt(M_MXFAST, 0);
#endif
    if (parse_args(argc, argv, &a) != 0) {
        free(a.sets);
        return 1;
    }
    if (strcmp(a.cmd, "run") != 0) {
        /* Nothing to save: the other commands end as signals end them. */
        sa.sa_handler = SIG_DFL;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    pthread_sigmask(SIG_UNBLOCK, &term, NULL);
    if (strcmp(a.cmd, "run") == 0)
        rc = cmd_run(&a);
    else if (strcmp(a.cmd, "validate") == 0)
        rc = cmd_validate(&a);
    else if (strcmp(a.cmd, "savepoint") == 0 || strcmp(a.cmd, "stop") == 0) {
        if (a.job == NULL) {
            fprintf(stderr, "runnel: %s needs the job's REST address (rest.listen), such as "
                            "127.0.0.1:8081\n",
                    a.cmd);
            rc = 1;
        } else {
            bool stop = strcmp(a.cmd, "stop") == 0;
            rc = rn_cmd_savepoint(a.job, stop ? a.savepoint : a.arg2, stop);
        }
    } else if (strcmp(a.cmd, "checkpoints") == 0) {
        if (a.job == NULL) {
            fprintf(stderr, "runnel: checkpoints needs a directory (runnel checkpoints DIR)\n");
            rc = 1;
        } else {
            rc = rn_cmd_checkpoints(a.job, a.verify);
        }
    }
    else if (strcmp(a.cmd, "version") == 0 || strcmp(a.cmd, "--version") == 0) {
        printf("runnel %s (ABI %d)\n", RN_VERSION_STRING, RN_ABI_VERSION);
        rc = 0;
    } else if (strcmp(a.cmd, "help") == 0 || strcmp(a.cmd, "--help") == 0 ||
               strcmp(a.cmd, "-h") == 0) {
        usage(stdout);
        rc = 0;
    } else {
        fprintf(stderr,
                "runnel: unknown command '%s' (run, validate, savepoint, stop, checkpoints, "
                "version)\n",
                a.cmd);
        rc = 1;
    }
    free(a.sets);
    return rc;
}
