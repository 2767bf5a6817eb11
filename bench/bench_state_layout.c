/*
 * bench/bench_state_layout.c: the measurements behind the RocksDB state
 * layout (docs/state.md), on RocksDB alone, no write-back cache, so that
 * only the layout differs: get-then-put (WriteBatch, no WAL) of a 16-byte
 * value, uniform random over KEYS keys in each of STATES states.
 *
 *   prefix    one column family, the state id in the key (kg | sid | ...)
 *   cf        one column family per state (kg | ...)
 *   instance  INST databases, one per operator instance, ops round-robin
 *   process   one database, a column family per instance
 *
 * Usage: bench_state_layout [OPS] [KEYS] [STATES] [INST] (default 1M ops,
 * 200k keys, 3 states, 4 instances). Prints ops/s per core, open time and
 * disk size per variant.
 */
#include "bench_common.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#define MAXCF 16

typedef struct db {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[MAXCF];
    int ncf;
} db_t;

static rocksdb_options_t *
make_options(long long memory, long long cache)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, rocksdb_cache_create_lru((size_t)cache / 4));
    rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_options_set_block_based_table_factory(o, t);
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_write_buffer_size(o, (size_t)memory / 8);
    rocksdb_options_set_max_write_buffer_number(o, 2);
    rocksdb_options_set_max_background_jobs(o, 2);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, 0.1);
    rocksdb_options_set_memtable_whole_key_filtering(o, 1);
    return o;
}

static void
die(char *rerr)
{
    if (rerr != NULL) {
        fprintf(stderr, "rocksdb: %s\n", rerr);
        exit(1);
    }
}

static void
db_open(db_t *d, const char *path, int ncf, long long memory, long long cache)
{
    rocksdb_options_t *o = make_options(memory, cache);
    const char *names[MAXCF + 1];
    const rocksdb_options_t *opts[MAXCF + 1];
    char buf[MAXCF][8];
    rocksdb_column_family_handle_t *h[MAXCF + 1];
    names[0] = "default";
    opts[0] = o;
    for (int i = 0; i < ncf; i++) {
        snprintf(buf[i], sizeof(buf[i]), "s%d", i);
        names[i + 1] = buf[i];
        opts[i + 1] = o;
    }
    char *rerr = NULL;
    d->db = rocksdb_open_column_families(o, path, ncf + 1, names, opts, h, &rerr);
    die(rerr);
    d->ncf = ncf + 1;
    for (int i = 0; i <= ncf; i++)
        d->cf[i] = h[i];
}

static void
db_close(db_t *d)
{
    for (int i = 0; i < d->ncf; i++)
        rocksdb_column_family_handle_destroy(d->cf[i]);
    rocksdb_close(d->db);
}

static int
rm_entry(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb, (void)f, (void)ftw;
    return remove(p);
}

static uint64_t
du(const char *path)
{
    DIR *d = opendir(path);
    uint64_t total = 0;
    struct dirent *de;
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char p[4096];
        struct stat sb;
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        if (stat(p, &sb) == 0)
            total += S_ISDIR(sb.st_mode) ? du(p) : (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* key = kg(2) | [sid(2)] | keylen | "user<id>" | nslen | ns(8) */
static size_t
enc(uint8_t *out, uint64_t id, int sid)
{
    char k[24];
    int n = snprintf(k, sizeof(k), "user%llu", (unsigned long long)id);
    uint8_t *p = out;
    uint32_t kg = (uint32_t)(id * 2654435761u % 128);
    *p++ = (uint8_t)(kg >> 8);
    *p++ = (uint8_t)kg;
    if (sid >= 0) {
        *p++ = (uint8_t)(sid >> 8);
        *p++ = (uint8_t)sid;
    }
    *p++ = (uint8_t)n;
    memcpy(p, k, (size_t)n);
    p += n;
    *p++ = 8;
    memset(p, 0, 8);
    return (size_t)(p + 8 - out);
}

/* mode: 0 prefix, 1 cf per state; ndb databases (instances), each with
 * ncf column families when per_process is set (instance i uses cf i). */
static void
run(const char *name, int mode, int ninst, bool per_process, uint64_t ops, uint64_t keys,
    int states, long long memory)
{
    char base[256];
    snprintf(base, sizeof(base), "/tmp/bench-layout-%d", (int)getpid());
    mkdir(base, 0700);
    db_t dbs[MAXCF];
    int ndb = per_process ? 1 : ninst;
    double t0 = bench_now();
    for (int i = 0; i < ndb; i++) {
        char p[300];
        snprintf(p, sizeof(p), "%s/db%d", base, i);
        int ncf = per_process ? ninst : (mode == 1 ? states : 0);
        /* The same write buffers per instance; per process, one block
         * cache as large as the instances' caches together. */
        db_open(&dbs[i], p, ncf, memory, per_process ? memory * ninst : memory);
    }
    double topen = bench_now() - t0;
    rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(w, 1);
    rocksdb_readoptions_t *r = rocksdb_readoptions_create();
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    uint8_t kb[64];
    uint64_t seed = 42, found = 0;
    double c0 = bench_cpu();
    t0 = bench_now();
    for (uint64_t i = 0; i < ops + keys * (uint64_t)states * (uint64_t)ninst; i++) {
        bool load = i < keys * (uint64_t)states * (uint64_t)ninst;
        if (i == keys * (uint64_t)states * (uint64_t)ninst) {
            c0 = bench_cpu();
            t0 = bench_now();
        }
        uint64_t x = load ? i : rnd(&seed);
        uint64_t id = load ? x / ((uint64_t)states * ninst) : (x >> 8) % keys;
        int st = (int)(x % (uint64_t)states);
        int inst = (int)((x / (uint64_t)states) % (uint64_t)ninst);
        db_t *d = &dbs[per_process ? 0 : inst];
        rocksdb_column_family_handle_t *cf =
            per_process ? d->cf[1 + inst] : mode == 1 ? d->cf[1 + st] : d->cf[0];
        size_t kl = enc(kb, id, mode == 1 && !per_process ? -1 : st);
        char *rerr = NULL;
        size_t vl;
        char *v = rocksdb_get_cf(d->db, r, cf, (const char *)kb, kl, &vl, &rerr);
        die(rerr);
        uint64_t val[2] = {0, 0};
        if (v != NULL) {
            memcpy(val, v, sizeof(val));
            found++;
            rocksdb_free(v);
        }
        val[0]++;
        rocksdb_writebatch_put_cf(wb, cf, (const char *)kb, kl, (const char *)val, sizeof(val));
        rocksdb_write(d->db, w, wb, &rerr);
        die(rerr);
        rocksdb_writebatch_clear(wb);
    }
    double wall = bench_now() - t0, cpu = bench_cpu() - c0;
    uint64_t mem = 0, m;
    for (int i = 0; i < ndb; i++)
        for (int j = 0; j < dbs[i].ncf; j++)
            if (rocksdb_property_int_cf(dbs[i].db, dbs[i].cf[j], "rocksdb.cur-size-all-mem-tables",
                                        &m) == 0)
                mem += m;
    for (int i = 0; i < ndb; i++)
        db_close(&dbs[i]);
    printf("%-22s %llu get+put in %.2f s wall, %.2f s CPU: %.0f ops/s per core; open %.1f ms, "
           "memtables %.1f MB, disk %.1f MB (found %llu)\n",
           name, (unsigned long long)ops, wall, cpu, (double)ops / (cpu > wall ? cpu : wall),
           topen * 1e3, (double)mem / 1048576.0, (double)du(base) / 1048576.0,
           (unsigned long long)found);
    rocksdb_writebatch_destroy(wb);
    rocksdb_writeoptions_destroy(w);
    rocksdb_readoptions_destroy(r);
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(int argc, char **argv)
{
    uint64_t ops = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint64_t keys = argc > 2 ? strtoull(argv[2], NULL, 10) : 200000;
    int states = argc > 3 ? atoi(argv[3]) : 3;
    int inst = argc > 4 ? atoi(argv[4]) : 4;
    long long memory = 64LL << 20;
    if (states < 1 || states >= MAXCF || inst < 1 || inst >= MAXCF)
        return 1;
    bench_print_machine();
    printf("layout: %llu keys x %d states, 16-byte values, uniform random, 64 MB options per "
           "database\n",
           (unsigned long long)keys, states);
    run("prefix (1 cf)", 0, 1, false, ops, keys, states, memory);
    run("cf per state", 1, 1, false, ops, keys, states, memory);
    printf("placement: %d instances, prefix layout, ops round-robin over instances\n", inst);
    run("db per instance", 0, inst, false, ops, keys / (uint64_t)inst, states, memory);
    run("db per process, cf/inst", 0, inst, true, ops, keys / (uint64_t)inst, states, memory);
    return 0;
}
