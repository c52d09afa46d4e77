#!/usr/bin/env python3
# ld_records.py - the records the loader sends, as JSON lines for jsforce (bench-loader): one file per org.
"""ld_records.py DSN OUTDIR ORG=MAPPING_JSON ...  ->  OUTDIR/ORG.jsonl (one record object per line).

Values are computed from calls with the oracle's transforms (tests/tools/sf_compare.py), in
outbox id order, so jsforce loads exactly what the loader loaded (null = jsforce's #N/A)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import sf_compare as sc  # noqa: E402

dsn, outdir = sys.argv[1], sys.argv[2]
tcols = ["ended_at", "started_at"]
cols = ("org, pbx, call_id, direction, from_number, from_name, to_number, queue, talk_ms, "
        "disposition, wrapup, " +
        ", ".join(f"(extract(epoch FROM {c}) * 1000000)::bigint AS {c}" for c in tcols))
calls = sc.psql_json(dsn, f"SELECT row_to_json(t) FROM (SELECT {cols} FROM calls) t")
by = {(c["org"], c["pbx"], c["call_id"], c["ended_at"]): c for c in calls}
rows = sc.psql_json(dsn, "SELECT row_to_json(t) FROM (SELECT target_org, org, pbx, call_id, "
                         "(extract(epoch FROM ended_at) * 1000000)::bigint AS ended_us "
                         "FROM sf_outbox ORDER BY id) t")
for arg in sys.argv[3:]:
    org, _, js = arg.partition("=")
    fields = json.loads(js)
    with open(os.path.join(outdir, org + ".jsonl"), "w", encoding="utf-8") as f:
        for o in rows:
            if o["target_org"] != org:
                continue
            call = by[(o["org"], o["pbx"], o["call_id"], o["ended_us"])]
            key = sc.row_key(o["org"], o["pbx"], o["call_id"], o["ended_us"])
            rec = {}
            for fd in fields:
                v = sc.csv_value(fd, call, key)
                rec[fd["field"]] = v if v != "" else None
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
