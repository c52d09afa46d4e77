#!/usr/bin/env python3
"""html_report.py - one self-contained HTML page with inline SVG charts of the queues (no network, no CDN).

    html_report.py --dsn READER_DSN --out report.html [--since 3h] [--title T] [--summary FILE]

Reads reporting.queue_interval_15m as the read-only role (through psql) and draws, per queue,
three charts over time: service level (%), offered / answered / abandoned, and ASA (s).
Python standard library only.  The page sets document.title to "ok" only when every chart has
drawn data points (tests/integration/demo_report.sh checks that in headless Chromium).
--summary adds a preformatted block (the demo's text summary).
"""
import argparse
import csv
import html
import io
import subprocess
import sys
from collections import OrderedDict
from datetime import datetime, timezone

W, H = 380, 190          # one chart
ML, MR, MT, MB = 44, 12, 26, 30
COLORS = {"offered": "#4c6ef5", "answered": "#2f9e44", "abandoned": "#e03131",
          "sl": "#1098ad", "asa": "#f08c00", "goal": "#868e96"}


def psql_csv(dsn, sql):
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c",
                          "COPY (" + sql + ") TO STDOUT WITH (FORMAT csv, HEADER true)"],
                         check=True, capture_output=True, text=True).stdout
    return list(csv.DictReader(io.StringIO(out)))


def num(v):
    return None if v in ("", None) else float(v)


def nice_max(v):
    if v <= 0:
        return 1.0
    for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000,
              50000, 100000):
        if v <= m:
            return float(m)
    return float(v)


def chart(title, times, series, ymax=None, unit="", goal=None):
    """series: list of (name, color, values (None = no value)); a line with dots per series."""
    pw, ph = W - ML - MR, H - MT - MB
    vals = [v for _, _, vs in series for v in vs if v is not None]
    top = ymax if ymax is not None else nice_max(max(vals) if vals else 0)
    n = len(times)

    def x(i):
        return ML + (pw * (i + 0.5) / n if n else 0)

    def y(v):
        return MT + ph - ph * min(v, top) / top

    points = 0
    parts = ['<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'viewBox="0 0 %d %d" role="img" aria-label="%s">' % (W, H, W, H, html.escape(title))]
    parts.append('<text x="%d" y="16" class="t">%s</text>' % (ML, html.escape(title)))
    for k in range(5):
        v = top * k / 4
        yy = y(v)
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (ML, W - MR, yy, yy))
        parts.append('<text x="%d" y="%.1f" class="ax" text-anchor="end">%s%s</text>'
                     % (ML - 4, yy + 3, ("%g" % round(v, 1)), unit))
    step = max(1, n // 6)
    for i, t in enumerate(times):
        if i % step == 0:
            parts.append('<text x="%.1f" y="%d" class="ax" text-anchor="middle">%s</text>'
                         % (x(i), H - MB + 14, t.strftime("%H:%M")))
    if goal is not None:
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="goal"/>'
                     % (ML, W - MR, y(goal), y(goal)))
    lx = ML + 122
    for name, color, vs in series:
        pts = [(x(i), y(v)) for i, v in enumerate(vs) if v is not None]
        if len(pts) > 1:
            parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                         % (color, " ".join("%.1f,%.1f" % p for p in pts)))
        for px, py in pts:
            parts.append('<circle class="pt" cx="%.1f" cy="%.1f" r="2.8" fill="%s"/>' % (px, py, color))
            points += 1
        if len(series) > 1:
            parts.append('<rect x="%d" y="8" width="9" height="9" fill="%s"/><text x="%d" y="16" '
                         'class="ax">%s</text>' % (lx, color, lx + 12, html.escape(name)))
            lx += 16 + 6 * len(name)
    parts.append('</svg>')
    return "".join(parts).replace('class="chart"', 'class="chart" data-points="%d"' % points, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--since", default="3h")
    ap.add_argument("--title", default="callpipe — queue report")
    ap.add_argument("--summary")
    a = ap.parse_args()

    rows = psql_csv(a.dsn, "SELECT org, queue, interval_start AT TIME ZONE 'UTC' AS t, offered, "
                    "answered, abandoned, round(service_level * 100, 1) AS sl, "
                    "round(asa_ms / 1000, 1) AS asa, sl_threshold_ms / 1000 AS sl_s "
                    "FROM reporting.queue_interval_15m WHERE interval_start >= now() - '%s'::interval "
                    "ORDER BY org, queue, interval_start" % a.since.replace("'", ""))
    times = sorted({datetime.fromisoformat(r["t"]) for r in rows})
    queues = OrderedDict()
    for r in rows:
        queues.setdefault((r["org"], r["queue"]), {})[datetime.fromisoformat(r["t"])] = r

    cards = []
    for (org, queue), by_t in queues.items():
        def col(c):
            return [num(by_t[t][c]) if t in by_t else None for t in times]
        sl_s = next(iter(by_t.values()))["sl_s"]
        tot = {c: int(sum(num(r[c]) or 0 for r in by_t.values())) for c in ("offered", "answered", "abandoned")}
        cards.append(
            '<section class="q"><h2>%s <span>/ %s</span></h2><p class="kpi">offered %d · answered %d · '
            'abandoned %d · service-level goal: 80 %% in %s s</p><div class="row">%s%s%s</div></section>'
            % (html.escape(org), html.escape(queue), tot["offered"], tot["answered"], tot["abandoned"],
               html.escape(sl_s),
               chart("Service level (%)", times, [("SL", COLORS["sl"], col("sl"))], ymax=100.0,
                     unit="", goal=80.0),
               chart("Calls per 15 min", times, [(c, COLORS[c], col(c))
                                                 for c in ("offered", "answered", "abandoned")]),
               chart("ASA (s)", times, [("ASA", COLORS["asa"], col("asa"))])))
    summary = ""
    if a.summary:
        with open(a.summary, encoding="utf-8") as f:
            summary = '<h2>Run summary</h2><pre>%s</pre>' % html.escape(f.read())
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>loading</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #212529; background: #f8f9fa; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
.sub {{ color: #495057; margin: 0 0 18px; }}
section.q {{ background: #fff; border: 1px solid #dee2e6; border-radius: 6px; padding: 10px 14px; margin: 0 0 14px; }}
section.q h2 {{ font-size: 16px; margin: 0; }} section.q h2 span {{ color: #495057; font-weight: normal; }}
.kpi {{ margin: 2px 0 6px; color: #495057; font-size: 13px; }}
.row {{ display: flex; gap: 10px; flex-wrap: wrap; }}
svg .t {{ font-size: 13px; font-weight: 600; fill: #343a40; }}
svg .ax {{ font-size: 10px; fill: #495057; }}
svg .grid {{ stroke: #e9ecef; stroke-width: 1; }}
svg .goal {{ stroke: {goal}; stroke-width: 1; stroke-dasharray: 4 3; }}
pre {{ background: #fff; border: 1px solid #dee2e6; padding: 10px; font-size: 12px; overflow-x: auto; }}
</style></head><body>
<h1>{title}</h1>
<p class="sub">Per queue, 15-minute UTC intervals from <code>reporting.queue_interval_15m</code>
(read as <code>callpipe_reader</code>), last {since}; written {when}. Dashed line: 80 % service-level goal.</p>
{cards}
{summary}
<script>
(function () {{
  var charts = document.querySelectorAll('svg.chart');
  var ok = charts.length > 0;
  for (var i = 0; i < charts.length; i++)
    if (charts[i].querySelectorAll('circle.pt').length === 0) ok = false;
  document.title = ok ? 'ok' : 'empty chart';
}})();
</script>
</body></html>
""".format(goal=COLORS["goal"], title=html.escape(a.title), since=html.escape(a.since), when=when,
           cards="\n".join(cards) if cards else "<p>No intervals in the range.</p>", summary=summary)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(page)
    print("html_report: %d queues, %d intervals -> %s" % (len(queues), len(times), a.out))
    return 0 if queues else 1


if __name__ == "__main__":
    sys.exit(main())
