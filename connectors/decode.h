/*
 * connectors/decode.h: decoding one text record (a JSON line, a CSV record)
 * into one row of a schema. Internal to runnel; used by the file source
 * now and by the Kafka source later.
 *
 * Design: decoders know nothing of files, batches or the runtime, so that
 * they can be unit-tested alone and fuzzed. A decoder fills the cells of one
 * row (all of them: a field absent from the record is null) and copies the
 * strings it reads into the arena it is given, because the record's bytes
 * are reused for the next record. A record that does not fit the schema is
 * RN_EDATA with a message in the caller's buffer that names the field and
 * what was found ("field 'ts': expected timestamp, got \"yesterday\""); the
 * caller prefixes the place ("data/clicks.jsonl:17: ").
 *
 * Value rules shared by both formats:
 *   int        a whole number; a float with no fraction (3.0, 1e3) too;
 *   float      any number (ints are widened);
 *   bool       true / false;
 *   timestamp  integer epoch milliseconds (a float with no fraction too)
 *              or an RFC 3339 string: 2023-11-14T22:13:20Z, with an
 *              optional fraction (.5, .123456: truncated to the
 *              millisecond) and a Z or +HH:MM / -HH:MM offset; 't', 'z' and
 *              a space instead of 'T' are accepted as RFC 3339 allows;
 *   string     JSON: a JSON string only (a number is a bad record).
 * In CSV every cell is text: an empty unquoted cell is null, a quoted empty
 * cell ("") is the empty string (PostgreSQL's convention, which lets the
 * CSV encoder round-trip both).
 *
 * @thread any: a decoder is used by one thread at a time.
 */
#ifndef RN_CONNECTORS_DECODE_H
#define RN_CONNECTORS_DECODE_H

#include "stream/row.h"

/* Longest excerpt of a bad value quoted in a message, in bytes. */
#define RN_DECODE_GOT_MAX 40

/* Parses an RFC 3339 timestamp or a decimal integer of epoch milliseconds
 * from s[0..len) (not NUL-terminated). @returns RN_OK and sets *ms, or
 * RN_EDATA (no message: the caller names the field). */
rn_code_t rn__parse_timestamp(const char *s, size_t len, int64_t *ms);

/* Decodes text s[0..len) as a value of type into *out (strings copied into
 * arena). On RN_EDATA writes "field 'NAME': expected TYPE, got \"TEXT\""
 * into errbuf. */
rn_code_t rn__decode_text(rn_type_t type, const char *name, const char *s, size_t len,
                          rn_value_t *out, rn_arena_t *arena, char *errbuf, size_t errlen);

/* @returns the offset of the first byte of s[0..len) that does not begin a
 * valid UTF-8 sequence (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF), or len when all of it is valid. Text formats refuse records
 * that are not UTF-8, as JSON does, rather than let bytes through that no
 * sink could write back as text. */
size_t rn__utf8_check(const char *s, size_t len);
/* @returns the length of the valid UTF-8 sequence at s (at most n > 0
 * bytes: 1 for ASCII), or 0 when none begins there: the shortest form
 * only, no UTF-16 surrogates, nothing above U+10FFFF, which is what
 * jansson accepts in JSON text (RFC 3629). The decoders' check and the
 * encoders' escaping share it. */
size_t rn__utf8_seq(const unsigned char *s, size_t n);

/* Writes s[0..len) into buf as a JSON string literal, cut to
 * RN_DECODE_GOT_MAX bytes with "..." when longer: the "got" part of
 * messages. */
void rn__decode_quote(char *buf, size_t size, const char *s, size_t len);

/* Decodes one JSON object (a JSON line, without its line break) into row,
 * which has schema->nfields cells; fields the object does not have are
 * null, fields the schema does not have are ignored.
 * @param line borrowed for the call. @param arena receives the strings.
 * @returns RN_OK, or RN_EDATA with the reason in errbuf. */
rn_code_t rn__json_decode_line(const rn_schema_t *schema, const char *line, size_t len,
                               rn_value_t *row, rn_arena_t *arena, char *errbuf, size_t errlen);

/* A CSV decoder: the column-to-field mapping of one file (read from its
 * header) and a libcsv parser. */
typedef struct rn_csv_dec rn_csv_dec_t;

/* @param schema borrowed; must outlive the decoder. @returns a decoder
 * (free with rn__csv_dec_destroy()), or NULL when out of memory. */
rn_csv_dec_t *rn__csv_dec_new(const rn_schema_t *schema);
/* Accepts NULL. */
void rn__csv_dec_destroy(rn_csv_dec_t *dec);

/* Reads the header record and maps columns to schema fields by name;
 * columns the schema does not name are ignored. A schema field with no
 * column is RN_EDATA "missing column 'x' (the header has: a, b)"; so is a
 * column named twice. May be called again for the next file. */
rn_code_t rn__csv_dec_header(rn_csv_dec_t *dec, const char *rec, size_t len, char *errbuf,
                             size_t errlen);

/* Decodes one CSV record (without its final line break; it may contain
 * line breaks inside quoted cells) into row. A record that is not valid
 * UTF-8, or that has another number of cells than the header, is RN_EDATA.
 * @param arena receives the strings. */
rn_code_t rn__csv_dec_record(rn_csv_dec_t *dec, const char *rec, size_t len, rn_value_t *row,
                             rn_arena_t *arena, char *errbuf, size_t errlen);

/* Whether the last record given to rn__csv_dec_record failed on its shape
 * (CSV syntax, such as a misplaced or unclosed quote, or its number of
 * cells) rather than on a value. A record joined over several lines that
 * fails on its shape was most likely cut wrong by a stray quote, and the
 * caller reads it again line by line. */
bool rn__csv_dec_misframed(const rn_csv_dec_t *dec);

/* Whether a CSV record that ends here continues on the next line: true
 * while the number of quote characters seen so far is odd. @param quotes
 * carries the count between lines of one record (start at 0). */
bool rn__csv_record_open(const char *line, size_t len, size_t *quotes);

#endif
