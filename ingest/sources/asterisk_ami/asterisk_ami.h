/* asterisk_ami.h - the asterisk-ami source format: AMI event blocks to canonical events. */
#ifndef CP_SOURCE_ASTERISK_AMI_H
#define CP_SOURCE_ASTERISK_AMI_H

#include "../../cp_source.h"

/* Largest AMI block frame() buffers before it gives up and resynchronises at the next blank line.
 */
#define CP_AMI_BLOCK_MAX 65536
/* Most header lines one block may hold (Asterisk's own inbound limit is 128; events with many
 * channel variables can carry more). */
#define CP_AMI_HEADERS_MAX 256

/* Name "asterisk-ami", framing CP_FRAME_CUSTOM (frame() cuts blocks and the banner line),
 * per-connection state (frame() resynchronisation after an oversized block). */
extern const struct cp_source_format cp_source_asterisk_ami;

#endif
