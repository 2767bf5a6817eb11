/*
 * examples/wordcount/tokenize.c: the `tokenize` operator of the wordcount
 * example, a runnel plugin (include/runnel/plugin.h, docs/plugins.md).
 *
 * For each record it splits the string field named by config `field`
 * (default "line") into words (runs of letters, digits and apostrophes,
 * lowercased, ASCII only) and emits one record {word} per word, with the
 * line's event time. A line may give many records or none: a flat map,
 * which the built-in `map` (one record in, one out) cannot do.
 */
#include <runnel/plugin.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define WORD_MAX 256 /* longer runs are cut: a word, not a payload */

typedef struct tok {
    int in;  /* the input field */
    int out; /* "word" */
} tok_t;

static const char *
field_name(const rn_conf_t *config)
{
    const char *name = config ? rn_conf_scalar(rn_conf_get(config, "field")) : NULL;
    return name ? name : "line";
}

static int
tok_plan(rn_pf_plan_t *p, rn_error_t *err)
{
    const char *name = field_name(rn_pf_plan_config(p));
    rn_type_t type;
    if (rn_pf_plan_input_field(p, name, &type) < 0 || type != RN_TYPE_STRING)
        return rn_pf_fail(NULL, err, RN_EINVAL, "tokenize needs a string field '%s' in its input",
                          name);
    return rn_pf_plan_output(p, NULL, "word", RN_TYPE_STRING, err);
}

static int
tok_open(rn_pf_t *f, rn_error_t *err)
{
    tok_t *t = malloc(sizeof(*t));
    if (t == NULL)
        return rn_pf_fail(f, err, RN_ENOMEM, "out of memory");
    t->in = rn_pf_field(f, field_name(rn_pf_config(f)));
    t->out = rn_pf_out_field(f, 0, "word");
    rn_pf_set_data(f, t);
    return RN_OK;
}

static int
is_word(unsigned char c)
{
    return isalnum(c) || c == '\'';
}

static int
tok_process(rn_pf_t *f, rn_error_t *err)
{
    tok_t *t = rn_pf_data(f);
    size_t len, i = 0;
    const char *s = rn_pf_get_string(f, t->in, &len);
    char word[WORD_MAX];
    while (s != NULL && i < len) {
        while (i < len && !is_word((unsigned char)s[i]))
            i++;
        size_t n = 0;
        while (i < len && is_word((unsigned char)s[i])) {
            if (n < sizeof(word))
                word[n++] = (char)tolower((unsigned char)s[i]);
            i++;
        }
        if (n == 0)
            continue;
        int rc = rn_pf_out_begin(f, 0, err);
        if (rc != RN_OK)
            return rc;
        rn_pf_out_set_string(f, t->out, word, n);
    }
    return RN_OK;
}

static void
tok_close(rn_pf_t *f)
{
    free(rn_pf_data(f));
}

static const rn_process_fn_t tokenize = {
    .size = sizeof(rn_process_fn_t),
    .name = "tokenize",
    .plan = tok_plan,
    .open = tok_open,
    .process = tok_process,
    .close = tok_close,
};

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    return rn_plugin_register(p, RN_ABI_VERSION, &tokenize, err);
}
