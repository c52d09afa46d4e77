#!/usr/bin/env bash
# tests/demo/check_html.sh - open an HTML report in headless Chromium: fail on a load error or an empty chart.
#
#   tests/demo/check_html.sh REPORT.html SCREENSHOT.png
#
# The page sets document.title to "ok" only when every chart drew data points
# (tests/demo/html_report.py); --dump-dom shows the title after the scripts ran.  The
# screenshot (1280x2000) must be a real PNG of more than 20 KB (an empty or error page is
# a few KB).  No network: the page has no external resources and Chromium's background
# services are off.
set -euo pipefail
html=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
png=$2
[ -f "$html" ] || { echo "check_html: no $html" >&2; exit 1; }
command -v chromium >/dev/null || { echo "check_html: chromium is not installed (make deps)" >&2; exit 1; }
prof=$(mktemp -d /tmp/callpipe-chromium.XXXXXX)
trap 'rm -rf "$prof"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking
       --disable-component-update --disable-sync --no-first-run --user-data-dir="$prof"
       --window-size=1280,2000)
dom=$(timeout 60 chromium "${flags[@]}" --dump-dom "file://$html" 2>"$prof/dom.err") ||
    { cat "$prof/dom.err" >&2; echo "check_html: chromium could not load the page" >&2; exit 1; }
title=$(sed -n 's:.*<title>\(.*\)</title>.*:\1:p' <<<"$dom" | head -1)
[ "$title" = ok ] || { echo "check_html: page title is \"$title\", want \"ok\" (an empty chart or a script error)" >&2; exit 1; }
rm -f "$png"
timeout 60 chromium "${flags[@]}" --screenshot="$png" "file://$html" >/dev/null 2>"$prof/shot.err" ||
    { cat "$prof/shot.err" >&2; echo "check_html: no screenshot" >&2; exit 1; }
[ -f "$png" ] || { echo "check_html: no screenshot written" >&2; exit 1; }
magic=$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')
[ "$magic" = 89504e470d0a1a0a ] || { echo "check_html: $png is not a PNG" >&2; exit 1; }
size=$(stat -c %s "$png")
[ "$size" -gt 20000 ] || { echo "check_html: screenshot is only $size bytes (a blank page?)" >&2; exit 1; }
echo "check_html: ok (title ok, screenshot $size bytes: $png)"
