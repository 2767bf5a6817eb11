/*
 * bench/bench_checkpoint.c: what checkpoints cost. datagen sequence ->
 * window_aggregate (count and sum) -> discard, RocksDB state, parallelism
 * 1 on one worker thread, with a checkpoint every CKPT (0: none).
 * Prints events per second (wall: the checkpoint's asynchronous part runs
 * on the coordinator's thread), how long record processing paused for a
 * checkpoint (per task: alignment and the synchronous part, p50, p99 and
 * max), and per checkpoint the bytes it added to the store, the bytes it
 * refers to and its duration from trigger to commit.
 * Usage: bench_checkpoint EVENTS KEYS INTERVAL MEMORY SIZE CKPT [full]
 * (`full`: incremental: false, every file copied each time).
 */
#include "bench_common.h"

int
main(int argc, char **argv)
{
    long long events = argc > 1 ? atoll(argv[1]) : 20000000LL;
    long long keys = argc > 2 ? atoll(argv[2]) : 1000000;
    const char *interval = argc > 3 ? argv[3] : "1us";
    const char *memory = argc > 4 ? argv[4] : "256MB";
    const char *size = argc > 5 ? argv[5] : "10s";
    const char *ckpt = argc > 6 ? argv[6] : "1s";
    bool full = argc > 7 && strcmp(argv[7], "full") == 0;
    char yaml[4096], dir[1024], cks[1200];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/runnel-bench-ckpt-%d", tmp != NULL ? tmp : "/tmp",
             (int)getpid());
    if (strcmp(ckpt, "0") == 0)
        cks[0] = '\0';
    else
        snprintf(cks, sizeof(cks),
                 "checkpoints: {interval: %s, dir: '%s/ckpt', retain: 2, incremental: %s}\n",
                 ckpt, dir, full ? "false" : "true");
    snprintf(yaml, sizeof(yaml),
             "name: bench-checkpoint\n"
             "parallelism: 1\n"
             "%s"
             "state: {backend: rocksdb, memory: %s, dir: '%s/state'}\n"
             "sources:\n"
             "  gen: {type: datagen, generator: sequence, events: %lld, keys: %lld, "
             "interval: %s, event_time: ts}\n"
             "operators:\n"
             "  per_key:\n"
             "    type: window_aggregate\n"
             "    inputs: [gen]\n"
             "    key: [key]\n"
             "    window: {type: tumbling, size: %s}\n"
             "    aggregates: {n: count(), total: sum(value)}\n"
             "sinks:\n"
             "  out: {type: discard, inputs: [per_key]}\n",
             cks, memory, dir, events, keys, interval, size);
    bench_print_machine();
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root = rn_conf_load_string(yaml, strlen(yaml), "bench", &err);
    rn_graph_t *g = root ? rn_graph_from_conf(root, &err) : NULL;
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    opts.workers = 1;
    rn_job_t *job = g ? rn_job_new(g, &opts, &err) : NULL;
    if (job == NULL) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    bench_du_t du;
    char sdir[1100];
    snprintf(sdir, sizeof(sdir), "%s/state", dir);
    bench_du_start(&du, sdir);
    double t0 = bench_now();
    rn_code_t rc = rn_job_run(job, &err);
    double wall = bench_now() - t0;
    unsigned long long disk = bench_du_stop(&du);
    rn_job_stats_t st;
    rn_job_stats(job, &st);
    rn_job_destroy(job);
    char rm[1100];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    if (rc != RN_OK) {
        fprintf(stderr, "bench: job failed: %s\n", err.msg);
        return 1;
    }
    long long n = st.checkpoints_completed;
    printf("checkpoint datagen->window_aggregate(tumbling %s, %lld keys, interval %s, rocksdb "
           "%s)->discard, checkpoints %s%s: %llu events in %.3f s; state on disk peak %.1f MB\n",
           size, keys, interval, memory, ckpt, full ? " (full)" : "",
           (unsigned long long)st.records_in, wall, (double)disk / 1e6);
    printf("checkpoints: %lld completed, %lld failed; pause p50 %.1f ms, p99 %.1f ms, max %.1f "
           "ms; per checkpoint %.1f MB added, %.1f MB referred, %.0f ms\n",
           n, (long long)st.checkpoints_failed, st.checkpoint_pause_p50_us / 1e3,
           st.checkpoint_pause_p99_us / 1e3, st.checkpoint_pause_max_us / 1e3,
           n ? (double)st.checkpoint_bytes_added / n / 1e6 : 0.0,
           n ? (double)st.checkpoint_bytes_referred / n / 1e6 : 0.0,
           n ? (double)st.checkpoint_duration_ms / n : 0.0);
    printf("RESULT events_per_sec=%.0f\n", (double)st.records_in / wall);
    printf("RESULT checkpoints=%lld\n", n);
    printf("RESULT pause_p50_ms=%.1f\n", st.checkpoint_pause_p50_us / 1e3);
    printf("RESULT pause_p99_ms=%.1f\n", st.checkpoint_pause_p99_us / 1e3);
    printf("RESULT pause_max_ms=%.1f\n", st.checkpoint_pause_max_us / 1e3);
    printf("RESULT added_mb=%.1f\n", n ? (double)st.checkpoint_bytes_added / n / 1e6 : 0.0);
    printf("RESULT referred_mb=%.1f\n", n ? (double)st.checkpoint_bytes_referred / n / 1e6 : 0.0);
    printf("RESULT duration_ms=%.0f\n", n ? (double)st.checkpoint_duration_ms / n : 0.0);
    printf("RESULT state_disk_peak_mb=%.1f\n", (double)disk / 1e6);
    return 0;
}
