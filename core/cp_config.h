/* cp_config.h - table-driven service configuration (YAML via libcyaml) with secret references. */
#ifndef CP_CONFIG_H
#define CP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cp_err.h"

/*
 * A service describes its configuration once, as a table of fields (key, type,
 * default, bounds, help).  From that one table we build the libcyaml schema at
 * runtime, apply defaults and bounds, resolve secrets, print a redacted dump and
 * generate the Markdown reference.  Nobody writes a key twice.
 *
 *   struct src_cfg { char *name; int64_t port; int64_t idle_ms; int format; };
 *   static const char *const formats[] = {"json", "smdr", NULL};
 *   static const struct cp_config_field src_fields[] = {
 *       {CP_CFG_AT(struct src_cfg, name), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
 *        .help = "source id"},
 *       {CP_CFG_AT(struct src_cfg, port), CP_CFG_INT, .dflt = "5000", .min = 1, .max = 65535,
 *        .help = "TCP port"},
 *       {CP_CFG_AT_KEY("idle_timeout", struct src_cfg, idle_ms), CP_CFG_DURATION, .dflt = "30s"},
 *       {CP_CFG_AT(struct src_cfg, format), CP_CFG_ENUM, .enum_names = formats, .dflt = "json"},
 *   };
 *   static const struct cp_config_table src_table = CP_CFG_TABLE(struct src_cfg, src_fields);
 *
 * Field C types (checked when a table is loaded, so mistakes fail loudly):
 *   STRING   char *               (malloc'd; NULL when absent without default)
 *   INT      int32_t or int64_t   (bounds [min, max] when min < max)
 *   BOOL     bool                 (true/false, yes/no, on/off)
 *   DURATION int64_t              milliseconds: "250ms", "5s", "2m", "1h", "1d", "1m30s", "0"
 *   SIZE     int64_t              bytes: "512", "64KiB", "10MB", "1GiB" (B, KB/MB/GB, KiB/MiB/GiB)
 *   ENUM     int                  index into enum_names (NULL-terminated)
 *   SECRET   struct cp_secret     a reference "env:NAME" or "file:PATH", resolved at load
 *   MAPPING  embedded struct      described by .sub
 *   LIST     pointer + size_t     sequence of mappings: items pointer at the field,
 *                                 count at count_offset (see CP_CFG_LIST_AT); bounds = entries
 *
 * Secrets: literal values in secret fields are refused (a secret typed into a file ends up
 * in backups, tickets and git); the error never repeats the value.  Resolved values never
 * appear in errors, logs or dumps: dumps print "<secret env:NAME>".  file: secrets lose
 * one trailing newline ("\n" or "\r\n"); a file readable by group or others draws a warning.
 *
 * Environment overrides: when the table has an env_prefix (e.g. "CALLPIPE_INGEST"), every
 * scalar key outside lists can be overridden by <prefix>_<PATH>, the dotted path in upper
 * case with '.' -> '_': CALLPIPE_INGEST_LOG_LEVEL, CALLPIPE_INGEST_KAFKA_BROKERS.  The
 * override is parsed exactly like the file value (a secret override is again env:/file:).
 */

enum cp_config_type {
    CP_CFG_STRING = 1,
    CP_CFG_INT,
    CP_CFG_BOOL,
    CP_CFG_DURATION,
    CP_CFG_SIZE,
    CP_CFG_ENUM,
    CP_CFG_SECRET,
    CP_CFG_MAPPING,
    CP_CFG_LIST,
};

enum cp_config_flag {
    CP_CFG_REQUIRED = 1 << 0, /* absent (or null) is an error; no default allowed */
};

struct cp_config_table;

struct cp_config_field {
    const char *key;
    size_t offset;
    size_t size; /* sizeof the member, for type checks and int width */
    /* type follows size so that `{CP_CFG_AT(T, m), CP_CFG_INT, ...}` works positionally */
    enum cp_config_type type;
    unsigned flags;
    const char *dflt;               /* text parsed like a YAML value; NULL = none */
    int64_t min, max;               /* inclusive; applied when min < max */
    const char *const *enum_names;  /* ENUM: NULL-terminated names, value = index */
    const struct cp_config_table *sub; /* MAPPING / LIST entry layout */
    const char *help;
    size_t count_offset; /* LIST only: offset of the size_t entry count */
};

struct cp_config_table {
    const char *name;       /* e.g. "ingest"; used in docs */
    size_t size;            /* sizeof the C struct this table fills */
    const struct cp_config_field *fields;
    size_t nfields;
    const char *env_prefix; /* top-level tables only; NULL disables overrides */
};

/* A resolved secret.  value is NUL-terminated too; both freed by cp_config_free. */
struct cp_secret {
    char *ref;   /* "env:NAME" / "file:PATH", safe to print */
    char *value; /* never print or log */
    size_t len;
};

#define CP_CFG_MEMBER_SIZE(T, m) sizeof(((T *)0)->m)
#define CP_CFG_AT(T, m) .key = #m, .offset = offsetof(T, m), .size = CP_CFG_MEMBER_SIZE(T, m)
#define CP_CFG_AT_KEY(k, T, m) .key = (k), .offset = offsetof(T, m), .size = CP_CFG_MEMBER_SIZE(T, m)
/* Sequence of mappings: `items` is a pointer to the entry struct, `count` a size_t. */
#define CP_CFG_LIST_AT(T, items, count)                                                            \
    .count_offset = offsetof(T, count), .key = #items, .offset = offsetof(T, items),              \
    .size = CP_CFG_MEMBER_SIZE(T, items)
#define CP_CFG_TABLE(T, fields_)                                                                   \
    {                                                                                              \
        .name = #T, .size = sizeof(T), .fields = (fields_), .nfields = CP_ARRAY_LEN(fields_)       \
    }

/*
 * Loads and validates `path` into `out` (a zeroed struct of t->size bytes), applying
 * defaults and environment overrides and resolving secrets.  On failure returns a negative
 * cp_err code, leaves `out` zeroed and writes one line to err:
 *   ingest.yaml:7:5: unknown key "listne" in sources[0]; valid keys: name, org, ...
 * err never contains a secret value.
 */
int cp_config_load(const struct cp_config_table *t, const char *path, void *out, char *err,
                   size_t errcap) CP_MUSTCHECK;
/* Frees everything cp_config_load allocated (secret buffers are zeroed first); zeroes cfg. */
void cp_config_free(const struct cp_config_table *t, void *cfg);
/* YAML-like dump of the loaded values; secrets are printed as "<secret env:NAME>". */
void cp_config_dump(const struct cp_config_table *t, const void *cfg, FILE *out);
/* Markdown reference: | key | type | default | bounds | description |, nested keys dotted. */
void cp_config_doc_markdown(const struct cp_config_table *t, FILE *out);
/* Checks a table for author mistakes (sizes, defaults that do not parse); 0 or CP_ERR_INTERNAL. */
int cp_config_table_check(const struct cp_config_table *t, char *err, size_t errcap);

/*
 * `--check-config` for every service: loads, resolves secrets, prints "config ok" and the
 * redacted dump to out and returns 0; otherwise prints the error to errout and returns 2.
 * Use the result as the process exit status.
 */
int cp_config_check_main(const struct cp_config_table *t, const char *path, FILE *out,
                         FILE *errout);

/*
 * Resolves "env:NAME" or "file:PATH" into out (NUL-terminated; *len without the NUL).
 * Literals are refused.  Returns 0, CP_ERR_SECRET (unset variable, unreadable file),
 * CP_ERR_TOOBIG (does not fit cap) or CP_ERR_INVAL (not a reference).  err names the
 * variable or file, never the value.
 */
int cp_secret_resolve(const char *ref, char *out, size_t cap, size_t *len, char *err,
                      size_t errcap) CP_MUSTCHECK;
/* True for "env:..." and "file:..." references. */
bool cp_secret_is_ref(const char *s);

/*
 * The command line every service shares: -c/--config FILE, --check-config,
 * --print-config-doc, -h/--help.  Prints the help or the configuration reference
 * itself.  Returns -1 when the service should go on (*path set, *check true for
 * --check-config), or the exit status to return (0 after help or docs, 2 on a
 * usage error).
 */
int cp_config_cli(int argc, char **argv, const struct cp_config_table *t, void (*usage)(FILE *),
                  const char **path, bool *check);

/* Parsers shared with other modules (e.g. CLI flags); 0 or CP_ERR_PARSE / CP_ERR_RANGE. */
int cp_config_parse_duration(const char *s, int64_t *ms);
int cp_config_parse_size(const char *s, int64_t *bytes);
int cp_config_parse_bool(const char *s, bool *v);

#endif
