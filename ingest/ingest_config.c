/* ingest_config.c - the collector's configuration table (one place for keys, defaults, docs). */
#include "ingest.h"
#include "sources/asterisk_cdr_csv/asterisk_cdr_csv.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const transports[] = {"tcp",         "http",      "syslog-udp", "syslog-tcp",
                                         "tcp-client",  "file-drop", "file-tail",  NULL};
static const char *const framings[] = {"auto", "lines", "octet", NULL};
static const char *const login_modes[] = {"md5", "plain", NULL};

static const struct cp_config_field source_fields[] = {
    {CP_CFG_AT(struct ing_source_cfg, name), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "source id (metrics, logs, dead letters); also the `pbx` of its events unless pbx is set"},
    {CP_CFG_AT(struct ing_source_cfg, pbx), CP_CFG_STRING,
     .help = "the PBX name stamped as `pbx` on every event (default: name); give a PBX's CTI feed "
             "and its CDR feed (AMI and Master.csv, ESL and mod_json_cdr, queue_log and CDR) the "
             "same pbx so that their records meet in one call"},
    {CP_CFG_AT(struct ing_source_cfg, org), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "org tag stamped on every event (never taken from the payload)"},
    {CP_CFG_AT(struct ing_source_cfg, format), CP_CFG_STRING, .dflt = "callpipe-json",
     .help = "source format (see ingest/sources/)"},
    {CP_CFG_AT(struct ing_source_cfg, transport), CP_CFG_ENUM, .enum_names = transports,
     .dflt = "tcp", .help = "how records arrive"},
    {CP_CFG_AT(struct ing_source_cfg, listen), CP_CFG_STRING,
     .help = "tcp, http, syslog: listen address host:port (IPv4, [IPv6]); port 0 picks a free port"},
    {CP_CFG_AT(struct ing_source_cfg, framing), CP_CFG_ENUM, .enum_names = framings,
     .dflt = "auto",
     .help = "TCP framing: auto detects RFC 6587 octet counting from the first byte"},
    {CP_CFG_AT(struct ing_source_cfg, tz), CP_CFG_STRING,
     .help = "IANA time zone of local times in the records (e.g. Europe/Berlin)"},
    {CP_CFG_AT(struct ing_source_cfg, token), CP_CFG_SECRET,
     .help = "HTTP: required token (env:NAME or file:PATH): Authorization: Bearer <token>, or Basic with the token as password (mod_json_cdr cred=user:<token>)"},
    {CP_CFG_AT_KEY("hmac_secret", struct ing_source_cfg, hmac_secret), CP_CFG_SECRET,
     .help = "HTTP: key of the X-Callpipe-Signature: sha256=<hex HMAC of the body> header"},
    {CP_CFG_AT(struct ing_source_cfg, allow), CP_CFG_STRING,
     .help = "TCP/syslog: comma-separated peer ranges allowed to send (CIDR); empty = any"},
    {CP_CFG_AT(struct ing_source_cfg, max_record), CP_CFG_SIZE, .dflt = "64KiB", .min = 64,
     .max = 16 << 20, .help = "longest record; longer ones are cut and dead-lettered"},
    {CP_CFG_AT(struct ing_source_cfg, max_body), CP_CFG_SIZE, .dflt = "4MiB", .min = 1024,
     .max = 64 << 20, .help = "HTTP and file-drop: largest body or file (413 / dead letter above)"},
    {CP_CFG_AT(struct ing_source_cfg, connect), CP_CFG_STRING,
     .help = "tcp-client: the PBX's host:port (AMI 5038, ESL 8021, SMDR)"},
    {CP_CFG_AT(struct ing_source_cfg, username), CP_CFG_STRING,
     .help = "tcp-client: AMI user name"},
    {CP_CFG_AT(struct ing_source_cfg, login_secret), CP_CFG_SECRET,
     .help = "tcp-client: AMI secret or ESL password (env:NAME or file:PATH)"},
    {CP_CFG_AT_KEY("login", struct ing_source_cfg, login_mode), CP_CFG_ENUM,
     .enum_names = login_modes, .dflt = "md5",
     .help = "tcp-client AMI: md5 (challenge; the secret never crosses the wire) or plain"},
    {CP_CFG_AT(struct ing_source_cfg, path), CP_CFG_STRING,
     .help = "file-drop: the drop directory; file-tail: the file to follow"},
    {CP_CFG_AT(struct ing_source_cfg, done_dir), CP_CFG_STRING,
     .help = "file-drop: processed files are moved here (default <path>/done)"},
    {CP_CFG_AT(struct ing_source_cfg, ledger), CP_CFG_STRING,
     .help = "file-drop: ledger of processed files (default <path>/.callpipe-ledger)"},
    {CP_CFG_AT(struct ing_source_cfg, access_key), CP_CFG_SECRET,
     .help = "HTTP: required X-Amz-Firehose-Access-Key (Amazon Connect through Firehose)"},
    {CP_CFG_AT(struct ing_source_cfg, twilio_token), CP_CFG_SECRET,
     .help = "HTTP: Twilio auth token; requests must carry a valid X-Twilio-Signature"},
    {CP_CFG_AT(struct ing_source_cfg, public_url), CP_CFG_STRING,
     .help = "HTTP: the public URL Twilio posts to (signatures are computed over it)"},
    {CP_CFG_AT(struct ing_source_cfg, cdr_columns), CP_CFG_STRING, .dflt = "auto",
     .help = "asterisk-cdr-csv: extra Master.csv columns as in cdr.conf: auto, none, uniqueid, "
             "userfield or uniqueid,userfield"},
};
static const struct cp_config_table source_table = CP_CFG_TABLE(struct ing_source_cfg,
                                                                 source_fields);

static const struct cp_config_field kafka_fields[] = {
    {CP_CFG_AT(struct ing_kafka_cfg, brokers), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "bootstrap servers host:port,..."},
    {CP_CFG_AT(struct ing_kafka_cfg, topic), CP_CFG_STRING, .dflt = "callpipe.events",
     .help = "topic of canonical events"},
    {CP_CFG_AT(struct ing_kafka_cfg, deadletter_topic), CP_CFG_STRING,
     .dflt = "callpipe.deadletter", .help = "topic of rejected records"},
    {CP_CFG_AT(struct ing_kafka_cfg, compression), CP_CFG_STRING, .dflt = "lz4",
     .help = "none, gzip, snappy, lz4 or zstd"},
    /* Keys spread a collector's events over every partition, so a batch holds
     * rate x linger / partitions events: at 100k/s over 64 partitions 5 ms gives
     * ~8 per batch and librdkafka's per-batch work (compression frame, wakeups)
     * took a third of the CPU; 50 ms gives ~80 and cost 50 ms of delivery
     * latency, well inside the end-to-end budget of seconds (tests/bench). */
    {CP_CFG_AT_KEY("linger", struct ing_kafka_cfg, linger_ms), CP_CFG_DURATION, .dflt = "50ms",
     .min = 0, .max = 1000, .help = "batching delay (adds up to this much delivery latency)"},
    {CP_CFG_AT(struct ing_kafka_cfg, queue_max_messages), CP_CFG_INT, .dflt = "200000",
     .min = 1000, .max = 10000000, .help = "librdkafka queue limit (messages)"},
    {CP_CFG_AT(struct ing_kafka_cfg, queue_max_bytes), CP_CFG_SIZE, .dflt = "256MiB",
     .min = 1 << 20, .max = (int64_t)1 << 31, .help = "librdkafka queue limit (bytes)"},
    {CP_CFG_AT(struct ing_kafka_cfg, high_watermark), CP_CFG_INT, .dflt = "100000", .min = 100,
     .max = 10000000, .help = "queued messages above which TCP stops reading and HTTP answers 503"},
    {CP_CFG_AT(struct ing_kafka_cfg, low_watermark), CP_CFG_INT, .dflt = "50000", .min = 0,
     .max = 10000000, .help = "queued messages below which inputs resume"},
    {CP_CFG_AT_KEY("flush_timeout", struct ing_kafka_cfg, flush_timeout_ms), CP_CFG_DURATION,
     .dflt = "30s", .min = 0, .max = 3600000, .help = "on SIGTERM, how long to wait for Kafka"},
    {CP_CFG_AT_KEY("unready_after", struct ing_kafka_cfg, unready_after_ms), CP_CFG_DURATION,
     .dflt = "30s", .min = 1, .max = 3600000,
     .help = "/readyz turns false after Kafka has failed for this long"},
};
static const struct cp_config_table kafka_table = CP_CFG_TABLE(struct ing_kafka_cfg, kafka_fields);

static const struct cp_config_field ing_fields[] = {
    {CP_CFG_AT(struct ing_cfg, log_level), CP_CFG_STRING, .dflt = "info",
     .help = "debug, info, warn or error"},
    {CP_CFG_AT(struct ing_cfg, threads), CP_CFG_INT, .dflt = "0", .min = 0, .max = 256,
     .help = "event loops (threads); 0 = number of cores"},
    {CP_CFG_AT_KEY("admin", struct ing_cfg, admin_listen), CP_CFG_STRING,
     .dflt = "127.0.0.1:9101", .help = "admin HTTP address for /metrics, /healthz, /readyz"},
    {CP_CFG_AT_KEY("idle_timeout", struct ing_cfg, idle_timeout_ms), CP_CFG_DURATION,
     .dflt = "10m", .min = 1000, .max = 86400000,
     .help = "close TCP/HTTP connections silent for this long"},
    {CP_CFG_AT_KEY("header_timeout", struct ing_cfg, header_timeout_ms), CP_CFG_DURATION,
     .dflt = "10s", .min = 100, .max = 600000, .help = "HTTP: time allowed to send the headers"},
    {CP_CFG_AT(struct ing_cfg, max_connections), CP_CFG_INT, .dflt = "50000", .min = 1,
     .max = 1000000, .help = "connections per loop and source"},
    {CP_CFG_AT(struct ing_cfg, deadletter_cut), CP_CFG_SIZE, .dflt = "16KiB", .min = 64,
     .max = 1 << 20, .help = "raw bytes kept in a dead letter"},
    {CP_CFG_AT(struct ing_cfg, kafka), CP_CFG_MAPPING, .sub = &kafka_table,
     .flags = CP_CFG_REQUIRED, .help = "Kafka output"},
    {CP_CFG_LIST_AT(struct ing_cfg, sources, n_sources), CP_CFG_LIST, .sub = &source_table,
     .min = 1, .max = 4096, .flags = CP_CFG_REQUIRED, .help = "the PBXs and platforms that send"},
};

const struct cp_config_table ing_cfg_table = {
    .name = "ingest",
    .size = sizeof(struct ing_cfg),
    .fields = ing_fields,
    .nfields = CP_ARRAY_LEN(ing_fields),
    .env_prefix = "CALLPIPE_INGEST",
};

const char *ing_transport_name(int transport)
{
    return transport >= 0 && transport < (int)CP_ARRAY_LEN(transports) - 1 ? transports[transport]
                                                                       : "?";
}

int ing_parse_listen(const char *listen, char *host, size_t hostcap, int *port)
{
    const char *colon;
    const char *h = listen;
    size_t hl;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return CP_ERR_PARSE;
        h = listen + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return CP_ERR_PARSE;
        hl = (size_t)(colon - listen);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535 || hl == 0 || hl >= hostcap)
        return CP_ERR_PARSE;
    memcpy(host, h, hl);
    host[hl] = 0;
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
        return CP_ERR_PARSE;
    *port = (int)p;
    return 0;
}

int ing_cfg_validate(const struct ing_cfg *cfg, char *err, size_t errcap)
{
    if (cfg->kafka.low_watermark >= cfg->kafka.high_watermark) {
        snprintf(err, errcap, "kafka.low_watermark must be below kafka.high_watermark");
        return CP_ERR_CONFIG;
    }
    if (cfg->kafka.high_watermark >= cfg->kafka.queue_max_messages) {
        snprintf(err, errcap, "kafka.high_watermark must be below kafka.queue_max_messages");
        return CP_ERR_CONFIG;
    }
    for (size_t i = 0; i < cfg->n_sources; i++) {
        const struct ing_source_cfg *s = &cfg->sources[i];
        char host[64];
        int port;
        if (!cp_source_find(s->format)) {
            size_t n = (size_t)snprintf(err, errcap, "sources[%zu] (%s): unknown format \"%s\"; valid formats:",
                                        i, s->name, s->format);
            for (const struct cp_source_format *const *f = cp_source_all(); *f && n < errcap; f++)
                n += (size_t)snprintf(err + n, errcap - n, " %s", (*f)->name);
            return CP_ERR_CONFIG;
        }
        bool listens = s->transport == ING_TCP || s->transport == ING_HTTP ||
                       s->transport == ING_SYSLOG_UDP || s->transport == ING_SYSLOG_TCP;
        if (listens && (!s->listen || ing_parse_listen(s->listen, host, sizeof host, &port))) {
            snprintf(err, errcap, "sources[%zu] (%s): listen \"%s\" is not host:port", i, s->name,
                     s->listen ? s->listen : "");
            return CP_ERR_CONFIG;
        }
        if (s->transport == ING_TCP_CLIENT &&
            (!s->connect || ing_parse_listen(s->connect, host, sizeof host, &port) || port == 0)) {
            snprintf(err, errcap, "sources[%zu] (%s): a tcp-client source needs connect: host:port",
                     i, s->name);
            return CP_ERR_CONFIG;
        }
        if ((s->transport == ING_FILE_DROP || s->transport == ING_FILE_TAIL) && !s->path) {
            snprintf(err, errcap, "sources[%zu] (%s): a file source needs path", i, s->name);
            return CP_ERR_CONFIG;
        }
        if (s->transport == ING_HTTP && !s->token.value && !s->hmac_secret.value &&
            !s->access_key.value && !s->twilio_token.value) {
            snprintf(err, errcap,
                     "sources[%zu] (%s): an HTTP source needs a token, an hmac_secret, an "
                     "access_key or a twilio_token",
                     i, s->name);
            return CP_ERR_CONFIG;
        }
        /* Formats that log local time cannot be read without the PBX's zone: unknown is
         * unknown, so refuse to start rather than dead-letter every record. */
        static const char *const local_time_formats[] = {"avaya-smdr", "asterisk-cdr-csv"};
        for (size_t k = 0; k < CP_ARRAY_LEN(local_time_formats); k++)
            if (strcmp(s->format, local_time_formats[k]) == 0 && !s->tz) {
                snprintf(err, errcap, "sources[%zu] (%s): format %s logs local time: set tz", i,
                         s->name, s->format);
                return CP_ERR_CONFIG;
            }
        if (s->cdr_columns && strcmp(s->format, "asterisk-cdr-csv") == 0) {
            void *probe = cp_source_find(s->format)->state_create();
            int bad = cp_ast_cdr_csv_set_columns(probe, s->cdr_columns);
            cp_source_find(s->format)->state_destroy(probe);
            if (bad) {
                snprintf(err, errcap, "sources[%zu] (%s): cdr_columns \"%s\" is not one of auto, none, "
                         "uniqueid, userfield, uniqueid,userfield", i, s->name, s->cdr_columns);
                return CP_ERR_CONFIG;
            }
        }
        if (s->twilio_token.value && !s->public_url) {
            snprintf(err, errcap, "sources[%zu] (%s): twilio_token needs public_url", i, s->name);
            return CP_ERR_CONFIG;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->sources[j].name, s->name) == 0) {
                snprintf(err, errcap, "sources[%zu]: duplicate source name \"%s\"", i, s->name);
                return CP_ERR_CONFIG;
            }
    }
    return 0;
}

void *ing_state_create(const struct ing_source *src)
{
    if (!src->fmt->state_create)
        return NULL;
    void *state = src->fmt->state_create();
    /* The one format whose state takes a setting (its column layout). */
    if (state && strcmp(src->fmt->name, "asterisk-cdr-csv") == 0 && src->cfg->cdr_columns)
        cp_ast_cdr_csv_set_columns(state, src->cfg->cdr_columns);
    return state;
}
