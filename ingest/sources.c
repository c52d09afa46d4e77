/* sources.c - the registry of compiled-in source formats: one line per format. */
#include <string.h>

#include "cp_source.h"

extern const struct cp_source_format cp_source_json;
extern const struct cp_source_format cp_source_asterisk_ami;
extern const struct cp_source_format cp_source_asterisk_queue_log;
extern const struct cp_source_format cp_source_freeswitch_json_cdr;
extern const struct cp_source_format cp_source_freeswitch_esl;
extern const struct cp_source_format cp_source_avaya_smdr;
extern const struct cp_source_format cp_source_cucm_cdr;
extern const struct cp_source_format cp_source_amazon_connect_ctr;
extern const struct cp_source_format cp_source_asterisk_cdr_csv;
extern const struct cp_source_format cp_source_twilio_voice;
extern const struct cp_source_format cp_source_twilio_taskrouter;

static const struct cp_source_format *const formats[] = {
    &cp_source_json,
    &cp_source_asterisk_ami,
    &cp_source_asterisk_queue_log,
    &cp_source_freeswitch_json_cdr,
    &cp_source_freeswitch_esl,
    &cp_source_avaya_smdr,
    &cp_source_cucm_cdr,
    &cp_source_amazon_connect_ctr,
    &cp_source_asterisk_cdr_csv,
    &cp_source_twilio_voice,
    &cp_source_twilio_taskrouter,
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
