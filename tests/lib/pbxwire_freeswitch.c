/* pbxwire_freeswitch.c - PLACEHOLDER: being written (a helper owns this file). */
#include "pbxwire.h"

const struct pw_wire pw_wire_fs_esl = {.name = "fs-esl", .format = "freeswitch-esl", .transport = PW_TCP_SERVER};
const struct pw_wire pw_wire_fs_json_cdr = {.name = "fs-json-cdr", .format = "freeswitch-json-cdr", .transport = PW_HTTP};
