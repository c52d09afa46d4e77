/* fuzz_syslog.c - libFuzzer target: the syslog header parser stays inside its input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_syslog.h"

static void inside(const uint8_t *data, size_t size, const char *p, size_t n)
{
    if (p && ((const uint8_t *)p < data || (const uint8_t *)p + n > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so ASan catches any read past the end. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    struct cp_syslog_msg m;
    const char *why;
    if (cp_syslog_parse(buf, size, &m, &why) == 0) {
        const uint8_t *b = (const uint8_t *)buf;
        inside(b, size, m.timestamp, m.timestamp_len);
        inside(b, size, m.hostname, m.hostname_len);
        inside(b, size, m.app, m.app_len);
        inside(b, size, m.msg, m.msg_len);
        if (m.facility > 23 || m.severity > 7)
            abort();
    }
    free(buf);
    return 0;
}
