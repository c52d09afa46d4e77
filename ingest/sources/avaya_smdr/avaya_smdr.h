/* avaya_smdr.h - the avaya-smdr source format: IP Office SMDR CSV lines (see README.md here). */
#ifndef CP_SOURCE_AVAYA_SMDR_H
#define CP_SOURCE_AVAYA_SMDR_H

#include "../../cp_source.h"

/* Name "avaya-smdr", framing CP_FRAME_LINES, stateful per connection (Call ID
 * continuation stitching: segment numbers and transfers).  Needs the
 * source's `tz`: Call Start is the IP Office's local time. */
extern const struct cp_source_format cp_source_avaya_smdr;

/* Open calls remembered per connection; the oldest is forgotten beyond this. */
#define CP_SMDR_OPEN_CALLS 1024

#endif
