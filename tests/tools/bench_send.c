/* bench_send.c - make the ingest benchmark's canonical JSON events and blast them over TCP. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 *   bench_send gen  -n N -o FILE                 N events, one per line, ~320 bytes each
 *   bench_send send -f FILE -p PORT [-c CONNS] [-H HOST]
 *
 * `gen` is deterministic (fixed seed), so every system in a run gets the same
 * bytes.  `send` reads FILE into memory first, splits it at line boundaries
 * into CONNS contiguous slices, and one thread per connection writes its slice
 * with blocking write()s as fast as the receiver reads.  It prints
 *   start_us=<CLOCK_MONOTONIC of the first write> end_us=<last write done> events=N bytes=B
 * so the caller can measure first byte sent -> last message visible with
 * bench_count, which prints its end on the same clock.
 */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

/* Names with non-ASCII letters, as agents and callers have them. */
static const char *const names[] = {
    "Jürgen Müller",  "Zoë Ünal",        "山田太郎",        "François Lefèvre", "Søren Kierkegård",
    "Łukasz Żółw",    "María José Peña", "Ólafur Ragnarsson", "Ангелина Петрова", "Nguyễn Văn An",
    "Anne Smith",     "José Álvarez",    "Björn Åström",    "Dvořák Antonín",   "Çağla Şahin",
};
static const char *const queues[] = {"support-de", "sales-eu", "billing", "vip-hotline",
                                     "technik-2nd", "retention"};
static const char *const kinds[] = {"queue_enter", "agent_offer", "agent_connect",
                                    "hold",        "unhold",      "agent_complete",
                                    "call_end",    "queue_leave"};
#define NNAMES (sizeof names / sizeof names[0])
#define NQUEUES (sizeof queues / sizeof queues[0])
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* One event of call i/8: eight events per call, the last ones a cdr. */
static int gen_one(char *buf, size_t cap, long i)
{
    long call = i / 8;
    int step = (int)(i % 8);
    int64_t start = 1764064800000000 + call * 1500000;
    int64_t ts = start + step * 7000123 + rnd(1000);
    /* The parties stay the same for every event of a call. */
    uint64_t h = (uint64_t)(call + 1) * 0x9e3779b97f4a7c15ull;
    const char *from_name = names[(h >> 20) % NNAMES];
    const char *agent_name = names[(h >> 40) % NNAMES];
    unsigned from = (unsigned)((h >> 8) % 2000000000u), agent = 100 + (unsigned)((h >> 50) % 400);
    if (step == 7)
        return snprintf(buf, cap,
                        "{\"call\":\"%ld.%ld\",\"leg\":\"PJSIP/trunk-%08lx\",\"kind\":\"cdr\","
                        "\"ts\":%lld,\"start\":%lld,\"answer\":%lld,\"end\":%lld,"
                        "\"dir\":\"inbound\",\"from\":\"+49%010u\",\"from_name\":\"%s\","
                        "\"to\":\"+4980012345\",\"queue\":\"%s\",\"agent\":\"agent/%u\","
                        "\"agent_name\":\"%s\",\"disp\":\"answered\",\"q850\":16,"
                        "\"ring\":%u,\"talk\":%u}\n",
                        1764064800 + call / 100, call % 100000, (unsigned long)call,
                        (long long)ts, (long long)start, (long long)start + 9000000,
                        (long long)ts, from, from_name, queues[call % NQUEUES], agent, agent_name,
                        rnd(30), rnd(900));
    return snprintf(buf, cap,
                    "{\"call\":\"%ld.%ld\",\"leg\":\"PJSIP/trunk-%08lx\",\"kind\":\"%s\","
                    "\"ts\":%lld,\"dir\":\"inbound\",\"from\":\"+49%010u\",\"from_name\":\"%s\","
                    "\"to\":\"+4980012345\",\"queue\":\"%s\",\"agent\":\"agent/%u\","
                    "\"agent_name\":\"%s\",\"native\":\"%s\",\"x\":{\"uniqueid\":\"%ld.%ld\"}}\n",
                    1764064800 + call / 100, call % 100000, (unsigned long)call, kinds[step],
                    (long long)ts, from, from_name, queues[call % NQUEUES], agent, agent_name,
                    kinds[step], 1764064800 + call / 100,
                    call % 100000);
}

static int cmd_gen(long n, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_send: could not open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char line[1024];
    long bytes = 0;
    for (long i = 0; i < n; i++) {
        int len = gen_one(line, sizeof line, i);
        if (len <= 0 || (size_t)len >= sizeof line || fwrite(line, 1, (size_t)len, f) != (size_t)len) {
            fprintf(stderr, "bench_send: could not write event %ld\n", i);
            fclose(f);
            return 1;
        }
        bytes += len;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_send: could not write %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("events=%ld bytes=%ld avg=%.1f\n", n, bytes, (double)bytes / (double)n);
    return 0;
}

struct slice {
    const char *host;
    int port;
    const char *p;
    size_t len;
    int64_t done_us;
    int fd;
    int rc;
};

static int connect_to(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "bench_send: could not connect to %s:%d: %s\n", host, port,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void *send_slice(void *arg)
{
    struct slice *s = arg;
    size_t off = 0;
    while (off < s->len) {
        size_t chunk = s->len - off < (1u << 20) ? s->len - off : (1u << 20);
        ssize_t w = write(s->fd, s->p + off, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "bench_send: could not write: %s\n", strerror(errno));
            s->rc = 1;
            break;
        }
        off += (size_t)w;
    }
    s->done_us = mono_us();
    /* Half-close: the receiver sees EOF after the last line; close() later. */
    shutdown(s->fd, SHUT_WR);
    return NULL;
}

static int cmd_send(const char *path, const char *host, int port, int conns)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "bench_send: could not open %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len ? len : 1);
    size_t got = 0;
    while (buf && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) {
            fprintf(stderr, "bench_send: could not read %s\n", path);
            return 1;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!buf)
        return 1;
    long events = 0;
    for (size_t i = 0; i < len; i++)
        events += buf[i] == '\n';

    struct slice sl[64];
    pthread_t th[64];
    size_t start = 0;
    for (int c = 0; c < conns; c++) {
        size_t end = c == conns - 1 ? len : len / (size_t)conns * (size_t)(c + 1);
        while (end < len && end > 0 && buf[end - 1] != '\n')
            end++;
        if (end < start)
            end = start;
        sl[c] = (struct slice){.host = host, .port = port, .p = buf + start, .len = end - start};
        start = end;
        /* Connect all before the clock starts: we time the data, not the handshakes. */
        if ((sl[c].fd = connect_to(host, port)) < 0)
            return 1;
    }
    int64_t t0 = mono_us();
    for (int c = 0; c < conns; c++)
        if (pthread_create(&th[c], NULL, send_slice, &sl[c]) != 0) {
            fprintf(stderr, "bench_send: could not start a thread\n");
            return 1;
        }
    int rc = 0;
    int64_t t1 = t0;
    for (int c = 0; c < conns; c++) {
        pthread_join(th[c], NULL);
        rc |= sl[c].rc;
        if (sl[c].done_us > t1)
            t1 = sl[c].done_us;
    }
    printf("start_us=%lld end_us=%lld events=%ld bytes=%zu send_s=%.3f\n", (long long)t0,
           (long long)t1, events, len, (double)(t1 - t0) / 1e6);
    fflush(stdout);
    /* Keep the sockets open until told: some receivers drop a half-closed peer's tail. */
    if (getenv("BENCH_SEND_LINGER"))
        sleep((unsigned)atoi(getenv("BENCH_SEND_LINGER")));
    for (int c = 0; c < conns; c++)
        close(sl[c].fd);
    free(buf);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_send gen -n N -o FILE\n"
                    "       bench_send send -f FILE -p PORT [-c CONNS] [-H HOST]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    long n = 2000000;
    const char *out = NULL, *file = NULL, *host = "127.0.0.1";
    int port = 0, conns = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "-n"))
            n = atol(v);
        else if (!strcmp(a, "-o"))
            out = v;
        else if (!strcmp(a, "-f"))
            file = v;
        else if (!strcmp(a, "-p"))
            port = atoi(v);
        else if (!strcmp(a, "-c"))
            conns = atoi(v);
        else if (!strcmp(a, "-H"))
            host = v;
        else
            usage();
        i++;
    }
    if (!strcmp(cmd, "gen") && out && n > 0)
        return cmd_gen(n, out);
    if (!strcmp(cmd, "send") && file && port > 0 && conns >= 1 && conns <= 64)
        return cmd_send(file, host, port, conns);
    usage();
    return 2;
}
