/* amazon_connect.h - the amazon-connect-ctr source format (CTRs via Firehose HTTP delivery). */
#ifndef CP_SOURCE_AMAZON_CONNECT_H
#define CP_SOURCE_AMAZON_CONNECT_H

#include "cp_source.h"

/* name "amazon-connect-ctr", framing CP_FRAME_BODY (one HTTP body).  The
 * endpoint's access key and response body: firehose.h. */
extern const struct cp_source_format cp_source_amazon_connect_ctr;

#endif
