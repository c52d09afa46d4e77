/* json.h - the callpipe-json source format (canonical events as JSON; see README.md here). */
#ifndef CP_SOURCE_JSON_H
#define CP_SOURCE_JSON_H

#include "../../cp_source.h"

/* Name "callpipe-json", framing CP_FRAME_LINES, stateless. */
extern const struct cp_source_format cp_source_json;

#endif
