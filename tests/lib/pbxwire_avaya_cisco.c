/* pbxwire_avaya_cisco.c - PLACEHOLDER: being written (a helper owns this file). */
#include "pbxwire.h"

const struct pw_wire pw_wire_smdr = {.name = "smdr", .format = "avaya-smdr", .transport = PW_TCP};
const struct pw_wire pw_wire_cucm = {.name = "cucm", .format = "cisco-cucm-cdr", .transport = PW_FILE_DROP};
