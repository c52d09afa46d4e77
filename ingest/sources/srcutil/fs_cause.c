/* fs_cause.c - FreeSWITCH hangup cause names to the canonical disposition and Q.850 code. */
#include "fs_cause.h"

#include "srcutil.h"

struct cause {
    const char *name;
    unsigned char q850;
};

/* The Q.850 subset of switch_call_cause_t (switch_types.h), by name. */
static const struct cause causes[] = {
    {"UNALLOCATED_NUMBER", 1},
    {"NO_ROUTE_TRANSIT_NET", 2},
    {"NO_ROUTE_DESTINATION", 3},
    {"CHANNEL_UNACCEPTABLE", 6},
    {"CALL_AWARDED_DELIVERED", 7},
    {"NORMAL_CLEARING", 16},
    {"USER_BUSY", 17},
    {"NO_USER_RESPONSE", 18},
    {"NO_ANSWER", 19},
    {"SUBSCRIBER_ABSENT", 20},
    {"CALL_REJECTED", 21},
    {"NUMBER_CHANGED", 22},
    {"REDIRECTION_TO_NEW_DESTINATION", 23},
    {"EXCHANGE_ROUTING_ERROR", 25},
    {"DESTINATION_OUT_OF_ORDER", 27},
    {"INVALID_NUMBER_FORMAT", 28},
    {"FACILITY_REJECTED", 29},
    {"RESPONSE_TO_STATUS_ENQUIRY", 30},
    {"NORMAL_UNSPECIFIED", 31},
    {"NORMAL_CIRCUIT_CONGESTION", 34},
    {"NETWORK_OUT_OF_ORDER", 38},
    {"NORMAL_TEMPORARY_FAILURE", 41},
    {"SWITCH_CONGESTION", 42},
    {"ACCESS_INFO_DISCARDED", 43},
    {"REQUESTED_CHAN_UNAVAIL", 44},
    {"PRE_EMPTED", 45},
    {"FACILITY_NOT_SUBSCRIBED", 50},
    {"OUTGOING_CALL_BARRED", 52},
    {"INCOMING_CALL_BARRED", 54},
    {"BEARERCAPABILITY_NOTAUTH", 57},
    {"BEARERCAPABILITY_NOTAVAIL", 58},
    {"SERVICE_UNAVAILABLE", 63},
    {"BEARERCAPABILITY_NOTIMPL", 65},
    {"CHAN_NOT_IMPLEMENTED", 66},
    {"FACILITY_NOT_IMPLEMENTED", 69},
    {"SERVICE_NOT_IMPLEMENTED", 79},
    {"INVALID_CALL_REFERENCE", 81},
    {"INCOMPATIBLE_DESTINATION", 88},
    {"INVALID_MSG_UNSPECIFIED", 95},
    {"MANDATORY_IE_MISSING", 96},
    {"MESSAGE_TYPE_NONEXIST", 97},
    {"WRONG_MESSAGE", 98},
    {"IE_NONEXIST", 99},
    {"INVALID_IE_CONTENTS", 100},
    {"WRONG_CALL_STATE", 101},
    {"RECOVERY_ON_TIMER_EXPIRE", 102},
    {"MANDATORY_IE_LENGTH_ERROR", 103},
    {"PROTOCOL_ERROR", 111},
    {"INTERWORKING", 127},
};

int cp_fs_cause_q850(const char *cause, size_t len)
{
    for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++)
        if (cp_srcutil_eq(cause, len, causes[i].name))
            return causes[i].q850;
    return 0;
}

enum cp_disp cp_fs_cause_disp(const char *cause, size_t len, bool answered)
{
    if (answered)
        return CP_DISP_ANSWERED;
    if (!cause || len == 0)
        return CP_DISP_UNKNOWN;
    if (cp_srcutil_eq(cause, len, "USER_BUSY"))
        return CP_DISP_BUSY;
    if (cp_srcutil_eq(cause, len, "NO_ANSWER") || cp_srcutil_eq(cause, len, "NO_USER_RESPONSE"))
        return CP_DISP_NO_ANSWER;
    if (cp_srcutil_eq(cause, len, "ORIGINATOR_CANCEL") || cp_srcutil_eq(cause, len, "LOSE_RACE") ||
        cp_srcutil_eq(cause, len, "PICKED_OFF"))
        return CP_DISP_CANCELED;
    if (cp_srcutil_eq(cause, len, "NORMAL_CIRCUIT_CONGESTION") ||
        cp_srcutil_eq(cause, len, "SWITCH_CONGESTION"))
        return CP_DISP_CONGESTION;
    return CP_DISP_FAILED;
}
