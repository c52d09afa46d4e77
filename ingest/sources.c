/* sources.c - the registry of compiled-in source formats: one line per format. */
#include <string.h>

#include "cp_source.h"

extern const struct cp_source_format cp_source_json;

static const struct cp_source_format *const formats[] = {
    &cp_source_json,
    NULL,
};

const struct cp_source_format *cp_source_find(const char *name)
{
    for (const struct cp_source_format *const *f = formats; *f; f++)
        if (strcmp((*f)->name, name) == 0)
            return *f;
    return NULL;
}

const struct cp_source_format *const *cp_source_all(void)
{
    return formats;
}
