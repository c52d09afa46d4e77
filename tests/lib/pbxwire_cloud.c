/* pbxwire_cloud.c - the cloud contact-center wires: Amazon Connect CTRs through Firehose, Twilio voice status callbacks and TaskRouter events. */
#include "pbxwire.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- shared helpers ---- */

/* Deterministic "random" bits for vendor ids (splitmix64 of the inputs). */
static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9e3779b97f4a7c15ull + b + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t call_key(const struct pw_call *c, uint64_t salt)
{
    return mix(mix((uint64_t)c->pbx->index + 1, c->idx), salt);
}

static uint64_t str_key(const char *s, uint64_t salt)
{
    uint64_t h = 0xcbf29ce484222325ull ^ salt;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return mix(h, salt);
}

/* A Twilio SID: two letters and 32 lowercase hex digits. */
static void twilio_sid(char *out, size_t cap, const char *prefix, uint64_t a, uint64_t b)
{
    snprintf(out, cap, "%s%016" PRIx64 "%016" PRIx64, prefix, mix(a, 1), mix(b, 2));
}

/* A version-4 shaped UUID from two numbers. */
static void uuid_of(char *out, size_t cap, uint64_t a, uint64_t b)
{
    uint64_t h = mix(a, b), l = mix(b, a ^ 0x5555);
    snprintf(out, cap, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
             h >> 32, (h >> 16) & 0xffff, h & 0xfff, (uint64_t)0x8000 | ((l >> 48) & 0x3fff),
             l & (uint64_t)0xffffffffffff);
}

static void civil(int64_t us, int *y, int *mo, int *d, int *h, int *mi, int *s)
{
    pw_local_time(us, "UTC", y, mo, d, h, mi, s);
}

/* ISO-8601 UTC with milliseconds, as Connect writes its timestamps. */
static void iso_ms(int64_t us, char *out, size_t cap)
{
    int y, mo, d, h, mi, s;
    civil(us, &y, &mo, &d, &h, &mi, &s);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s,
             (int)((us % 1000000) / 1000));
}

/* RFC 2822, as Twilio's Timestamp parameter ("Tue, 25 Nov 2025 10:00:00 +0000"). */
static void rfc2822(int64_t us, char *out, size_t cap)
{
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int y, mo, d, h, mi, s;
    civil(us, &y, &mo, &d, &h, &mi, &s);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[(us / 86400000000) % 7], d,
             mn[mo - 1], y, h, mi, s);
}

/* ---- form bodies and X-Twilio-Signature ---- */

struct form {
    struct pw_buf b;
};

static void form_add(struct form *f, const char *k, const char *v)
{
    if (!v)
        return;
    if (f->b.len)
        pw_buf_add(&f->b, "&", 1);
    for (int pass = 0; pass < 2; pass++) {
        const unsigned char *s = (const unsigned char *)(pass ? v : k);
        for (; *s; s++) {
            if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                *s == '-' || *s == '_' || *s == '.' || *s == '*')
                pw_buf_add(&f->b, s, 1);
            else if (*s == ' ')
                pw_buf_add(&f->b, "+", 1);
            else
                pw_buf_printf(&f->b, "%%%02X", *s);
        }
        if (!pass)
            pw_buf_add(&f->b, "=", 1);
    }
}

static void form_addf(struct form *f, const char *k, const char *fmt, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, fmt, v);
    form_add(f, k, tmp);
}

struct kv {
    char *k, *v;
};

static int hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c - 'a' + 10;
}

static char *form_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1), *w = o;
    if (!o)
        exit(2);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *w++ = ' ';
        } else if (s[i] == '%' && i + 2 < n) {
            *w++ = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            *w++ = s[i];
        }
    }
    *w = 0;
    return o;
}

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int r = strcmp(x->k, y->k);
    return r ? r : strcmp(x->v, y->v);
}

/* base64(HMAC-SHA1(token, url + each POST parameter sorted, name then value, decoded)). */
static void twilio_signature(const char *url, const char *body, size_t len, char *out, size_t cap)
{
    struct kv kv[128];
    int n = 0;
    for (size_t i = 0; i < len && n < 128;) {
        size_t e = i;
        while (e < len && body[e] != '&')
            e++;
        size_t eq = i;
        while (eq < e && body[eq] != '=')
            eq++;
        kv[n].k = form_decode(body + i, eq - i);
        kv[n].v = form_decode(body + (eq < e ? eq + 1 : e), eq < e ? e - eq - 1 : 0);
        n++;
        i = e + 1;
    }
    qsort(kv, (size_t)n, sizeof kv[0], kv_cmp);
    struct pw_buf m = {0};
    pw_buf_str(&m, url);
    for (int i = 0; i < n; i++) {
        pw_buf_str(&m, kv[i].k);
        pw_buf_str(&m, kv[i].v);
        free(kv[i].k);
        free(kv[i].v);
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    const char *key = pw_secret();
    HMAC(EVP_sha1(), key, (int)strlen(key), (const unsigned char *)m.p, m.len, mac, &ml);
    free(m.p);
    unsigned char b64[64];
    EVP_EncodeBlock(b64, mac, (int)ml);
    snprintf(out, cap, "%s", (const char *)b64);
}

/* The URL Twilio is configured to call (a proxy in front of the collector forwards it). */
static void twilio_url(const struct pw_pbx *p, const char *kind, char *out, size_t cap)
{
    snprintf(out, cap, "https://hooks.example.com/twilio/%s/%s", p->name, kind);
}

static void twilio_request(const struct pw_pbx *p, const char *kind, const struct pw_rec *recs,
                           int n, struct pw_buf *req)
{
    (void)n; /* http_batch 1: one callback per request */
    char url[256], sig[64], idem[64];
    twilio_url(p, kind, url, sizeof url);
    twilio_signature(url, recs[0].p, recs[0].len, sig, sizeof sig);
    snprintf(idem, sizeof idem, "%016" PRIx64 "-%08zx", str_key(recs[0].p, 7) ^ recs[0].len,
             recs[0].len);
    pw_buf_printf(req,
                  "POST /twilio/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: TwilioProxy/1.1\r\n"
                  "Accept: */*\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
                  "I-Twilio-Idempotency-Token: %s\r\nX-Twilio-Signature: %s\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  kind, p->port, idem, sig, recs[0].len);
    pw_buf_add(req, recs[0].p, recs[0].len);
}

static void twilio_yaml(FILE *f, const struct pw_pbx *p, const char *kind)
{
    char url[256];
    twilio_url(p, kind, url, sizeof url);
    fprintf(f, ", twilio_token: \"env:%s\", public_url: \"%s\"", pw_secret_env(), url);
}

static void account_sid(const struct pw_pbx *p, char *out, size_t cap)
{
    twilio_sid(out, cap, "AC", (uint64_t)p->index + 77, 3);
}

/* ---- twilio-voice: the caller's leg, as its status callbacks tell it ---- */

/*
 * An inbound call reaches a Twilio number whose TwiML answers at once (<Enqueue> into the
 * contact center's queue), so Twilio reports the leg in-progress a second after it rang and
 * completed when anyone hangs up: the callbacks know nothing of queues or agents, and every
 * inbound call Twilio answered ends "completed" (answered), whatever happened in the queue.
 * Outbound calls are REST API calls (outbound-api) ending completed, busy or no-answer.
 */
static void tv_callback(const struct pw_call *c, struct pw_out *o, const char *sid,
                        const char *status, int64_t ts, int seq, int64_t duration)
{
    const struct pw_truth *t = c->truth;
    bool in = strcmp(t->dir, "inbound") == 0;
    char acc[40], stamp[64];
    account_sid(c->pbx, acc, sizeof acc);
    rfc2822(ts, stamp, sizeof stamp);
    struct form f = {0};
    form_add(&f, "AccountSid", acc);
    form_add(&f, "ApiVersion", "2010-04-01");
    if (duration >= 0) {
        form_addf(&f, "CallDuration", "%lld", (long long)duration);
        form_addf(&f, "Duration", "%lld", (long long)((duration + 59) / 60));
    }
    form_add(&f, "CallSid", sid);
    form_add(&f, "CallStatus", status);
    form_add(&f, "Called", t->to);
    form_add(&f, "CalledCountry", "DE");
    form_add(&f, "Caller", t->from);
    form_add(&f, "CallerCountry", "DE");
    if (in && t->from_name)
        form_add(&f, "CallerName", t->from_name);
    form_add(&f, "CallbackSource", "call-progress-events");
    form_add(&f, "Direction", in ? "inbound" : "outbound-api");
    form_add(&f, "From", t->from);
    form_add(&f, "FromCountry", "DE");
    if (duration >= 0 && strcmp(status, "completed") != 0)
        form_add(&f, "SipResponseCode", strcmp(status, "busy") == 0 ? "486" : "487");
    else if (duration >= 0)
        form_add(&f, "SipResponseCode", "200");
    form_addf(&f, "SequenceNumber", "%lld", seq);
    form_add(&f, "Timestamp", stamp);
    form_add(&f, "To", t->to);
    form_add(&f, "ToCountry", "DE");
    pw_record(o, ts, f.b.p, f.b.len);
    free(f.b.p);
}

static int tv_render(const struct pw_call *c, struct pw_out *o)
{
    struct pw_truth *t = c->truth;
    char sid[40];
    twilio_sid(sid, sizeof sid, "CA", call_key(c, 11), c->idx);
    bool in = strcmp(t->dir, "inbound") == 0;
    int64_t start = pw_floor_s(t->start), end = pw_floor_s(t->end);
    int64_t answer = in ? start + 1000000 : pw_floor_s(t->answer);
    const char *final = in || strcmp(t->disp, "answered") == 0 ? "completed"
                        : strcmp(t->disp, "busy") == 0         ? "busy"
                                                               : "no-answer";
    bool answered = strcmp(final, "completed") == 0;
    if (answered && end < answer)
        end = answer;
    int seq = 0;
    tv_callback(c, o, sid, "initiated", start, seq++, -1);
    tv_callback(c, o, sid, "ringing", in ? start : start + 1000000, seq++, -1);
    if (answered)
        tv_callback(c, o, sid, "in-progress", answer, seq++, -1);
    tv_callback(c, o, sid, final, end, seq++, answered ? (end - answer) / 1000000 : 0);

    t->call = pw_strdup(o, sid);
    t->cdr = false;
    if (!in)
        t->from_name = NULL;
    t->final_to = NULL;
    t->disp = answered ? "answered" : strcmp(final, "busy") == 0 ? "busy" : "no_answer";
    t->side = NULL;
    t->start = start;
    t->answer = answered ? answer : -1;
    t->end = end;
    t->n_v = 0;
    memset(&t->seg, 0, sizeof t->seg);
    return seq;
}

static void tv_yaml(FILE *f, const struct pw_pbx *p)
{
    twilio_yaml(f, p, "voice");
}

static void tv_request(const struct pw_pbx *p, const struct pw_rec *recs, int n,
                       struct pw_buf *req)
{
    twilio_request(p, "voice", recs, n, req);
}

const struct pw_wire pw_wire_twilio_voice = {
    .name = "twilio-voice",
    .format = "twilio-voice",
    .transport = PW_HTTP,
    .render = tv_render,
    .source_yaml = tv_yaml,
    .http_batch = 1,
    .http_request = tv_request,
};

/* ---- connect: Amazon Connect contact trace records through a Firehose HTTP endpoint ---- */

static void j_time(struct pw_buf *b, const char *k, int64_t us)
{
    char iso[40];
    if (us < 0) {
        pw_buf_printf(b, "\"%s\":null,", k);
        return;
    }
    iso_ms(us, iso, sizeof iso);
    pw_buf_printf(b, "\"%s\":\"%s\",", k, iso);
}

/* Whole seconds, rounded, as Connect reports durations. */
static long long secs(int64_t us)
{
    return (long long)((us + 500000) / 1000000);
}

#define CONNECT_ARN "arn:aws:connect:eu-central-1:123456789012:instance/8f1c2d3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f"

/*
 * One CTR.  `full`: after-contact work has ended (the update Connect sends then); without
 * it, the record Connect sends at the disconnect while the agent is still in ACW.
 */
static void ctr_json(const struct pw_call *c, const char *contact, bool full, int64_t last_update,
                     struct pw_buf *b)
{
    const struct pw_truth *t = c->truth;
    const struct pw_segment *s = &t->seg;
    bool in = strcmp(t->dir, "inbound") == 0;
    bool answered = s->present;
    pw_buf_str(b, "{\"AWSAccountId\":\"123456789012\",\"AWSContactTraceRecordFormatVersion\":"
                  "\"2017-03-10\",");
    if (answered) {
        int64_t hold = 0, longest = 0;
        for (int i = 0; i < s->n_holds; i++) {
            int64_t h = s->holds[i][1] - s->holds[i][0];
            hold += h;
            longest = h > longest ? h : longest;
        }
        if (s->cdr_hold > 0)
            hold = longest = s->cdr_hold;
        pw_buf_printf(b, "\"Agent\":{\"ARN\":\"" CONNECT_ARN "/agent/%016" PRIx64 "\",",
                      str_key(s->agent, 5));
        if (full) {
            pw_buf_printf(b, "\"AfterContactWorkDuration\":%lld,",
                          secs(s->wrapup_end - s->complete));
            j_time(b, "AfterContactWorkEndTimestamp", s->wrapup_end);
        }
        j_time(b, "AfterContactWorkStartTimestamp", s->complete);
        pw_buf_printf(b, "\"AgentInteractionDuration\":%lld,",
                      secs(s->complete - s->connect - hold));
        j_time(b, "ConnectedToAgentTimestamp", s->connect);
        pw_buf_printf(b,
                      "\"CustomerHoldDuration\":%lld,\"HierarchyGroups\":null,"
                      "\"LongestHoldDuration\":%lld,\"NumberOfHolds\":%d,\"RoutingProfile\":{"
                      "\"ARN\":\"" CONNECT_ARN "/routing-profile/rp1\",\"Name\":\"%s\"},"
                      "\"Username\":\"%s\"},",
                      secs(hold), secs(longest), s->n_holds,
                      in ? "Inbound Routing Profile" : "Outbound Routing Profile", s->agent);
    } else {
        pw_buf_str(b, "\"Agent\":null,");
    }
    int attempts = (answered && in ? 1 : 0) + (t->n_v ? t->v[0].n_noanswer : 0);
    pw_buf_printf(b, "\"AgentConnectionAttempts\":%d,\"Attributes\":{\"pbx\":\"%s\"},"
                     "\"Channel\":\"VOICE\",\"ContactId\":\"%s\",",
                  attempts, c->pbx->name, contact);
    j_time(b, "ConnectedToSystemTimestamp",
           in ? t->start + 400000 : (strcmp(t->disp, "answered") == 0 ? t->answer : -1));
    pw_buf_printf(b, "\"CustomerEndpoint\":{\"Address\":\"%s\",\"Type\":\"TELEPHONE_NUMBER\"},",
                  in ? t->from : t->to);
    const char *reason;
    if (!in)
        reason = answered ? "CUSTOMER_DISCONNECT" : "OTHER";
    else if (answered)
        reason = t->side && strcmp(t->side, "agent") == 0 ? "AGENT_DISCONNECT" : "CUSTOMER_DISCONNECT";
    else
        reason = strcmp(t->v[0].outcome, "timeout") == 0 ? "CONTACT_FLOW_DISCONNECT"
                                                         : "CUSTOMER_DISCONNECT";
    pw_buf_printf(b, "\"DisconnectReason\":\"%s\",", reason);
    j_time(b, "DisconnectTimestamp", t->end);
    pw_buf_str(b, "\"InitialContactId\":null,");
    pw_buf_printf(b, "\"InitiationMethod\":\"%s\",", in ? "INBOUND" : "OUTBOUND");
    j_time(b, "InitiationTimestamp", t->start);
    pw_buf_str(b, "\"InstanceARN\":\"" CONNECT_ARN "\",");
    j_time(b, "LastUpdateTimestamp", last_update);
    pw_buf_str(b, "\"MediaStreams\":[{\"Type\":\"AUDIO\"}],\"NextContactId\":null,"
                  "\"PreviousContactId\":null,");
    if (in) {
        const struct pw_visit *v = &t->v[0];
        int64_t deq = v->connect >= 0 ? v->connect : v->leave;
        pw_buf_printf(b, "\"Queue\":{\"ARN\":\"" CONNECT_ARN "/queue/%016" PRIx64 "\",",
                      str_key(v->queue, 9));
        j_time(b, "DequeueTimestamp", deq);
        pw_buf_printf(b, "\"Duration\":%lld,", secs(deq - v->enter));
        j_time(b, "EnqueueTimestamp", v->enter);
        pw_buf_printf(b, "\"Name\":\"%s\"},", v->queue);
    } else {
        pw_buf_str(b, "\"Queue\":null,");
    }
    pw_buf_printf(b, "\"Recording\":null,\"Recordings\":null,\"SystemEndpoint\":{\"Address\":"
                     "\"%s\",\"Type\":\"TELEPHONE_NUMBER\"},\"TransferCompletedTimestamp\":null,"
                     "\"TransferredToEndpoint\":null}",
                  in ? t->to : t->from);
}

/*
 * Connect writes a CTR when the contact disconnects and an updated one (same ContactId, later
 * LastUpdateTimestamp) when the agent's after-contact work ends; Firehose delivers at least
 * once, so some records come twice.  What the records tell, mapped as the parser README says:
 * the CTR carries no wrap-up code and no RONA (only AgentConnectionAttempts), the contact
 * flow answers every inbound call (ConnectedToSystemTimestamp: disposition answered), and the
 * agent's talk ends where after-contact work starts.
 */
static int ctr_render(const struct pw_call *c, struct pw_out *o)
{
    struct pw_truth *t = c->truth;
    bool in = strcmp(t->dir, "inbound") == 0;
    /*
     * A transfer makes a second contact (InitialContactId/PreviousContactId) whose CTR comes
     * minutes after the first one's; the aggregator has closed and written the call at the
     * first CTR by then (see the report), so transferred calls stay out of this fleet.
     */
    if (in && (t->n_v > 1 || t->v[0].transfer_out >= 0))
        return 0;
    char contact[40];
    uuid_of(contact, sizeof contact, call_key(c, 21), c->idx);
    struct pw_buf b = {0};
    int n = 0;
    bool acw = t->seg.present && in && t->seg.wrapup_end > t->seg.complete;
    int64_t first = t->end + 1500000; /* LastUpdateTimestamp of the first CTR */
    ctr_json(c, contact, !acw, first, &b);
    pw_record(o, first + 2000000, b.p, b.len);
    n++;
    if (acw) {
        if (c->idx % 3 == 0) { /* Firehose delivers the first CTR again */
            pw_record(o, first + 3000000, b.p, b.len);
            n++;
        }
        b.len = 0;
        int64_t upd = t->seg.wrapup_end + 1500000;
        ctr_json(c, contact, true, upd, &b);
        pw_record(o, upd + 2000000, b.p, b.len);
        n++;
    }
    free(b.p);

    t->call = pw_strdup(o, contact);
    t->cdr = true;
    t->from_name = NULL;
    if (!in) {
        /* OUTBOUND: from the system endpoint to the customer (the parser swaps them back);
         * the agent's side is connected when the customer answers. */
        if (t->seg.present) {
            t->seg.wrapup_end = t->seg.complete = t->end;
            t->disp = "answered";
            t->side = "caller";
        } else {
            t->answer = -1;
            t->disp = NULL; /* DisconnectReason OTHER, nobody connected: unknown */
            t->side = NULL;
        }
    } else {
        t->disp = "answered"; /* the contact flow answered (ConnectedToSystemTimestamp) */
        struct pw_visit *v = &t->v[0];
        v->n_noanswer = 0;
        if (!t->seg.present)
            t->side = strcmp(v->outcome, "timeout") == 0 ? "system" : "caller";
    }
    t->final_to = NULL;
    if (t->seg.present) {
        int64_t hold = 0;
        for (int i = 0; i < t->seg.n_holds; i++)
            hold += t->seg.holds[i][1] - t->seg.holds[i][0];
        if (t->seg.cdr_hold > 0)
            hold = t->seg.cdr_hold;
        t->seg.wrapup = NULL;
        /* The CTR gives hold as CustomerHoldDuration, whole seconds as written above. */
        t->seg.n_holds = 0;
        t->seg.cdr_hold = secs(hold) * 1000000;
    }
    return n;
}

static void ctr_yaml(FILE *f, const struct pw_pbx *p)
{
    (void)p;
    fprintf(f, ", access_key: \"env:%s\"", pw_secret_env());
}

/* The LastUpdateTimestamp of a CTR in ms (the Firehose request's own time is near it). */
static long long ctr_last_update_ms(const struct pw_rec *r)
{
    const char *k = memmem(r->p, r->len, "\"LastUpdateTimestamp\":\"", 23);
    int y, mo, d, h, mi, s, ms;
    if (!k || sscanf(k + 23, "%d-%d-%dT%d:%d:%d.%dZ", &y, &mo, &d, &h, &mi, &s, &ms) != 7)
        return 0;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = s};
    return (long long)timegm(&tm) * 1000 + ms;
}

static void ctr_request(const struct pw_pbx *p, const struct pw_rec *recs, int n,
                        struct pw_buf *req)
{
    struct pw_buf body = {0};
    char rid[40];
    uuid_of(rid, sizeof rid, str_key(recs[0].p, (uint64_t)n), (uint64_t)p->index);
    pw_buf_printf(&body, "{\"requestId\":\"%s\",\"timestamp\":%lld,\"records\":[", rid,
                  ctr_last_update_ms(&recs[n - 1]) + 2000);
    for (int i = 0; i < n; i++) {
        unsigned char *b64 = malloc(recs[i].len / 3 * 4 + 8);
        if (!b64)
            exit(2);
        int m = EVP_EncodeBlock(b64, (const unsigned char *)recs[i].p, (int)recs[i].len);
        pw_buf_printf(&body, "%s{\"data\":\"", i ? "," : "");
        pw_buf_add(&body, b64, (size_t)m);
        pw_buf_str(&body, "\"}");
        free(b64);
    }
    pw_buf_str(&body, "]}");
    pw_buf_printf(req,
                  "POST /firehose HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: Amazon "
                  "Kinesis Data Firehose Agent/1.0\r\nContent-Type: application/json\r\n"
                  "X-Amz-Firehose-Protocol-Version: 1.0\r\nX-Amz-Firehose-Request-Id: %s\r\n"
                  "X-Amz-Firehose-Source-Arn: arn:aws:firehose:eu-central-1:123456789012:"
                  "deliverystream/%s-ctr\r\nX-Amz-Firehose-Access-Key: %s\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  p->port, rid, p->name, pw_secret(), body.len);
    pw_buf_add(req, body.p, body.len);
    free(body.p);
}

const struct pw_wire pw_wire_connect = {
    .name = "connect",
    .format = "amazon-connect-ctr",
    .transport = PW_HTTP,
    .render = ctr_render,
    .source_yaml = ctr_yaml,
    .http_batch = 50,
    .http_request = ctr_request,
};
/* ---- taskrouter: TaskRouter event callbacks of the voice tasks <Enqueue> makes ---- */

struct tr_ctx {
    const struct pw_call *c;
    struct pw_out *o;
    char task[40], call[40], queue_sid[40], attrs[512];
    const char *queue;
    int64_t created;
};

static void worker_sid(const struct pw_call *c, const char *agent, char *out, size_t cap)
{
    twilio_sid(out, cap, "WK", str_key(agent, 31), (uint64_t)c->pbx->index);
}

/* One event callback; worker/reservation NULL for task events. */
static void tr_event(struct tr_ctx *x, const char *type, int64_t ts, const char *agent,
                     const char *reservation, const char *extra_k, const char *extra_v)
{
    char acc[40], ws[40], wf[40], ch[40], wk[40], tsb[32];
    account_sid(x->c->pbx, acc, sizeof acc);
    twilio_sid(ws, sizeof ws, "WS", (uint64_t)x->c->pbx->index, 41);
    twilio_sid(wf, sizeof wf, "WW", (uint64_t)x->c->pbx->index, 43);
    twilio_sid(ch, sizeof ch, "TC", (uint64_t)x->c->pbx->index, 47);
    bool res = reservation != NULL;
    struct form f = {0};
    form_add(&f, "AccountSid", acc);
    form_add(&f, "EventDescription", type);
    form_add(&f, "EventType", type);
    form_add(&f, "ResourceSid", res ? reservation : x->task);
    form_add(&f, "ResourceType", res ? "reservation" : "task");
    if (res)
        form_add(&f, "ReservationSid", reservation);
    form_addf(&f, "TaskAge", "%lld", (long long)((ts - x->created) / 1000000));
    form_add(&f, "TaskAssignmentStatus",
             strcmp(type, "task.canceled") == 0    ? "canceled"
             : strcmp(type, "task.completed") == 0 ? "completed"
             : strcmp(type, "task.wrapup") == 0    ? "wrapping"
             : strcmp(type, "reservation.accepted") == 0 ? "assigned"
             : res                                  ? "reserved"
                                                    : "pending");
    form_add(&f, "TaskAttributes", x->attrs);
    form_add(&f, "TaskChannelSid", ch);
    form_add(&f, "TaskChannelUniqueName", "voice");
    form_add(&f, "TaskPriority", "0");
    form_add(&f, "TaskQueueName", x->queue);
    form_add(&f, "TaskQueueSid", x->queue_sid);
    form_add(&f, "TaskSid", x->task);
    if (extra_k)
        form_add(&f, extra_k, extra_v);
    snprintf(tsb, sizeof tsb, "%lld", (long long)(ts / 1000000));
    form_add(&f, "Timestamp", tsb);
    form_addf(&f, "TimestampMs", "%lld", (long long)(ts / 1000));
    if (agent) {
        worker_sid(x->c, agent, wk, sizeof wk);
        form_add(&f, "WorkerName", agent);
        form_add(&f, "WorkerSid", wk);
    }
    form_add(&f, "WorkflowName", "Default Fifo Workflow");
    form_add(&f, "WorkflowSid", wf);
    form_add(&f, "WorkspaceName", "Contact Center");
    form_add(&f, "WorkspaceSid", ws);
    pw_record(x->o, ts, f.b.p, f.b.len);
    free(f.b.p);
}

/*
 * The <Enqueue>d caller becomes a task: created and entered into its TaskQueue, offered to
 * workers as reservations (created, then accepted or timed out: RONA), and it goes to wrap-up
 * when the call leaves the worker and is completed when the worker finishes wrap-up; a caller
 * who hangs up in the queue cancels it, and so does the task's TTL (the queue's maximum
 * wait).  TaskRouter knows nothing of the call before the queue, of holds, wrap-up codes or
 * outbound calls (no task): those stay out of the truth.
 */
static int tr_render(const struct pw_call *c, struct pw_out *o)
{
    struct pw_truth *t = c->truth;
    /* Outbound calls make no task; a transfer makes a second task whose end the aggregator
     * cannot join with the first (see the report). */
    if (strcmp(t->dir, "inbound") != 0 || t->n_v != 1 || t->v[0].transfer_out >= 0)
        return 0;
    struct tr_ctx x = {.c = c, .o = o};
    struct pw_visit *v = &t->v[0];
    twilio_sid(x.task, sizeof x.task, "WT", call_key(c, 51), c->idx);
    twilio_sid(x.call, sizeof x.call, "CA", call_key(c, 53), c->idx);
    twilio_sid(x.queue_sid, sizeof x.queue_sid, "WQ", str_key(v->queue, 55),
               (uint64_t)c->pbx->index);
    x.queue = v->queue;
    x.created = v->enter;
    snprintf(x.attrs, sizeof x.attrs,
             "{\"call_sid\":\"%s\",\"direction\":\"inbound\",\"from\":\"%s\",\"to\":\"%s\"%s%s%s}",
             x.call, t->from, t->to, t->from_name ? ",\"name\":\"" : "",
             t->from_name ? t->from_name : "", t->from_name ? "\"" : "");
    int n = 0;
    tr_event(&x, "task.created", v->enter, NULL, NULL, NULL, NULL);
    tr_event(&x, "task-queue.entered", v->enter, NULL, NULL, NULL, NULL);
    n += 2;
    int n_res = 0;
    const char *offered = NULL;
    char res[40] = "";
    for (size_t i = 0; i < c->n_ev; i++) {
        const struct cp_event *e = &c->ev[i];
        if (e->kind == CP_KIND_AGENT_OFFER) {
            twilio_sid(res, sizeof res, "WR", call_key(c, 61), (uint64_t)n_res++);
            offered = e->agent;
            tr_event(&x, "reservation.created", e->ts, offered, res, NULL, NULL);
        } else if (e->kind == CP_KIND_AGENT_NOANSWER && offered) {
            tr_event(&x, "reservation.timeout", e->ts, offered, res, NULL, NULL);
        } else if (e->kind == CP_KIND_AGENT_CONNECT && offered) {
            tr_event(&x, "reservation.accepted", e->ts, offered, res, NULL, NULL);
        } else {
            continue;
        }
        n++;
    }
    if (t->seg.present) {
        tr_event(&x, "task.wrapup", t->seg.complete, NULL, NULL, NULL, NULL);
        tr_event(&x, "task.completed", t->seg.wrapup_end, NULL, NULL, "TaskCompletedReason",
                 "Task completed by the worker");
        n += 2;
    } else {
        bool timeout = strcmp(v->outcome, "timeout") == 0;
        tr_event(&x, "task.canceled", v->leave, NULL, NULL, "TaskCanceledReason",
                 timeout ? "Task TTL Exceeded" : "hangup");
        n++;
    }

    t->call = pw_strdup(o, x.call);
    t->cdr = false;
    t->final_to = NULL;
    t->start = v->enter; /* TaskRouter's first word on the call */
    if (t->seg.present) {
        char wk[40];
        worker_sid(c, t->seg.agent, wk, sizeof wk);
        t->seg.agent = pw_strdup(o, wk);
        t->seg.wrapup = NULL;
        t->seg.n_holds = 0;
        t->seg.cdr_hold = -1;
        t->answer = t->seg.connect;
        t->end = t->seg.complete;
        t->disp = "answered";
        t->side = NULL;
    } else {
        bool timeout = strcmp(v->outcome, "timeout") == 0;
        t->answer = -1;
        t->end = v->leave;
        t->disp = timeout ? "no_answer" : "canceled";
        t->side = timeout ? "system" : "caller";
    }
    return n;
}

static void tr_yaml(FILE *f, const struct pw_pbx *p)
{
    twilio_yaml(f, p, "taskrouter");
}

static void tr_request(const struct pw_pbx *p, const struct pw_rec *recs, int n,
                       struct pw_buf *req)
{
    twilio_request(p, "taskrouter", recs, n, req);
}

const struct pw_wire pw_wire_taskrouter = {
    .name = "taskrouter",
    .format = "twilio-taskrouter",
    .transport = PW_HTTP,
    .render = tr_render,
    .source_yaml = tr_yaml,
    .http_batch = 1,
    .http_request = tr_request,
};
