#!/usr/bin/env python3
"""events_check.py - compares the events one source put on callpipe.events with golden outputs.

    events_check.py DUMP --pbx NAME --org ORG [--ids] [--ts-recv] GOLDEN.out...

DUMP is topic_dump output (one cp_event_to_json line per event).  The events
whose `pbx` is NAME must be exactly the JSON lines of the GOLDEN.out files, as
a multiset (the same count of each), with `recv`, `org` and `pbx` left out of
the comparison and `org` checked against ORG.  With --ids the event_id is
compared too: golden outputs are rendered for org "acme", pbx "pbx-1", and the
id hashes both, so --ids only makes sense for a source named pbx-1 in org acme.
Without --ids the ids of NAME's events must still be pairwise distinct unless
the golden outputs repeat an event.  Prints one line per difference and exits 1
on any.
"""
import argparse
import collections
import json
import sys


def norm(ev, ids):
    e = dict(ev)
    for k in ("recv", "org", "pbx"):
        e.pop(k, None)
    if not ids:
        e.pop("event_id", None)
    return json.dumps(e, sort_keys=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("golden", nargs="+")
    ap.add_argument("--pbx", required=True)
    ap.add_argument("--org", required=True)
    ap.add_argument("--ids", action="store_true")
    args = ap.parse_args()

    got = [json.loads(l) for l in open(args.dump) if l.strip()]
    got = [e for e in got if e.get("pbx") == args.pbx]
    want = []
    for path in args.golden:
        want += [json.loads(l) for l in open(path) if l.startswith("{")]
    bad = 0
    for e in got:
        if e.get("org") != args.org:
            print(f"{args.pbx}: org {e.get('org')!r}, want {args.org!r}: {e}")
            bad += 1
    g = collections.Counter(norm(e, args.ids) for e in got)
    w = collections.Counter(norm(e, args.ids) for e in want)
    for k in sorted(set(g) | set(w)):
        if g[k] != w[k]:
            print(f"{args.pbx}: got {g[k]} want {w[k]}: {k}")
            bad += 1
    if not args.ids:
        wid = collections.Counter(e["event_id"] for e in want)
        gid = collections.Counter(e["event_id"] for e in got)
        if sorted(gid.values()) != sorted(wid.values()):
            print(f"{args.pbx}: event_id multiplicities {sorted(gid.values())} "
                  f"!= golden {sorted(wid.values())}")
            bad += 1
    print(f"{args.pbx}: {len(got)} events, {len(want)} expected, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
