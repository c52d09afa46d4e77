/* pbxwire.c - the wire registry, buffer helpers, and the canonical JSON wires (callpipe-json over TCP and HTTP). */
#include "pbxwire.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pw_buf_add(struct pw_buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2 + 4096;
        if (!(b->p = realloc(b->p, b->cap))) {
            fputs("pbxwire: out of memory\n", stderr);
            exit(2);
        }
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0'; /* always a C string too */
}

void pw_buf_str(struct pw_buf *b, const char *s)
{
    pw_buf_add(b, s, strlen(s));
}

void pw_buf_printf(struct pw_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        pw_buf_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        exit(2);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pw_buf_add(b, big, (size_t)n);
    free(big);
}

int pw_local_time(int64_t us, const char *tz, int *year, int *mon, int *day, int *hour, int *min,
                  int *sec)
{
    /* The simulator renders on one thread, so switching the process zone is safe here. */
    static char cur[64] = "";
    const char *want = tz ? tz : "UTC";
    if (strcmp(cur, want) != 0) {
        if (setenv("TZ", want, 1) != 0)
            return -1;
        tzset();
        snprintf(cur, sizeof cur, "%s", want);
    }
    int64_t s = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
    time_t t = (time_t)s;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return -1;
    *year = tm.tm_year + 1900;
    *mon = tm.tm_mon + 1;
    *day = tm.tm_mday;
    *hour = tm.tm_hour;
    *min = tm.tm_min;
    *sec = tm.tm_sec;
    return 0;
}

const struct cp_event *pw_find(const struct pw_call *c, enum cp_kind kind, size_t from)
{
    for (size_t i = from; i < c->n_ev; i++)
        if (c->ev[i].kind == kind)
            return &c->ev[i];
    return NULL;
}

/* ---- callpipe-json: the canonical events themselves, the truth unchanged ---- */

static int json_render(const struct pw_call *c, struct pw_out *o)
{
    static char tmp[CP_EVENT_JSON_MAX];
    for (size_t i = 0; i < c->n_ev; i++) {
        int n = cp_event_to_json(&c->ev[i], tmp, sizeof tmp);
        if (n < 0)
            return n;
        pw_record(o, c->ev[i].ts, tmp, (size_t)n);
    }
    return (int)c->n_ev;
}

static void json_yaml_http(FILE *f, const struct pw_pbx *p)
{
    (void)p;
    fprintf(f, ", token: \"env:%s\"", pw_secret_env());
}

/* A JSON array of the records, with the bearer token. */
static void json_http_request(const struct pw_pbx *p, const struct pw_rec *recs, int n,
                              struct pw_buf *req)
{
    size_t body = 2;
    for (int i = 0; i < n; i++)
        body += recs[i].len + (i > 0);
    pw_buf_printf(req,
                  "POST /events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n[",
                  p->port, pw_secret(), body);
    for (int i = 0; i < n; i++) {
        if (i)
            pw_buf_add(req, ",", 1);
        pw_buf_add(req, recs[i].p, recs[i].len);
    }
    pw_buf_add(req, "]", 1);
}

const struct pw_wire pw_wire_json_tcp = {
    .name = "json-tcp",
    .format = "callpipe-json",
    .transport = PW_TCP,
    .sep = "\n",
    .render = json_render,
};

const struct pw_wire pw_wire_json_http = {
    .name = "json-http",
    .format = "callpipe-json",
    .transport = PW_HTTP,
    .render = json_render,
    .source_yaml = json_yaml_http,
    .http_batch = 2000,
    .http_request = json_http_request,
};

/* ---- the registry: one line per wire (the vendor wires live in pbxwire_<vendor>.c) ---- */

extern const struct pw_wire pw_wire_ami, pw_wire_queue_log, pw_wire_queue_log_syslog,
    pw_wire_cdr_csv;                                           /* pbxwire_asterisk.c */
extern const struct pw_wire pw_wire_fs_esl, pw_wire_fs_json_cdr; /* pbxwire_freeswitch.c */
extern const struct pw_wire pw_wire_smdr, pw_wire_cucm;          /* pbxwire_avaya_cisco.c */
extern const struct pw_wire pw_wire_connect, pw_wire_twilio_voice,
    pw_wire_taskrouter;                                        /* pbxwire_cloud.c */

/* "all" takes them in this order. */
static const struct pw_wire *const wires[] = {
    &pw_wire_json_tcp,   &pw_wire_json_http,   &pw_wire_ami,        &pw_wire_queue_log,
    &pw_wire_queue_log_syslog, &pw_wire_cdr_csv, &pw_wire_fs_esl,   &pw_wire_fs_json_cdr,
    &pw_wire_smdr,       &pw_wire_cucm,        &pw_wire_connect,    &pw_wire_twilio_voice,
    &pw_wire_taskrouter, NULL,
};

const struct pw_wire *const *pw_wires(void)
{
    return wires;
}

const struct pw_wire *pw_wire_find(const char *name)
{
    for (size_t i = 0; wires[i]; i++)
        if (strcmp(wires[i]->name, name) == 0)
            return wires[i];
    return NULL;
}
