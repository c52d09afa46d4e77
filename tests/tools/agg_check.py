#!/usr/bin/env python3
"""agg_check.py - the independent oracle: expected aggregator output from callgen's ground truth, compared with PostgreSQL.

    agg_check.py --truth TRUTH.jsonl --dsn DSN [--route ORG|QUEUES|TARGETS]... [--max-diff N]

Computes, from the ground truth alone and the written definitions (reference/metrics.md,
schema/README.md "booked at" table and data contract, aggregator/agg_call.h's booking list),
every expected row of queue_interval, queue_disposition_interval, queue_wrapup_interval,
calls and sf_outbox, and compares them with the database exactly.  The settings in force
(queue_settings) are read from the database: they are input, not output.  Routes are given
as in the aggregator config (first matching route wins; empty QUEUES = every queue).

Standard library only; talks to PostgreSQL through psql.  Exit 0 when everything matches,
1 on a mismatch (the first --max-diff differences of each table are printed), 2 on usage
errors.  Deliberately shares no code or structure with the C aggregator.
"""
import argparse
import csv
import io
import json
import subprocess
import sys
from collections import defaultdict

INTERVAL_US = 900 * 1000000
# Histogram bucket upper bounds in seconds (schema/README.md); the 17th is +inf.
BOUNDS_S = [5, 8, 10, 15, 20, 25, 30, 45, 60, 90, 120, 180, 240, 300, 600, 1200]

SUMS = ["offered", "answered", "abandoned", "short_abandoned", "timed_out", "key_exit",
        "queue_full", "callback", "voicemail", "transferred_out_of_queue", "other_flowout",
        "transferred_in", "transferred_out", "agent_noanswer", "handled", "held",
        "answered_within_sl", "abandoned_within_sl", "answered_wait_ms", "abandoned_wait_ms",
        "talk_ms", "hold_ms", "acw_ms", "handle_ms"]
MAXES = ["answered_wait_max_ms", "abandoned_wait_max_ms"]
HISTS = ["answered_wait_hist", "abandoned_wait_hist"]
FLOWOUT_COLUMN = {"timeout": "timed_out", "key_exit": "key_exit", "full": "queue_full",
                  "callback": "callback", "voicemail": "voicemail",
                  "transferred": "transferred_out_of_queue"}

CALL_COLS = ["ended_at", "direction", "from_number", "from_name", "to_number", "final_to",
             "queue", "agent", "started_at", "queued_at", "answered_at", "wait_ms", "talk_ms",
             "hold_ms", "acw_ms", "handle_ms", "disposition", "queue_outcome", "wrapup",
             "hangup_side", "source"]
TIME_COLS = {"ended_at", "started_at", "queued_at", "answered_at"}


def interval_of(us):
    return us - us % INTERVAL_US


def bucket(wait_ms):
    for i, b in enumerate(BOUNDS_S):
        if wait_ms <= b * 1000:
            return i
    return len(BOUNDS_S)


def ms(d_us):
    return d_us // 1000


# ---------------------------------------------------------------- settings

class Settings:
    """queue_settings rows; the row in force is the SQL lookup of schema/README.md."""

    def __init__(self, rows):
        self.rows = rows  # (org, queue, valid_from_us or None for -infinity, sl_ms, cmp, short_ms)

    def at(self, org, queue, t_us):
        cands = [r for r in self.rows if r[0] in (org, "*") and r[1] in (queue, "*")
                 and (r[2] is None or r[2] <= t_us)]
        if not cands:
            return (20000, "<=", 0)
        # ORDER BY org = '*', queue = '*', valid_from DESC
        cands.sort(key=lambda r: (r[0] == "*", r[1] == "*",
                                  -(r[2] if r[2] is not None else -(1 << 62))))
        r = cands[0]
        return (r[3], r[4], r[5])


def within(sl, wait_ms):
    thr, cmp, _ = sl
    return wait_ms < thr if cmp == "<" else wait_ms <= thr


# ---------------------------------------------------------------- expected rows

def new_qi():
    row = {c: 0 for c in SUMS + MAXES}
    for h in HISTS:
        row[h] = [0] * (len(BOUNDS_S) + 1)
    return row


class Expected:
    def __init__(self, settings, routes):
        self.settings = settings
        self.routes = routes
        self.qi = defaultdict(new_qi)           # (org, queue, interval) -> columns
        self.disp = defaultdict(lambda: [0, 0])  # (org, queue, interval, disposition) -> calls, handle
        self.wrap = defaultdict(lambda: [0, 0])  # (org, queue, interval, wrapup) -> calls, handle
        self.calls = {}                          # (org, pbx, call) -> column dict
        self.outbox = set()                      # (org, pbx, call, ended_at, target)

    def row(self, org, queue, t_us):
        return self.qi[(org, queue, interval_of(t_us))]

    def add_call(self, c):
        org = c["org"]
        visits = c["visits"]
        seg = c["segment"]

        # Queue visits: offered at entry; answered at the agent's answer; abandon and
        # flow-outs at the queue exit; RONA per attempt; transfers at the transfer.
        for i, v in enumerate(visits):
            q = v["queue"]
            self.row(org, q, v["enter"])["offered"] += 1
            for t in v["noanswer"]:
                self.row(org, q, t)["agent_noanswer"] += 1
            if v["connect"] is not None:
                wait = ms(v["connect"] - v["enter"])
                r = self.row(org, q, v["connect"])
                r["answered"] += 1
                r["answered_wait_ms"] += wait
                r["answered_wait_max_ms"] = max(r["answered_wait_max_ms"], wait)
                r["answered_wait_hist"][bucket(wait)] += 1
                if within(self.settings.at(org, q, v["connect"]), wait):
                    r["answered_within_sl"] += 1
            else:
                wait = ms(v["leave"] - v["enter"])
                r = self.row(org, q, v["leave"])
                if v["outcome"] == "abandoned":
                    st = self.settings.at(org, q, v["leave"])
                    r["abandoned"] += 1
                    r["abandoned_wait_ms"] += wait
                    r["abandoned_wait_max_ms"] = max(r["abandoned_wait_max_ms"], wait)
                    r["abandoned_wait_hist"][bucket(wait)] += 1
                    if within(st, wait):
                        r["abandoned_within_sl"] += 1
                    if st[2] > 0 and wait <= st[2]:
                        r["short_abandoned"] += 1
                else:
                    r[FLOWOUT_COLUMN.get(v["outcome"], "other_flowout")] += 1
            if v["transfer_out"] is not None:
                t = v["transfer_out"]
                self.row(org, q, t)["transferred_out"] += 1
                if i + 1 < len(visits) and visits[i + 1]["queue"] != q:
                    self.row(org, visits[i + 1]["queue"], t)["transferred_in"] += 1

        # The agent segment: talk and hold when talk ends, handling when wrap-up ends.
        talk = hold = acw = handle = None
        if seg is not None:
            if seg["cdr_hold"] is not None:
                hold = ms(seg["cdr_hold"])
            else:
                hold = sum(ms(off - on) for on, off in seg["holds"])
            talk = ms(seg["complete"] - seg["connect"]) - hold
            acw = ms(seg["wrapup_end"] - seg["complete"])
            handle = talk + hold + acw
            if seg["queue"] is not None:
                r = self.row(org, seg["queue"], seg["complete"])
                r["talk_ms"] += talk
                r["hold_ms"] += hold
                if hold > 0:
                    r["held"] += 1
                r = self.row(org, seg["queue"], seg["wrapup_end"])
                r["handled"] += 1
                r["acw_ms"] += acw
                r["handle_ms"] += handle
            if seg["wrapup"] is not None:
                w = self.wrap[(org, seg["queue"] or "", interval_of(seg["wrapup_end"]),
                               seg["wrapup"])]
                w[0] += 1
                w[1] += handle

        last = visits[-1] if visits else None
        call_queue = last["queue"] if last else None
        # Dispositions go to the queue whose agent handled the call, else its last queue
        # ('' without one), in the interval of the call's end (aggregator/agg_call.c, schema).
        disp_queue = seg["queue"] if seg is not None and seg["queue"] is not None else call_queue
        d = self.disp[(org, disp_queue or "", interval_of(c["end"]), c["disp"] or "unknown")]
        d[0] += 1
        d[1] += handle or 0

        wait_ms = None
        if last is not None:
            out = last["connect"] if last["connect"] is not None else last["leave"]
            wait_ms = ms(out - last["enter"])
        row = {
            "ended_at": c["end"], "direction": c["dir"], "from_number": c["from"],
            "from_name": c["from_name"], "to_number": c["to"], "final_to": c["final_to"],
            "queue": call_queue, "agent": seg["agent"] if seg else None,
            "started_at": c["start"], "queued_at": visits[0]["enter"] if visits else None,
            "answered_at": c["answer"], "wait_ms": wait_ms, "talk_ms": talk, "hold_ms": hold,
            "acw_ms": acw, "handle_ms": handle, "disposition": c["disp"],
            "queue_outcome": last["outcome"] if last else None,
            "wrapup": seg["wrapup"] if seg else None, "hangup_side": c["side"],
            "source": c["src"],
        }
        self.calls[(org, c["pbx"], c["call"])] = row

        for r_org, r_queues, r_targets in self.routes:
            if r_org != "*" and r_org != org:
                continue
            if r_queues and call_queue not in r_queues:
                continue
            for t in r_targets:
                self.outbox.add((org, c["pbx"], c["call"], c["end"], t))
            break


# ---------------------------------------------------------------- database

def psql_csv(dsn, sql):
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c",
                          "COPY (" + sql + ") TO STDOUT WITH (FORMAT csv, NULL '\\N')"],
                         check=True, capture_output=True, text=True).stdout
    return list(csv.reader(io.StringIO(out)))


def us_expr(col):
    return "(extract(epoch FROM %s) * 1000000)::bigint" % col


def nullable(v):
    return None if v == "\\N" else v


def load_settings(dsn):
    rows = []
    for org, queue, vf, sl, cmp, short in psql_csv(
            dsn, "SELECT org, queue, CASE WHEN valid_from = '-infinity' THEN NULL ELSE "
                 + us_expr("valid_from") + " END, sl_threshold_ms, sl_compare, short_abandon_ms "
                 "FROM queue_settings"):
        rows.append((org, queue, None if vf == "\\N" else int(vf), int(sl), cmp, int(short)))
    return Settings(rows)


def parse_hist(s):
    return [int(x) for x in s.strip("{}").split(",")]


def db_qi(dsn):
    cols = SUMS + MAXES + HISTS
    got = {}
    for r in psql_csv(dsn, "SELECT org, queue, %s, %s FROM queue_interval"
                      % (us_expr("interval_start"), ", ".join(cols))):
        row = {}
        for c, v in zip(cols, r[3:]):
            row[c] = parse_hist(v) if c in HISTS else int(v)
        got[(r[0], r[1], int(r[2]))] = row
    return got


def db_counts(dsn, table, name):
    got = {}
    for org, queue, t, n, calls, handle in psql_csv(
            dsn, "SELECT org, queue, %s, %s, calls, handle_ms FROM %s"
            % (us_expr("interval_start"), name, table)):
        got[(org, queue, int(t), n)] = [int(calls), int(handle)]
    return got


def db_calls(dsn):
    sel = ", ".join(us_expr(c) if c in TIME_COLS else c for c in CALL_COLS)
    got = {}
    dups = 0
    for r in psql_csv(dsn, "SELECT org, pbx, call_id, %s FROM calls" % sel):
        row = {}
        for c, v in zip(CALL_COLS, r[3:]):
            v = nullable(v)
            if v is not None and (c in TIME_COLS or c.endswith("_ms")):
                v = int(v)
            row[c] = v
        key = (r[0], r[1], r[2])
        if key in got:
            dups += 1
        got[key] = row
    return got, dups


def db_outbox(dsn):
    rows = psql_csv(dsn, "SELECT org, pbx, call_id, %s, target_org FROM sf_outbox"
                    % us_expr("ended_at"))
    got = set((o, p, c, int(t), g) for o, p, c, t, g in rows)
    return got, len(rows) - len(got)


# ---------------------------------------------------------------- comparison

def fmt_key(k):
    return "/".join(str(x) for x in k)


class Report:
    def __init__(self, max_diff):
        self.max_diff = max_diff
        self.bad = 0

    def table(self, name, want, got, zero=None):
        keys = set(want) | set(got)
        diffs = []
        for k in sorted(keys, key=lambda k: tuple(str(x) for x in k)):
            w = want.get(k, zero)
            g = got.get(k, zero)
            if w != g:
                diffs.append((k, w, g))
        print("%-28s expected %7d rows, database %7d rows: %s"
              % (name, len(want), len(got), "ok" if not diffs else "%d differ" % len(diffs)))
        for k, w, g in diffs[:self.max_diff]:
            if isinstance(w, dict) and isinstance(g, dict):
                cols = [c for c in w if w[c] != g.get(c)]
                print("  %s: %s" % (fmt_key(k), ", ".join(
                    "%s want %s got %s" % (c, w[c], g.get(c)) for c in cols)))
            else:
                print("  %s: want %s got %s" % (fmt_key(k), w, g))
        self.bad += len(diffs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--truth", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--route", action="append", default=[],
                    help="ORG|QUEUES|TARGETS, comma lists, in config order")
    ap.add_argument("--max-diff", type=int, default=10)
    a = ap.parse_args()

    routes = []
    for r in a.route:
        parts = r.split("|")
        if len(parts) != 3:
            ap.error("--route ORG|QUEUES|TARGETS")
        split = lambda s: [x.strip() for x in s.split(",") if x.strip()]
        routes.append((parts[0].strip(), split(parts[1]), split(parts[2])))

    exp = Expected(load_settings(a.dsn), routes)
    n = 0
    with open(a.truth, encoding="utf-8") as f:
        for line in f:
            exp.add_call(json.loads(line))
            n += 1
    print("ground truth: %d calls" % n)

    rep = Report(a.max_diff)
    zero = new_qi()
    rep.table("queue_interval", dict(exp.qi), db_qi(a.dsn), zero)
    rep.table("queue_disposition_interval", dict(exp.disp),
              db_counts(a.dsn, "queue_disposition_interval", "disposition"), [0, 0])
    rep.table("queue_wrapup_interval", dict(exp.wrap),
              db_counts(a.dsn, "queue_wrapup_interval", "wrapup"), [0, 0])
    calls, dups = db_calls(a.dsn)
    rep.table("calls", exp.calls, calls)
    if dups:
        print("calls: %d duplicate rows" % dups)
        rep.bad += dups
    outbox, odups = db_outbox(a.dsn)
    rep.table("sf_outbox", {k: True for k in exp.outbox}, {k: True for k in outbox})
    if odups:
        print("sf_outbox: %d duplicate rows" % odups)
        rep.bad += odups
    print("agg_check: %s" % ("OK" if rep.bad == 0 else "FAIL (%d differences)" % rep.bad))
    return 0 if rep.bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
