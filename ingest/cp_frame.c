/* cp_frame.c - line and octet-counted framing with bounded memory and resynchronisation. */
#include "cp_frame.h"
#include "cp_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cp_framer_init(struct cp_framer *f, enum cp_frame_mode mode, size_t max_record,
                   size_t keep_oversize)
{
    memset(f, 0, sizeof *f);
    if (max_record == 0)
        return CP_ERR_INVAL;
    f->configured = f->mode = mode;
    f->max_record = max_record;
    f->keep_oversize = keep_oversize < max_record ? keep_oversize : max_record;
    /* The buffer is allocated on first need: 10,000 idle connections cost nothing. */
    return 0;
}

void cp_framer_close(struct cp_framer *f)
{
    free(f->buf);
    f->buf = NULL;
    f->len = 0;
}

static int buf_append(struct cp_framer *f, const char *p, size_t n)
{
    if (!f->buf) {
        f->buf = malloc(f->max_record);
        if (!f->buf)
            return CP_ERR_NOMEM;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

static void emit_record(struct cp_framer *f, const char *p, size_t n, const struct cp_frame_cb *cb)
{
    if (f->mode == CP_FRAME_MODE_LINES && n > 0 && p[n - 1] == '\r')
        n--; /* CRLF */
    if (n == 0 && f->mode == CP_FRAME_MODE_LINES)
        return; /* blank lines are keep-alives, not records */
    f->records++;
    cb->record(cb->user, p, n);
}

static void feed_lines(struct cp_framer *f, const char *data, size_t len,
                       const struct cp_frame_cb *cb)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t seg = nl ? (size_t)(nl - (data + i)) : len - i;
        if (f->skipping) {
            f->skipped += seg;
            if (!nl)
                return;
            /* The oversized line ends here: report it and resynchronise. */
            if (cb->oversize)
                cb->oversize(cb->user, f->buf ? f->buf : "", f->len, f->skipped);
            f->skipping = false;
            f->skipped = 0;
            f->len = 0;
            i += seg + 1;
            continue;
        }
        if (f->len + seg > f->max_record) {
            /* Keep the head for the dead letter, drop the rest as it streams by;
             * the skipping branch above then counts this segment and finds the LF. */
            uint64_t before = f->len;
            if (f->len < f->keep_oversize) {
                size_t take = seg < f->keep_oversize - f->len ? seg : f->keep_oversize - f->len;
                if (buf_append(f, data + i, take) != 0)
                    f->len = 0;
            } else {
                f->len = f->keep_oversize;
            }
            f->skipped = before;
            f->skipping = true;
            f->oversized++;
            continue;
        }
        if (!nl) {
            if (buf_append(f, data + i, seg) != 0) {
                f->len = 0;
                f->skipping = true;
                f->oversized++;
            }
            return;
        }
        if (f->len == 0) {
            emit_record(f, data + i, seg, cb); /* zero-copy: whole line inside this read */
        } else if (buf_append(f, data + i, seg) == 0) {
            emit_record(f, f->buf, f->len, cb);
            f->len = 0;
        } else {
            f->len = 0;
        }
        i += seg + 1;
    }
}

/* Mark the current position as garbage: skip to the next LF, then detect the mode again. */
static void octet_bad(struct cp_framer *f, const char *reason, const char *head, size_t n,
                      const struct cp_frame_cb *cb)
{
    f->bad_frames++;
    if (cb->bad_frame)
        cb->bad_frame(cb->user, reason, head, n > 64 ? 64 : n);
    f->octet_digits = 0;
    f->octet_len = 0;
    f->octet_want = 0;
    f->len = 0;
}

static size_t skip_to_lf(const char *data, size_t i, size_t len)
{
    const char *nl = memchr(data + i, '\n', len - i);
    return nl ? (size_t)(nl - data) + 1 : len;
}

static void feed_octet(struct cp_framer *f, const char *data, size_t len,
                       const struct cp_frame_cb *cb, size_t *consumed)
{
    size_t i = 0;
    while (i < len) {
        if (f->skipping) { /* after a bad header: resynchronise at LF */
            size_t j = skip_to_lf(data, i, len);
            bool found = j < len || (j == len && data[len - 1] == '\n');
            i = j;
            if (found) {
                f->skipping = false;
                if (f->configured == CP_FRAME_MODE_AUTO) {
                    f->mode = CP_FRAME_MODE_AUTO; /* detect the framing again */
                    *consumed = i;
                    return;
                }
            }
            continue;
        }
        if (f->octet_want == 0) {
            char c = data[i];
            bool digit = c >= '0' && c <= '9' && !(c == '0' && f->octet_digits == 0);
            if (f->configured == CP_FRAME_MODE_AUTO && !f->octet_committed && f->octet_digits > 0 &&
                (digit ? f->octet_digits >= 9 : c != ' ')) {
                /* Auto-detection guessed octet counting from a leading digit, but
                 * what follows the digits is not "<length> <frame>": the stream is
                 * plain lines that start with a number (SMDR dates, queue_log
                 * epochs).  The digits are given back to the line framer (a
                 * length never starts with 0, so they are exactly octet_len). */
                char digits[24];
                int dn = snprintf(digits, sizeof digits, "%llu", (unsigned long long)f->octet_len);
                f->octet_digits = 0;
                f->octet_len = 0;
                f->mode = CP_FRAME_MODE_LINES;
                feed_lines(f, digits, (size_t)dn, cb);
                *consumed = i;
                return;
            }
            if (digit) {
                if (++f->octet_digits > 9) {
                    octet_bad(f, "octet count too long", data + i, len - i, cb);
                    f->skipping = true;
                    continue;
                }
                f->octet_len = f->octet_len * 10 + (uint64_t)(c - '0');
                i++;
                continue;
            }
            if (c == ' ' && f->octet_digits > 0) {
                i++;
                f->octet_committed = true; /* "<digits> " seen: octet counting for good */
                f->octet_want = f->octet_len;
                f->octet_skip = f->octet_len > f->max_record;
                f->skipped = 0;
                if (f->octet_skip)
                    f->oversized++;
                f->octet_digits = 0;
                f->octet_len = 0;
                continue;
            }
            if ((c == '\n' || c == '\r') && f->octet_digits == 0) {
                i++; /* stray line ends between frames (some senders add them) */
                continue;
            }
            if (f->configured == CP_FRAME_MODE_AUTO && f->octet_digits == 0) {
                /* Not a length: the sender switched to plain lines. */
                f->mode = CP_FRAME_MODE_LINES;
                *consumed = i;
                return;
            }
            octet_bad(f, "malformed octet count", data + i, len - i, cb);
            f->skipping = true;
            continue;
        }
        size_t avail = len - i;
        size_t take = avail < f->octet_want ? avail : (size_t)f->octet_want;
        if (f->octet_skip) {
            size_t room = f->len < f->keep_oversize ? f->keep_oversize - f->len : 0;
            size_t keep = take < room ? take : room;
            if (keep && buf_append(f, data + i, keep) != 0)
                keep = 0;
            f->skipped += take;
            f->octet_want -= take;
            i += take;
            if (f->octet_want == 0) {
                if (cb->oversize)
                    cb->oversize(cb->user, f->buf ? f->buf : "", f->len, f->skipped);
                f->len = 0;
                f->octet_skip = false;
            }
            continue;
        }
        if (f->len == 0 && take == f->octet_want) {
            f->octet_want = 0;
            emit_record(f, data + i, take, cb);
        } else {
            if (buf_append(f, data + i, take) != 0) {
                f->len = 0;
                f->octet_want = 0;
                return;
            }
            f->octet_want -= take;
            if (f->octet_want == 0) {
                emit_record(f, f->buf, f->len, cb);
                f->len = 0;
            }
        }
        i += take;
    }
    *consumed = len;
}

void cp_framer_feed(struct cp_framer *f, const char *data, size_t len, const struct cp_frame_cb *cb)
{
    while (len > 0) {
        if (f->mode == CP_FRAME_MODE_AUTO) {
            /* RFC 6587 3.4.1: a frame starts with a non-zero digit; anything
             * else (a '<' of syslog, a '{' of JSON) means LF-framed lines. */
            char c = data[0];
            if (c == '\n' || c == '\r') {
                data++;
                len--;
                continue;
            }
            f->mode = (c >= '1' && c <= '9') ? CP_FRAME_MODE_OCTET : CP_FRAME_MODE_LINES;
        }
        if (f->mode == CP_FRAME_MODE_LINES) {
            feed_lines(f, data, len, cb);
            return;
        }
        size_t used = len;
        feed_octet(f, data, len, cb, &used);
        data += used;
        len -= used;
    }
}

void cp_framer_finish(struct cp_framer *f, const struct cp_frame_cb *cb)
{
    if (f->mode == CP_FRAME_MODE_LINES) {
        if (f->skipping) {
            if (cb->oversize)
                cb->oversize(cb->user, f->buf ? f->buf : "", f->len, f->skipped);
        } else if (f->len > 0) {
            emit_record(f, f->buf, f->len, cb);
        }
    } else if (f->mode == CP_FRAME_MODE_OCTET && (f->octet_want > 0 || f->octet_digits > 0)) {
        f->bad_frames++;
        if (cb->bad_frame)
            cb->bad_frame(cb->user, "stream ended inside an octet-counted frame", f->buf ? f->buf : "",
                          f->len > 64 ? 64 : f->len);
    }
    f->len = 0;
    f->skipping = false;
    f->skipped = 0;
}
