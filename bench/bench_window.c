/*
 * bench/bench_window.c: datagen sequence -> window_aggregate (tumbling 1 s,
 * 1000 keys, count and sum) -> discard, memory or RocksDB state, parallelism 1 on
 * one worker thread: events per second per core.
 * Usage: bench_window [EVENTS] [KEYS] [INTERVAL] [BACKEND] [MEMORY] [SIZE]
 * (default 20M events, 1000 keys, 1us, memory, 256MB, 1s). SIZE is the
 * tumbling window's size: events per key per window = SIZE / (INTERVAL *
 * KEYS). INTERVAL is the event-time step between events: at 1us a 1 s
 * window holds a million events (a thousand per key); at 1ms one per key,
 * the worst case, where every event opens, fires and clears a window.
 */
#include "bench_common.h"

int
main(int argc, char **argv)
{
    long long events = argc > 1 ? atoll(argv[1]) : 20000000LL;
    long long keys = argc > 2 ? atoll(argv[2]) : 1000;
    const char *interval = argc > 3 ? argv[3] : "1us";
    const char *backend = argc > 4 ? argv[4] : "memory";
    const char *memory = argc > 5 ? argv[5] : "256MB";
    const char *size = argc > 6 ? argv[6] : "1s";
    char yaml[4096], dir[1024];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/runnel-bench-%d", tmp != NULL ? tmp : "/tmp", (int)getpid());
    snprintf(yaml, sizeof(yaml),
             "name: bench-window\n"
             "parallelism: 1\n"
             "state: {backend: %s, memory: %s, dir: '%s'}\n"
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
             backend, memory, dir, events, keys, interval, size);
    double wall, cpu;
    uint64_t n;
    bench_print_machine();
    bench_du_t du;
    bench_du_start(&du, dir);
    int failed = bench_run_yaml(yaml, 1, &wall, &cpu, &n);
    unsigned long long disk = bench_du_stop(&du);
    char rm[1100];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    if (failed)
        return 1;
    printf("window datagen->window_aggregate(tumbling %s, %lld keys, count+sum, interval %s, "
           "%s state, %s)->discard: %llu events in %.3f s wall, %.3f s CPU\n",
           size, keys, interval, backend, memory, (unsigned long long)n, wall, cpu);
    printf("state on disk: peak %.1f MB; process peak memory %.1f MB\n", (double)disk / 1e6,
           bench_peak_rss_mb());
    printf("RESULT window_events_per_sec_per_core=%.0f\n", (double)n / (cpu > wall ? cpu : wall));
    printf("RESULT state_disk_peak_mb=%.1f\n", (double)disk / 1e6);
    printf("RESULT peak_rss_mb=%.1f\n", bench_peak_rss_mb());
    return 0;
}
