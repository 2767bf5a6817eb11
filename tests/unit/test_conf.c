/*
 * tests/unit/test_conf.c: the configuration tree (stream/conf.c), its YAML
 * loader (stream/conf_yaml.c) and the typed readers (stream/conf_read.c).
 *
 * Messages are compared whole: their exact shape ("FILE:LINE:COL: key 'x':
 * expected ..., got 'y'") is what users see from `runnel validate`.
 */
#include "rn_check.h"

#include "stream/conf.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* Shaped like the example of spec/job-file.md; line numbers on the right
 * are relied on by the position tests. */
static const char JOB[] = "name: clicks-per-user\n"                  /* 1 */
                          "parallelism: 2\n"                         /* 2 */
                          "\n"                                       /* 3 */
                          "checkpoints:\n"                           /* 4 */
                          "  interval: 10s\n"                        /* 5 */
                          "  dir: ./run/clicks/checkpoints\n"        /* 6 */
                          "  mode: exactly-once   # or at-least-once\n" /* 7 */
                          "  retain: 3\n"                            /* 8 */
                          "  timeout: 10m\n"                         /* 9 */
                          "state:\n"                                 /* 10 */
                          "  backend: rocksdb\n"                     /* 11 */
                          "  memory: 256MB\n"                        /* 12 */
                          "sources:\n"                               /* 13 */
                          "  clicks:\n"                              /* 14 */
                          "    type: kafka\n"                        /* 15 */
                          "    brokers: localhost:9092\n"            /* 16 */
                          "    schema:\n"                            /* 17 */
                          "      user: string\n"                     /* 18 */
                          "      ts: timestamp\n"                    /* 19 */
                          "    event_time: ts\n"                     /* 20 */
                          "    properties:\n"                        /* 21 */
                          "      fetch.min.bytes: \"1\"\n"           /* 22 */
                          "operators:\n"                             /* 23 */
                          "  per_user:\n"                            /* 24 */
                          "    type: window_aggregate\n"             /* 25 */
                          "    inputs: [clicks]\n"                   /* 26 */
                          "    key: [user]\n"                        /* 27 */
                          "    window: {type: tumbling, size: 1m}\n" /* 28 */
                          "    aggregates:\n"                        /* 29 */
                          "      clicks: count()\n"                  /* 30 */
                          "sinks:\n"                                 /* 31 */
                          "  out:\n"                                 /* 32 */
                          "    type: stdout\n"                       /* 33 */
                          "    inputs: [per_user, per_user.late]\n"; /* 34 */

#define JOB_FILE "jobs/clicks.yaml"

static rn_conf_t *
load(const char *text, rn_error_t *err)
{
    return rn_conf_load_string(text, strlen(text), JOB_FILE, err);
}

static rn_conf_t *
load_ok(const char *text)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root = load(text, &err);

    ck_assert_msg(root != NULL, "load failed: %s", err.msg);
    return root;
}

/* Loads text expecting failure with exactly msg. */
static void
load_fails(const char *text, const char *msg)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root = load(text, &err);

    ck_assert_ptr_null(root);
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_str_eq(err.msg, msg);
}

/* A path of map keys (no sequences) from root. */
static const rn_conf_t *
at(const rn_conf_t *root, const char *a, const char *b, const char *c)
{
    const rn_conf_t *n = rn_conf_get(root, a);

    if (n != NULL && b != NULL)
        n = rn_conf_get(n, b);
    if (n != NULL && c != NULL)
        n = rn_conf_get(n, c);
    return n;
}

/* ---- loading and walking --------------------------------------------- */

START_TEST(test_conf_load_walk)
{
    rn_conf_t *root = load_ok(JOB);
    static const char *const top[] = {"name",    "parallelism", "checkpoints", "state",
                                      "sources", "operators",   "sinks"};
    const rn_conf_t *n, *win, *inputs;
    size_t i;

    ck_assert_int_eq(rn_conf_kind(root), RN_CONF_MAP);
    ck_assert_uint_eq(rn_conf_len(root), 7);
    for (i = 0; i < 7; i++) {
        ck_assert_str_eq(rn_conf_key_at(root, i), top[i]);
        ck_assert_ptr_eq(rn_conf_at(root, i), rn_conf_get(root, top[i]));
    }
    ck_assert_ptr_null(rn_conf_key_at(root, 7));
    ck_assert_ptr_null(rn_conf_at(root, 7));
    ck_assert_ptr_null(rn_conf_get(root, "nope"));

    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(root, "name")), "clicks-per-user");
    ck_assert_str_eq(rn_conf_scalar(at(root, "checkpoints", "mode", NULL)), "exactly-once");
    ck_assert_str_eq(rn_conf_scalar(at(root, "sources", "clicks", "brokers")), "localhost:9092");
    ck_assert_ptr_null(rn_conf_scalar(rn_conf_get(root, "state")));

    n = at(root, "sources", "clicks", "properties");
    ck_assert_str_eq(rn_conf_key_at(n, 0), "fetch.min.bytes");
    ck_assert_str_eq(rn_conf_scalar(rn_conf_at(n, 0)), "1");
    ck_assert(rn_conf_quoted(rn_conf_at(n, 0)));
    ck_assert(!rn_conf_quoted(rn_conf_get(root, "parallelism")));

    win = at(root, "operators", "per_user", "window");
    ck_assert_int_eq(rn_conf_kind(win), RN_CONF_MAP);
    ck_assert_uint_eq(rn_conf_len(win), 2);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(win, "size")), "1m");

    inputs = at(root, "sinks", "out", "inputs");
    ck_assert_int_eq(rn_conf_kind(inputs), RN_CONF_SEQ);
    ck_assert_uint_eq(rn_conf_len(inputs), 2);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_at(inputs, 1)), "per_user.late");
    ck_assert_ptr_null(rn_conf_key_at(inputs, 0));
    ck_assert_ptr_null(rn_conf_at(inputs, 2));
    ck_assert_uint_eq(rn_conf_len(rn_conf_at(inputs, 0)), 0);
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_load_scalars)
{
    rn_conf_t *root = load_ok("plain: 12\n"
                              "single: '12'\n"
                              "double: \"a\\tb\"\n"
                              "empty:\n"
                              "tagged: !!str 12\n"
                              "block: |\n"
                              "  line one\n"
                              "  line two\n");

    ck_assert(!rn_conf_quoted(rn_conf_get(root, "plain")));
    ck_assert(rn_conf_quoted(rn_conf_get(root, "single")));
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(root, "double")), "a\tb");
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(root, "empty")), "");
    ck_assert(!rn_conf_quoted(rn_conf_get(root, "empty")));
    ck_assert(rn_conf_quoted(rn_conf_get(root, "tagged")));
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(root, "block")), "line one\nline two\n");
    ck_assert(rn_conf_quoted(rn_conf_get(root, "block")));
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_positions)
{
    rn_conf_t *root = load_ok(JOB);
    const rn_conf_t *n;

    n = rn_conf_get(root, "name");
    ck_assert_str_eq(rn_conf_file(n), JOB_FILE);
    ck_assert_int_eq(rn_conf_line(n), 1);
    ck_assert_int_eq(rn_conf_col(n), 7);

    n = rn_conf_key_node_at(root, 1);
    ck_assert_str_eq(rn_conf_scalar(n), "parallelism");
    ck_assert_int_eq(rn_conf_line(n), 2);
    ck_assert_int_eq(rn_conf_col(n), 1);

    /* A block map starts at its first key. */
    n = rn_conf_get(root, "checkpoints");
    ck_assert_int_eq(rn_conf_line(n), 5);
    ck_assert_int_eq(rn_conf_col(n), 3);

    n = at(root, "checkpoints", "mode", NULL);
    ck_assert_int_eq(rn_conf_line(n), 7);
    ck_assert_int_eq(rn_conf_col(n), 9);

    n = at(root, "operators", "per_user", "window");
    ck_assert_int_eq(rn_conf_line(n), 28);
    ck_assert_int_eq(rn_conf_col(n), 13);
    n = rn_conf_key_node_at(n, 1);
    ck_assert_str_eq(rn_conf_scalar(n), "size");
    ck_assert_int_eq(rn_conf_line(n), 28);
    ck_assert_int_eq(rn_conf_col(n), 30);

    n = at(root, "sinks", "out", "inputs");
    ck_assert_int_eq(rn_conf_line(n), 34);
    ck_assert_int_eq(rn_conf_col(n), 13);
    n = rn_conf_at(n, 1);
    ck_assert_int_eq(rn_conf_line(n), 34);
    ck_assert_int_eq(rn_conf_col(n), 24);

    n = at(root, "sources", "clicks", "properties");
    n = rn_conf_key_node_at(n, 0);
    ck_assert_int_eq(rn_conf_line(n), 22);
    ck_assert_int_eq(rn_conf_col(n), 7);
    rn_conf_destroy(root);
}
END_TEST

/* ---- what the loader refuses -------------------------------------------- */

START_TEST(test_conf_syntax_errors)
{
    /* Bad indentation: a key deeper than its siblings. */
    load_fails("a:\n  b: 1\n   c: 2\n",
               JOB_FILE ":3:5: mapping values are not allowed in this context; check the "
                        "indentation, or quote a value that holds ': '");
    /* A key shallower than its siblings but not back to the parent. */
    load_fails("a:\n  b: 1\n c: 2\n",
               JOB_FILE ":3:2: did not find expected key; check the indentation (while parsing "
                        "a block mapping at 1:1)");
    load_fails("x: [a, b\ny: 1\n", JOB_FILE ":2:2: did not find expected ',' or ']' (while "
                                            "parsing a flow sequence at 1:4)");
    load_fails("x: {a: 1\n", JOB_FILE ":2:1: did not find expected ',' or '}' (while parsing a "
                                      "flow mapping at 1:4)");
    load_fails("a: 'x\n", JOB_FILE ":2:1: found unexpected end of stream (while scanning a "
                                   "quoted scalar at 1:4)");
    load_fails("a:\n\tb: 1\n", JOB_FILE ":2:1: tab character: YAML is indented with spaces only");
    load_fails("- a\nb: 1\n", JOB_FILE ":2:1: did not find expected '-' indicator; check the "
                                       "indentation (while parsing a block collection at 1:1)");
}
END_TEST

START_TEST(test_conf_duplicate_key)
{
    rn_conf_t *root;

    load_fails("a: 1\nb: 2\na: 3\n", JOB_FILE ":3:1: duplicate key 'a' (first at 1:1)");
    load_fails("m:\n  x: 1\n  y: 2\n  x: 3\n", JOB_FILE ":4:3: duplicate key 'x' (first at 2:3)");
    load_fails("m: {x: 1, x: 2}\n", JOB_FILE ":1:11: duplicate key 'x' (first at 1:5)");
    /* The same key in two maps is no duplicate. */
    root = load_ok("a: {x: 1}\nb: {x: 2}\n");
    rn_conf_destroy(root);
}
END_TEST

/* A generated map of n keys "k0".."k{n-1}" with values 0..n-1, one per
 * line, under "m:"; extra (or NULL) is appended after the last key. The
 * caller frees the text with rn_free(). */
static char *
big_map(size_t n, const char *extra)
{
    size_t cap = 16 + n * 32 + (extra != NULL ? strlen(extra) : 0), len = 0;
    char *text = rn_xmalloc(cap);

    len += (size_t)snprintf(text + len, cap - len, "m:\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "  k%zu: %zu\n", i, i);
    if (extra != NULL)
        snprintf(text + len, cap - len, "%s", extra);
    return text;
}

START_TEST(test_conf_duplicate_key_far)
{
    /* A duplicate far from its first occurrence, in maps large enough to be
     * indexed, is found and both places are named. */
    char *text = big_map(50000, "  k7: again\n");
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root = rn_conf_load_string(text, strlen(text), JOB_FILE, &err);

    ck_assert_ptr_null(root);
    ck_assert_str_eq(err.msg, JOB_FILE ":50002:3: duplicate key 'k7' (first at 9:3)");
    rn_free(text);

    /* The last key repeating the first one, past every index rebuild. */
    text = big_map(20000, "  k0: again\n");
    root = rn_conf_load_string(text, strlen(text), JOB_FILE, &err);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err.msg, JOB_FILE ":20002:3: duplicate key 'k0' (first at 2:3)");
    rn_free(text);

    /* Keys that differ only at their end are not duplicates. */
    root = load_ok("m:\n  key_a: 1\n  key_b: 2\n  key_: 3\n  key: 4\n");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_big_map_lookup)
{
    const size_t n = 100000;
    char *text = big_map(n, NULL);
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root = rn_conf_load_string(text, strlen(text), JOB_FILE, &err);
    const rn_conf_t *m;
    size_t probes = 0;
    char key[32];

    ck_assert_rn_ok(root != NULL ? RN_OK : err.code, &err);
    m = rn_conf_get(root, "m");
    ck_assert_uint_eq(rn_conf_len(m), n);
    /* Every key finds its own value, in file order. */
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        ck_assert_str_eq(rn_conf_key_at(m, i), key);
        ck_assert_int_eq(atoi(rn_conf_scalar(rn_conf_get(m, key))), (int)i);
        ck_assert_int_eq(rn_conf_line(rn__conf_key_node(m, key)), (int)i + 2);
        probes += rn__conf_map_probes(m, key);
    }
    ck_assert_ptr_null(rn_conf_get(m, "k100000"));
    ck_assert_ptr_null(rn_conf_get(m, "k"));
    /* The work of the lookups the loader's duplicate check makes: a scan
     * would compare n^2/2 = 5e9 keys; a hash a small constant per key. */
    ck_assert_uint_le(probes, 3 * n);
    probes = 0;
    for (size_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "absent%zu", i);
        probes += rn__conf_map_probes(m, key);
    }
    ck_assert_uint_le(probes, 3 * 1000);
    rn_conf_destroy(root);
    rn_free(text);
}
END_TEST

START_TEST(test_conf_big_map_built_in_c)
{
    /* Maps built in C cross the index threshold too; rn_conf_map_set
     * replaces a value in place. */
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *map = rn_conf_new_map();
    char key[32];

    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_rn_ok(rn_conf_map_set(map, key, rn_conf_new_scalar("a"), &err), &err);
    }
    for (int i = 0; i < 1000; i += 7) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_rn_ok(rn_conf_map_set(map, key, rn_conf_new_scalar("b"), &err), &err);
    }
    ck_assert_uint_eq(rn_conf_len(map), 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_str_eq(rn_conf_scalar(rn_conf_get(map, key)), i % 7 == 0 ? "b" : "a");
        ck_assert_uint_le(rn__conf_map_probes(map, key), 64);
    }
    rn_conf_destroy(map);
}
END_TEST

START_TEST(test_conf_refused)
{
    load_fails("a: &base 1\n",
               JOB_FILE ":1:4: anchors (&base) are not supported; write the value out in full");
    load_fails("a: *base\n",
               JOB_FILE ":1:4: aliases (*base) are not supported; write the value out in full");
    load_fails("a: 1\n---\nb: 2\n",
               JOB_FILE ":2:1: a second YAML document ('---'); a job file holds exactly one");
    load_fails("[a, b]: 1\n", JOB_FILE ":1:1: a map key must be a scalar, not a sequence");
    load_fails("? {a: 1}\n: 2\n", JOB_FILE ":1:3: a map key must be a scalar, not a map");
    load_fails("a: !Ref x\n", JOB_FILE ":1:4: tag '!Ref' is not supported");
    load_fails("a: \"x\\0y\"\n", JOB_FILE ":1:4: a NUL character in a value is not supported");
    load_fails("", JOB_FILE ": the document is empty (no YAML content)");
    load_fails("# nothing but a comment\n\n", JOB_FILE ": the document is empty (no YAML content)");
    load_fails("---\n", JOB_FILE ": the document is empty (no YAML content)");
}
END_TEST

START_TEST(test_conf_nesting_limit)
{
    char text[1200];
    rn_conf_t *root;
    int i;

    for (i = 0; i < 300; i++)
        text[i] = '[';
    text[300] = '\0';
    load_fails(text, JOB_FILE ":1:257: nesting is deeper than 256 levels");

    /* Deep but within the limit loads and frees. */
    for (i = 0; i < 200; i++) {
        text[i] = '[';
        text[200 + i] = ']';
    }
    text[400] = '\0';
    root = load_ok(text);
    ck_assert_int_eq(rn_conf_kind(root), RN_CONF_SEQ);
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_load_file)
{
    const char *dir = getenv("RN_TEST_TMP");
    char path[512];
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root;
    FILE *f;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    ck_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
    snprintf(path, sizeof(path), "%s/test_conf_%ld.yaml", dir, (long)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(JOB, f);
    fclose(f);

    root = rn_conf_load_file(path, &err);
    ck_assert_msg(root != NULL, "%s", err.msg);
    ck_assert_str_eq(rn_conf_file(rn_conf_get(root, "name")), path);
    ck_assert_int_eq(rn_conf_line(at(root, "state", "memory", NULL)), 12);
    rn_conf_destroy(root);

    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("a: 1\na: 2\n", f);
    fclose(f);
    ck_assert_ptr_null(rn_conf_load_file(path, &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert(strncmp(err.msg, path, strlen(path)) == 0);
    ck_assert_str_eq(err.msg + strlen(path), ":2:1: duplicate key 'a' (first at 1:1)");
    unlink(path);

    ck_assert_ptr_null(rn_conf_load_file(path, &err));
    ck_assert_int_eq(err.code, RN_EIO);
    ck_assert(strncmp(err.msg, path, strlen(path)) == 0);
    ck_assert_str_eq(err.msg + strlen(path), ": cannot open: No such file or directory");
}
END_TEST

/* ---- readers ------------------------------------------------------------ */

/* Reads key from the one-entry map loaded from "key: value". */
static rn_conf_t *
one(const char *value)
{
    char text[256];

    snprintf(text, sizeof(text), "k: %s\n", value);
    return load_ok(text);
}

START_TEST(test_conf_read_err_position)
{
    /* The value of parallelism sits at line 12, column 5. */
    rn_conf_t *root = load_ok("name: x\n\n\n\n\n\n\n\n\n\n"
                              "parallelism:\n"
                              "    two\n");
    rn_error_t err = RN_ERROR_INIT;
    int64_t v = 7;

    ck_assert_int_eq(rn_conf_line(rn_conf_get(root, "parallelism")), 12);
    ck_assert_int_eq(rn__conf_int(root, "parallelism", 1, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":12:5: key 'parallelism': expected an integer, got 'two'");
    ck_assert_int_eq(v, 7);

    ck_assert_int_eq(rn__conf_err(&err, RN_EINVAL, rn_conf_get(root, "name"), "bad %s", "name"),
                     RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":1:7: bad name");
    ck_assert_int_eq(rn__conf_err(&err, RN_EIO, NULL, "no node"), RN_EIO);
    ck_assert_str_eq(err.msg, "no node");
    ck_assert_int_eq(err.code, RN_EIO);
    ck_assert_int_eq(rn__conf_err(NULL, RN_EINVAL, NULL, "x"), RN_EINVAL);
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_read_int)
{
    static const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"2", 2},
        {"-5", -5},
        {"+3", 3},
        {"'8'", 8},
        {"0x1F", 31},
        {"0o17", 15},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
    };
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"two", JOB_FILE ":1:4: key 'k': expected an integer, got 'two'"},
        {"1.5", JOB_FILE ":1:4: key 'k': expected an integer, got '1.5'"},
        {"12abc", JOB_FILE ":1:4: key 'k': expected an integer, got '12abc'"},
        {"0x", JOB_FILE ":1:4: key 'k': expected an integer, got '0x'"},
        {"''", JOB_FILE ":1:4: key 'k': expected an integer, got an empty value"},
        {"9223372036854775808", JOB_FILE ":1:4: key 'k': integer '9223372036854775808' is out "
                                         "of range"},
        {"-9223372036854775809", JOB_FILE ":1:4: key 'k': integer '-9223372036854775809' is "
                                          "out of range"},
        {"[1]", JOB_FILE ":1:4: key 'k': expected an integer, got a sequence"},
    };
    rn_error_t err = RN_ERROR_INIT;
    int64_t v;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rn_conf_t *root = one(good[i].text);

        ck_assert_rn_ok(rn__conf_int(root, "k", 0, &v, &err), &err);
        ck_assert_msg(v == good[i].want, "%s read as %lld", good[i].text, (long long)v);
        rn_conf_destroy(root);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rn_conf_t *root = one(bad[i].text);

        ck_assert_int_eq(rn__conf_int(root, "k", 0, &v, &err), RN_EINVAL);
        ck_assert_str_eq(err.msg, bad[i].msg);
        rn_conf_destroy(root);
    }
    /* Absent key or absent map: the default. */
    {
        rn_conf_t *root = one("1");

        ck_assert_rn_ok(rn__conf_int(root, "other", 42, &v, &err), &err);
        ck_assert_int_eq(v, 42);
        ck_assert_rn_ok(rn__conf_int(NULL, "k", 43, &v, &err), &err);
        ck_assert_int_eq(v, 43);
        ck_assert_int_eq(rn__conf_int(rn_conf_get(root, "k"), "x", 0, &v, &err), RN_EINVAL);
        ck_assert_str_eq(err.msg, JOB_FILE ":1:4: expected a map holding 'x', got a scalar");
        rn_conf_destroy(root);
    }
}
END_TEST

START_TEST(test_conf_read_float)
{
    static const struct {
        const char *text;
        double want;
    } good[] = {
        {"1.5", 1.5}, {"-2", -2.0}, {"1e3", 1000.0}, {".5", 0.5}, {"3.", 3.0}, {"-1.5E-1", -0.15},
    };
    static const char *const bad[] = {"abc", "1.2.3", "1e", "nan", "0x10", "."};
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root;
    double v;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        root = one(good[i].text);
        ck_assert_rn_ok(rn__conf_float(root, "k", 0, &v, &err), &err);
        ck_assert_double_eq_tol(v, good[i].want, 1e-12);
        rn_conf_destroy(root);
    }
    root = one(".inf");
    ck_assert_rn_ok(rn__conf_float(root, "k", 0, &v, &err), &err);
    ck_assert(isinf(v) && v > 0);
    rn_conf_destroy(root);
    root = one("-.Inf");
    ck_assert_rn_ok(rn__conf_float(root, "k", 0, &v, &err), &err);
    ck_assert(isinf(v) && v < 0);
    rn_conf_destroy(root);
    root = one(".nan");
    ck_assert_rn_ok(rn__conf_float(root, "k", 0, &v, &err), &err);
    ck_assert(isnan(v));
    rn_conf_destroy(root);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[128];

        root = one(bad[i]);
        snprintf(want, sizeof(want), JOB_FILE ":1:4: key 'k': expected a number, got '%s'",
                 bad[i]);
        ck_assert_int_eq(rn__conf_float(root, "k", 0, &v, &err), RN_EINVAL);
        ck_assert_str_eq(err.msg, want);
        rn_conf_destroy(root);
    }
    root = one("1e999");
    ck_assert_int_eq(rn__conf_float(root, "k", 0, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":1:4: key 'k': number '1e999' is out of range");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_read_bool)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    rn_error_t err = RN_ERROR_INIT;
    rn_conf_t *root;
    bool v;
    size_t i;

    for (i = 0; i < 3; i++) {
        root = one(yes[i]);
        v = false;
        ck_assert_rn_ok(rn__conf_bool(root, "k", false, &v, &err), &err);
        ck_assert(v);
        rn_conf_destroy(root);
        root = one(no[i]);
        ck_assert_rn_ok(rn__conf_bool(root, "k", true, &v, &err), &err);
        ck_assert(!v);
        rn_conf_destroy(root);
    }
    root = one("yes");
    ck_assert_int_eq(rn__conf_bool(root, "k", false, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":1:4: key 'k': expected true or false, got 'yes'");
    rn_conf_destroy(root);
    root = one("{a: 1}");
    ck_assert_int_eq(rn__conf_bool(root, "k", false, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":1:4: key 'k': expected true or false, got a map");
    rn_conf_destroy(root);
    root = one("x");
    ck_assert_rn_ok(rn__conf_bool(root, "absent", true, &v, &err), &err);
    ck_assert(v);
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_read_str)
{
    rn_conf_t *root = load_ok("a: hello\nb: [x]\nc: ''\n");
    rn_error_t err = RN_ERROR_INIT;
    const char *s = NULL;

    ck_assert_rn_ok(rn__conf_str(root, "a", "d", &s, &err), &err);
    ck_assert_str_eq(s, "hello");
    ck_assert_rn_ok(rn__conf_str(root, "c", "d", &s, &err), &err);
    ck_assert_str_eq(s, "");
    ck_assert_rn_ok(rn__conf_str(root, "z", "dflt", &s, &err), &err);
    ck_assert_str_eq(s, "dflt");
    ck_assert_rn_ok(rn__conf_str(root, "z", NULL, &s, &err), &err);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(rn__conf_str(root, "b", NULL, &s, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":2:4: key 'b': expected a string, got a sequence");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_read_listen)
{
    static const char *const good[] = {"127.0.0.1:8081", "0.0.0.0:1", "::1:65535",
                                       "fe80::1:80", "10.1.2.3:443"};
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"127.0.0.1:65536", "the port must be a number from 1 to 65535, got '65536'"},
        {"127.0.0.1:0", "the port must be a number from 1 to 65535, got '0'"},
        {"127.0.0.1:99999999999999999999", "got '99999999999999999999'"},
        {"127.0.0.1:-1", "got '-1'"},
        {"127.0.0.1:8o81", "got '8o81'"},
        {"127.0.0.1:", "expected HOST:PORT, such as 127.0.0.1:8081, got '127.0.0.1:'"},
        {"8081", "expected HOST:PORT"},
        {":8081", "expected HOST:PORT"},
        {"localhost:8081", "'localhost' is not an IP address"},
        {"[::1]:8081", "'[::1]' is not an IP address"},
        {"256.0.0.1:80", "'256.0.0.1' is not an IP address"},
    };
    rn_error_t err = RN_ERROR_INIT;
    const char *out = NULL;
    char text[128];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), "listen: \"%s\"\n", good[i]);
        rn_conf_t *root = load_ok(text);
        ck_assert_rn_ok(rn__conf_listen(root, "listen", "x", &out, &err), &err);
        ck_assert_str_eq(out, good[i]);
        rn_conf_destroy(root);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "listen: \"%s\"\n", bad[i].text);
        rn_conf_t *root = load_ok(text);
        ck_assert_int_eq(rn__conf_listen(root, "listen", "x", &out, &err), RN_EINVAL);
        ck_assert_msg(strstr(err.msg, JOB_FILE ":1:9: key 'listen': ") == err.msg, "%s", err.msg);
        ck_assert_msg(strstr(err.msg, bad[i].msg) != NULL, "%s: %s", bad[i].text, err.msg);
        rn_conf_destroy(root);
    }
    /* Absent: the default, checked the same way. */
    rn_conf_t *root = load_ok("other: 1\n");
    ck_assert_rn_ok(rn__conf_listen(root, "listen", "127.0.0.1:8081", &out, &err), &err);
    ck_assert_str_eq(out, "127.0.0.1:8081");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_read_duration)
{
    static const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"250ms", 250},    {"10s", 10000},     {"5m", 300000},       {"2h", 7200000},
        {"1d", 86400000},  {"0", 0},           {"0s", 0},            {"1h30m", 5400000},
        {"'10s'", 10000},  {"1m500ms", 60500}, {"+2s", 2000},
    };
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"ten", "key 'k': expected a duration such as 250ms, 10s, 5m, 2h or 1d, got 'ten'"},
        {"10min", "key 'k': expected a duration such as 250ms, 10s, 5m, 2h or 1d, got '10min'"},
        {"1.5s", "key 'k': expected a duration such as 250ms, 10s, 5m, 2h or 1d, got '1.5s'"},
        {"10s5", "key 'k': expected a duration such as 250ms, 10s, 5m, 2h or 1d, got '10s5'"},
        {"''", "key 'k': expected a duration such as 250ms, 10s, 5m, 2h or 1d, got an empty "
               "value"},
        {"10", "key 'k': duration '10' needs a unit (ms, s, m, h or d), as in '10s'"},
        {"-5s", "key 'k': duration '-5s' must not be negative"},
        {"106751991168d", "key 'k': duration '106751991168d' is too large"},
        {"99999999999999999999ms", "key 'k': duration '99999999999999999999ms' is too large"},
        {"[1s]", "key 'k': expected a duration, got a sequence"},
    };
    rn_error_t err = RN_ERROR_INIT;
    int64_t v;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rn_conf_t *root = one(good[i].text);

        ck_assert_rn_ok(rn__conf_duration_ms(root, "k", -1, &v, &err), &err);
        ck_assert_msg(v == good[i].want, "%s read as %lld", good[i].text, (long long)v);
        rn_conf_destroy(root);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rn_conf_t *root = one(bad[i].text);
        char want[256];

        snprintf(want, sizeof(want), JOB_FILE ":1:4: %s", bad[i].msg);
        ck_assert_int_eq(rn__conf_duration_ms(root, "k", -1, &v, &err), RN_EINVAL);
        ck_assert_str_eq(err.msg, want);
        rn_conf_destroy(root);
    }
    ck_assert_int_eq(rn__parse_duration_ms("1d", &v), RN_OK);
    ck_assert_int_eq(v, 86400000);
    ck_assert_int_eq(rn__parse_duration_ms("106751991168d", &v), RN_EINVAL);
    ck_assert_int_eq(rn__parse_duration_ms("106751991167d", &v), RN_OK);
    ck_assert_int_eq(v, INT64_C(106751991167) * 86400000);
    ck_assert_int_eq(rn__parse_duration_ms("1 s", &v), RN_EINVAL);
    ck_assert_int_eq(rn__parse_duration_ms("", &v), RN_EINVAL);
}
END_TEST

START_TEST(test_conf_read_size)
{
    static const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"512", 512},
        {"1B", 1},
        {"64KB", 64 << 10},
        {"256MB", 256 << 20},
        {"1GB", INT64_C(1) << 30},
        {"2TB", INT64_C(2) << 40},
        {"1KiB", 1024},
        {"3MiB", 3 << 20},
        {"1GiB", INT64_C(1) << 30},
        {"'256 MB'", 256 << 20},
        {"256mb", 256 << 20},
        {"8M", 8 << 20},
        {"0", 0},
    };
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"12XB", "key 'k': expected a size such as 512, 64KB, 256MB or 1GB, got '12XB'"},
        {"MB", "key 'k': expected a size such as 512, 64KB, 256MB or 1GB, got 'MB'"},
        {"1.5GB", "key 'k': expected a size such as 512, 64KB, 256MB or 1GB, got '1.5GB'"},
        {"-1KB", "key 'k': size '-1KB' must not be negative"},
        {"8388608TB", "key 'k': size '8388608TB' is too large"},
        {"9223372036854775808", "key 'k': size '9223372036854775808' is too large"},
        {"{a: 1}", "key 'k': expected a size, got a map"},
    };
    rn_error_t err = RN_ERROR_INIT;
    int64_t v;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rn_conf_t *root = one(good[i].text);

        ck_assert_rn_ok(rn__conf_size(root, "k", -1, &v, &err), &err);
        ck_assert_msg(v == good[i].want, "%s read as %lld", good[i].text, (long long)v);
        rn_conf_destroy(root);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rn_conf_t *root = one(bad[i].text);
        char want[256];

        snprintf(want, sizeof(want), JOB_FILE ":1:4: %s", bad[i].msg);
        ck_assert_int_eq(rn__conf_size(root, "k", -1, &v, &err), RN_EINVAL);
        ck_assert_str_eq(err.msg, want);
        rn_conf_destroy(root);
    }
    ck_assert_int_eq(rn__parse_size("8388607TB", &v), RN_OK);
    ck_assert_int_eq(v, INT64_C(8388607) << 40);
    ck_assert_int_eq(rn__parse_size("1PB", &v), RN_EINVAL);
}
END_TEST

START_TEST(test_conf_read_enum)
{
    static const char *const modes[] = {"exactly-once", "at-least-once", NULL};
    rn_conf_t *root = load_ok("a: at-least-once\nb: exactly_once\nc: whatever\nd: [x]\n");
    rn_error_t err = RN_ERROR_INIT;
    int v = -1;

    ck_assert_rn_ok(rn__conf_enum(root, "a", modes, 0, &v, &err), &err);
    ck_assert_int_eq(v, 1);
    ck_assert_rn_ok(rn__conf_enum(root, "z", modes, 0, &v, &err), &err);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(rn__conf_enum(root, "b", modes, 0, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":2:4: key 'b': expected one of exactly-once, "
                              "at-least-once, got 'exactly_once'; did you mean 'exactly-once'?");
    ck_assert_int_eq(rn__conf_enum(root, "c", modes, 0, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":3:4: key 'c': expected one of exactly-once, "
                              "at-least-once, got 'whatever'");
    ck_assert_int_eq(rn__conf_enum(root, "d", modes, 0, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg,
                     JOB_FILE ":4:4: key 'd': expected one of its choices, got a sequence");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_read_strlist)
{
    rn_conf_t *root = load_ok("one: user\n"
                              "many: [user, url]\n"
                              "none: []\n"
                              "map: {a: b}\n"
                              "nested: [a, [b]]\n");
    rn_error_t err = RN_ERROR_INIT;
    const char **list = NULL;
    size_t n = 99;

    ck_assert_rn_ok(rn__conf_strlist(root, "one", &list, &n, &err), &err);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(list[0], "user");
    rn_free(list);

    ck_assert_rn_ok(rn__conf_strlist(root, "many", &list, &n, &err), &err);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(list[0], "user");
    ck_assert_str_eq(list[1], "url");
    rn_free(list);

    ck_assert_rn_ok(rn__conf_strlist(root, "none", &list, &n, &err), &err);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(list);
    ck_assert_rn_ok(rn__conf_strlist(root, "absent", &list, &n, &err), &err);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(list);

    ck_assert_int_eq(rn__conf_strlist(root, "map", &list, &n, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg,
                     JOB_FILE ":4:6: key 'map': expected a name or a list of names, got a map");
    ck_assert_int_eq(rn__conf_strlist(root, "nested", &list, &n, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg,
                     JOB_FILE ":5:13: key 'nested': item 2: expected a name, got a sequence");
    ck_assert_ptr_null(list);
    ck_assert_uint_eq(n, 0);
    rn_conf_destroy(root);
}
END_TEST

/* ---- keys and did-you-mean ------------------------------------------------ */

START_TEST(test_conf_did_you_mean)
{
    static const char *const keys[] = {"name", "parallelism", "checkpoints", "state",
                                       "sources", "operators", "sinks", NULL};
    static const char *const backends[] = {"rocksdb", "memory", NULL};
    static const char *const short_[] = {"type", NULL};

    ck_assert_str_eq(rn__did_you_mean("paralelism", keys), "parallelism");
    ck_assert_str_eq(rn__did_you_mean("parallel", keys), "parallelism");
    ck_assert_str_eq(rn__did_you_mean("source", keys), "sources");
    ck_assert_str_eq(rn__did_you_mean("operator", keys), "operators");
    ck_assert_str_eq(rn__did_you_mean("checkpoint", keys), "checkpoints");
    ck_assert_str_eq(rn__did_you_mean("rocksbd", backends), "rocksdb");
    ck_assert_str_eq(rn__did_you_mean("Memory", backends), "memory");
    ck_assert_str_eq(rn__did_you_mean("typ", short_), "type");
    ck_assert_ptr_null(rn__did_you_mean("x", short_));
    ck_assert_ptr_null(rn__did_you_mean("window", keys));
    ck_assert_ptr_null(rn__did_you_mean("", keys));
    ck_assert_ptr_null(rn__did_you_mean("anything", NULL));
}
END_TEST

START_TEST(test_conf_check_keys)
{
    static const char *const allowed[] = {"backend", "dir", "memory", NULL};
    rn_conf_t *root = load_ok("state:\n"
                              "  backend: memory\n"
                              "  memroy: 1GB\n"
                              "other:\n"
                              "  backend: memory\n"
                              "  colour: red\n"
                              "scalar: 1\n");
    rn_error_t err = RN_ERROR_INIT;
    const rn_conf_t *state = rn_conf_get(root, "state");

    ck_assert_int_eq(rn__conf_check_keys(state, allowed, "state", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg,
                     JOB_FILE ":3:3: unknown key 'memroy' in state; did you mean 'memory'?");
    ck_assert_int_eq(rn__conf_check_keys(rn_conf_get(root, "other"), allowed, "source 'other'",
                                         &err),
                     RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":6:3: unknown key 'colour' in source 'other' (known "
                              "keys: backend, dir, memory)");
    ck_assert_int_eq(rn__conf_check_keys(rn_conf_get(root, "scalar"), allowed, "state", &err),
                     RN_EINVAL);
    ck_assert_str_eq(err.msg, JOB_FILE ":7:9: state must be a map, got a scalar");
    ck_assert_rn_ok(rn__conf_check_keys(NULL, allowed, "state", &err), &err);

    ck_assert_ptr_eq(rn__conf_require(state, "dir", "state", &err), NULL);
    ck_assert_str_eq(err.msg, JOB_FILE ":2:3: missing required key 'dir' in state");
    ck_assert_ptr_eq(rn__conf_require(state, "memroy", "state", &err),
                     rn_conf_get(state, "memroy"));
    ck_assert_ptr_null(rn__conf_require(rn_conf_get(root, "scalar"), "x", "state", &err));
    ck_assert_str_eq(err.msg, JOB_FILE ":7:9: state must be a map, got a scalar");
    rn_conf_destroy(root);
}
END_TEST

/* ---- rn_conf_set_path ------------------------------------------------------- */

START_TEST(test_conf_set_create)
{
    rn_conf_t *root = rn_conf_new_map();
    rn_error_t err = RN_ERROR_INIT;
    const rn_conf_t *n;

    ck_assert_rn_ok(rn_conf_set_path(root, "state.backend", "memory", &err), &err);
    ck_assert_rn_ok(rn_conf_set_path(root, "state.memory", "1GB", &err), &err);
    n = rn_conf_get(root, "state");
    ck_assert_int_eq(rn_conf_kind(n), RN_CONF_MAP);
    ck_assert_str_eq(rn_conf_key_at(n, 0), "backend");
    ck_assert_str_eq(rn_conf_key_at(n, 1), "memory");
    n = rn_conf_get(n, "backend");
    ck_assert_str_eq(rn_conf_scalar(n), "memory");
    ck_assert_str_eq(rn_conf_file(n), "--set state.backend");
    ck_assert_int_eq(rn_conf_line(n), 0);
    ck_assert_int_eq(rn_conf_col(n), 0);
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_set_replace)
{
    rn_conf_t *root = load_ok(JOB);
    rn_error_t err = RN_ERROR_INIT;
    const rn_conf_t *n;
    int64_t v;

    ck_assert_rn_ok(rn_conf_set_path(root, "parallelism", "4", &err), &err);
    /* The entry keeps its place and its key's position. */
    ck_assert_str_eq(rn_conf_key_at(root, 1), "parallelism");
    ck_assert_int_eq(rn_conf_line(rn_conf_key_node_at(root, 1)), 2);
    ck_assert_rn_ok(rn__conf_int(root, "parallelism", 1, &v, &err), &err);
    ck_assert_int_eq(v, 4);

    ck_assert_rn_ok(rn_conf_set_path(root, "parallelism", "four", &err), &err);
    ck_assert_int_eq(rn__conf_int(root, "parallelism", 1, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set parallelism: key 'parallelism': expected an integer, got "
                              "'four'");

    /* A map replaced by a scalar, and the reverse. */
    ck_assert_rn_ok(rn_conf_set_path(root, "checkpoints", "off", &err), &err);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(root, "checkpoints")), "off");
    ck_assert_rn_ok(rn_conf_set_path(root, "checkpoints", "{interval: 0}", &err), &err);
    n = at(root, "checkpoints", "interval", NULL);
    ck_assert_str_eq(rn_conf_scalar(n), "0");
    ck_assert_str_eq(rn_conf_file(n), "--set checkpoints");

    /* Quotes in the value keep the scalar a string. */
    ck_assert_rn_ok(rn_conf_set_path(root, "sources.clicks.group", "'12'", &err), &err);
    n = at(root, "sources", "clicks", "group");
    ck_assert_str_eq(rn_conf_scalar(n), "12");
    ck_assert(rn_conf_quoted(n));
    ck_assert_rn_ok(rn_conf_set_path(root, "sources.clicks.brokers", "kafka:9092", &err), &err);
    ck_assert_str_eq(rn_conf_scalar(at(root, "sources", "clicks", "brokers")), "kafka:9092");
    ck_assert_rn_ok(rn_conf_set_path(root, "sources.clicks.group", "", &err), &err);
    ck_assert_str_eq(rn_conf_scalar(at(root, "sources", "clicks", "group")), "");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_set_sequence)
{
    rn_conf_t *root = load_ok(JOB);
    rn_error_t err = RN_ERROR_INIT;
    const rn_conf_t *inputs;

    ck_assert_rn_ok(rn_conf_set_path(root, "sinks.out.inputs.1", "valid", &err), &err);
    inputs = at(root, "sinks", "out", "inputs");
    ck_assert_uint_eq(rn_conf_len(inputs), 2);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_at(inputs, 1)), "valid");
    /* One past the end appends. */
    ck_assert_rn_ok(rn_conf_set_path(root, "sinks.out.inputs.2", "more", &err), &err);
    ck_assert_uint_eq(rn_conf_len(inputs), 3);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_at(inputs, 2)), "more");

    ck_assert_int_eq(rn_conf_set_path(root, "sinks.out.inputs.5", "x", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set sinks.out.inputs.5: index 5 is out of range (3 items)");
    ck_assert_int_eq(rn_conf_set_path(root, "sinks.out.inputs.first", "x", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set sinks.out.inputs.first: 'sinks.out.inputs' is a sequence; "
                              "'first' is not an index");

    /* Through a sequence item into a map. */
    rn_conf_destroy(root);
    root = load_ok("list:\n  - {name: a}\n  - {name: b}\n");
    ck_assert_rn_ok(rn_conf_set_path(root, "list.1.name", "c", &err), &err);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(rn_conf_at(rn_conf_get(root, "list"), 1), "name")),
                     "c");
    ck_assert_int_eq(rn_conf_set_path(root, "list.2.name", "c", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set list.2.name: index 2 is out of range (2 items)");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_set_flow)
{
    rn_conf_t *root = load_ok(JOB);
    rn_error_t err = RN_ERROR_INIT;
    const rn_conf_t *n;
    int64_t v;

    ck_assert_rn_ok(rn_conf_set_path(root, "operators.per_user.window",
                                     "{type: sliding, size: 1m, slide: 10s}", &err),
                    &err);
    n = at(root, "operators", "per_user", "window");
    ck_assert_int_eq(rn_conf_kind(n), RN_CONF_MAP);
    ck_assert_uint_eq(rn_conf_len(n), 3);
    ck_assert_rn_ok(rn__conf_duration_ms(n, "slide", 0, &v, &err), &err);
    ck_assert_int_eq(v, 10000);

    ck_assert_rn_ok(rn_conf_set_path(root, "operators.per_user.key", "[user, url]", &err), &err);
    n = at(root, "operators", "per_user", "key");
    ck_assert_int_eq(rn_conf_kind(n), RN_CONF_SEQ);
    ck_assert_uint_eq(rn_conf_len(n), 2);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_at(n, 1)), "url");

    ck_assert_rn_ok(rn_conf_set_path(root, "operators.per_user.window.size", "x", &err), &err);
    ck_assert_int_eq(rn__conf_duration_ms(at(root, "operators", "per_user", "window"), "size", 0,
                                          &v, &err),
                     RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set operators.per_user.window.size: key 'size': expected a "
                              "duration such as 250ms, 10s, 5m, 2h or 1d, got 'x'");

    ck_assert_int_eq(rn_conf_set_path(root, "parallelism", "[1, 2", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set parallelism: value '[1, 2': did not find expected ',' or "
                              "']' (while parsing a flow sequence at 1:1)");
    ck_assert_int_eq(rn_conf_set_path(root, "parallelism", "{a: 1, a: 2}", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set parallelism: value '{a: 1, a: 2}': duplicate key 'a' (first "
                              "at 1:2)");
    ck_assert_int_eq(rn_conf_set_path(root, "new.section.x", "{a: [}", &err), RN_EINVAL);
    /* The failed sets changed nothing, and created no maps on the way. */
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(root, "parallelism")), "2");
    ck_assert_ptr_null(rn_conf_get(root, "new"));
    ck_assert_uint_eq(rn_conf_len(root), 7);
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_set_dotted_keys)
{
    rn_conf_t *root = load_ok(JOB);
    rn_error_t err = RN_ERROR_INIT;
    const rn_conf_t *props;

    /* An existing key holding dots is found without quoting. */
    ck_assert_rn_ok(rn_conf_set_path(root, "sources.clicks.properties.fetch.min.bytes", "10",
                                     &err),
                    &err);
    props = at(root, "sources", "clicks", "properties");
    ck_assert_uint_eq(rn_conf_len(props), 1);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(props, "fetch.min.bytes")), "10");
    /* A new one is quoted. */
    ck_assert_rn_ok(rn_conf_set_path(root, "sources.clicks.properties.\"socket.timeout.ms\"",
                                     "100", &err),
                    &err);
    ck_assert_uint_eq(rn_conf_len(props), 2);
    ck_assert_str_eq(rn_conf_scalar(rn_conf_get(props, "socket.timeout.ms")), "100");
    ck_assert_rn_ok(rn_conf_set_path(root, "'a.b'.c", "1", &err), &err);
    ck_assert_str_eq(rn_conf_scalar(at(root, "a.b", "c", NULL)), "1");
    rn_conf_destroy(root);
}
END_TEST

START_TEST(test_conf_set_errors)
{
    rn_conf_t *root = load_ok(JOB);
    rn_conf_t *scalar = rn_conf_new_scalar("x");
    rn_error_t err = RN_ERROR_INIT;

    ck_assert_int_eq(rn_conf_set_path(root, "name.x", "1", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set name.x: 'name' is a scalar, not a map or a sequence");
    ck_assert_int_eq(rn_conf_set_path(root, "sources.clicks.type.x.y", "1", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set sources.clicks.type.x.y: 'sources.clicks.type' is a scalar, "
                              "not a map or a sequence");
    ck_assert_int_eq(rn_conf_set_path(root, "a..b", "1", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set a..b: empty key in the path");
    ck_assert_int_eq(rn_conf_set_path(root, "a.", "1", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set a.: empty key in the path");
    ck_assert_int_eq(rn_conf_set_path(root, "", "1", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set : empty key in the path");
    ck_assert_int_eq(rn_conf_set_path(root, "\"a.b", "1", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set \"a.b: unclosed quote in the path");
    ck_assert_int_eq(rn_conf_set_path(scalar, "a", "1", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "--set a: the root is a scalar");
    ck_assert_int_eq(rn_conf_set_path(root, "x", "# only a comment", &err), RN_EINVAL);
    ck_assert_str_eq(err.msg,
                     "--set x: value '# only a comment': the document is empty (no YAML content)");
    rn_conf_destroy(scalar);
    rn_conf_destroy(root);
}
END_TEST

/* ---- trees built in C --------------------------------------------------- */

START_TEST(test_conf_built_in_c)
{
    rn_conf_t *root = rn_conf_new_map();
    rn_conf_t *seq = rn_conf_new_seq();
    rn_error_t err = RN_ERROR_INIT;
    const rn_conf_t *n;
    int64_t v;

    ck_assert_rn_ok(rn_conf_seq_append(seq, rn_conf_new_scalar("a"), &err), &err);
    ck_assert_rn_ok(rn_conf_seq_append(seq, rn_conf_new_scalar("b"), &err), &err);
    ck_assert_rn_ok(rn_conf_map_set(root, "inputs", seq, &err), &err);
    ck_assert_rn_ok(rn_conf_map_set(root, "parallelism", rn_conf_new_scalar("two"), &err), &err);
    ck_assert_rn_ok(rn_conf_map_set(root, "name", rn_conf_new_scalar("job"), &err), &err);

    ck_assert_uint_eq(rn_conf_len(root), 3);
    ck_assert_str_eq(rn_conf_key_at(root, 2), "name");
    n = rn_conf_get(root, "parallelism");
    ck_assert_ptr_null(rn_conf_file(n));
    ck_assert_int_eq(rn_conf_line(n), 0);
    ck_assert_int_eq(rn_conf_col(n), 0);
    ck_assert(!rn_conf_quoted(n));
    ck_assert_int_eq(rn__conf_int(root, "parallelism", 1, &v, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "key 'parallelism': expected an integer, got 'two'");

    /* Replacing keeps the entry's place. */
    ck_assert_rn_ok(rn_conf_map_set(root, "parallelism", rn_conf_new_scalar("3"), &err), &err);
    ck_assert_uint_eq(rn_conf_len(root), 3);
    ck_assert_str_eq(rn_conf_key_at(root, 1), "parallelism");
    ck_assert_rn_ok(rn__conf_int(root, "parallelism", 1, &v, &err), &err);
    ck_assert_int_eq(v, 3);

    /* Wrong containers consume the value and fail. */
    ck_assert_int_eq(rn_conf_map_set(seq, "x", rn_conf_new_scalar("1"), &err), RN_EINVAL);
    ck_assert_int_eq(rn_conf_seq_append(root, rn_conf_new_scalar("1"), &err), RN_EINVAL);
    ck_assert_int_eq(rn_conf_map_set(root, "x", NULL, &err), RN_EINVAL);

    ck_assert_str_eq(rn_conf_scalar(rn_conf_at(rn_conf_get(root, "inputs"), 1)), "b");
    ck_assert_int_eq(rn_conf_kind(rn_conf_get(root, "name")), RN_CONF_SCALAR);
    ck_assert_uint_eq(rn_conf_len(rn_conf_get(root, "name")), 0);
    ck_assert_ptr_null(rn_conf_get(rn_conf_get(root, "name"), "x"));
    ck_assert_ptr_null(rn_conf_key_node_at(root, 3));
    ck_assert_ptr_null(rn_conf_get(NULL, "x"));
    ck_assert_uint_eq(rn_conf_len(NULL), 0);
    rn_conf_destroy(root);
    rn_conf_destroy(NULL);
}
END_TEST

static Suite *
conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc;

    tc = tcase_create("load");
    tcase_add_test(tc, test_conf_load_walk);
    tcase_add_test(tc, test_conf_load_scalars);
    tcase_add_test(tc, test_conf_load_file);
    tcase_add_test(tc, test_conf_big_map_lookup);
    suite_add_tcase(s, tc);

    tc = tcase_create("positions");
    tcase_add_test(tc, test_conf_positions);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_add_test(tc, test_conf_syntax_errors);
    tcase_add_test(tc, test_conf_duplicate_key);
    tcase_add_test(tc, test_conf_duplicate_key_far);
    tcase_add_test(tc, test_conf_refused);
    tcase_add_test(tc, test_conf_nesting_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("readers");
    tcase_add_test(tc, test_conf_read_err_position);
    tcase_add_test(tc, test_conf_read_int);
    tcase_add_test(tc, test_conf_read_float);
    tcase_add_test(tc, test_conf_read_bool);
    tcase_add_test(tc, test_conf_read_str);
    tcase_add_test(tc, test_conf_read_listen);
    tcase_add_test(tc, test_conf_read_duration);
    tcase_add_test(tc, test_conf_read_size);
    tcase_add_test(tc, test_conf_read_enum);
    tcase_add_test(tc, test_conf_read_strlist);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_test(tc, test_conf_did_you_mean);
    tcase_add_test(tc, test_conf_check_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("set_path");
    tcase_add_test(tc, test_conf_set_create);
    tcase_add_test(tc, test_conf_set_replace);
    tcase_add_test(tc, test_conf_set_sequence);
    tcase_add_test(tc, test_conf_set_flow);
    tcase_add_test(tc, test_conf_set_dotted_keys);
    tcase_add_test(tc, test_conf_set_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("built_in_c");
    tcase_add_test(tc, test_conf_built_in_c);
    tcase_add_test(tc, test_conf_big_map_built_in_c);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(conf_suite)
