/*
 * bench/bench_window.c: datagen sequence -> window_aggregate (tumbling 1 s,
 * 1000 keys, count and sum) -> discard, memory or RocksDB state, parallelism 1 on
 * one worker thread: events per second per core.
 * Usage: bench_window [EVENTS] [KEYS] [INTERVAL] [BACKEND] [MEMORY] (default
 * 20M events, 1000 keys, 1us, memory, 256MB). INTERVAL is the event-time step between events: at 1us a 1 s
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
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "name: bench-window\n"
             "parallelism: 1\n"
             "state: {backend: %s, memory: %s}\n"
             "sources:\n"
             "  gen: {type: datagen, generator: sequence, events: %lld, keys: %lld, "
             "interval: %s, event_time: ts}\n"
             "operators:\n"
             "  per_key:\n"
             "    type: window_aggregate\n"
             "    inputs: [gen]\n"
             "    key: [key]\n"
             "    window: {type: tumbling, size: 1s}\n"
             "    aggregates: {n: count(), total: sum(value)}\n"
             "sinks:\n"
             "  out: {type: discard, inputs: [per_key]}\n",
             backend, memory, events, keys, interval);
    double wall, cpu;
    uint64_t n;
    bench_print_machine();
    if (bench_run_yaml(yaml, 1, &wall, &cpu, &n) != 0)
        return 1;
    printf("window datagen->window_aggregate(tumbling 1s, %lld keys, count+sum, interval %s, "
           "%s state, %s)->discard: %llu events in %.3f s wall, %.3f s CPU\n",
           keys, interval, backend, memory, (unsigned long long)n, wall, cpu);
    printf("RESULT window_events_per_sec_per_core=%.0f\n", (double)n / (cpu > wall ? cpu : wall));
    return 0;
}
