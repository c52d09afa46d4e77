/* ld_csv.c - Bulk API 2.0 CSV: the upload writer and the results parser (pure), plus a byte buffer. */
#include "loader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_utf8.h"

int ld_buf_append(struct ld_buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return CP_ERR_NOMEM;
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ld_buf_puts(struct ld_buf *b, const char *s)
{
    return ld_buf_append(b, s, strlen(s));
}

int ld_buf_printf(struct ld_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CP_ERR_INVAL;
    if ((size_t)n < sizeof small)
        return ld_buf_append(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return CP_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = ld_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

void ld_buf_reset(struct ld_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ld_buf_free(struct ld_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- writer ---- */

int ld_csv_field(struct ld_buf *b, const char *val, bool first)
{
    if (val && !cp_utf8_valid(val, strlen(val)))
        return CP_ERR_UTF8;
    size_t mark = b->len;
    int rc = first ? 0 : ld_buf_append(b, ",", 1);
    if (rc)
        return rc;
    if (!val)
        return ld_buf_puts(b, LD_CSV_NULL);
    /* A literal "#N/A" would read as null either way; nothing to escape there. */
    if (!strpbrk(val, ",\"\r\n"))
        return ld_buf_puts(b, val);
    rc = ld_buf_append(b, "\"", 1);
    for (const char *p = val; !rc && *p; p++) {
        if (*p == '"')
            rc = ld_buf_append(b, "\"\"", 2);
        else if (*p == '\r') {
            /* CRLF and lone CR both become the job's LF line ending. */
            rc = ld_buf_append(b, "\n", 1);
            if (p[1] == '\n')
                p++;
        } else
            rc = ld_buf_append(b, p, 1);
    }
    if (!rc)
        rc = ld_buf_append(b, "\"", 1);
    if (rc)
        b->len = mark;
    return rc;
}

int ld_csv_end_row(struct ld_buf *b)
{
    return ld_buf_append(b, "\n", 1);
}

/* ---- parser ---- */

struct cellv {
    char **v;
    size_t n, cap;
};

static int cellv_push(struct cellv *cv, char *s)
{
    if (cv->n == cv->cap) {
        size_t cap = cv->cap ? cv->cap * 2 : 64;
        char **p = realloc(cv->v, cap * sizeof *p);
        if (!p)
            return CP_ERR_NOMEM;
        cv->v = p;
        cv->cap = cap;
    }
    cv->v[cv->n++] = s;
    return 0;
}

int ld_csv_parse(const char *data, size_t len, struct cp_arena *a, struct ld_table *out)
{
    memset(out, 0, sizeof *out);
    struct cellv cv = {0};
    struct ld_buf field = {0};
    size_t i = 0, row_fields = 0, ncols = 0, rows = 0;
    int rc = 0;
    if (len == 0)
        return 0;
    while (i < len) {
        /* Blank lines between rows (a stray final newline) carry no row. */
        if (row_fields == 0 && (data[i] == '\n' || data[i] == '\r')) {
            i++;
            continue;
        }
        /* one field */
        ld_buf_reset(&field);
        if (data[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    rc = CP_ERR_PARSE; /* unterminated quote */
                    goto done;
                }
                if (data[i] == '"') {
                    if (i + 1 < len && data[i + 1] == '"') {
                        rc = ld_buf_append(&field, "\"", 1);
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                rc = ld_buf_append(&field, data + i, 1);
                i++;
                if (rc)
                    goto done;
            }
            if (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
                rc = CP_ERR_PARSE; /* text after a closing quote */
                goto done;
            }
        } else {
            size_t s = i;
            while (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
                if (data[i] == '"') {
                    rc = CP_ERR_PARSE;
                    goto done;
                }
                i++;
            }
            rc = ld_buf_append(&field, data + s, i - s);
        }
        if (rc)
            goto done;
        char *cell = cp_arena_strndup(a, field.data ? field.data : "", field.len);
        if (!cell || cellv_push(&cv, cell) != 0) {
            rc = CP_ERR_NOMEM;
            goto done;
        }
        row_fields++;
        bool end_row = i >= len || data[i] != ',';
        if (i < len && data[i] == ',') {
            i++;
            if (i >= len) { /* trailing comma at EOF: one more empty field */
                char *e = cp_arena_strdup(a, "");
                if (!e || cellv_push(&cv, e) != 0) {
                    rc = CP_ERR_NOMEM;
                    goto done;
                }
                row_fields++;
                end_row = true;
            }
        }
        if (end_row) {
            if (i < len && data[i] == '\r')
                i++;
            if (i < len && data[i] == '\n')
                i++;
            if (rows == 0)
                ncols = row_fields;
            else if (row_fields != ncols) {
                rc = CP_ERR_PARSE;
                goto done;
            }
            rows++;
            row_fields = 0;
        }
    }
    out->ncols = ncols;
    out->nrows = rows ? rows - 1 : 0;
    char **cells = cp_arena_alloc(a, (cv.n ? cv.n : 1) * sizeof *cells);
    if (!cells) {
        rc = CP_ERR_NOMEM;
        goto done;
    }
    memcpy(cells, cv.v, cv.n * sizeof *cells);
    out->header = cells;
    out->cells = cells + ncols;
done:
    free(cv.v);
    ld_buf_free(&field);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int ld_table_col(const struct ld_table *t, const char *name)
{
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->header[c], name) == 0)
            return (int)c;
    return -1;
}
