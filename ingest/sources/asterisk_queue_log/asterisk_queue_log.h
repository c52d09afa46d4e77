/* asterisk_queue_log.h - the asterisk-queue-log source format: app_queue queue_log lines. */
#ifndef CP_SOURCE_ASTERISK_QUEUE_LOG_H
#define CP_SOURCE_ASTERISK_QUEUE_LOG_H

#include "../../cp_source.h"

/* Name "asterisk-queue-log", framing CP_FRAME_LINES, stateless. */
extern const struct cp_source_format cp_source_asterisk_queue_log;

#endif
