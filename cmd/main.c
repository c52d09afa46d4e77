/* main.c - `callpipe <subcommand>`: one binary, one container image, every service. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "cp_log.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct subcommand subcommands[] = {
    {"ingest", cp_cmd_ingest, "collect PBX call events over TCP, HTTP and syslog into Kafka"},
    {"aggregator", cp_cmd_aggregator, "turn events into queue metrics and finished calls in PostgreSQL"},
    {"loader", cp_cmd_loader, "send finished calls to Salesforce with Bulk API 2.0 ingest jobs"},
    {"migrate", cp_cmd_migrate, "apply the numbered SQL migrations in schema/ to PostgreSQL"},
    {"report", cp_cmd_report, "queue KPIs (offered, answered, SL, ASA, AHT, abandons) from PostgreSQL"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: callpipe <command> [options]\n\ncommands:\n");
    for (unsigned i = 0; i < CP_ARRAY_LEN(subcommands); i++)
        fprintf(f, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(f, "\n`callpipe <command> --help` shows a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (unsigned i = 0; i < CP_ARRAY_LEN(subcommands); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            cp_log_set_service(subcommands[i].name);
            return subcommands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "callpipe: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
