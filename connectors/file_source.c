/*
 * connectors/file_source.c: the "file" source: JSON lines, CSV files or
 * lines of a plugin's format read into rows of a declared schema.
 *
 * Design: `path` is a file or a glob pattern. The matching files, sorted by
 * name, are dealt to the instances round-robin (file k to instance
 * k % parallelism), so that each file is read whole by one instance and
 * its records keep their order. An instance reads its files one after the
 * other through stdio with a large buffer (getline), one record per line;
 * a CSV record goes on over line breaks while a quoted cell is open. Each
 * poll fills up to one batch.
 *
 * A CSV record is bounded: it may span at most max_record_lines lines and
 * max_record_bytes bytes. A quote that opens a cell and never closes would
 * otherwise make one record of the rest of the file. A record that spans
 * lines is taken whole only if it parses as CSV with the header's number of
 * cells; when its quote is still open at the bound or at the end of the
 * file, or when the joined lines do not parse, the line where it began is
 * the bad record (one, counted once) and reading goes on at the line after
 * it (a seek back), so the rows after a stray quote survive. A quoted cell
 * with line breaks in it, which CSV allows, parses and is kept.
 *
 * A record that does not decode, or whose event-time field is null, is a
 * bad record, handled by on_error: fail (the poll fails with
 * "FILE:LINE: field 'x': expected ..."), skip (dropped and counted; one
 * warning with the count and the first reason at close) or dead-letter (a
 * row on the side output "errors": error, raw record, "FILE:LINE"). A
 * plugin's format decodes each line (without its line break): its RN_EDATA
 * is a bad record, any other error stops the job at the line. A CSV
 * file whose header lacks a schema field fails the job whatever on_error
 * says: no record of it could be read.
 *
 * @thread plan: control; an instance: its task.
 */
#include "connectors/connector_int.h"
#include "connectors/decode.h"
#include "connectors/encode.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <sys/stat.h>

#define READ_BUFFER (1 << 20)

static const char *const keys[] = {"path",     "format",           "schema",
                                   "on_error", "max_record_lines", "max_record_bytes",
                                   NULL};

/* Bounds of a CSV record (documented in docs/job-file.md): generous for
 * quoted cells with line breaks (addresses, comments), small enough that a
 * stray quote costs a bounded amount of reading again. */
#define DEFAULT_MAX_RECORD_LINES 100
#define DEFAULT_MAX_RECORD_BYTES (1 << 20)

typedef struct fsrc_plan {
    char *path; /* owned */
    rn_format_t format;
    const rn_format_fn_t *ext; /* a plugin's format (format then json), or NULL */
    int on_error;
    int et_field;    /* event-time field of the main output, or -1 */
    int errors_port; /* side output "errors", or -1 */
    int64_t max_lines; /* CSV: lines of one record, >= 1 */
    int64_t max_bytes; /* CSV: bytes of one record, >= 1 */
} fsrc_plan_t;

typedef struct fsrc {
    const fsrc_plan_t *plan;
    const rn_schema_t *schema; /* main output; borrowed from the plan */
    char **files;              /* this instance's files, owned */
    size_t nfiles, next;
    FILE *f;          /* current file, or NULL between files */
    char *fbuf;       /* its stdio buffer */
    const char *name; /* current file's name (in files[]) */
    int64_t lineno;   /* lines read from the current file */
    char *line;       /* getline's buffer */
    size_t linecap;
    rn_buf_t rec; /* a CSV record over several lines */
    /* The record last read, for CSV: */
    int64_t rec_lines; /* lines it spans */
    size_t first_len;  /* bytes of its first line (at the start of rec) */
    off_t resync;      /* offset of the line after its first, or -1 */
    bool rec_bad;      /* already known bad (reason in errbuf) */
    rn_csv_dec_t *csv;
    rn_bad_records_t bad;
    char errbuf[RN_ERROR_MSG_MAX];
} fsrc_t;

/* ---- plan ---------------------------------------------------------------- */

static void
fsrc_plan_free(void *p)
{
    fsrc_plan_t *plan = p;
    if (plan == NULL)
        return;
    rn_free(plan->path);
    rn_free(plan);
}

/* max_record_lines and max_record_bytes: CSV only, at least 1. */
static rn_code_t
plan_bounds(const rn_conf_t *conf, const char *what, fsrc_plan_t *plan, rn_error_t *err)
{
    static const char *const names[] = {"max_record_lines", "max_record_bytes"};
    rn_code_t rc;

    for (size_t i = 0; i < 2; i++) {
        const rn_conf_t *node = rn__conf_key_node(conf, names[i]);
        if (node != NULL && (plan->format != RN_FORMAT_CSV || plan->ext != NULL))
            return rn__conf_err(err, RN_EINVAL, node,
                                "%s: %s applies to format: csv only (other formats read "
                                "one record per line)",
                                what, names[i]);
    }
    if ((rc = rn__conf_int(conf, "max_record_lines", DEFAULT_MAX_RECORD_LINES, &plan->max_lines,
                           err)) != RN_OK ||
        (rc = rn__conf_size(conf, "max_record_bytes", DEFAULT_MAX_RECORD_BYTES, &plan->max_bytes,
                            err)) != RN_OK)
        return rc;
    if (plan->max_lines < 1)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "max_record_lines"),
                            "%s: max_record_lines must be at least 1, got %lld", what,
                            (long long)plan->max_lines);
    if (plan->max_bytes < 1)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "max_record_bytes"),
                            "%s: max_record_bytes must be at least 1 byte, got %lld", what,
                            (long long)plan->max_bytes);
    return RN_OK;
}

static rn_code_t
fsrc_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    fsrc_plan_t *plan;
    rn_schema_t *schema;
    const char *path = NULL;
    const rn_format_fn_t *ext;
    int format;
    char what[160];
    rn_code_t rc;

    rn__conn_what(pc, "file source", what, sizeof(what));
    if (rn__conf_require(conf, "path", what, err) == NULL)
        return err ? err->code : RN_EINVAL;
    if ((rc = rn__conf_str(conf, "path", NULL, &path, err)) != RN_OK ||
        (rc = rn__conn_format(conf, what, rn__format_names, RN_FORMAT_JSON, RN_FMT_DECODE,
                              &format, &ext, err)) != RN_OK)
        return rc;
    if (path == NULL || *path == '\0')
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "path"),
                            "%s: path is empty; give a file or a glob pattern", what);
    if ((schema = rn__conn_schema(conf, what, err)) == NULL)
        return err ? err->code : RN_EINVAL;
    if ((rc = rn__pc_add_output(pc, NULL, schema, err)) != RN_OK)
        return rc;
    plan = rn_xcalloc(1, sizeof(*plan));
    plan->path = rn_xstrdup(path);
    plan->format = (rn_format_t)format;
    plan->ext = ext;
    rn__pc_set_plan(pc, plan, fsrc_plan_free);
    if ((rc = rn__bad_plan(pc, &plan->on_error, &plan->errors_port, err)) != RN_OK)
        return rc;
    /* schema now belongs to the main output port, which keeps it alive. */
    plan->et_field = rn__conn_event_time_field(pc, schema);
    rn__pc_set_bounded(pc, true);
    return plan_bounds(conf, what, plan, err);
}

/* ---- files ---------------------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Fills st->files with this instance's share of the files path names. */
static rn_code_t
list_files(fsrc_t *st, const char *path, int instance, int parallelism, rn_error_t *err)
{
    glob_t g;
    size_t n = 0;

    if (strpbrk(path, "*?[") == NULL) {
        st->files = rn_xcalloc(1, sizeof(char *));
        if (instance == 0)
            st->files[n++] = rn_xstrdup(path);
        st->nfiles = n;
        return RN_OK;
    }
    int grc = glob(path, GLOB_NOSORT, NULL, &g);
    if (grc == GLOB_NOMATCH)
        return rn__errf(err, RN_EIO, "no file matches '%s'", path);
    if (grc != 0)
        return rn__errf(err, RN_EIO, "cannot list the files matching '%s': %s", path,
                        grc == GLOB_NOSPACE ? "out of memory" : "read error");
    /* Sorted by byte order, not by locale, so that every machine deals the
     * same files to the same instances. */
    qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), cmp_names);
    st->files = rn_xcalloc(g.gl_pathc ? g.gl_pathc : 1, sizeof(char *));
    for (size_t k = 0; k < g.gl_pathc; k++)
        if (k % (size_t)parallelism == (size_t)instance)
            st->files[n++] = rn_xstrdup(g.gl_pathv[k]);
    st->nfiles = n;
    globfree(&g);
    return RN_OK;
}

static void
close_file(fsrc_t *st)
{
    if (st->f != NULL)
        fclose(st->f);
    st->f = NULL;
    rn_free(st->fbuf);
    st->fbuf = NULL;
}

/* Reads one line into st->line without its line break. @returns its
 * length, or -1 at the end of the file (-2 on a read error, errno set). */
static ssize_t
read_line(fsrc_t *st)
{
    ssize_t n = getline(&st->line, &st->linecap, st->f);
    if (n < 0)
        return ferror(st->f) ? -2 : -1;
    st->lineno++;
    if (n > 0 && st->line[n - 1] == '\n')
        n--;
    if (n > 0 && st->line[n - 1] == '\r')
        n--;
    return n;
}

static bool
blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

/* Appends sep (one byte, or NULL) and s[0..len) to st->rec. */
static bool
rec_append(fsrc_t *st, const char *sep, const char *s, size_t len)
{
    if (rn__buf_reserve(&st->rec, len + 1) != RN_OK)
        return false;
    if (sep != NULL)
        st->rec.data[st->rec.len++] = *sep;
    memcpy(st->rec.data + st->rec.len, s, len);
    st->rec.len += len;
    return true;
}

/* Marks the record being read bad, the reason being that its quote does
 * not close (why: "before the end of the file", ...). When the file can
 * seek, the bad record is its first line alone and reading goes on at the
 * line after it; otherwise (a pipe) it is every line read so far. */
static void
resync(fsrc_t *st, const char **rec, size_t *len, int64_t first_line, const char *why)
{
    int64_t last = st->lineno;

    if (st->resync >= 0 && fseeko(st->f, st->resync, SEEK_SET) == 0) {
        st->lineno = first_line;
        st->rec.len = st->first_len;
        st->rec_lines = 1;
        snprintf(st->errbuf, sizeof(st->errbuf),
                 "invalid CSV: the quote opened on this line %s; reading goes on at the next line",
                 why);
    } else {
        snprintf(st->errbuf, sizeof(st->errbuf),
                 "invalid CSV: the quote opened on this line %s (lines %lld-%lld dropped)", why,
                 (long long)first_line, (long long)last);
    }
    st->rec_bad = true;
    *rec = st->rec.data;
    *len = st->rec.len;
}

/* The rest of a CSV record whose first line (already in st->line, n bytes)
 * leaves a quoted cell open, up to the line that closes it, within the
 * bounds. @returns RN_OK (st->rec_bad when the quote did not close), or an
 * error. */
static rn_code_t
read_continued(fsrc_t *st, const char **rec, size_t *len, int64_t first_line, size_t quotes,
               ssize_t n, rn_error_t *err)
{
    const fsrc_plan_t *plan = st->plan;
    char why[96];

    st->rec.len = 0;
    if (!rec_append(st, NULL, st->line, (size_t)n))
        goto nomem;
    st->first_len = (size_t)n;
    st->resync = ftello(st->f);
    for (;;) {
        if (st->rec_lines >= plan->max_lines) {
            snprintf(why, sizeof(why), "is not closed within max_record_lines (%lld lines)",
                     (long long)plan->max_lines);
            break;
        }
        if ((n = read_line(st)) == -2)
            return rn__errf(err, RN_EIO, "%s: read error: %s", st->name, strerror(errno));
        if (n == -1) {
            snprintf(why, sizeof(why), "is not closed before the end of the file");
            break;
        }
        if (st->rec.len + 1 + (size_t)n > (uint64_t)plan->max_bytes) {
            snprintf(why, sizeof(why), "is not closed within max_record_bytes (%lld bytes)",
                     (long long)plan->max_bytes);
            /* Kept only where no seek back will happen, so that nothing
             * read is lost without being reported. */
            if (st->resync < 0 && !rec_append(st, "\n", st->line, (size_t)n))
                goto nomem;
            break;
        }
        if (!rec_append(st, "\n", st->line, (size_t)n))
            goto nomem;
        st->rec_lines++;
        if (!rn__csv_record_open(st->line, (size_t)n, &quotes)) {
            *rec = st->rec.data;
            *len = st->rec.len;
            return RN_OK;
        }
    }
    resync(st, rec, len, first_line, why);
    return RN_OK;
nomem:
    return rn__errf(err, RN_ENOMEM, "%s:%lld: out of memory for a record", st->name,
                    (long long)first_line);
}

/* The next record of the current file: a non-blank line, or for CSV the
 * lines of a record whose quoted cell spans lines (joined with "\n"),
 * within the bounds. @returns RN_OK (st->rec_bad when the record is known
 * bad already, the reason in st->errbuf), RN_ENOTFOUND at the end of the
 * file, or an error. */
static rn_code_t
read_record(fsrc_t *st, const char **rec, size_t *len, int64_t *first_line, rn_error_t *err)
{
    ssize_t n;
    size_t quotes = 0;

    st->rec_bad = false;
    st->rec_lines = 1;
    do {
        n = read_line(st);
    } while (n >= 0 && blank(st->line, (size_t)n));
    if (n == -2)
        return rn__errf(err, RN_EIO, "%s: read error: %s", st->name, strerror(errno));
    if (n < 0)
        return RN_ENOTFOUND;
    *first_line = st->lineno;
    *rec = st->line;
    *len = (size_t)n;
    if (st->plan->format != RN_FORMAT_CSV || st->plan->ext != NULL)
        return RN_OK;
    if ((uint64_t)n > (uint64_t)st->plan->max_bytes) {
        snprintf(st->errbuf, sizeof(st->errbuf),
                 "invalid CSV: the record is %zd bytes long, more than max_record_bytes (%lld)", n,
                 (long long)st->plan->max_bytes);
        st->rec_bad = true;
        return RN_OK;
    }
    if (!rn__csv_record_open(st->line, (size_t)n, &quotes))
        return RN_OK;
    return read_continued(st, rec, len, *first_line, quotes, n, err);
}

/* Opens the next file of the instance; for CSV reads its header.
 * @returns RN_OK, RN_ENOTFOUND when there is none left, or an error. */
static rn_code_t
open_next(fsrc_t *st, rn_error_t *err)
{
    struct stat sb;
    const char *rec;
    size_t len;
    int64_t line;
    rn_code_t rc;

    if (st->next == st->nfiles)
        return RN_ENOTFOUND;
    st->name = st->files[st->next++];
    st->lineno = 0;
    if ((st->f = fopen(st->name, "rb")) == NULL)
        return rn__errf(err, RN_EIO, "cannot open '%s': %s", st->name, strerror(errno));
    if (fstat(fileno(st->f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close_file(st);
        return rn__errf(err, RN_EIO,
                        "'%s' is a directory; give a file or a pattern such as '%s/*.jsonl'",
                        st->name, st->name);
    }
    st->fbuf = rn_malloc(READ_BUFFER);
    if (st->fbuf != NULL)
        setvbuf(st->f, st->fbuf, _IOFBF, READ_BUFFER);
    if (st->plan->format != RN_FORMAT_CSV)
        return RN_OK;
    rc = read_record(st, &rec, &len, &line, err);
    if (rc == RN_ENOTFOUND) /* an empty file: no header, no records */
        return RN_OK;
    if (rc != RN_OK)
        return rc;
    if (st->rec_bad ||
        rn__csv_dec_header(st->csv, rec, len, st->errbuf, sizeof(st->errbuf)) != RN_OK)
        return rn__errf(err, RN_EDATA, "%s:%lld: %s", st->name, (long long)line, st->errbuf);
    return RN_OK;
}

/* The next record of the instance, across its files. */
static rn_code_t
next_record(fsrc_t *st, const char **rec, size_t *len, int64_t *line, rn_error_t *err)
{
    for (;;) {
        rn_code_t rc;
        if (st->f == NULL && (rc = open_next(st, err)) != RN_OK)
            return rc;
        rc = read_record(st, rec, len, line, err);
        if (rc != RN_ENOTFOUND)
            return rc;
        close_file(st);
    }
}

/* ---- run ------------------------------------------------------------------ */

static void
fsrc_free(fsrc_t *st)
{
    if (st == NULL)
        return;
    close_file(st);
    for (size_t i = 0; i < st->nfiles; i++)
        rn_free(st->files[i]);
    rn_free(st->files);
    free(st->line); /* getline's, allocated with malloc */
    rn__buf_fini(&st->rec);
    rn__csv_dec_destroy(st->csv);
    rn_free(st);
}

/* ---- checkpoints ---------------------------------------------------------- */

/* The position between two records: the index of the file being read
 * (or of the next one), its name (checked on restore: the files must be
 * the same), the byte offset and line number in it. */
static rn_code_t
fsrc_snapshot(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    fsrc_t *st = rn__op_data(op);
    if (st == NULL)
        return RN_OK;
    if (st->f == NULL) {
        *data = json_pack("{s:I}", "next", (json_int_t)st->next);
    } else {
        off_t off = ftello(st->f);
        if (off < 0)
            return rn__errf(err, RN_EIO, "%s: position: %s", st->name, strerror(errno));
        *data = json_pack("{s:I, s:s, s:I, s:I}", "next", (json_int_t)(st->next - 1), "file",
                          st->name, "offset", (json_int_t)off, "line", (json_int_t)st->lineno);
    }
    return *data != NULL ? RN_OK : rn__errf(err, RN_ENOMEM, "out of memory");
}

static rn_code_t
restore_position(fsrc_t *st, const json_t *pos, rn_error_t *err)
{
    json_t *jn = json_object_get(pos, "next");
    const char *name = json_string_value(json_object_get(pos, "file"));
    json_int_t next = json_integer_value(jn);
    if (!json_is_integer(jn) || next < 0 || (size_t)next > st->nfiles)
        return rn__errf(err, RN_ECORRUPT, "the checkpoint's position is not one of this source");
    st->next = (size_t)next;
    if (name == NULL)
        return RN_OK; /* between files */
    if ((size_t)next >= st->nfiles || strcmp(st->files[next], name) != 0)
        return rn__errf(err, RN_EINVAL,
                        "the checkpoint was reading '%s', which is no longer file %lld of "
                        "this source's files: the input changed",
                        name, (long long)next);
    rn_code_t rc = open_next(st, err);
    if (rc != RN_OK)
        return rc == RN_ENOTFOUND ? RN_OK : rc;
    json_int_t off = json_integer_value(json_object_get(pos, "offset"));
    struct stat sb;
    if (off < 0 || fstat(fileno(st->f), &sb) != 0 || off > sb.st_size)
        return rn__errf(err, RN_EINVAL,
                        "'%s' is shorter than the position the checkpoint recorded (%lld): the "
                        "input changed",
                        name, (long long)off);
    if (fseeko(st->f, (off_t)off, SEEK_SET) != 0)
        return rn__errf(err, RN_EIO, "%s: seek: %s", name, strerror(errno));
    st->lineno = json_integer_value(json_object_get(pos, "line"));
    return RN_OK;
}

static rn_code_t
open_instance(rn_op_t *op, rn_error_t *err)
{
    const fsrc_plan_t *plan = rn__op_plan(op);
    fsrc_t *st = rn_calloc(1, sizeof(*st));
    rn_code_t rc;

    if (st == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    st->plan = plan;
    st->schema = rn__op_schema(op, 0);
    rn__bad_init(&st->bad, plan->on_error, plan->errors_port);
    rn__buf_init(&st->rec);
    rn__op_set_data(op, st);
    if (plan->format == RN_FORMAT_CSV && (st->csv = rn__csv_dec_new(st->schema)) == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    if ((rc = list_files(st, plan->path, rn__op_instance(op), rn__op_parallelism(op), err)) !=
        RN_OK)
        return rc;
    if (rn__op_restored_all(op) != NULL)
        return rn__errf(err, RN_EINVAL,
                        "a file source cannot change its parallelism when resuming from a "
                        "savepoint: give '%s' its old parallelism (parallelism: N under it)",
                        rn__op_name(op));
    const json_t *pos = rn__op_restored(op);
    /* A source that had ended had read every file. */
    if (pos != NULL && rn__op_restored_finished(op) &&
        (json_object_get(pos, "file") != NULL ||
         json_integer_value(json_object_get(pos, "next")) != (json_int_t)st->nfiles))
        return rn__errf(err, RN_ECORRUPT,
                        "the checkpoint says this source had ended, but its position "
                        "(data.next) is not past its %zu files", st->nfiles);
    if (pos != NULL)
        return restore_position(st, pos, err);
    /* Open the first file now, so that a missing file or a CSV header
     * without a schema field fails the job before any record flows. */
    rc = open_next(st, err);
    return rc == RN_ENOTFOUND ? RN_OK : rc;
}

static rn_code_t
fsrc_open(rn_op_t *op, rn_error_t *err)
{
    rn_code_t rc = open_instance(op, err);
    /* close() is not called after a failed open(): clean up here. */
    if (rc != RN_OK) {
        fsrc_free(rn__op_data(op));
        rn__op_set_data(op, NULL);
    }
    return rc;
}

static void
fsrc_close(rn_op_t *op)
{
    fsrc_t *st = rn__op_data(op);
    if (st != NULL)
        rn__bad_close(op, &st->bad);
    fsrc_free(st);
    rn__op_set_data(op, NULL);
}

/* @returns RN_OK, RN_EDATA (a bad record: the reason in st->errbuf) or
 * another error in err (a plugin's format failing: the job stops). */
static rn_code_t
decode(fsrc_t *st, const char *rec, size_t len, rn_value_t *row, rn_arena_t *arena,
       rn_error_t *err)
{
    const fsrc_plan_t *plan = st->plan;
    rn_code_t rc;

    if (plan->ext != NULL)
        rc = rn__fmt_decode(plan->ext, st->schema, rec, len, row, arena, st->errbuf,
                            sizeof(st->errbuf), err);
    else if (plan->format == RN_FORMAT_CSV)
        rc = rn__csv_dec_record(st->csv, rec, len, row, arena, st->errbuf, sizeof(st->errbuf));
    else
        rc = rn__json_decode_line(st->schema, rec, len, row, arena, st->errbuf,
                                  sizeof(st->errbuf));
    if (rc == RN_OK)
        rc = rn__conn_check_event_time(st->schema, plan->et_field, row, st->errbuf,
                                       sizeof(st->errbuf));
    return rc;
}

/* A record that did not decode (reason in st->errbuf), per on_error. */
static rn_code_t
bad_record(rn_op_t *op, fsrc_t *st, const char *rec, size_t len, int64_t line, rn_error_t *err)
{
    char where[PATH_MAX + 32];
    snprintf(where, sizeof(where), "%s:%lld", st->name, (long long)line);
    return rn__bad_record(op, &st->bad, st->errbuf, rec, len, where, err);
}

/* A CSV record joined over lines that does not parse, or has another
 * number of cells than the header: the quote on its first line was most
 * likely a stray one, so that line alone is the bad record and the lines
 * after it are read again as records of their own. */
static void
misframed(fsrc_t *st, const char **rec, size_t *len, int64_t first_line)
{
    char why[RN_ERROR_MSG_MAX];

    snprintf(why, sizeof(why), "makes a record of lines %lld-%lld that is not valid (%.300s)",
             (long long)first_line, (long long)st->lineno, st->errbuf);
    resync(st, rec, len, first_line, why);
}

static rn_code_t
fsrc_poll(rn_op_t *op, bool *done, rn_error_t *err)
{
    fsrc_t *st = rn__op_data(op);
    const int et = st->plan->et_field;
    rn_batch_t *b = rn__op_batch(op, 0);
    rn_code_t rc = RN_OK;
    const char *rec;
    size_t len;
    int64_t line;

    while (!rn__batch_full(b)) {
        rc = next_record(st, &rec, &len, &line, err);
        if (rc == RN_ENOTFOUND) {
            *done = true;
            rc = RN_OK;
            break;
        }
        if (rc != RN_OK)
            break;
        rn_value_t *row = rn__batch_append(b, 0);
        rc = st->rec_bad ? RN_EDATA : decode(st, rec, len, row, &b->arena, err);
        if (rc == RN_OK) {
            b->ts[b->n - 1] = et >= 0 ? row[et].u.i : 0;
            continue;
        }
        b->n--;
        if (rc == RN_EDATA && !st->rec_bad && st->rec_lines > 1 &&
            rn__csv_dec_misframed(st->csv))
            misframed(st, &rec, &len, line);
        if (rc != RN_EDATA) {
            rn__errctx(err, "%s:%lld", st->name, (long long)line);
            break;
        }
        if ((rc = bad_record(op, st, rec, len, line, err)) != RN_OK)
            break;
    }
    if (rc != RN_OK) {
        rn__op_free_batch(op, b);
        rn__bad_discard(op, &st->bad);
        return rc;
    }
    if ((rc = rn__bad_flush(op, &st->bad, err)) != RN_OK) {
        rn__op_free_batch(op, b);
        return rc;
    }
    return rn__op_emit(op, 0, b, err);
}

const rn_opclass_t rn__src_file = {
    .type = "file",
    .section = RN_SOURCE,
    .keys = keys,
    .plan = fsrc_plan,
    .open = fsrc_open,
    .poll = fsrc_poll,
    .close = fsrc_close,
    .snapshot = fsrc_snapshot,
};
