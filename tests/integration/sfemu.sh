#!/usr/bin/env bash
# sfemu.sh - the Salesforce emulator over curl: token flows, job lifecycle, CSV checks, upsert,
# result formats, limits and fault injection.
# timeout: 120
set -eu
cd "${CALLPIPE_ROOT:-$(dirname "$0")/../..}"
BUILD=${BUILD:-build}
. tests/scripts/sfemu.sh
tmp=$(mktemp -d)
trap 'sfemu_stop; rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect() { # what expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected [$2] got [$3]"; fi
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

sfemu_keys "$tmp"
openssl genrsa -out "$tmp/other.pem" 2048 2>/dev/null
cat >"$tmp/sfemu.yaml" <<YAML
rows_per_s: 0
queue_delay: 50ms
orgs:
  - name: acme
    api_max: "62.0"
    daily_api_quota: 1000
    token_lifetime: 1h
    users: [{username: int@acme.example}, {username: other@acme.example}]
    apps: [{consumer_key: CK_ACME, client_secret: sec-acme, public_key_file: $tmp/jwt_pub.pem}]
    refresh_tokens: [{token: RT_ACME, username: int@acme.example, consumer_key: CK_ACME}]
    custom_fields:
      - {object: VoiceCall, name: Callpipe_Id__c, external_id: true, unique: true, length: 64}
  - name: globex
    audience: https://test.salesforce.com
    users: [{username: int@globex.example}]
    apps: [{consumer_key: CK_GLOBEX, client_secret: sec-globex, public_key_file: $tmp/jwt_pub.pem}]
YAML
"$BUILD/tools/sfemu" -c "$tmp/sfemu.yaml" --check-config >/dev/null && ok "--check-config"
sfemu_start "$tmp/emu" "$tmp/sfemu.yaml"
A=$(sfemu_url acme)
G=$(sfemu_url globex)
JWT=urn:ietf:params:oauth:grant-type:jwt-bearer
K=$tmp/jwt_key.pem

token() { # curl args... -> body; status in $tmp/st
    curl -s -o "$tmp/tok" -w '%{http_code}' "$@" >"$tmp/st"
    cat "$tmp/tok"
}

# ---- token flows ------------------------------------------------------------------------------
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" CK_ACME int@acme.example)")
expect "jwt: 200" 200 "$(cat "$tmp/st")"
TOK=$(echo "$body" | jget 'd["access_token"]')
expect "jwt: instance_url is acme's" "$A" "$(echo "$body" | jget 'd["instance_url"]')"
expect "jwt: token_type" Bearer "$(echo "$body" | jget 'd["token_type"]')"
expect "jwt: id URL ends with org/user" 2 "$(echo "$body" | jget 'len(d["id"].split("/id/")[1].split("/"))')"
for k in signature scope issued_at; do
    expect "jwt: has $k" True "$(echo "$body" | jget "'$k' in d")"
done
body=$(token "$A/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" CK_ACME int@acme.example)")
expect "jwt on My Domain: 200" 200 "$(cat "$tmp/st")"

h=$(printf '{"alg":"RS256"}' | _sfemu_b64u)
c=$(printf '{"iss":"CK_ACME","sub":"int@acme.example","aud":"https://login.salesforce.com","exp":%d}' $(($(date +%s) + 100)) | _sfemu_b64u)
s=$(printf '%s.%s' "$h" "$c" | openssl dgst -sha256 -sign "$tmp/other.pem" | _sfemu_b64u)
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT -d assertion="$h.$c.$s")
expect "jwt bad signature: 400" 400 "$(cat "$tmp/st")"
expect "jwt bad signature: invalid_grant" "invalid_grant invalid assertion" \
    "$(echo "$body" | jget 'd["error"] + " " + d["error_description"]')"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" CK_ACME int@acme.example https://test.salesforce.com)")
expect "jwt wrong aud" "400 audience is invalid" "$(cat "$tmp/st") $(echo "$body" | jget 'd["error_description"]')"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" CK_GLOBEX int@globex.example https://test.salesforce.com)")
expect "jwt sandbox aud for globex" 200 "$(cat "$tmp/st")"
GTOK=$(echo "$body" | jget 'd["access_token"]')
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" CK_ACME int@acme.example https://login.salesforce.com $(($(date +%s) - 10)))")
expect "jwt expired" "400 invalid_grant" "$(cat "$tmp/st") $(echo "$body" | jget 'd["error"]')"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" CK_ACME int@acme.example https://login.salesforce.com $(($(date +%s) + 3600)))")
expect "jwt exp too far" 400 "$(cat "$tmp/st")"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" CK_ACME nobody@acme.example)")
expect "jwt unknown user" "400 user hasn't approved this consumer" "$(cat "$tmp/st") $(echo "$body" | jget 'd["error_description"]')"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT \
    -d assertion="$(sfemu_jwt "$K" NOPE int@acme.example)")
expect "jwt unknown consumer key" "400 invalid_client_id" "$(cat "$tmp/st") $(echo "$body" | jget 'd["error"]')"
body=$(token "$A/services/oauth2/token" -d grant_type=client_credentials -d client_id=CK_ACME -d client_secret=sec-acme)
expect "client credentials on My Domain" 200 "$(cat "$tmp/st")"
body=$(token "$A/services/oauth2/token" -u CK_ACME:sec-acme -d grant_type=client_credentials)
expect "client credentials with Basic auth" 200 "$(cat "$tmp/st")"
body=$(token "$A/services/oauth2/token" -d grant_type=client_credentials -d client_id=CK_ACME -d client_secret=wrong)
expect "client credentials wrong secret" "400 invalid_client" "$(cat "$tmp/st") $(echo "$body" | jget 'd["error"]')"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=client_credentials -d client_id=CK_ACME -d client_secret=sec-acme)
expect "client credentials on the login host refused" 400 "$(cat "$tmp/st")"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=refresh_token -d refresh_token=RT_ACME -d client_id=CK_ACME)
expect "refresh token" "200 $A" "$(cat "$tmp/st") $(echo "$body" | jget 'd["instance_url"]')"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=refresh_token -d refresh_token=BAD -d client_id=CK_ACME)
expect "bad refresh token" "400 expired access/refresh token" "$(cat "$tmp/st") $(echo "$body" | jget 'd["error_description"]')"
body=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=password)
expect "unsupported grant" "400 unsupported_grant_type" "$(cat "$tmp/st") $(echo "$body" | jget 'd["error"]')"

# ---- REST basics --------------------------------------------------------------------------------
V=$A/services/data/v62.0
api() { # method path [curl args] -> body in $tmp/b, headers in $tmp/h, status printed
    local m=$1 p=$2
    shift 2
    curl -s -X "$m" -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' -H "Authorization: Bearer $TOK" "$@" "$V$p"
}
expect "versions list" "62.0" "$(curl -s "$A/services/data/" | jget 'd[-1]["version"]')"
expect "versions label" "Summer '24" "$(curl -s "$A/services/data/" | jget '[v["label"] for v in d if v["version"]=="61.0"][0]')"
expect "no token: 401" 401 "$(curl -s -o "$tmp/b" -w '%{http_code}' "$V/limits")"
expect "no token: INVALID_SESSION_ID" "INVALID_SESSION_ID Session expired or invalid" "$(jget 'd[0]["errorCode"] + " " + d[0]["message"]' <"$tmp/b")"
expect "other org's token: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GTOK" "$V/limits")"
expect "limits" 200 "$(api GET /limits)"
expect "limits: DailyApiRequests.Max" 1000 "$(jget 'd["DailyApiRequests"]["Max"]' <"$tmp/b")"
expect "Sforce-Limit-Info" "api-usage=1/1000" "$(grep -i '^Sforce-Limit-Info' "$tmp/h" | cut -d' ' -f2 | tr -d '\r')"
expect "version above api_max: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK" "$A/services/data/v63.0/limits")"
expect "describe VoiceCall" 200 "$(api GET /sobjects/VoiceCall/describe)"
expect "describe CallType" "picklist False True" "$(jget '" ".join(str(x) for f in d["fields"] if f["name"]=="CallType" for x in (f["type"], f["nillable"], f["restrictedPicklist"]))' <"$tmp/b")"
expect "describe custom field" "True True string 64" "$(jget '" ".join(str(x) for f in d["fields"] if f["name"]=="Callpipe_Id__c" for x in (f["externalId"], f["unique"], f["type"], f["length"]))' <"$tmp/b")"
expect "describe Task" 200 "$(api GET /sobjects/task/describe/)"
expect "describe Task fields" "True" "$(jget 'any(f["name"]=="CallObject" for f in d["fields"])' <"$tmp/b")"
expect "describe unknown object: 404" 404 "$(api GET /sobjects/Nope/describe)"

# ---- job lifecycle ------------------------------------------------------------------------------
JSON=(-H 'Content-Type: application/json')
CSV=(-H 'Content-Type: text/csv')
create() { # json -> job id
    api POST /jobs/ingest "${JSON[@]}" -d "$1" >"$tmp/st"
    jget 'd["id"]' <"$tmp/b"
}
wait_job() { # id -> final state
    local i st
    for i in $(seq 1 100); do
        api GET "/jobs/ingest/$1" >/dev/null
        st=$(jget 'd["state"]' <"$tmp/b")
        case $st in JobComplete | Failed | Aborted) echo "$st"; return ;; esac
        sleep 0.05
    done
    echo "timeout:$st"
}
hdr='Callpipe_Id__c,CallType,VendorType,CallStartDateTime,CallEndDateTime,FromPhoneNumber,ToPhoneNumber,Description,IsRecorded'
J=$(create '{"object":"VoiceCall","operation":"insert"}')
expect "create: 200" 200 "$(cat "$tmp/st")"
expect "create: Open, Parallel, CSV, LF, COMMA, 62.0" "Open Parallel CSV LF COMMA 62.0" \
    "$(jget '" ".join(str(d[k]) for k in ("state","concurrencyMode","contentType","lineEnding","columnDelimiter","apiVersion"))' <"$tmp/b")"
expect "job id prefix 750, 18 chars" "750 18" "${J:0:3} ${#J}"
printf '%s\n%s\n%s\n%s\n%s\n' "$hdr" \
    'a1,Inbound,ContactCenter,2026-11-25T10:00:00Z,2026-11-25T10:05:00.000Z,+15550001,+15550002,"x, ""y""",true' \
    'a2,Sideways,ContactCenter,2026-11-25T10:00:00Z,2026-11-25T10:05:00Z,+15550001,+15550002,,false' \
    'a3,Inbound,ContactCenter,2026-11-25 10:00,2026-11-25T10:05:00Z,+15550001,+15550002,,false' \
    'a4,Outbound,ContactCenter,2026-11-25T10:00:00+02:00,,+15550001,+15550002,#N/A,maybe' >"$tmp/d1.csv"
expect "upload: 201" 201 "$(api PUT "/jobs/ingest/$J/batches" "${CSV[@]}" --data-binary @"$tmp/d1.csv")"
expect "upload: empty body" 0 "$(wc -c <"$tmp/b")"
expect "second upload rejected" 400 "$(api PUT "/jobs/ingest/$J/batches" "${CSV[@]}" --data-binary @"$tmp/d1.csv")"
expect "second upload error" BULK_API_ERROR "$(jget 'd[0]["errorCode"]' <"$tmp/b")"
expect "close: 200 UploadComplete" "200 UploadComplete" "$(api PATCH "/jobs/ingest/$J" "${JSON[@]}" -d '{"state":"UploadComplete"}') $(jget 'd["state"]' <"$tmp/b")"
expect "close twice: 400" 400 "$(api PATCH "/jobs/ingest/$J" "${JSON[@]}" -d '{"state":"UploadComplete"}')"
expect "job completes" JobComplete "$(wait_job "$J")"
expect "counters" "4 3 V2Ingest" "$(jget '"%s %s %s" % (d["numberRecordsProcessed"], d["numberRecordsFailed"], d["jobType"])' <"$tmp/b")"
api GET "/jobs/ingest/$J/successfulResults/" >/dev/null
expect "successfulResults header" "\"sf__Id\",\"sf__Created\",$hdr" "$(head -1 "$tmp/b")"
expect "successfulResults row" '"true","a1","Inbound","ContactCenter","2026-11-25T10:00:00Z","2026-11-25T10:05:00.000Z","+15550001","+15550002","x, ""y""","true"' \
    "$(sed -n 2p "$tmp/b" | cut -d, -f2-)"
expect "successfulResults content type" text/csv "$(grep -i '^Content-Type' "$tmp/h" | cut -d' ' -f2 | tr -d '\r')"
api GET "/jobs/ingest/$J/FAILEDRESULTS" >/dev/null
expect "failedResults header" "\"sf__Id\",\"sf__Error\",$hdr" "$(head -1 "$tmp/b")"
expect "failed: restricted picklist" 1 "$(grep -c '^"","INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Call Type: bad value for restricted picklist field: Sideways:CallType --","a2"' "$tmp/b")"
expect "failed: datetime" 1 "$(grep -c '"INVALID_TYPE_ON_FIELD_IN_RECORD:Call Started: value not of required type: 2026-11-25 10:00:CallStartDateTime --","a3"' "$tmp/b")"
expect "failed: boolean" 1 "$(grep -c '"INVALID_TYPE_ON_FIELD_IN_RECORD:Is Recorded: value not of required type: maybe:IsRecorded --","a4"' "$tmp/b")"
expect "unprocessedrecords: header only" "$hdr" "$(api GET "/jobs/ingest/$J/unprocessedRecords" >/dev/null; cat "$tmp/b")"
REC=$(sfemu_admin GET /orgs/acme/records/VoiceCall)
expect "stored: one record, UTC times, booleans" "1 2026-11-25T10:05:00.000+0000 True x, \"y\"" \
    "$(echo "$REC" | jget '"%d %s %s %s" % (len(d), d[0]["CallEndDateTime"], d[0]["IsRecorded"], d[0]["Description"])')"
expect "abort a completed job: 400" "400 INVALIDJOBSTATE" "$(api PATCH "/jobs/ingest/$J" "${JSON[@]}" -d '{"state":"Aborted"}') $(jget 'd[0]["errorCode"]' <"$tmp/b")"
expect "delete: 204" 204 "$(api DELETE "/jobs/ingest/$J")"
expect "deleted job: 404" 404 "$(api GET "/jobs/ingest/$J")"
expect "deleted job kept in admin history" True "$(sfemu_admin GET /orgs/acme/jobs | jget 'd[0]["deleted"]')"

# Abort an open job; delete an open job is refused.
J=$(create '{"object":"Task","operation":"insert","lineEnding":"CRLF","columnDelimiter":"PIPE"}')
expect "delete an Open job: 400" 400 "$(api DELETE "/jobs/ingest/$J")"
expect "abort: Aborted" "200 Aborted" "$(api PATCH "/jobs/ingest/$J" "${JSON[@]}" -d '{"state":"Aborted"}') $(jget 'd["state"]' <"$tmp/b")"
expect "upload to an aborted job: 400" 400 "$(api PUT "/jobs/ingest/$J/batches" "${CSV[@]}" --data-binary 'Subject\r\n')"

# Task with CRLF + PIPE.
J=$(create '{"object":"Task","operation":"insert","lineEnding":"CRLF","columnDelimiter":"PIPE"}')
printf 'Subject|Status|CallObject|ActivityDate\r\nCall|Completed|c-1|2026-11-25\r\nCall|Done|c-2|2026-11-25\r\n' >"$tmp/t.csv"
api PUT "/jobs/ingest/$J/batches" "${CSV[@]}" --data-binary @"$tmp/t.csv" >/dev/null
api PATCH "/jobs/ingest/$J" "${JSON[@]}" -d '{"state":"UploadComplete"}' >/dev/null
expect "Task CRLF/PIPE job" "JobComplete 2 1" "$(wait_job "$J") $(jget '"%s %s" % (d["numberRecordsProcessed"], d["numberRecordsFailed"])' <"$tmp/b")"

# ---- job-level CSV failures ----------------------------------------------------------------------
fail_case() { # name json csv-file expected-errorMessage
    local j
    j=$(create "$2")
    api PUT "/jobs/ingest/$j/batches" "${CSV[@]}" --data-binary @"$3" >/dev/null
    api PATCH "/jobs/ingest/$j" "${JSON[@]}" -d '{"state":"UploadComplete"}' >/dev/null
    expect "$1" "Failed 0 0 $4" "$(wait_job "$j") $(jget '"%s %s %s" % (d["numberRecordsProcessed"], d["numberRecordsFailed"], d["errorMessage"])' <"$tmp/b")"
    LASTJ=$j
}
printf 'CallType,Foo__c\nInbound,1\n' >"$tmp/f1.csv"
fail_case "unknown field" '{"object":"VoiceCall","operation":"insert"}' "$tmp/f1.csv" "InvalidBatch : Field name not found : Foo__c"
expect "unprocessedrecords of a failed job: the upload" "$(cat "$tmp/f1.csv")" "$(api GET "/jobs/ingest/$LASTJ/unprocessedrecords" >/dev/null; cat "$tmp/b")"
printf 'CallType\r\nInbound\r\n' >"$tmp/f2.csv"
fail_case "CRLF data in an LF job" '{"object":"VoiceCall","operation":"insert"}' "$tmp/f2.csv" \
    "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
printf '\xef\xbb\xbfCallType\nInbound\n' >"$tmp/f3.csv"
fail_case "BOM" '{"object":"VoiceCall","operation":"insert"}' "$tmp/f3.csv" \
    "$(printf 'InvalidBatch : Field name not found : \xef\xbb\xbfCallType')"
expect "create with a bad operation: 400" 400 "$(api POST /jobs/ingest "${JSON[@]}" -d '{"object":"VoiceCall","operation":"INSERT"}')"
expect "create for an unknown object: 400" 400 "$(api POST /jobs/ingest "${JSON[@]}" -d '{"object":"Nope","operation":"insert"}')"
expect "upsert without externalIdFieldName: 400" 400 "$(api POST /jobs/ingest "${JSON[@]}" -d '{"object":"VoiceCall","operation":"upsert"}')"

# ---- upsert ----------------------------------------------------------------------------------------
upsert() { # csv-file -> job id, waits
    local j
    j=$(create '{"object":"VoiceCall","operation":"upsert","externalIdFieldName":"Callpipe_Id__c"}')
    api PUT "/jobs/ingest/$j/batches" "${CSV[@]}" --data-binary @"$1" >/dev/null
    api PATCH "/jobs/ingest/$j" "${JSON[@]}" -d '{"state":"UploadComplete"}' >/dev/null
    wait_job "$j" >/dev/null
    echo "$j"
}
printf '%s\n%s\n' "$hdr" 'u1,Inbound,ContactCenter,2026-11-25T10:00:00Z,2026-11-25T10:05:00Z,+1,+2,first,false' >"$tmp/u1.csv"
J=$(upsert "$tmp/u1.csv")
api GET "/jobs/ingest/$J/successfulResults" >/dev/null
ID1=$(sed -n 2p "$tmp/b" | cut -d, -f1 | tr -d '"')
expect "upsert new: sf__Created true" '"true"' "$(sed -n 2p "$tmp/b" | cut -d, -f2)"
printf 'Callpipe_Id__c,Description,QualityScore\nu1,second,4.5\nu2,new,1\n' >"$tmp/u2.csv"
J=$(upsert "$tmp/u2.csv")
api GET "/jobs/ingest/$J/successfulResults" >/dev/null
expect "upsert existing: same id, sf__Created false" "\"$ID1\",\"false\",\"u1\"" "$(grep '"u1"' "$tmp/b" | cut -d, -f1-3)"
api GET "/jobs/ingest/$J/failedResults" >/dev/null
expect "upsert new without required fields" 1 "$(grep -c '"REQUIRED_FIELD_MISSING:Required fields are missing: \[CallStartDateTime, CallEndDateTime, CallType, FromPhoneNumber, ToPhoneNumber\]:CallStartDateTime CallEndDateTime CallType FromPhoneNumber ToPhoneNumber --","u2"' "$tmp/b")"
printf 'Callpipe_Id__c,CallType\nu1,Outbound\n' >"$tmp/u3.csv"
J=$(upsert "$tmp/u3.csv")
api GET "/jobs/ingest/$J/failedResults" >/dev/null
expect "update of a create-only field fails, sf__Id set" "\"$ID1\",\"INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: CallType." \
    "$(sed -n 2p "$tmp/b" | cut -d' ' -f1-5)"
expect "stored after upserts" "second 4.5 Inbound" \
    "$(sfemu_admin GET /orgs/acme/records/VoiceCall | jget '[" ".join(str(r[k]) for k in ("Description","QualityScore","CallType")) for r in d if r["Callpipe_Id__c"]=="u1"][0]')"
J=$(create '{"object":"VoiceCall","operation":"insert"}')
api PUT "/jobs/ingest/$J/batches" "${CSV[@]}" --data-binary @"$tmp/u1.csv" >/dev/null
api PATCH "/jobs/ingest/$J" "${JSON[@]}" -d '{"state":"UploadComplete"}' >/dev/null
wait_job "$J" >/dev/null
api GET "/jobs/ingest/$J/failedResults" >/dev/null
expect "insert of a duplicate unique external id" "\"\",\"DUPLICATE_VALUE:duplicate value found: Callpipe_Id__c duplicates value on record with id: $ID1:--\"" "$(sed -n 2p "$tmp/b" | cut -d, -f1-2)"

# ---- list paging -----------------------------------------------------------------------------------
expect "list jobs" 200 "$(api GET /jobs/ingest)"
N=$(jget 'len(d["records"])' <"$tmp/b")
expect "list: done" True "$(jget 'd["done"]' <"$tmp/b")"
expect "list: every job but the deleted one" 9 "$N"

# ---- faults --------------------------------------------------------------------------------------------
sfemu_admin POST /faults '{"kind":"http","status":503,"count":2,"method":"GET","path":"/limits$"}' >/dev/null
expect "fault 503 #1" 503 "$(api GET /limits)"
expect "fault 503 body" SERVER_UNAVAILABLE "$(jget 'd[0]["errorCode"]' <"$tmp/b")"
expect "fault 503 #2" 503 "$(api GET /limits)"
expect "fault used up" 200 "$(api GET /limits)"
sfemu_admin POST /faults '{"kind":"http","status":429,"retry_after":3,"org":"acme"}' >/dev/null
expect "fault 429 with Retry-After" "429 3" "$(api GET /limits) $(grep -i '^Retry-After' "$tmp/h" | cut -d' ' -f2 | tr -d '\r')"
sfemu_admin POST /faults '{"kind":"http","status":401}' >/dev/null
expect "fault 401 INVALID_SESSION_ID" "401 INVALID_SESSION_ID" "$(api GET /limits) $(jget 'd[0]["errorCode"]' <"$tmp/b")"
sfemu_admin POST /orgs/acme/expire_tokens >/dev/null
expect "expired token: 401" 401 "$(api GET /limits)"
TOK=$(token "$SFEMU_LOGIN/services/oauth2/token" -d grant_type=$JWT -d assertion="$(sfemu_jwt "$K" CK_ACME int@acme.example)" | jget 'd["access_token"]')
sfemu_admin POST /faults '{"kind":"delay","delay_ms":300,"path":"/limits$"}' >/dev/null
t0=$(date +%s%N)
api GET /limits >/dev/null
[ $((($(date +%s%N) - t0) / 1000000)) -ge 250 ] && ok "delay fault" || bad "delay fault"
sfemu_admin POST /faults '{"kind":"row","field":"Callpipe_Id__c","value":"r3","code":"FIELD_CUSTOM_VALIDATION_EXCEPTION","message":"No queue"}' >/dev/null
sfemu_admin POST /faults '{"kind":"row","every":2,"count":0,"object":"VoiceCall"}' >/dev/null
{
    echo "$hdr"
    for i in 1 2 3 4 5 6; do echo "r$i,Inbound,ContactCenter,2026-11-25T10:00:00Z,2026-11-25T10:05:00Z,+1,+2,,false"; done
} >"$tmp/r.csv"
J=$(upsert "$tmp/r.csv")
api GET "/jobs/ingest/$J/failedResults" >/dev/null
# every:2 counts the rows that reach the rule: r3 is taken by the first rule, so r2 and r5 lock.
expect "row faults: 3 failed" 3 "$(($(wc -l <"$tmp/b") - 1))"
expect "row fault validation" 1 "$(grep -c '^"","FIELD_CUSTOM_VALIDATION_EXCEPTION:No queue:--","r3"' "$tmp/b")"
expect "row fault lock" 2 "$(grep -c '^"","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: 001' "$tmp/b")"
sfemu_admin DELETE /faults >/dev/null
sfemu_admin POST /faults '{"kind":"job_fail","after_rows":2,"message":"InvalidBatch : boom"}' >/dev/null
sed 's/^r/s/' "$tmp/r.csv" >"$tmp/s.csv"
J=$(upsert "$tmp/s.csv")
api GET "/jobs/ingest/$J" >/dev/null
expect "job_fail: Failed after 2 rows" "Failed 2 InvalidBatch : boom" "$(jget '"%s %s %s" % (d["state"], d["numberRecordsProcessed"], d["errorMessage"])' <"$tmp/b")"
api GET "/jobs/ingest/$J/unprocessedrecords" >/dev/null
expect "job_fail: 4 unprocessed rows" 4 "$(($(wc -l <"$tmp/b") - 1))"
sfemu_admin POST /faults '{"kind":"slow","rows_per_s":20,"queue_delay_ms":10}' >/dev/null
J=$(create '{"object":"VoiceCall","operation":"insert"}')
sed 's/^r/w/' "$tmp/r.csv" >"$tmp/w.csv"
api PUT "/jobs/ingest/$J/batches" "${CSV[@]}" --data-binary @"$tmp/w.csv" >/dev/null
api PATCH "/jobs/ingest/$J" "${JSON[@]}" -d '{"state":"UploadComplete"}' >/dev/null
sleep 0.15
api GET "/jobs/ingest/$J" >/dev/null
expect "slow: still InProgress" InProgress "$(jget 'd["state"]' <"$tmp/b")"
expect "slow: completes" JobComplete "$(wait_job "$J")"
expect "bad fault: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$SFEMU_LOGIN/__emu/faults" -d '{"kind":"nope"}')"

# ---- quota ---------------------------------------------------------------------------------------------
sfemu_admin POST /orgs/acme/usage '{"used":1000}' >/dev/null
expect "quota exceeded: 403" "403 REQUEST_LIMIT_EXCEEDED TotalRequests Limit exceeded." "$(api GET /limits) $(jget 'd[0]["errorCode"] + " " + d[0]["message"]' <"$tmp/b")"
expect "quota exceeded: limit header" "api-usage=1000/1000" "$(grep -i '^Sforce-Limit-Info' "$tmp/h" | cut -d' ' -f2 | tr -d '\r')"

# ---- reset ---------------------------------------------------------------------------------------------
sfemu_admin POST /reset >/dev/null
expect "reset: no records, no jobs" "0 0" "$(sfemu_admin GET /orgs/acme | jget '"%s %s" % (d["VoiceCall_records"], d["jobs"])')"
expect "reset: tokens gone" 401 "$(api GET /limits)"

sfemu_stop
echo "$fails failures"
[ "$fails" -eq 0 ]
