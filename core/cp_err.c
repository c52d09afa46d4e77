/* cp_err.c - names, messages and retry classification of callpipe error codes. */
#include "cp_err.h"

struct err_info {
    int code;
    bool retriable;
    const char *name;
    const char *msg;
};

static const struct err_info err_table[] = {
#define CP_ERR_ROW(name, val, retry, msg) {val, retry, #name, msg},
    CP_ERR_LIST(CP_ERR_ROW)
#undef CP_ERR_ROW
};

static const struct err_info *lookup(int err)
{
    for (unsigned i = 0; i < CP_ARRAY_LEN(err_table); i++)
        if (err_table[i].code == err)
            return &err_table[i];
    return 0;
}

const char *cp_err_name(int err)
{
    const struct err_info *e = lookup(err);
    return e ? e->name : "CP_ERR_UNKNOWN";
}

const char *cp_err_str(int err)
{
    const struct err_info *e = lookup(err);
    return e ? e->msg : "unknown error";
}

bool cp_err_is_retriable(int err)
{
    const struct err_info *e = lookup(err);
    return e ? e->retriable : false;
}
