/* schema.c - VoiceCall and Task field lists (reference/salesforce.md section 5), describe, value checks. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfemu.h"

/*
 * flags: C createable, U updateable, N nillable, D defaulted on create, X external id,
 * Q unique, L idLookup, R restricted picklist, A autonumber.
 */
struct field_spec {
    const char *name, *label;
    enum emu_ftype type;
    int length;
    const char *flags;
    const char *picklist; /* comma separated */
    const char *ref_to;
    const char *rel_name;
};

/* System fields every object has. */
static const struct field_spec system_fields[] = {
    {"Id", "Voice Call ID", FT_ID, 18, "DL", NULL, NULL, NULL},
    {"IsDeleted", "Deleted", FT_BOOLEAN, 0, "D", NULL, NULL, NULL},
    {"CreatedDate", "Created Date", FT_DATETIME, 0, "D", NULL, NULL, NULL},
    {"CreatedById", "Created By ID", FT_REFERENCE, 18, "D", NULL, "User", "CreatedBy"},
    {"LastModifiedDate", "Last Modified Date", FT_DATETIME, 0, "D", NULL, NULL, NULL},
    {"LastModifiedById", "Last Modified By ID", FT_REFERENCE, 18, "D", NULL, "User",
     "LastModifiedBy"},
    {"SystemModstamp", "System Modstamp", FT_DATETIME, 0, "D", NULL, NULL, NULL},
    {"OwnerId", "Owner ID", FT_REFERENCE, 18, "CUD", NULL, "User,Group", "Owner"},
};

static const struct field_spec voicecall_fields[] = {
    {"Name", "Voice Call Number", FT_STRING, 80, "DLA", NULL, NULL, NULL},
    {"ActivityId", "Activity ID", FT_REFERENCE, 18, "CUN", NULL, "Task", "Activity"},
    {"AgentSentimentScore", "Agent Sentiment Score", FT_DOUBLE, 0, "N", NULL, NULL, NULL},
    {"CustomerSentimentScore", "Customer Sentiment Score", FT_DOUBLE, 0, "N", NULL, NULL, NULL},
    {"CallAcceptDateTime", "Call Accepted", FT_DATETIME, 0, "CN", NULL, NULL, NULL},
    {"CallQueuedDateTime", "Call Queued", FT_DATETIME, 0, "CN", NULL, NULL, NULL},
    {"CallCenterId", "Call Center ID", FT_REFERENCE, 18, "CN", NULL, "CallCenter", "CallCenter"},
    {"CallConnectDateTime", "Call Connected", FT_DATETIME, 0, "CN", NULL, NULL, NULL},
    {"CallDisposition", "Call Disposition", FT_STRING, 255, "CN", NULL, NULL, NULL},
    {"CallDurationInSeconds", "Call Duration", FT_INT, 0, "CN", NULL, NULL, NULL},
    {"CallStartDateTime", "Call Started", FT_DATETIME, 0, "C", NULL, NULL, NULL},
    {"CallEndDateTime", "Call Ended", FT_DATETIME, 0, "C", NULL, NULL, NULL},
    {"CallType", "Call Type", FT_PICKLIST, 255, "CR",
     "Bridge,Callback,Coach,Consult,Inbound,Internal,InternalCall,Outbound,Transfer", NULL, NULL},
    {"CallSubtype", "Call Subtype", FT_PICKLIST, 255, "CNR", "PSTN,WebRTC", NULL, NULL},
    {"CallOrigin", "Call Origin", FT_PICKLIST, 255, "CNR", "Preview,Progressive,Voicemail", NULL,
     NULL},
    {"CallerIdType", "Caller ID Type", FT_PICKLIST, 255, "CNR",
     "VendorLine,CompanyNumber,LocalPresence,CustomCallerId", NULL, NULL},
    {"CallerId", "Caller ID", FT_REFERENCE, 18, "CN", NULL, "ConversationParticipant", "Caller"},
    {"RecipientId", "Recipient ID", FT_REFERENCE, 18, "CN", NULL, "ConversationParticipant",
     "Recipient"},
    {"CallRecordingId", "Call Recording ID", FT_REFERENCE, 18, "CN", NULL, "VoiceCallRecording",
     "CallRecording"},
    {"CallResolution", "Call Resolution", FT_PICKLIST, 255, "CUND", "Resolved,Unresolved", NULL,
     NULL},
    {"CoachingDurationInSeconds", "Coaching Duration", FT_INT, 0, "CN", NULL, NULL, NULL},
    {"CustomerHoldDuration", "Customer Hold Duration", FT_INT, 0, "CN", NULL, NULL, NULL},
    {"LongestHoldDuration", "Longest Hold Duration", FT_INT, 0, "CN", NULL, NULL, NULL},
    {"NumberOfHolds", "Number Of Holds", FT_INT, 0, "CN", NULL, NULL, NULL},
    {"ConferenceKey", "Conference Key", FT_STRING, 255, "CN", NULL, NULL, NULL},
    {"ConversationId", "Conversation ID", FT_REFERENCE, 18, "CN", NULL, "Conversation",
     "Conversation"},
    {"CurrencyCode", "Currency Code", FT_PICKLIST, 255, "CNR", "USD,EUR,GBP,CAD,AUD,JPY", NULL,
     NULL},
    {"Description", "Description", FT_TEXTAREA, 32000, "CUN", NULL, NULL, NULL},
    {"DisconnectReason", "Disconnect Reason", FT_STRING, 255, "CN", NULL, NULL, NULL},
    {"EndUserId", "End User ID", FT_REFERENCE, 18, "CN", NULL, "MessagingEndUser", "EndUser"},
    {"@FROM", "From", FT_PHONE, 40, "C", NULL, NULL, NULL},
    {"@TO", "To", FT_PHONE, 40, "C", NULL, NULL, NULL},
    {"IsRecorded", "Is Recorded", FT_BOOLEAN, 0, "CD", NULL, NULL, NULL},
    {"IsDiarizationOptIn", "Diarization Opt In", FT_BOOLEAN, 0, "D", NULL, NULL, NULL},
    {"MediaProviderId", "Media Provider ID", FT_REFERENCE, 18, "CN", NULL,
     "CallCoachingMediaProvider", "MediaProvider"},
    {"NextCallId", "Next Call ID", FT_REFERENCE, 18, "CN", NULL, "VoiceCall", "NextCall"},
    {"PreviousCallId", "Previous Call ID", FT_REFERENCE, 18, "CN", NULL, "VoiceCall",
     "PreviousCall"},
    {"Price", "Price", FT_DOUBLE, 0, "CN", NULL, NULL, NULL},
    {"QualityScore", "Quality Score", FT_DOUBLE, 0, "CUN", NULL, NULL, NULL},
    {"QueueName", "Queue Name", FT_STRING, 255, "CN", NULL, NULL, NULL},
    {"RecordTypeId", "Record Type ID", FT_REFERENCE, 18, "CUN", NULL, "RecordType", "RecordType"},
    {"RelatedRecordId", "Related Record ID", FT_REFERENCE, 18, "CUN", NULL,
     "Account,Case,Contact,Lead,Opportunity", "RelatedRecord"},
    {"SourceType", "Source Type", FT_PICKLIST, 255, "CUNR", "Sales,Service", NULL, NULL},
    {"TranscribedLanguage", "Transcribed Language", FT_STRING, 255, "N", NULL, NULL, NULL},
    {"UserId", "User ID", FT_REFERENCE, 18, "CN", NULL, "User", "User"},
    {"VendorCallKey", "Vendor Call Key", FT_STRING, 255, "CNL", NULL, NULL, NULL},
    {"VendorParentCallKey", "Vendor Parent Call Key", FT_STRING, 255, "CN", NULL, NULL, NULL},
    {"VendorType", "Vendor Type", FT_PICKLIST, 255, "CNR", "ContactCenter", NULL, NULL},
    {"VoiceVendorLineId", "Voice Vendor Line ID", FT_REFERENCE, 18, "CN", NULL, "VoiceVendorLine",
     "VoiceVendorLine"},
};

static const struct field_spec task_fields[] = {
    {"Subject", "Subject", FT_COMBOBOX, 255, "CUN", "Call,Send Letter,Send Quote,Other", NULL,
     NULL},
    {"Status", "Status", FT_PICKLIST, 255, "CUDR",
     "Not Started,In Progress,Completed,Waiting on someone else,Deferred", NULL, NULL},
    {"Priority", "Priority", FT_PICKLIST, 255, "CUDR", "High,Normal,Low", NULL, NULL},
    {"ActivityDate", "Due Date Only", FT_DATE, 0, "CUN", NULL, NULL, NULL},
    {"CompletedDateTime", "Completed Date/Time", FT_DATETIME, 0, "N", NULL, NULL, NULL},
    {"TaskSubtype", "Task Subtype", FT_PICKLIST, 255, "CNR", "Task,Email,LinkedIn,ListEmail,Call",
     NULL, NULL},
    {"Type", "Type", FT_PICKLIST, 255, "CUN", "Call,Email,Meeting,Other", NULL, NULL},
    {"CallType", "Call Type", FT_PICKLIST, 255, "CUNR", "Inbound,Internal,Outbound", NULL, NULL},
    {"CallDurationInSeconds", "Call Duration", FT_INT, 0, "CUN", NULL, NULL, NULL},
    {"CallDisposition", "Call Result", FT_STRING, 255, "CUN", NULL, NULL, NULL},
    {"CallObject", "Call Object Identifier", FT_STRING, 255, "CUN", NULL, NULL, NULL},
    {"WhoId", "Name ID", FT_REFERENCE, 18, "CUN", NULL, "Contact,Lead", "Who"},
    {"WhatId", "Related To ID", FT_REFERENCE, 18, "CUN", NULL,
     "Account,Opportunity,Case,Campaign,Contract", "What"},
    {"AccountId", "Account ID", FT_REFERENCE, 18, "N", NULL, "Account", "Account"},
    {"Description", "Comments", FT_TEXTAREA, 32000, "CUN", NULL, NULL, NULL},
};

static const char *const ftype_names[] = {"id",       "reference", "string", "textarea",
                                          "phone",    "picklist",  "combobox", "datetime",
                                          "date",     "int",       "double", "boolean", NULL};
static const char *const ftype_soap[] = {"tns:ID",      "tns:ID",      "xsd:string",
                                         "xsd:string",  "xsd:string",  "xsd:string",
                                         "xsd:string",  "xsd:dateTime", "xsd:date",
                                         "xsd:int",     "xsd:double",  "xsd:boolean"};

static char **split_list(const char *s)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    char **out = xmalloc((n + 1) * sizeof *out);
    size_t k = 0;
    const char *p = s;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len)
            out[k++] = xstrndup(p, len);
        if (!c)
            break;
        p = c + 1;
    }
    out[k] = NULL;
    return out;
}

static void free_list(char **l)
{
    if (!l)
        return;
    for (char **p = l; *p; p++)
        free(*p);
    free(l);
}

static void field_from_spec(struct emu_field *f, const struct field_spec *s, const char *obj_label,
                            int phone_fields)
{
    memset(f, 0, sizeof *f);
    const char *name = s->name;
    /* API 62.0 renamed the phone fields; which name an org shows is a config switch. */
    if (strcmp(name, "@FROM") == 0)
        name = phone_fields ? "RecipientContactInfo" : "FromPhoneNumber";
    else if (strcmp(name, "@TO") == 0)
        name = phone_fields ? "CallerContactInfo" : "ToPhoneNumber";
    f->name = xstrdup(name);
    if (strcmp(name, "Id") == 0) {
        char lab[64];
        snprintf(lab, sizeof lab, "%s ID", obj_label);
        f->label = xstrdup(lab);
    } else {
        f->label = xstrdup(s->label);
    }
    f->type = s->type;
    f->length = s->length;
    f->createable = strchr(s->flags, 'C') != NULL;
    f->updateable = strchr(s->flags, 'U') != NULL;
    f->nillable = strchr(s->flags, 'N') != NULL;
    f->defaulted = strchr(s->flags, 'D') != NULL;
    f->external_id = strchr(s->flags, 'X') != NULL;
    f->unique = strchr(s->flags, 'Q') != NULL;
    f->id_lookup = strchr(s->flags, 'L') != NULL;
    f->restricted = strchr(s->flags, 'R') != NULL;
    f->autonumber = strchr(s->flags, 'A') != NULL;
    f->picklist = s->picklist ? split_list(s->picklist) : NULL;
    f->ref_to = s->ref_to ? xstrdup(s->ref_to) : NULL;
    f->rel_name = s->rel_name ? xstrdup(s->rel_name) : NULL;
}

static struct emu_field *obj_field(struct emu_object *o, const char *name)
{
    for (size_t i = 0; i < o->nfields; i++)
        if (strcmp(o->fields[i].name, name) == 0)
            return &o->fields[i];
    return NULL;
}

static void object_build(struct emu_object *o, struct emu_org_cfg *oc, int which)
{
    const struct field_spec *spec = which == 0 ? voicecall_fields : task_fields;
    size_t nspec = which == 0 ? CP_ARRAY_LEN(voicecall_fields) : CP_ARRAY_LEN(task_fields);
    o->name = which == 0 ? "VoiceCall" : "Task";
    o->label = which == 0 ? "Voice Call" : "Task";
    o->key_prefix = which == 0 ? "0LQ" : "00T";
    o->createable = which == 0 ? oc->voicecall_createable : true;
    size_t ncustom = 0;
    for (size_t i = 0; i < oc->ncustom_fields; i++)
        if (strcasecmp(oc->custom_fields[i].object, o->name) == 0)
            ncustom++;
    o->nfields = CP_ARRAY_LEN(system_fields) + nspec + ncustom;
    o->fields = xmalloc(o->nfields * sizeof *o->fields);
    size_t k = 0;
    for (size_t i = 0; i < CP_ARRAY_LEN(system_fields); i++)
        field_from_spec(&o->fields[k++], &system_fields[i], o->label, oc->phone_fields);
    for (size_t i = 0; i < nspec; i++)
        field_from_spec(&o->fields[k++], &spec[i], o->label, oc->phone_fields);
    for (size_t i = 0; i < oc->ncustom_fields; i++) {
        struct emu_cfield_cfg *c = &oc->custom_fields[i];
        if (strcasecmp(c->object, o->name) != 0)
            continue;
        struct emu_field *f = &o->fields[k++];
        memset(f, 0, sizeof *f);
        f->name = xstrdup(c->name);
        f->label = xstrdup(c->label ? c->label : c->name);
        f->type = (enum emu_ftype)c->type;
        f->length = (int)c->length;
        if (f->type != FT_STRING && f->type != FT_TEXTAREA && f->type != FT_PHONE &&
            f->type != FT_PICKLIST && f->type != FT_COMBOBOX)
            f->length = 0;
        f->createable = true;
        f->updateable = c->updateable;
        f->nillable = !c->required && f->type != FT_BOOLEAN;
        f->defaulted = f->type == FT_BOOLEAN;
        f->external_id = c->external_id;
        f->unique = c->unique;
        f->id_lookup = c->external_id;
        f->restricted = c->restricted;
        f->custom = true;
        f->picklist = c->values ? split_list(c->values) : NULL;
    }
    /* Org-specific picklist values (VendorType etc. are UNCONFIRMED; configs may widen them). */
    for (size_t i = 0; i < oc->npicklists; i++) {
        struct emu_pick_cfg *p = &oc->picklists[i];
        if (strcasecmp(p->object, o->name) != 0)
            continue;
        struct emu_field *f = obj_field(o, p->field);
        if (f) {
            free_list(f->picklist);
            f->picklist = split_list(p->values);
        }
    }
    o->records = json_object();
    o->ext_index = json_object();
    o->next_id = 1;
    o->autonum = 0;
}

static json_t *describe_field(const struct emu_field *f)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(f->name));
    json_object_set_new(j, "label", json_string(f->label));
    json_object_set_new(j, "type", json_string(ftype_names[f->type]));
    json_object_set_new(j, "soapType", json_string(ftype_soap[f->type]));
    json_object_set_new(j, "length", json_integer(f->length));
    json_object_set_new(j, "nillable", json_boolean(f->nillable));
    json_object_set_new(j, "createable", json_boolean(f->createable));
    json_object_set_new(j, "updateable", json_boolean(f->updateable));
    json_object_set_new(j, "defaultedOnCreate", json_boolean(f->defaulted));
    json_object_set_new(j, "externalId", json_boolean(f->external_id));
    json_object_set_new(j, "unique", json_boolean(f->unique));
    json_object_set_new(j, "idLookup", json_boolean(f->id_lookup));
    json_object_set_new(j, "custom", json_boolean(f->custom));
    json_object_set_new(j, "autoNumber", json_boolean(f->autonumber));
    json_object_set_new(j, "calculated", json_false());
    json_object_set_new(j, "restrictedPicklist", json_boolean(f->restricted));
    json_t *pl = json_array();
    for (char **p = f->picklist; p && *p; p++) {
        json_t *v = json_object();
        json_object_set_new(v, "active", json_true());
        json_object_set_new(v, "defaultValue", json_false());
        json_object_set_new(v, "label", json_string(*p));
        json_object_set_new(v, "validFor", json_null());
        json_object_set_new(v, "value", json_string(*p));
        json_array_append_new(pl, v);
    }
    json_object_set_new(j, "picklistValues", pl);
    json_t *rt = json_array();
    if (f->ref_to) {
        char **l = split_list(f->ref_to);
        for (char **p = l; *p; p++)
            json_array_append_new(rt, json_string(*p));
        free_list(l);
    }
    json_object_set_new(j, "referenceTo", rt);
    json_object_set_new(j, "relationshipName", f->rel_name ? json_string(f->rel_name)
                                                           : json_null());
    json_object_set_new(j, "polymorphicForeignKey",
                        json_boolean(f->ref_to && strchr(f->ref_to, ',') != NULL));
    return j;
}

static json_t *describe_object(const struct emu_object *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(o->name));
    json_object_set_new(j, "label", json_string(o->label));
    json_object_set_new(j, "keyPrefix", json_string(o->key_prefix));
    json_object_set_new(j, "createable", json_boolean(o->createable));
    json_object_set_new(j, "updateable", json_true());
    json_object_set_new(j, "deletable", json_true());
    json_object_set_new(j, "queryable", json_true());
    json_object_set_new(j, "custom", json_false());
    json_t *fs = json_array();
    for (size_t i = 0; i < o->nfields; i++)
        json_array_append_new(fs, describe_field(&o->fields[i]));
    json_object_set_new(j, "fields", fs);
    return j;
}

/* ---- value checks: raw CSV text -> JSON value, or an sf__Error text ---------------------- */

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool valid_date(int y, int m, int d)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1700 || y > 4000 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    return true;
}

/* yyyy-MM-dd */
static bool parse_date(const char *s, int *y, int *m, int *d)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !all_digits(s, 4) ||
        !all_digits(s + 5, 2) || !all_digits(s + 8, 2))
        return false;
    *y = atoi(s);
    *m = atoi(s + 5);
    *d = atoi(s + 8);
    return valid_date(*y, *m, *d);
}

/* yyyy-MM-ddTHH:mm:ss[.SSS](Z|+HH:MM|-HH:MM|+HHMM) -> ms since the epoch (UTC). */
static bool parse_datetime(const char *s, int64_t *out_ms)
{
    int y, mo, d;
    char date[11];
    if (strlen(s) < 20 || s[10] != 'T')
        return false;
    memcpy(date, s, 10);
    date[10] = 0;
    if (!parse_date(date, &y, &mo, &d))
        return false;
    const char *t = s + 11;
    if (!all_digits(t, 2) || t[2] != ':' || !all_digits(t + 3, 2) || t[5] != ':' ||
        !all_digits(t + 6, 2))
        return false;
    int hh = atoi(t), mi = atoi(t + 3), ss = atoi(t + 6);
    if (hh > 23 || mi > 59 || ss > 59)
        return false;
    const char *p = t + 8;
    int ms = 0;
    if (*p == '.') {
        p++;
        int k = 0;
        while (isdigit((unsigned char)*p)) {
            if (k < 3)
                ms = ms * 10 + (*p - '0');
            k++;
            p++;
        }
        if (k == 0)
            return false;
        for (; k < 3; k++)
            ms *= 10;
    }
    int off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (!all_digits(p, 2))
            return false;
        int oh = atoi(p), om;
        p += 2;
        if (*p == ':')
            p++;
        if (!all_digits(p, 2))
            return false;
        om = atoi(p);
        p += 2;
        if (oh > 14 || om > 59)
            return false;
        off = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (*p)
        return false;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out_ms = ((days * 86400 + hh * 3600 + mi * 60 + ss) - (int64_t)off * 60) * 1000 + ms;
    return true;
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/*
 * Converts one CSV cell for field f.  Returns NULL and sets *val, or a malloc'd sf__Error
 * ("CODE:message:Field --").  The codes follow Salesforce's API error codes; the exact
 * message wording of the type errors is UNCONFIRMED.
 */
static char *convert_value(const struct emu_field *f, const char *raw, int booleans,
                           json_t **val)
{
    char err[1200];
    size_t n = strlen(raw);
    *val = NULL;
    switch (f->type) {
    case FT_STRING:
    case FT_TEXTAREA:
    case FT_PHONE:
    case FT_COMBOBOX:
    case FT_PICKLIST:
        if (f->type == FT_PICKLIST && f->restricted) {
            bool ok = false;
            for (char **p = f->picklist; p && *p && !ok; p++)
                ok = strcmp(*p, raw) == 0;
            if (!ok) {
                snprintf(err, sizeof err,
                         "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:%s: bad value for restricted "
                         "picklist field: %.200s:%s --",
                         f->label, raw, f->name);
                return xstrdup(err);
            }
        }
        if (f->length > 0 && utf8_chars(raw, n) > (size_t)f->length) {
            snprintf(err, sizeof err,
                     "STRING_TOO_LONG:%s: data value too large: %.200s (max length=%d):%s --",
                     f->label, raw, f->length, f->name);
            return xstrdup(err);
        }
        *val = json_string(raw);
        if (!*val)
            *val = json_stringn_nocheck(raw, n);
        return NULL;
    case FT_INT: {
        const char *d = raw[0] == '-' || raw[0] == '+' ? raw + 1 : raw;
        if (all_digits(d, strlen(d)) && strlen(d) <= 10) {
            long long v = strtoll(raw, NULL, 10);
            if (v >= -2147483648LL && v <= 2147483647LL) {
                *val = json_integer(v);
                return NULL;
            }
        }
        break;
    }
    case FT_DOUBLE: {
        char *end;
        double v = strtod(raw, &end);
        if (n && !*end && !isspace((unsigned char)raw[0]) && !strpbrk(raw, "xXnNiI")) {
            *val = json_real(v);
            return NULL;
        }
        break;
    }
    case FT_BOOLEAN:
        if (strcasecmp(raw, "true") == 0 ||
            (booleans && (strcmp(raw, "1") == 0 || strcasecmp(raw, "yes") == 0))) {
            *val = json_true();
            return NULL;
        }
        if (strcasecmp(raw, "false") == 0 ||
            (booleans && (strcmp(raw, "0") == 0 || strcasecmp(raw, "no") == 0))) {
            *val = json_false();
            return NULL;
        }
        break;
    case FT_DATE: {
        int y, m, d;
        if (parse_date(raw, &y, &m, &d)) {
            *val = json_string(raw);
            return NULL;
        }
        break;
    }
    case FT_DATETIME: {
        int64_t ms;
        if (parse_datetime(raw, &ms)) {
            char t[32];
            fmt_sf_time(ms, t);
            *val = json_string(t);
            return NULL;
        }
        break;
    }
    case FT_ID:
    case FT_REFERENCE:
        if (is_sfid(raw)) {
            *val = json_string(raw);
            return NULL;
        }
        snprintf(err, sizeof err, "MALFORMED_ID:%s: id value of incorrect type: %.200s:%s --",
                 f->label, raw, f->name);
        return xstrdup(err);
    }
    snprintf(err, sizeof err,
             "INVALID_TYPE_ON_FIELD_IN_RECORD:%s: value not of required type: %.200s:%s --",
             f->label, raw, f->name);
    return xstrdup(err);
}
