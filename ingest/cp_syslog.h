/* cp_syslog.h - splits a syslog message (RFC 5424 or RFC 3164) into header fields and the payload. */
#ifndef CP_SYSLOG_H
#define CP_SYSLOG_H

#include <stddef.h>

/*
 * Syslog is a transport here: PBXs (and rsyslog/syslog-ng relays) wrap CDR
 * lines or JSON in a syslog header, and the payload (MSG) goes on to the
 * source's configured format.  Pure; pointers refer into the input.
 */
struct cp_syslog_msg {
    int version;  /* 1 for RFC 5424, 0 for RFC 3164 (BSD) */
    int facility; /* 0..23 */
    int severity; /* 0..7 */
    const char *timestamp; /* as sent; NULL when absent ("-" or BSD without one) */
    size_t timestamp_len;
    const char *hostname;
    size_t hostname_len;
    const char *app; /* APP-NAME (5424) or TAG (3164) */
    size_t app_len;
    const char *msg; /* the payload, BOM and the header's trailing space removed */
    size_t msg_len;
};

/* 0, or CP_ERR_PARSE with a reason in *why (a static string). */
int cp_syslog_parse(const char *buf, size_t len, struct cp_syslog_msg *out, const char **why);

#endif
