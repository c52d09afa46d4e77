/* pbxwire_avaya_cisco.c - pbxsim wires for Avaya IP Office SMDR (TCP) and Cisco CUCM CDR files (file drop). */
#include "pbxwire.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * Both vendors log a call as summary records in whole seconds and name no queue our parsers
 * map (IP Office hunt groups do not appear in SMDR; a CUCM hunt pilot does, see below), have
 * no wrap-up and no RONA records: the truth drops what the records cannot say.
 */

/* ---- shared helpers ---- */

/* IP Office / CUCM extension of a model agent "a<q><nn>": "2" + "<q><nn>" (a101 -> 2101). */
static void agent_ext(const char *agent, char *out, size_t cap)
{
    snprintf(out, cap, "2%s", agent && agent[0] == 'a' ? agent + 1 : "000");
}

/* Index of a queue in its org's list (pbxsim's world): agents of queue k are a<k+1><nn>. */
static int queue_index(const char *org, const char *queue)
{
    static const char *const q[][4] = {{"acme", "sales", "support", "billing"},
                                       {"globex", "care", "sales", NULL},
                                       {"initech", "helpdesk", "it", NULL}};
    for (size_t i = 0; queue && i < sizeof q / sizeof q[0]; i++)
        if (strcmp(q[i][0], org) == 0)
            for (int k = 1; k < 4 && q[i][k]; k++)
                if (strcmp(q[i][k], queue) == 0)
                    return k - 1;
    return 0;
}

/* The extension of the first member of a queue's hunt group. */
static void first_member(const char *org, const char *queue, char *out, size_t cap)
{
    char a[16];
    snprintf(a, sizeof a, "a%d00", queue_index(org ? org : "", queue) + 1);
    agent_ext(a, out, cap);
}

/* What the model did with an inbound call, read from its events. */
struct shape {
    const struct cp_event *start, *connect, *complete, *transfer, *end;
    const struct cp_event *last_offer; /* last agent offered (rang) in the first visit */
    const struct cp_event *leave;      /* queue_leave of the last visit, if logged */
    const struct cp_event *enter2;     /* queue_enter of the visit after a transfer */
};

static void shape_of(const struct pw_call *c, struct shape *s)
{
    memset(s, 0, sizeof *s);
    int enters = 0;
    for (size_t i = 0; i < c->n_ev; i++) {
        const struct cp_event *e = &c->ev[i];
        switch (e->kind) {
        case CP_KIND_CALL_START: s->start = e; break;
        case CP_KIND_QUEUE_ENTER:
            if (++enters == 2)
                s->enter2 = e;
            break;
        case CP_KIND_AGENT_OFFER:
            if (enters == 1)
                s->last_offer = e;
            break;
        case CP_KIND_AGENT_CONNECT: s->connect = e; break;
        case CP_KIND_AGENT_COMPLETE: s->complete = e; break;
        case CP_KIND_TRANSFER: s->transfer = e; break;
        case CP_KIND_QUEUE_LEAVE: s->leave = e; break;
        case CP_KIND_CALL_END: s->end = e; break;
        default: break;
        }
    }
}

/* Sum of the model's holds in whole seconds (each hold floored at both ends). */
static int64_t hold_s(const struct pw_truth *t)
{
    int64_t h = 0;
    for (int k = 0; k < t->seg.n_holds; k++)
        h += (pw_floor_s(t->seg.holds[k][1]) - pw_floor_s(t->seg.holds[k][0])) / 1000000;
    return h;
}

/* ===================================================================================== */
/* ---- Avaya IP Office SMDR: CSV lines over TCP, the IP Office connects to us ---- */

/* Each PBX's clock zone (Call Start and SMDR Record Time are local system time). */
static const char *smdr_tz(const struct pw_pbx *p)
{
    return p->index % 2 ? "Europe/Berlin" : "Europe/London";
}

/* Releases: R10/R11.0 write 35 fields (up to SMDR Record Time), R11.1+ 37. */
static int smdr_fields(const struct pw_pbx *p)
{
    return (p->index / 2) % 2 ? 37 : 35;
}

static void smdr_time(struct pw_buf *b, int64_t us, const char *tz)
{
    int y, mo, d, h, mi, s;
    if (pw_local_time(us, tz, &y, &mo, &d, &h, &mi, &s) != 0) {
        fputs("pbxwire smdr: could not convert a time\n", stderr);
        exit(2);
    }
    pw_buf_printf(b, "%04d/%02d/%02d %02d:%02d:%02d", y, mo, d, h, mi, s);
}

struct smdr_rec {
    int64_t start;              /* Call Start (whole seconds, µs) */
    int64_t connected, ring;    /* seconds */
    const char *caller, *dir, *called;
    int internal;
    const char *call_id;
    int cont;
    const char *p1dev, *p1name, *p2dev, *p2name;
    int64_t hold, park;
    const char *caller_ip, *caller_ucid, *called_ip, *called_ucid; /* 31..34 */
    int64_t record_time; /* field 35 (µs, whole seconds) */
};

static void smdr_emit(struct pw_out *o, const struct pw_pbx *p, int64_t send_ts,
                      const struct smdr_rec *r)
{
    const char *tz = smdr_tz(p);
    struct pw_buf b = {0};
    smdr_time(&b, r->start, tz);
    pw_buf_printf(&b, ",%02" PRId64 ":%02" PRId64 ":%02" PRId64 ",%" PRId64 ",%s,%s,%s,%s,,%d,%s,%d",
                  r->connected / 3600, r->connected / 60 % 60, r->connected % 60, r->ring,
                  r->caller, r->dir, r->called, r->called, r->internal, r->call_id, r->cont);
    pw_buf_printf(&b, ",%s,%s,%s,%s,%" PRId64 ",%" PRId64, r->p1dev, r->p1name, r->p2dev,
                  r->p2name, r->hold, r->park);
    /* 18 AuthValid, 19 AuthCode, 20-27 call charging (no AoC on SIP trunks), 28-30 external
     * targeting (none), 31-34 server addresses and unique call ids, 35 SMDR Record Time. */
    pw_buf_str(&b, ",0,n/a,,,,,,,,,,,");
    pw_buf_printf(&b, ",%s,%s,%s,%s,", r->caller_ip, r->caller_ucid, r->called_ip,
                  r->called_ucid);
    smdr_time(&b, r->record_time, tz);
    if (smdr_fields(p) == 37)
        pw_buf_str(&b, ",,"); /* 36 Caller Consent Directive, 37 Calling Number Verification */
    if (getenv("PBXWIRE_DUMP")) /* debugging aid: the records as sent */
        fprintf(stderr, "%s\n", b.p);
    pw_record(o, send_ts, b.p, b.len);
    free(b.p);
}

static int smdr_render(const struct pw_call *c, struct pw_out *o)
{
    const struct pw_pbx *p = c->pbx;
    struct pw_truth *t = c->truth;
    char cid[24], ext[20], p1name[48], trunk[16], line[24], caller[64], ip[24], ucid1[24],
        ucid2[24], hg_ext[32];
    snprintf(cid, sizeof cid, "%u", 1000000u + c->idx);
    snprintf(trunk, sizeof trunk, "T9%03u", 1 + c->idx % 24);
    snprintf(line, sizeof line, "Line %d.%u", 1 + p->index % 4, 1 + c->idx % 24);
    snprintf(ip, sizeof ip, "192.0.2.%d", 10 + p->index % 200);
    snprintf(ucid1, sizeof ucid1, "%u", 4000u + (c->idx * 2) % 60000);
    snprintf(ucid2, sizeof ucid2, "%u", 4001u + (c->idx * 2) % 60000);
    t->call = pw_strdup(o, cid);
    t->from_name = NULL; /* SMDR has no caller name */
    t->side = NULL;      /* nor who hung up */
    t->cdr = true;
    t->n_v = 0; /* hunt groups are not named in SMDR (our parser maps no queue) */
    const int64_t S = pw_floor_s(t->start);
    struct smdr_rec r = {.start = S, .call_id = cid, .p2dev = trunk, .p2name = line,
                         .caller_ip = "", .caller_ucid = "", .called_ip = "",
                         .called_ucid = ""};

    if (strcmp(t->dir, "outbound") == 0) {
        /* An agent's external call: Caller is the extension, Called the dialled digits.
         * SMDR does not tell busy from unanswered: both are 00:00:00 connected. */
        const struct cp_event *e = pw_find(c, CP_KIND_CDR, 0);
        char who[16];
        snprintf(who, sizeof who, "a1%02u", c->idx % 3);
        agent_ext(t->seg.present ? t->seg.agent : who, ext, sizeof ext);
        snprintf(p1name, sizeof p1name, "Extn%s", ext);
        int64_t ring = e->answer > 0 ? (e->answer - S) / 1000000 : (pw_floor_s(t->end) - S) / 1000000;
        int64_t talk = e->answer > 0 ? e->talk : 0;
        r.connected = talk;
        r.ring = ring;
        r.caller = ext;
        r.dir = "O";
        r.called = t->to;
        snprintf(hg_ext, sizeof hg_ext, "E%s", ext);
        r.p1dev = hg_ext;
        r.p1name = p1name;
        r.caller_ip = ip;
        r.caller_ucid = ucid1;
        r.record_time = S + (ring + talk) * 1000000;
        smdr_emit(o, p, t->end, &r);
        t->from = pw_strdup(o, ext);
        t->start = S;
        t->end = r.record_time;
        if (talk > 0) {
            t->disp = "answered";
            t->answer = S + ring * 1000000;
            t->final_to = t->to;
            t->seg = (struct pw_segment){.present = true, .agent = pw_strdup(o, ext),
                                         .connect = t->answer, .complete = t->end,
                                         .wrapup_end = t->end, .cdr_hold = 0};
        } else {
            t->disp = "no_answer";
            t->answer = -1;
            t->final_to = NULL;
            t->seg.present = false;
        }
        return 1;
    }

    /* Inbound from the trunk.  Odd PBXs have SIP trunks: Caller is number@gateway. */
    if (p->index % 2)
        snprintf(caller, sizeof caller, "%s@203.0.113.%d", t->from, 1 + p->index % 250);
    else
        snprintf(caller, sizeof caller, "%s", t->from);
    t->from = pw_strdup(o, caller);
    r.caller = caller;
    r.dir = "I";
    r.called = t->to;
    r.called_ip = ip;
    r.called_ucid = ucid2;
    struct shape sh;
    shape_of(c, &sh);
    const int64_t end = pw_floor_s(t->end);
    r.record_time = end; /* IP Office writes a call's records when the call has ended */
    t->start = S;
    t->end = end;

    if (!t->seg.present) {
        /* Lost in the hunt group.  Party1 = the extension it was last presented to (the
         * group's first member when nobody rang).  A queue timeout overflows to voicemail:
         * Party1 becomes the voicemail channel, Connected = the message. */
        if (sh.last_offer && sh.last_offer->agent)
            agent_ext(sh.last_offer->agent, ext, sizeof ext);
        else
            first_member(c->ev[0].org, t->v[0].queue, ext, sizeof ext);
        snprintf(hg_ext, sizeof hg_ext, "E%s", ext);
        snprintf(p1name, sizeof p1name, "Extn%s", ext);
        bool vm = c->truth->disp && strcmp(c->truth->disp, "no_answer") == 0 && sh.leave &&
                  end - pw_floor_s(sh.leave->ts) >= 1000000;
        int64_t leave = vm ? pw_floor_s(sh.leave->ts) : end;
        r.ring = (leave - S) / 1000000;
        r.connected = (end - leave) / 1000000;
        r.p1dev = vm ? "V9501" : hg_ext;
        r.p1name = vm ? "VM Channel 1" : p1name;
        r.called_ip = vm ? "" : ip;
        r.called_ucid = vm ? "" : ucid2;
        smdr_emit(o, p, c->truth->end, &r);
        t->final_to = NULL;
        if (vm) {
            t->disp = "answered"; /* connected to voicemail: answered, no agent */
            t->answer = leave;
        } else {
            t->disp = "no_answer";
            t->answer = -1;
        }
        return 1;
    }

    /* Answered by an agent (hunt group member). */
    agent_ext(t->seg.agent, ext, sizeof ext);
    char p1dev[32];
    snprintf(p1dev, sizeof p1dev, "E%s", ext);
    snprintf(p1name, sizeof p1name, "Extn%s", ext);
    const int64_t conn = pw_floor_s(t->seg.connect), comp = pw_floor_s(t->seg.complete);
    const int64_t hold = hold_s(t);
    r.ring = (conn - S) / 1000000;
    r.hold = hold;
    r.connected = (comp - conn) / 1000000 - hold;
    r.p1dev = p1dev;
    r.p1name = p1name;
    r.cont = sh.transfer ? 1 : 0;
    int64_t send = c->truth->end;
    smdr_emit(o, p, send, &r);
    int n = 1;
    if (sh.transfer) {
        /* Transferred to another hunt group where nobody answered: the call continues
         * under the same Call ID and Call Start; Party1 = that group's first member. */
        struct smdr_rec r2 = r;
        char q2ext[20], q2dev[32], q2name[48];
        first_member(c->ev[0].org, sh.enter2 ? sh.enter2->queue : NULL, q2ext, sizeof q2ext);
        snprintf(q2dev, sizeof q2dev, "E%s", q2ext);
        snprintf(q2name, sizeof q2name, "Extn%s", q2ext);
        r2.cont = 0;
        r2.connected = 0;
        r2.hold = 0;
        r2.ring = (end - comp) / 1000000;
        r2.p1dev = q2dev;
        r2.p1name = q2name;
        smdr_emit(o, p, send, &r2);
        n++;
    }
    t->answer = conn;
    t->disp = "answered";
    t->final_to = pw_strdup(o, ext);
    t->seg.queue = NULL;
    t->seg.agent = pw_strdup(o, ext);
    t->seg.wrapup = NULL;
    t->seg.connect = conn;
    t->seg.complete = conn + (r.connected + hold) * 1000000;
    t->seg.wrapup_end = t->seg.complete;
    t->seg.cdr_hold = hold * 1000000;
    t->seg.n_holds = 0;
    return n;
}

static void smdr_yaml(FILE *f, const struct pw_pbx *p)
{
    fprintf(f, ", tz: %s", smdr_tz(p));
}

const struct pw_wire pw_wire_smdr = {
    .name = "smdr",
    .format = "avaya-smdr",
    .transport = PW_TCP,
    .sep = "\r\n",
    .render = smdr_render,
    .source_yaml = smdr_yaml,
};

/* ===================================================================================== */
/* ---- Cisco Unified CM: CDR flat files (CUCM 12.5/14 field set), pushed into a directory ---- */

/* Line 1 (quoted names) and line 2 (types) of every CDR file, 133 columns. */
static const char cucm_names[] =
    "\"cdrRecordType\",\"globalCallID_callManagerId\",\"globalCallID_callId\",\"origLegCallI"
    "dentifier\",\"dateTimeOrigination\",\"origNodeId\",\"origSpan\",\"origIpAddr\",\"callingPa"
    "rtyNumber\",\"callingPartyUnicodeLoginUserID\",\"origCause_location\",\"origCause_valu"
    "e\",\"origPrecedenceLevel\",\"origMediaTransportAddress_IP\",\"origMediaTransportAddre"
    "ss_Port\",\"origMediaCap_payloadCapability\",\"origMediaCap_maxFramesPerPacket\",\"ori"
    "gMediaCap_g723BitRate\",\"origVideoCap_Codec\",\"origVideoCap_Bandwidth\",\"origVideoC"
    "ap_Resolution\",\"origVideoTransportAddress_IP\",\"origVideoTransportAddress_Port\",\""
    "origRSVPAudioStat\",\"origRSVPVideoStat\",\"destLegIdentifier\",\"destNodeId\",\"destSpa"
    "n\",\"destIpAddr\",\"originalCalledPartyNumber\",\"finalCalledPartyNumber\",\"finalCalle"
    "dPartyUnicodeLoginUserID\",\"destCause_location\",\"destCause_value\",\"destPrecedence"
    "Level\",\"destMediaTransportAddress_IP\",\"destMediaTransportAddress_Port\",\"destMedi"
    "aCap_payloadCapability\",\"destMediaCap_maxFramesPerPacket\",\"destMediaCap_g723BitR"
    "ate\",\"destVideoCap_Codec\",\"destVideoCap_Bandwidth\",\"destVideoCap_Resolution\",\"de"
    "stVideoTransportAddress_IP\",\"destVideoTransportAddress_Port\",\"destRSVPAudioStat\""
    ",\"destRSVPVideoStat\",\"dateTimeConnect\",\"dateTimeDisconnect\",\"lastRedirectDn\",\"pk"
    "id\",\"originalCalledPartyNumberPartition\",\"callingPartyNumberPartition\",\"finalCal"
    "ledPartyNumberPartition\",\"lastRedirectDnPartition\",\"duration\",\"origDeviceName\",\""
    "destDeviceName\",\"origCallTerminationOnBehalfOf\",\"destCallTerminationOnBehalfOf\","
    "\"origCalledPartyRedirectOnBehalfOf\",\"lastRedirectRedirectOnBehalfOf\",\"origCalled"
    "PartyRedirectReason\",\"lastRedirectRedirectReason\",\"destConversationId\",\"globalCa"
    "llId_ClusterID\",\"joinOnBehalfOf\",\"comment\",\"authCodeDescription\",\"authorizationL"
    "evel\",\"clientMatterCode\",\"origDTMFMethod\",\"destDTMFMethod\",\"callSecuredStatus\",\""
    "origConversationId\",\"origMediaCap_Bandwidth\",\"destMediaCap_Bandwidth\",\"authoriza"
    "tionCodeValue\",\"outpulsedCallingPartyNumber\",\"outpulsedCalledPartyNumber\",\"origI"
    "pv4v6Addr\",\"destIpv4v6Addr\",\"origVideoCap_Codec_Channel2\",\"origVideoCap_Bandwidt"
    "h_Channel2\",\"origVideoCap_Resolution_Channel2\",\"origVideoTransportAddress_IP_Cha"
    "nnel2\",\"origVideoTransportAddress_Port_Channel2\",\"origVideoChannel_Role_Channel2"
    "\",\"destVideoCap_Codec_Channel2\",\"destVideoCap_Bandwidth_Channel2\",\"destVideoCap_"
    "Resolution_Channel2\",\"destVideoTransportAddress_IP_Channel2\",\"destVideoTransport"
    "Address_Port_Channel2\",\"destVideoChannel_Role_Channel2\",\"IncomingProtocolID\",\"In"
    "comingProtocolCallRef\",\"OutgoingProtocolID\",\"OutgoingProtocolCallRef\",\"currentRo"
    "utingReason\",\"origRoutingReason\",\"lastRedirectingRoutingReason\",\"huntPilotPartit"
    "ion\",\"huntPilotDN\",\"calledPartyPatternUsage\",\"IncomingICID\",\"IncomingOrigIOI\",\"I"
    "ncomingTermIOI\",\"OutgoingICID\",\"OutgoingOrigIOI\",\"OutgoingTermIOI\",\"outpulsedOri"
    "ginalCalledPartyNumber\",\"outpulsedLastRedirectingNumber\",\"wasCallQueued\",\"totalW"
    "aitTimeInQueue\",\"callingPartyNumber_uri\",\"originalCalledPartyNumber_uri\",\"finalC"
    "alledPartyNumber_uri\",\"lastRedirectDn_uri\",\"mobileCallingPartyNumber\",\"finalMobi"
    "leCalledPartyNumber\",\"origMobileDeviceName\",\"destMobileDeviceName\",\"origMobileCa"
    "llDuration\",\"destMobileCallDuration\",\"mobileCallType\",\"originalCalledPartyPatter"
    "n\",\"finalCalledPartyPattern\",\"lastRedirectingPartyPattern\",\"huntPilotPattern\",\"o"
    "rigDeviceType\",\"destDeviceType\",\"origDeviceSessionID\",\"destDeviceSessionID\"";
static const char cucm_types[] =
    "INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,VARCHAR(50),VARC"
    "HAR(128),INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER"
    ",INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER"
    ",VARCHAR(50),VARCHAR(50),VARCHAR(128),INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,IN"
    "TEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,IN"
    "TEGER,INTEGER,VARCHAR(50),UNIQUEIDENTIFIER,VARCHAR(50),VARCHAR(50),VARCHAR(50),V"
    "ARCHAR(50),INTEGER,VARCHAR(129),VARCHAR(129),INTEGER,INTEGER,INTEGER,INTEGER,INT"
    "EGER,INTEGER,INTEGER,VARCHAR(50),INTEGER,VARCHAR(2048),VARCHAR(50),INTEGER,VARCH"
    "AR(32),INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,VARCHAR(32),VARCHAR(50),V"
    "ARCHAR(50),VARCHAR(64),VARCHAR(64),INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEG"
    "ER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,VARCHAR(32),INTEGER,V"
    "ARCHAR(32),INTEGER,INTEGER,INTEGER,VARCHAR(50),VARCHAR(50),INTEGER,VARCHAR(50),V"
    "ARCHAR(50),VARCHAR(50),VARCHAR(50),VARCHAR(50),VARCHAR(50),VARCHAR(50),VARCHAR(5"
    "0),INTEGER,INTEGER,VARCHAR(254),VARCHAR(254),VARCHAR(254),VARCHAR(254),VARCHAR(5"
    "0),VARCHAR(50),VARCHAR(129),VARCHAR(129),INTEGER,INTEGER,INTEGER,VARCHAR(50),VAR"
    "CHAR(50),VARCHAR(50),VARCHAR(50),VARCHAR(100),VARCHAR(100),VARCHAR(128),VARCHAR("
    "128)";

#define CUCM_COLS 133
#define CUCM_CLUSTER "StandAloneCluster"

/* A row being built: every column's text, by header name. */
struct cucm_row {
    char v[CUCM_COLS][64];
};

static int cucm_col(const char *name)
{
    static char names[CUCM_COLS][64];
    static bool init;
    if (!init) {
        int n = 0;
        for (const char *q = cucm_names; *q && n < CUCM_COLS;) {
            const char *e = strchr(q + 1, '"');
            snprintf(names[n++], sizeof names[0], "%.*s", (int)(e - q - 1), q + 1);
            q = e[1] == ',' ? e + 2 : e + 1;
        }
        init = true;
    }
    for (int i = 0; i < CUCM_COLS; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    fprintf(stderr, "pbxwire cucm: no column %s\n", name);
    exit(2);
}

/* Type of column i from the types row: text columns are quoted in the rows. */
static bool cucm_text(int i)
{
    const char *q = cucm_types;
    for (int k = 0; k < i; k++)
        q = strchr(q, ',') + 1;
    return strncmp(q, "INTEGER", 7) != 0;
}

static void cucm_set(struct cucm_row *r, const char *name, const char *val)
{
    snprintf(r->v[cucm_col(name)], sizeof r->v[0], "%s", val ? val : "");
}

static void cucm_setn(struct cucm_row *r, const char *name, int64_t val)
{
    snprintf(r->v[cucm_col(name)], sizeof r->v[0], "%" PRId64, val);
}

/* IPv4 a.b.c.d as CUCM writes it: a signed 32-bit decimal with the bytes little-endian. */
static int64_t cucm_ip(int a, int b, int c, int d)
{
    uint32_t u = (uint32_t)a | (uint32_t)b << 8 | (uint32_t)c << 16 | (uint32_t)d << 24;
    return (int64_t)(int32_t)u;
}

static void cucm_emit(struct pw_out *o, int64_t ts, const struct cucm_row *r)
{
    struct pw_buf b = {0};
    for (int i = 0; i < CUCM_COLS; i++) {
        if (i)
            pw_buf_add(&b, ",", 1);
        if (cucm_text(i))
            pw_buf_printf(&b, "\"%s\"", r->v[i]); /* our values hold no quotes */
        else
            pw_buf_str(&b, r->v[i][0] ? r->v[i] : "0");
    }
    if (getenv("PBXWIRE_DUMP"))
        fprintf(stderr, "%s\n", b.p);
    pw_record(o, ts, b.p, b.len);
    free(b.p);
}

/* A hunt pilot DN per queue: 7<k+1>00 (sales of acme = 7100). */
static void pilot_dn(const char *org, const char *queue, char *out, size_t cap)
{
    snprintf(out, cap, "7%d00", queue_index(org ? org : "", queue) + 1);
}

static int cucm_render(const struct pw_call *c, struct pw_out *o)
{
    const struct pw_pbx *p = c->pbx;
    struct pw_truth *t = c->truth;
    const char *org = c->ev[0].org;
    struct cucm_row *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    uint32_t callid = 100000u + c->idx;
    char call[64], buf[64], ext[20];
    snprintf(call, sizeof call, "%s:1:%u", CUCM_CLUSTER, callid);
    t->call = pw_strdup(o, call);
    t->cdr = true;
    /* A CDR has no direction field; CUCM's device naming tells it (a call from the gateway
     * came in, a phone (SEP...) calling the gateway went out: cisco-cucm-cdr README). */
    t->dir = "inbound";
    t->from_name = NULL; /* nor the caller's name */
    t->n_v = 0;

    cucm_setn(r, "cdrRecordType", 1);
    cucm_setn(r, "globalCallID_callManagerId", 1);
    cucm_setn(r, "globalCallID_callId", callid);
    cucm_setn(r, "origLegCallIdentifier", 20000000 + (int64_t)c->idx * 2);
    cucm_setn(r, "destLegIdentifier", 20000001 + (int64_t)c->idx * 2);
    cucm_setn(r, "origNodeId", 1);
    cucm_setn(r, "destNodeId", 1);
    cucm_set(r, "globalCallId_ClusterID", CUCM_CLUSTER);
    snprintf(buf, sizeof buf, "%08x-%04x-4%03x-8%03x-%012x", c->idx * 2654435761u,
             (unsigned)p->index & 0xffff, c->idx & 0xfff, (c->idx >> 12) & 0xfff, c->idx);
    cucm_set(r, "pkid", buf);
    cucm_setn(r, "origPrecedenceLevel", 4);
    cucm_setn(r, "destPrecedenceLevel", 4);
    cucm_setn(r, "origMediaCap_payloadCapability", 4);
    cucm_setn(r, "destMediaCap_payloadCapability", 4);
    cucm_setn(r, "origMediaCap_maxFramesPerPacket", 20);
    cucm_setn(r, "destMediaCap_maxFramesPerPacket", 20);
    cucm_setn(r, "origDTMFMethod", 3);
    cucm_setn(r, "destDTMFMethod", 3);
    cucm_set(r, "callingPartyNumber", t->from);
    cucm_set(r, "originalCalledPartyNumber", t->to);
    const int64_t S = pw_floor_s(t->start);
    t->start = S;

    if (c->ev[0].kind == CP_KIND_CDR) { /* the model's outbound call: one summary */
        /* An agent's call out through the gateway: no hunt pilot, so no queue and no agent
         * (our parser names an agent only behind a hunt pilot). */
        const struct cp_event *e = &c->ev[0];
        t->dir = "outbound";
        char who[16];
        snprintf(who, sizeof who, "a1%02u", c->idx % 3);
        agent_ext(t->seg.present ? t->seg.agent : who, ext, sizeof ext);
        cucm_set(r, "callingPartyNumber", ext);
        cucm_set(r, "finalCalledPartyNumber", t->to);
        cucm_set(r, "callingPartyNumberPartition", "PT_Internal");
        snprintf(buf, sizeof buf, "SEP00A3D1%06X", (unsigned)atoi(ext));
        cucm_set(r, "origDeviceName", buf);
        cucm_set(r, "destDeviceName", "GW_ISR4331_HQ");
        cucm_set(r, "origDeviceType", "Cisco 8851");
        cucm_set(r, "destDeviceType", "Cisco ISR 4331");
        cucm_setn(r, "origIpAddr", cucm_ip(10, 20, p->index % 250, 10 + c->idx % 200));
        cucm_setn(r, "destIpAddr", cucm_ip(10, 0, 0, 1));
        int64_t end = pw_floor_s(t->end);
        cucm_setn(r, "dateTimeOrigination", S / 1000000);
        cucm_setn(r, "dateTimeDisconnect", end / 1000000);
        t->from = pw_strdup(o, ext);
        t->end = end;
        t->final_to = t->to;
        if (e->disp == CP_DISP_ANSWERED) {
            int64_t ans = pw_floor_s(e->answer);
            cucm_setn(r, "dateTimeConnect", ans / 1000000);
            cucm_setn(r, "duration", (end - ans) / 1000000);
            cucm_setn(r, "origCause_value", 16); /* the agent hung up */
            t->answer = ans;
            t->disp = "answered";
            t->side = "caller";
            t->seg = (struct pw_segment){.present = true, .connect = ans, .complete = end,
                                         .wrapup_end = end, .cdr_hold = 0};
        } else {
            bool busy = e->disp == CP_DISP_BUSY;
            cucm_setn(r, "destCause_value", busy ? 17 : 19);
            t->answer = -1;
            t->disp = busy ? "busy" : "no_answer";
            t->side = NULL;
            t->seg.present = false;
        }
        cucm_emit(o, c->truth->end, r);
        free(r);
        return 1;
    }

    /* Inbound through the gateway to a hunt pilot with native call queuing. */
    struct shape sh;
    shape_of(c, &sh);
    char dn[16];
    const char *queue = t->v[0].queue;
    pilot_dn(org, queue, dn, sizeof dn);
    cucm_set(r, "huntPilotDN", dn);
    cucm_set(r, "huntPilotPattern", dn);
    cucm_set(r, "huntPilotPartition", "PT_Internal");
    cucm_set(r, "lastRedirectDn", dn);
    cucm_set(r, "lastRedirectDnPartition", "PT_Internal");
    cucm_set(r, "originalCalledPartyNumberPartition", "PT_PSTN_In");
    cucm_set(r, "origDeviceName", "GW_ISR4331_HQ");
    cucm_set(r, "origDeviceType", "Cisco ISR 4331");
    cucm_setn(r, "origIpAddr", cucm_ip(10, 0, 0, 1));
    cucm_setn(r, "dateTimeOrigination", S / 1000000);
    const int64_t enter = pw_floor_s(t->v[0].enter);
    struct pw_visit v = t->v[0];
    v.queue = pw_strdup(o, dn);
    v.n_noanswer = 0; /* a member that rang without answering leaves no record */
    v.transfer_out = -1;

    if (!t->seg.present) {
        /* Never answered: the caller hung up in the queue (cause 16 from the caller's
         * side), or the queue's maximum wait disconnected the call (19 no answer). */
        bool abandon = strcmp(t->v[0].outcome, "abandoned") == 0;
        int64_t end = pw_floor_s(abandon ? t->end : t->v[0].leave);
        int64_t wait = (end - enter) / 1000000;
        cucm_set(r, "finalCalledPartyNumber", dn);
        cucm_setn(r, "dateTimeDisconnect", end / 1000000);
        cucm_setn(r, abandon ? "origCause_value" : "destCause_value", abandon ? 16 : 19);
        cucm_setn(r, "wasCallQueued", 1);
        cucm_setn(r, "totalWaitTimeInQueue", wait);
        cucm_emit(o, c->truth->end, r);
        t->end = end;
        t->answer = -1;
        t->final_to = pw_strdup(o, dn);
        t->disp = abandon ? "canceled" : "no_answer";
        t->side = abandon ? "caller" : NULL;
        v.connect = -1;
        v.enter = end - wait * 1000000;
        v.leave = end;
        v.outcome = abandon ? "abandoned" : NULL; /* the CDR says no more than "not answered" */
        t->v[0] = v;
        t->n_v = 1;
        free(r);
        return 1;
    }

    /* Answered by a hunt member.  The wait reported is the time queued before the member
     * that answered was offered the call; without one (a member was free) the call was not
     * queued and the queue visit starts at origination as far as the record says. */
    agent_ext(t->seg.agent, ext, sizeof ext);
    const int64_t conn = pw_floor_s(t->seg.connect);
    const int64_t offer = sh.connect && sh.last_offer ? pw_floor_s(sh.last_offer->ts) : conn;
    int64_t wait = (offer - enter) / 1000000;
    if (wait < 0)
        wait = 0;
    /* A transfer ends this record when the agent transfers (cause 393216: split);
     * otherwise when someone hangs up. */
    const int64_t end = pw_floor_s(t->seg.complete);
    cucm_set(r, "finalCalledPartyNumber", ext);
    cucm_set(r, "finalCalledPartyNumberPartition", "PT_Internal");
    cucm_set(r, "finalCalledPartyUnicodeLoginUserID", t->seg.agent);
    snprintf(buf, sizeof buf, "SEP00A3D1%06X", (unsigned)atoi(ext));
    cucm_set(r, "destDeviceName", buf);
    cucm_set(r, "destDeviceType", "Cisco 8851");
    cucm_setn(r, "destIpAddr", cucm_ip(10, 20, p->index % 250, 10 + c->idx % 200));
    cucm_setn(r, "dateTimeConnect", conn / 1000000);
    cucm_setn(r, "dateTimeDisconnect", end / 1000000);
    cucm_setn(r, "duration", (end - conn) / 1000000);
    cucm_setn(r, "wasCallQueued", wait > 0);
    cucm_setn(r, "totalWaitTimeInQueue", wait);
    const char *side;
    if (sh.transfer) {
        cucm_setn(r, "origCause_value", 393216);
        cucm_setn(r, "destCause_value", 393216);
        cucm_setn(r, "origCallTerminationOnBehalfOf", 10);
        cucm_setn(r, "destCallTerminationOnBehalfOf", 10);
        side = NULL; /* a feature ended the record, not a party */
    } else if (t->side && strcmp(t->side, "agent") == 0) {
        cucm_setn(r, "destCause_value", 16);
        cucm_setn(r, "destCallTerminationOnBehalfOf", 12);
        side = "agent";
    } else {
        cucm_setn(r, "origCause_value", 16);
        cucm_setn(r, "origCallTerminationOnBehalfOf", 12);
        side = "caller";
    }
    cucm_emit(o, c->truth->end, r);
    free(r);
    t->end = end;
    t->answer = conn;
    t->final_to = pw_strdup(o, ext);
    t->disp = "answered";
    t->side = side;
    v.enter = wait > 0 ? conn - wait * 1000000 : S;
    v.connect = conn;
    v.leave = -1;
    v.outcome = "answered";
    t->v[0] = v;
    t->n_v = 1;
    t->seg.queue = v.queue;
    t->seg.wrapup = NULL;
    t->seg.connect = conn;
    t->seg.complete = end;
    t->seg.wrapup_end = end;
    t->seg.cdr_hold = 0; /* CUCM logs no hold time: duration includes it */
    t->seg.n_holds = 0;
    return 1;
}

static void cucm_header(const struct pw_pbx *p, struct pw_buf *b)
{
    (void)p;
    pw_buf_str(b, cucm_names);
    pw_buf_str(b, "\r\n");
    pw_buf_str(b, cucm_types);
    pw_buf_str(b, "\r\n");
}

/* cdr_<clusterId>_<nodeId>_<YYYYMMDDHHMM UTC>_<seq> */
static void cucm_file_name(const struct pw_pbx *p, int64_t first_ts_us, unsigned seq, char *name,
                           size_t cap)
{
    (void)p;
    int y, mo, d, h, mi, s;
    pw_local_time(first_ts_us, "UTC", &y, &mo, &d, &h, &mi, &s);
    snprintf(name, cap, "cdr_%s_01_%04d%02d%02d%02d%02d_%u", CUCM_CLUSTER, y, mo, d, h, mi,
             seq + 1);
}

const struct pw_wire pw_wire_cucm = {
    .name = "cucm",
    .format = "cisco-cucm-cdr",
    .transport = PW_FILE_DROP,
    .sep = "\r\n",
    .render = cucm_render,
    .file_header = cucm_header,
    .file_name = cucm_file_name,
};
