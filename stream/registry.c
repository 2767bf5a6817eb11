/*
 * stream/registry.c: the built-in component types, by section and name.
 * Operators from shared libraries are instances of the one `plugin` type
 * (op_plugin.c); sources and sinks plugins register are not listed here
 * but resolved by name to the generic classes of op_plugin_io.c (graph.c
 * asks rn__opclass_ext when a type is not built in), so that these lists
 * stay the built-in names a plugin may not take.
 * @thread any (read-only tables).
 */
#include "stream/component.h"

extern const rn_opclass_t rn__src_datagen;
extern const rn_opclass_t rn__src_file;
extern const rn_opclass_t rn__src_kafka;
extern const rn_opclass_t rn__op_filter;
extern const rn_opclass_t rn__op_map;
extern const rn_opclass_t rn__op_window_aggregate;
extern const rn_opclass_t rn__op_plugin;
extern const rn_opclass_t rn__sink_file;
extern const rn_opclass_t rn__sink_stdout;
extern const rn_opclass_t rn__sink_discard;
extern const rn_opclass_t rn__sink_kafka;

static const rn_opclass_t *const classes[] = {
    &rn__src_datagen, &rn__src_file, &rn__src_kafka,     &rn__op_filter,      &rn__op_map,
    &rn__op_window_aggregate, &rn__op_plugin, &rn__sink_file, &rn__sink_stdout, &rn__sink_discard, &rn__sink_kafka,
};

#define NCLASSES (sizeof(classes) / sizeof(classes[0]))

const rn_opclass_t *
rn__opclass_find(rn_section_t section, const char *type)
{
    for (size_t i = 0; i < NCLASSES; i++)
        if (classes[i] && classes[i]->section == section && strcmp(classes[i]->type, type) == 0)
            return classes[i];
    return NULL;
}

const char *const *
rn__opclass_names(rn_section_t section)
{
    static const char *names[3][NCLASSES + 1];
    static int built[3];
    /* Built on first use at plan time, on the control thread. */
    if (!built[section]) {
        size_t n = 0;
        for (size_t i = 0; i < NCLASSES; i++)
            if (classes[i] && classes[i]->section == section)
                names[section][n++] = classes[i]->type;
        names[section][n] = NULL;
        built[section] = 1;
    }
    return names[section];
}
