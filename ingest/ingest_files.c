/* ingest_files.c - file sources: a drop directory processed once per file, and a followed (tailed) file. */
#include "ingest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cp_log.h"
#include "cp_map.h"
#include "cp_time.h"
#include "sources/cucm/cucm.h"

/*
 * file-drop (CUCM pushes CDR files by (S)FTP into a directory):
 *   every second, and when inotify says the directory changed, each regular
 *   file not starting with '.' is read whole (bounded by max_body) and parsed
 *   as ONE record.  Its events wait for their delivery reports like an HTTP
 *   request; only when Kafka acknowledged all of them is the file's identity
 *   (SHA-256 of name, size and content) appended to the ledger with fsync and
 *   the file moved to done_dir.  A crash before the ledger write re-reads the
 *   file (event ids make that harmless downstream); a crash after it finds
 *   the identity in the ledger and only moves the file.  A file still being
 *   written is skipped until its size and mtime stay the same for one scan.
 *
 * file-tail (queue_log): the file is read from where we left it; lines go
 *   through the framer.  Rotation (the path now names another inode, or the
 *   file shrank) is noticed on the next poll: the old file is read to its end
 *   first, then the new one from its start.  The read position is not kept
 *   across restarts: a restart starts at the end of the file (documented).
 */

enum { FILE_DROP, FILE_TAIL };

struct pending_file {
    struct ing_waiter w; /* first: the waiter is the file's completion */
    struct ing_filesrc *fs;
    char name[256];
    char id[CP_CUCM_FILE_ID_LEN + 1];
};

struct ing_filesrc {
    struct ing_filesrc *next;
    int kind;
    struct ing_loop *l;
    struct ing_source *src;
    uv_timer_t timer;
    uv_fs_event_t watch;
    bool watching;
    char done_dir[1024], ledger_path[1024];
    struct cp_map ledger; /* identities already processed */
    struct cp_map busy;   /* names waiting for delivery reports */
    struct cp_map seen;   /* name -> "size:mtime" from the previous scan (stability) */
    /* tail */
    int fd;
    ino_t ino;
    off_t pos;
    struct cp_framer framer;
    void *state; /* the format's stream state (tail) */
};

static void ledger_load(struct ing_filesrc *fs)
{
    FILE *f = fopen(fs->ledger_path, "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, " \n");
        if (n == CP_CUCM_FILE_ID_LEN)
            cp_map_put(&fs->ledger, line, n, (void *)1);
    }
    fclose(f);
}

static int ledger_add(struct ing_filesrc *fs, const char *id, const char *name)
{
    int fd = open(fs->ledger_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return CP_ERR_IO;
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s\n", id, name);
    bool ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return CP_ERR_IO;
    cp_map_put(&fs->ledger, id, strlen(id), (void *)1);
    return 0;
}

static void move_aside(struct ing_filesrc *fs, const char *name)
{
    char from[2048], to[2048];
    snprintf(from, sizeof from, "%s/%s", fs->src->cfg->path, name);
    snprintf(to, sizeof to, "%s/%s", fs->done_dir, name);
    if (rename(from, to) != 0)
        cp_warn(fs->src->cfg->name, "could not move %s to %s: %s", from, fs->done_dir,
                strerror(errno));
}

static void file_done(struct ing_waiter *w)
{
    struct pending_file *pf = (struct pending_file *)w;
    struct ing_filesrc *fs = pf->fs;
    cp_map_del(&fs->busy, pf->name, strlen(pf->name));
    if (atomic_load(&w->failed)) {
        cp_warn(fs->src->cfg->name, "file %s: kafka did not take every event; retrying", pf->name);
    } else if (ledger_add(fs, pf->id, pf->name) != 0) {
        cp_error(fs->src->cfg->name, "could not write the ledger %s: %s", fs->ledger_path,
                 strerror(errno));
    } else {
        move_aside(fs, pf->name);
        cp_info(fs->src->cfg->name, "file %s processed", pf->name);
    }
    free(pf);
}

static void process_file(struct ing_filesrc *fs, const char *name, const struct stat *st)
{
    const struct ing_source_cfg *cfg = fs->src->cfg;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", cfg->path, name);
    if (st->st_size > cfg->max_body) {
        ing_reject(fs->l, fs->src, path, "file larger than max_body", "", 0);
        move_aside(fs, name);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char *data = malloc((size_t)st->st_size + 1);
    ssize_t got = data ? read(fd, data, (size_t)st->st_size) : -1;
    close(fd);
    if (got != st->st_size) {
        free(data);
        return; /* changed under us: next scan */
    }
    struct pending_file *pf = calloc(1, sizeof *pf);
    if (!pf || cp_cucm_file_identity(name, data, (size_t)got, pf->id) != 0) {
        free(pf);
        free(data);
        return;
    }
    if (cp_map_get(&fs->ledger, pf->id, strlen(pf->id))) {
        /* Processed before a crash that came before the move. */
        move_aside(fs, name);
        free(pf);
        free(data);
        return;
    }
    snprintf(pf->name, sizeof pf->name, "%s", name);
    pf->fs = fs;
    pf->w.loop = fs->l;
    pf->w.on_done = file_done;
    atomic_store(&pf->w.pending, 1);
    cp_map_put(&fs->busy, name, strlen(name), pf);
    ing_handle_record(fs->l, fs->src, NULL, path, data, (size_t)got, &pf->w, NULL, NULL);
    free(data);
    if (atomic_fetch_sub(&pf->w.pending, 1) == 1)
        file_done(&pf->w);
}

static void scan_dir(struct ing_filesrc *fs)
{
    if (atomic_load(&fs->l->ing->out.paused))
        return; /* backpressure: files wait on disk, which is what disks are for */
    DIR *d = opendir(fs->src->cfg->path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.' || strlen(name) >= 256 || cp_map_get(&fs->busy, name, strlen(name)))
            continue;
        /* CUCM uploads under a temporary name first; CMR files are diagnostics. */
        if (strcmp(fs->src->fmt->name, "cisco-cucm-cdr") == 0 &&
            cp_cucm_file_classify(name) == CP_CUCM_FILE_PARTIAL)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", fs->src->cfg->path, name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* Stable for one scan: an upload in progress keeps changing size or mtime. */
        char sig[64];
        snprintf(sig, sizeof sig, "%lld:%lld", (long long)st.st_size, (long long)st.st_mtime);
        char *prev = cp_map_get(&fs->seen, name, strlen(name));
        if (!prev || strcmp(prev, sig) != 0) {
            free(prev);
            cp_map_put(&fs->seen, name, strlen(name), strdup(sig));
            continue;
        }
        free(cp_map_del(&fs->seen, name, strlen(name)));
        process_file(fs, name, &st);
    }
    closedir(d);
}

/* ---- tail ---- */

static void tail_line(void *user, const char *rec, size_t len)
{
    struct ing_filesrc *fs = user;
    ing_handle_record(fs->l, fs->src, fs->state, fs->src->cfg->path, rec, len, NULL, NULL, NULL);
}

static void tail_oversize(void *user, const char *head, size_t head_len, uint64_t total)
{
    struct ing_filesrc *fs = user;
    ing_reject(fs->l, fs->src, fs->src->cfg->path, "record longer than max_record", head, head_len);
}

static void tail_read(struct ing_filesrc *fs)
{
    struct cp_frame_cb cb = {tail_line, tail_oversize, NULL, fs};
    char buf[65536];
    ssize_t n;
    while (fs->fd >= 0 && !atomic_load(&fs->l->ing->out.paused) &&
           (n = pread(fs->fd, buf, sizeof buf, fs->pos)) > 0) {
        fs->pos += n;
        cp_counter_add(fs->src->m.bytes_in, (uint64_t)n);
        cp_framer_feed(&fs->framer, buf, (size_t)n, &cb);
    }
}

static void tail_poll(struct ing_filesrc *fs)
{
    struct stat st;
    bool exists = stat(fs->src->cfg->path, &st) == 0;
    if (fs->fd >= 0) {
        tail_read(fs);
        struct stat cur;
        bool truncated = fstat(fs->fd, &cur) == 0 && cur.st_size < fs->pos;
        bool rotated = exists && st.st_ino != fs->ino;
        if (!rotated && !truncated)
            return;
        /* The old file is read to its end (above); a partial last line is a record. */
        struct cp_frame_cb cb = {tail_line, tail_oversize, NULL, fs};
        cp_framer_finish(&fs->framer, &cb);
        close(fs->fd);
        fs->fd = -1;
        cp_info(fs->src->cfg->name, "%s was %s; following the new file", fs->src->cfg->path,
                rotated ? "rotated" : "truncated");
    }
    if (!exists)
        return;
    fs->fd = open(fs->src->cfg->path, O_RDONLY | O_CLOEXEC);
    if (fs->fd < 0)
        return;
    fs->ino = st.st_ino;
    fs->pos = 0;
    tail_read(fs);
}

/* ---- timers and watches ---- */

static void on_timer(uv_timer_t *t)
{
    struct ing_filesrc *fs = t->data;
    if (fs->kind == FILE_DROP)
        scan_dir(fs);
    else
        tail_poll(fs);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct ing_filesrc *fs = h->data;
    if (status == 0)
        on_timer(&fs->timer);
}

int ing_files_start(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap)
{
    const struct ing_source_cfg *cfg = src->cfg;
    struct ing_filesrc *fs = calloc(1, sizeof *fs);
    if (!fs)
        return CP_ERR_NOMEM;
    fs->kind = cfg->transport == ING_FILE_DROP ? FILE_DROP : FILE_TAIL;
    fs->l = l;
    fs->src = src;
    fs->fd = -1;
    cp_map_init(&fs->ledger);
    cp_map_init(&fs->busy);
    cp_map_init(&fs->seen);
    cp_framer_init(&fs->framer, CP_FRAME_MODE_LINES, (size_t)cfg->max_record,
                   l->ing->cfg->deadletter_cut);
    if (fs->kind == FILE_TAIL)
        fs->state = ing_state_create(src);
    if (fs->kind == FILE_DROP) {
        struct stat st;
        if (stat(cfg->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errcap, "source %s: %s is not a directory", cfg->name, cfg->path);
            free(fs);
            return CP_ERR_CONFIG;
        }
        snprintf(fs->done_dir, sizeof fs->done_dir, "%s", cfg->done_dir ? cfg->done_dir : "");
        if (!cfg->done_dir)
            snprintf(fs->done_dir, sizeof fs->done_dir, "%s/done", cfg->path);
        if (cfg->ledger)
            snprintf(fs->ledger_path, sizeof fs->ledger_path, "%s", cfg->ledger);
        else
            snprintf(fs->ledger_path, sizeof fs->ledger_path, "%s/.callpipe-ledger", cfg->path);
        mkdir(fs->done_dir, 0750);
        ledger_load(fs);
        if (uv_fs_event_init(&l->loop, &fs->watch) == 0) {
            fs->watch.data = fs;
            fs->watching = uv_fs_event_start(&fs->watch, on_fs_event, cfg->path, 0) == 0;
        }
    } else {
        /* Start at the end: a restart must not replay a whole day of queue_log. */
        struct stat st;
        if (stat(cfg->path, &st) == 0) {
            fs->fd = open(cfg->path, O_RDONLY | O_CLOEXEC);
            fs->ino = st.st_ino;
            fs->pos = st.st_size;
        }
    }
    uv_timer_init(&l->loop, &fs->timer);
    fs->timer.data = fs;
    uv_timer_start(&fs->timer, on_timer, fs->kind == FILE_DROP ? 1000 : 200,
                   fs->kind == FILE_DROP ? 1000 : 200);
    fs->next = l->files;
    l->files = fs;
    return 0;
}

static void free_seen(struct cp_map *m)
{
    size_t it = 0;
    struct cp_map_slot *s;
    while ((s = cp_map_next(m, &it)))
        if (s->val != (void *)1)
            free(s->val);
    cp_map_free(m);
}

static void timer_closed(uv_handle_t *h)
{
    struct ing_filesrc *fs = h->data;
    if (fs->watching)
        return; /* the watch's close callback frees */
    if (fs->fd >= 0)
        close(fs->fd);
    cp_framer_close(&fs->framer);
    if (fs->state && fs->src->fmt->state_destroy)
        fs->src->fmt->state_destroy(fs->state);
    cp_map_free(&fs->ledger);
    cp_map_free(&fs->busy);
    free_seen(&fs->seen);
    free(fs);
}

static void watch_closed(uv_handle_t *h)
{
    struct ing_filesrc *fs = h->data;
    fs->watching = false;
    timer_closed((uv_handle_t *)&fs->timer);
}

void ing_files_stop(struct ing_loop *l)
{
    struct ing_filesrc *fs = l->files;
    l->files = NULL;
    while (fs) {
        struct ing_filesrc *next = fs->next;
        if (fs->kind == FILE_TAIL)
            tail_poll(fs); /* what was written before the stop is read */
        uv_timer_stop(&fs->timer);
        uv_close((uv_handle_t *)&fs->timer, fs->watching ? NULL : timer_closed);
        if (fs->watching) {
            uv_fs_event_stop(&fs->watch);
            uv_close((uv_handle_t *)&fs->watch, watch_closed);
        }
        fs = next;
    }
}
