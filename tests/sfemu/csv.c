/* csv.c - the emulator's pure CSV reader: RFC 4180 with the job's delimiter and line ending. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfemu.h"

static void csv_free(struct emu_csv *c)
{
    for (size_t j = 0; j < c->ncols; j++)
        free(c->header[j]);
    free(c->header);
    for (size_t i = 0; i < c->nrows; i++) {
        for (size_t j = 0; j < c->nvals[i]; j++)
            free(c->rows[i][j]);
        free(c->rows[i]);
        free(c->row_error[i]);
    }
    free(c->rows);
    free(c->nvals);
    free(c->row_error);
    memset(c, 0, sizeof *c);
}

static char *line_ending_error(bool crlf)
{
    char m[160];
    snprintf(m, sizeof m,
             "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting "
             "is %s",
             crlf ? "CRLF" : "LF");
    return xstrdup(m);
}

/*
 * Splits `data` into a header and rows.  Returns NULL, or a malloc'd job-level errorMessage
 * (the job then goes Failed with 0 processed / 0 failed).  Line terminators outside quotes
 * must match the job's lineEnding (Salesforce fails the whole job otherwise); with
 * `strict_quoted` the same holds inside quoted values (third-party reports, UNCONFIRMED).
 * Per-row problems (a stray quote) become row_error and fail only that row.
 */
static char *csv_parse(const char *data, size_t len, char delim, bool crlf, bool strict_quoted,
                       bool require_final, struct emu_csv *out)
{
    memset(out, 0, sizeof *out);
    size_t pos = 0, cap = 0;
    bool have_header = false;
    struct sb field = {0};
    while (pos < len) {
        char **vals = NULL;
        size_t nv = 0, vcap = 0;
        char *row_err = NULL;
        bool ended = false, terminated = false;
        size_t rec_start = pos;
        while (!ended) {
            field.len = 0;
            if (field.p)
                field.p[0] = 0;
            if (pos < len && data[pos] == '"') {
                pos++;
                for (;;) {
                    if (pos >= len) {
                        free(field.p);
                        for (size_t j = 0; j < nv; j++)
                            free(vals[j]);
                        free(vals);
                        free(row_err);
                        return xstrdup("ClientInputError : Unterminated quoted field in CSV data");
                    }
                    char c = data[pos];
                    if (c == '"') {
                        if (pos + 1 < len && data[pos + 1] == '"') {
                            sb_add(&field, "\"", 1);
                            pos += 2;
                            continue;
                        }
                        pos++;
                        break;
                    }
                    if (strict_quoted && c == '\n') {
                        bool cr = pos > 0 && data[pos - 1] == '\r';
                        if (cr != crlf) {
                            free(field.p);
                            for (size_t j = 0; j < nv; j++)
                                free(vals[j]);
                            free(vals);
                            free(row_err);
                            return line_ending_error(crlf);
                        }
                    }
                    sb_add(&field, &c, 1);
                    pos++;
                }
                /* After a closing quote only a delimiter or a line end may follow. */
                while (pos < len && data[pos] != delim && data[pos] != '\n' &&
                       !(data[pos] == '\r' && pos + 1 < len && data[pos + 1] == '\n')) {
                    if (!row_err)
                        row_err = xstrdup("INVALID_FIELD:Unexpected character after a closing "
                                          "quote in CSV data");
                    sb_add(&field, &data[pos], 1);
                    pos++;
                }
            } else {
                while (pos < len && data[pos] != delim && data[pos] != '\n' &&
                       !(data[pos] == '\r' && pos + 1 < len && data[pos + 1] == '\n')) {
                    if (data[pos] == '"' && !row_err)
                        row_err = xstrdup("INVALID_FIELD:Unexpected quote in an unquoted CSV "
                                          "value");
                    sb_add(&field, &data[pos], 1);
                    pos++;
                }
            }
            if (nv == vcap) {
                vcap = vcap ? vcap * 2 : 16;
                vals = xrealloc(vals, vcap * sizeof *vals);
            }
            vals[nv++] = xstrndup(field.p ? field.p : "", field.len);
            if (pos < len && data[pos] == delim) {
                pos++;
                continue;
            }
            ended = true;
            if (pos < len) {
                bool cr = data[pos] == '\r';
                if (cr != crlf) {
                    free(field.p);
                    for (size_t j = 0; j < nv; j++)
                        free(vals[j]);
                    free(vals);
                    free(row_err);
                    return line_ending_error(crlf);
                }
                pos += cr ? 2 : 1;
                terminated = true;
            }
        }
        if (!terminated && require_final) {
            free(field.p);
            for (size_t j = 0; j < nv; j++)
                free(vals[j]);
            free(vals);
            free(row_err);
            return line_ending_error(crlf);
        }
        /* Blank lines carry no record. */
        if (nv == 1 && vals[0][0] == 0 && pos - rec_start <= (crlf ? 2u : 1u)) {
            free(vals[0]);
            free(vals);
            free(row_err);
            continue;
        }
        if (!have_header) {
            out->header = vals;
            out->ncols = nv;
            have_header = true;
            free(row_err);
            continue;
        }
        if (out->nrows == cap) {
            cap = cap ? cap * 2 : 1024;
            out->rows = xrealloc(out->rows, cap * sizeof *out->rows);
            out->nvals = xrealloc(out->nvals, cap * sizeof *out->nvals);
            out->row_error = xrealloc(out->row_error, cap * sizeof *out->row_error);
        }
        if (!row_err && nv != out->ncols) {
            char m[128];
            snprintf(m, sizeof m, "INVALID_FIELD:Row has %zu columns, the header has %zu", nv,
                     out->ncols);
            row_err = xstrdup(m);
        }
        out->rows[out->nrows] = vals;
        out->nvals[out->nrows] = nv;
        out->row_error[out->nrows] = row_err;
        out->nrows++;
    }
    free(field.p);
    if (!have_header)
        return xstrdup("ClientInputError : No data found in the uploaded CSV");
    return NULL;
}
