/* freeswitch_json_cdr.h - the freeswitch-json-cdr source format: mod_json_cdr HTTP POST bodies. */
#ifndef CP_SOURCE_FREESWITCH_JSON_CDR_H
#define CP_SOURCE_FREESWITCH_JSON_CDR_H

#include "../../cp_source.h"

/* Name "freeswitch-json-cdr", framing CP_FRAME_BODY, stateless; one cdr event per body
 * (one POST per call leg).  See README.md here. */
extern const struct cp_source_format cp_source_freeswitch_json_cdr;

#endif
