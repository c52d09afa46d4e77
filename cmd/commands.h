/* commands.h - the subcommands of the single `callpipe` binary. */
#ifndef CP_COMMANDS_H
#define CP_COMMANDS_H

/* Each returns the process exit code: 0 ok, 1 runtime failure, 2 usage or configuration error. */
int cp_cmd_migrate(int argc, char **argv);
int cp_cmd_ingest(int argc, char **argv);
int cp_cmd_aggregator(int argc, char **argv);
int cp_cmd_loader(int argc, char **argv);
int cp_cmd_report(int argc, char **argv);

#endif
