/* pbxwire_cloud.c - PLACEHOLDER: being written (a helper owns this file). */
#include "pbxwire.h"

const struct pw_wire pw_wire_connect = {.name = "connect", .format = "amazon-connect-ctr", .transport = PW_HTTP};
const struct pw_wire pw_wire_twilio_voice = {.name = "twilio-voice", .format = "twilio-voice", .transport = PW_HTTP};
const struct pw_wire pw_wire_taskrouter = {.name = "taskrouter", .format = "twilio-taskrouter", .transport = PW_HTTP};
