/* pbxwire_asterisk.c - PLACEHOLDER: being written (a helper owns this file). */
#include "pbxwire.h"

const struct pw_wire pw_wire_ami = {.name = "ami", .format = "asterisk-ami", .transport = PW_TCP_SERVER};
const struct pw_wire pw_wire_queue_log = {.name = "queue-log", .format = "asterisk-queue-log", .transport = PW_TCP};
const struct pw_wire pw_wire_queue_log_syslog = {.name = "queue-log-syslog", .format = "asterisk-queue-log", .transport = PW_SYSLOG_TCP};
const struct pw_wire pw_wire_cdr_csv = {.name = "cdr-csv", .format = "asterisk-cdr-csv", .transport = PW_TCP};
