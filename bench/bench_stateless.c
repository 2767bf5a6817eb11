/*
 * bench/bench_stateless.c: datagen sequence -> filter -> map -> discard,
 * parallelism 1 on one worker thread, so the figure is events per second
 * per core. Usage: bench_stateless [EVENTS] (default 50M).
 */
#include "bench_common.h"

int
main(int argc, char **argv)
{
    long long events = argc > 1 ? atoll(argv[1]) : 50000000LL;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "name: bench-stateless\n"
             "parallelism: 1\n"
             "sources:\n"
             "  gen: {type: datagen, generator: sequence, events: %lld, keys: 1000, "
             "event_time: ts}\n"
             "operators:\n"
             "  evens: {type: filter, inputs: [gen], where: \"value %% 2 == 0\"}\n"
             "  shaped:\n"
             "    type: map\n"
             "    inputs: [evens]\n"
             "    select: {id: id, key: key, doubled: value * 2, ts: ts}\n"
             "sinks:\n"
             "  out: {type: discard, inputs: [shaped]}\n",
             events);
    double wall, cpu;
    uint64_t n;
    bench_print_machine();
    if (bench_run_yaml(yaml, 1, &wall, &cpu, &n) != 0)
        return 1;
    printf("stateless datagen->filter->map->discard: %llu events in %.3f s wall, %.3f s CPU\n",
           (unsigned long long)n, wall, cpu);
    printf("RESULT stateless_events_per_sec_per_core=%.0f\n", (double)n / (cpu > wall ? cpu : wall));
    return 0;
}
