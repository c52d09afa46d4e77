/* devbroker.c - the dev Kafka broker: librdkafka's mock cluster in its own process, faults on
 * stdin. */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cp_kafka.h"
#include "cp_log.h"

#define MAX_ERRORS 100000

static const char usage[] =
    "usage: devbroker [-b BROKERS] [-t TOPIC:PARTITIONS]... [-v]\n"
    "  Starts librdkafka's mock cluster, prints the bootstrap servers as the first\n"
    "  line on stdout, then \"ready\", then reads commands on stdin (one per line):\n"
    "    down K | up K              take broker K down / bring it back\n"
    "    rtt K MS                   add MS milliseconds of round-trip time to broker K\n"
    "    errors API N CODE          fail the next N requests of API (name or number) with CODE\n"
    "    clear API                  drop queued request errors for API\n"
    "    leader TOPIC P K           make broker K the leader of TOPIC partition P\n"
    "    coord group|txn KEY K      make broker K the coordinator for KEY\n"
    "    create TOPIC PARTITIONS    create a topic (replication min(3, brokers))\n"
    "    quit                       exit\n"
    "  Each command is answered with one line starting \"ok\" or \"error\".\n"
    "  EOF on stdin does not stop the broker; SIGINT / SIGTERM do.\n";

static const struct {
    const char *name;
    int16_t key;
} api_names[] = {
    {"Produce", 0},
    {"Fetch", 1},
    {"ListOffsets", 2},
    {"Metadata", 3},
    {"OffsetCommit", 8},
    {"OffsetFetch", 9},
    {"FindCoordinator", 10},
    {"JoinGroup", 11},
    {"Heartbeat", 12},
    {"LeaveGroup", 13},
    {"SyncGroup", 14},
    {"DescribeGroups", 15},
    {"ListGroups", 16},
    {"ApiVersions", 18},
    {"CreateTopics", 19},
    {"InitProducerId", 22},
    {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},
    {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

static int broker_cnt = 3;
static rd_kafka_mock_cluster_t *mcluster;

static int parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_api(const char *s, int16_t *out)
{
    long v;
    if (parse_int(s, 0, 32767, &v) == 0) {
        *out = (int16_t)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof api_names / sizeof api_names[0]; i++) {
        if (strcasecmp(s, api_names[i].name) == 0) {
            *out = api_names[i].key;
            return 0;
        }
    }
    return -1;
}

/* "6", "NOT_LEADER_FOR_PARTITION", "_TRANSPORT", "TRANSPORT", "RD_KAFKA_RESP_ERR__TRANSPORT". */
static int parse_err(const char *s, rd_kafka_resp_err_t *out)
{
    long v;
    if (parse_int(s, -200, 1000, &v) == 0) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0) s += 18;
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    rd_kafka_get_err_descs(&descs, &cnt);
    /* Exact names first, so "_TRANSPORT" and a hypothetical broker "TRANSPORT" stay apart. */
    for (size_t i = 0; i < cnt; i++) {
        if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        const char *n = descs[i].name;
        if (n && n[0] == '_' && strcasecmp(n + 1, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    return -1;
}

static int parse_broker(const char *s, int32_t *out)
{
    long v;
    if (parse_int(s, 1, broker_cnt, &v) < 0) return -1;
    *out = (int32_t)v;
    return 0;
}

static void reply(const char *fmt, ...) CP_PRINTF(1, 2);
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void reply_err(const char *what, rd_kafka_resp_err_t err)
{
    if (err)
        reply("error %s: %s", what, rd_kafka_err2str(err));
    else
        reply("ok %s", what);
}

static int create_topic(const char *name, long parts)
{
    int rf = broker_cnt < 3 ? broker_cnt : 3;
    return rd_kafka_mock_topic_create(mcluster, name, (int)parts, rf);
}

/* Runs one command line; returns 1 on quit. */
static int run_command(char *line)
{
    char *argv[8];
    int argc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\r", &save); tok && argc < 8;
         tok = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = tok;
    if (argc == 0 || argv[0][0] == '#') return 0;

    const char *cmd = argv[0];
    char what[256];
    int32_t broker;
    long n;
    if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) {
        reply("ok quit");
        return 1;
    } else if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && argc == 2) {
        if (parse_broker(argv[1], &broker) < 0) {
            reply("error bad broker \"%s\" (1..%d)", argv[1], broker_cnt);
            return 0;
        }
        rd_kafka_resp_err_t err = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mcluster, broker)
                                                : rd_kafka_mock_broker_set_up(mcluster, broker);
        snprintf(what, sizeof what, "%s %d", cmd, (int)broker);
        reply_err(what, err);
    } else if (strcmp(cmd, "rtt") == 0 && argc == 3) {
        if (parse_broker(argv[1], &broker) < 0 || parse_int(argv[2], 0, 3600000, &n) < 0) {
            reply("error usage: rtt BROKER MS");
            return 0;
        }
        snprintf(what, sizeof what, "rtt %d %ld", (int)broker, n);
        reply_err(what, rd_kafka_mock_broker_set_rtt(mcluster, broker, (int)n));
    } else if (strcmp(cmd, "errors") == 0 && argc == 4) {
        int16_t api;
        rd_kafka_resp_err_t code;
        if (parse_api(argv[1], &api) < 0) {
            reply("error unknown api \"%s\"", argv[1]);
            return 0;
        }
        if (parse_int(argv[2], 1, MAX_ERRORS, &n) < 0) {
            reply("error bad count \"%s\" (1..%d)", argv[2], MAX_ERRORS);
            return 0;
        }
        if (parse_err(argv[3], &code) < 0) {
            reply("error unknown error code \"%s\"", argv[3]);
            return 0;
        }
        rd_kafka_resp_err_t *errs = malloc((size_t)n * sizeof *errs);
        if (!errs) {
            reply("error out of memory");
            return 0;
        }
        for (long i = 0; i < n; i++)
            errs[i] = code;
        rd_kafka_mock_push_request_errors_array(mcluster, api, (size_t)n, errs);
        free(errs);
        reply("ok errors %d %ld %s", (int)api, n, rd_kafka_err2name(code));
    } else if (strcmp(cmd, "clear") == 0 && argc == 2) {
        int16_t api;
        if (parse_api(argv[1], &api) < 0) {
            reply("error unknown api \"%s\"", argv[1]);
            return 0;
        }
        rd_kafka_mock_clear_request_errors(mcluster, api);
        reply("ok clear %d", (int)api);
    } else if (strcmp(cmd, "leader") == 0 && argc == 4) {
        if (parse_int(argv[2], 0, 100000, &n) < 0 || parse_broker(argv[3], &broker) < 0) {
            reply("error usage: leader TOPIC PARTITION BROKER");
            return 0;
        }
        snprintf(what, sizeof what, "leader %s %ld %d", argv[1], n, (int)broker);
        reply_err(what, rd_kafka_mock_partition_set_leader(mcluster, argv[1], (int32_t)n, broker));
    } else if (strcmp(cmd, "coord") == 0 && argc == 4) {
        if (parse_broker(argv[3], &broker) < 0 ||
            (strcmp(argv[1], "group") != 0 && strcmp(argv[1], "txn") != 0)) {
            reply("error usage: coord group|txn KEY BROKER");
            return 0;
        }
        snprintf(what, sizeof what, "coord %s %s %d", argv[1], argv[2], (int)broker);
        reply_err(what, rd_kafka_mock_coordinator_set(mcluster, argv[1], argv[2], broker));
    } else if (strcmp(cmd, "create") == 0 && argc == 3) {
        if (parse_int(argv[2], 1, 10000, &n) < 0) {
            reply("error usage: create TOPIC PARTITIONS");
            return 0;
        }
        snprintf(what, sizeof what, "create %s %ld", argv[1], n);
        reply_err(what, create_topic(argv[1], n));
    } else if (strcmp(cmd, "help") == 0) {
        reply("ok commands: down up rtt errors clear leader coord create quit");
    } else {
        reply("error unknown command or wrong arguments: %s", cmd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *topics[64];
    int ntopics = 0;
    int opt;
    long v;
    int verbose = 0;
    cp_log_set_service("devbroker");
    while ((opt = getopt(argc, argv, "b:t:vh")) != -1) {
        switch (opt) {
        case 'b':
            if (parse_int(optarg, 1, 64, &v) < 0) {
                fprintf(stderr, "devbroker: bad broker count \"%s\"\n", optarg);
                return 2;
            }
            broker_cnt = (int)v;
            break;
        case 't':
            if (ntopics == (int)(sizeof topics / sizeof topics[0])) {
                fprintf(stderr, "devbroker: too many topics\n");
                return 2;
            }
            topics[ntopics++] = optarg;
            break;
        case 'v':
            verbose = 1;
            cp_log_set_level(CP_LOG_DEBUG);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }

    /* Block the stop signals before librdkafka starts its threads, so they
     * inherit the mask and only our signalfd sees SIGINT / SIGTERM. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("devbroker: signalfd");
        return 1;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cp_kafka_conf_set_log(conf);
    /* The host handle never connects anywhere: keep its "no bootstrap.servers"
     * warning out of the log, and show the mock's own trace only with -v. */
    if (cp_kafka_conf_set(conf, "log_level", verbose ? "7" : "3", errstr, sizeof errstr) < 0 ||
        (verbose && cp_kafka_conf_set(conf, "debug", "mock", errstr, sizeof errstr) < 0)) {
        cp_error(NULL, "could not configure the mock's host client: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = cp_kafka_producer_new(conf, errstr, sizeof errstr);
    if (!rk) {
        cp_error(NULL, "could not create the mock's host client: %s", errstr);
        return 1;
    }
    mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
    if (!mcluster) {
        cp_error(NULL, "could not create the mock cluster");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics && rc == 0; i++) {
        char name[256];
        const char *colon = strrchr(topics[i], ':');
        long parts = 1;
        size_t len = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
        if ((colon && parse_int(colon + 1, 1, 10000, &parts) < 0) || len == 0 ||
            len >= sizeof name) {
            cp_error(NULL, "could not parse topic \"%s\": expected NAME:PARTITIONS", topics[i]);
            rc = 2;
            break;
        }
        memcpy(name, topics[i], len);
        name[len] = '\0';
        rd_kafka_resp_err_t err = create_topic(name, parts);
        if (err) {
            cp_error(NULL, "could not create topic %s: %s", name, rd_kafka_err2str(err));
            rc = 1;
        }
    }
    if (rc == 0) {
        printf("%s\nready\n", rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);
        cp_info(NULL, "mock cluster with %d brokers at %s", broker_cnt,
                rd_kafka_mock_cluster_bootstraps(mcluster));
    }

    char buf[8192];
    size_t used = 0;
    int stdin_open = 1;
    while (rc == 0) {
        struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        if (poll(pfd, stdin_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            cp_error(NULL, "could not poll: %s", strerror(errno));
            rc = 1;
            break;
        }
        if (pfd[0].revents) break;
        if (!stdin_open || !pfd[1].revents) continue;
        ssize_t r = read(STDIN_FILENO, buf + used, sizeof buf - 1 - used);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) {
            stdin_open = 0;
            cp_debug(NULL, "stdin closed; running until SIGINT or SIGTERM");
            continue;
        }
        used += (size_t)r;
        buf[used] = '\0';
        char *start = buf, *nl;
        int quit = 0;
        while (!quit && (nl = strchr(start, '\n'))) {
            *nl = '\0';
            quit = run_command(start);
            start = nl + 1;
        }
        if (quit) break;
        used -= (size_t)(start - buf);
        memmove(buf, start, used);
        if (used == sizeof buf - 1) {
            reply("error line too long");
            used = 0;
        }
    }

    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);
    close(sfd);
    return rc;
}
