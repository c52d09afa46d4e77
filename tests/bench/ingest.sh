#!/usr/bin/env bash
# tests/bench/ingest.sh - the collector against rsyslog and syslog-ng and a plain librdkafka ceiling.
#
#   make bench-ingest                  (or BUILD=build tests/bench/ingest.sh)
#   BENCH_N=200000 BENCH_SYSTEMS="collector ceiling" BENCH_PROFILE=0 tests/bench/ingest.sh
#
# See tests/bench/README.md for what is measured and how.  Writes
# build/bench/ingest.md (the table) and build/bench/ingest-profile.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
N=${BENCH_N:-2000000}
SYSTEMS=${BENCH_SYSTEMS:-collector rsyslog syslog-ng ceiling}
CONNS=${BENCH_CONNS:-1 4}
PARTS=${BENCH_PARTITIONS:-64}
LINGER=${BENCH_LINGER_MS:-5} # linger.ms for every system (the collector's default is 5)
OUT=${BENCH_OUT:-$ROOT/build/bench}
TOPIC=callpipe.events
mkdir -p "$OUT"
. tests/scripts/devbroker.sh
export BUILD

for t in bench_send bench_count bench_ceiling devbroker; do
    [ -x "$BUILD/tools/$t" ] || { echo "bench: $BUILD/tools/$t not built (make)" >&2; exit 1; }
done
[ -x "$BUILD/callpipe" ] || { echo "bench: $BUILD/callpipe not built" >&2; exit 1; }
case " $SYSTEMS " in *" rsyslog "* | *" syslog-ng "*)
    tests/bench/fetch-peers.sh "$OUT/peers" >/dev/null
    . "$OUT/peers/env" ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_ingest.XXXXXX")
svc_pid=
count_pid=
cleanup() {
    [ -n "$svc_pid" ] && kill -9 "$svc_pid" 2>/dev/null
    [ -n "$count_pid" ] && kill -9 "$count_pid" 2>/dev/null
    devbroker_stop >/dev/null 2>&1 || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu_ticks() { # PID -> utime+stime of all its threads, in clock ticks
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
wait_port() { # PORT PID
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
TCK=$(getconf CLK_TCK)

EVENTS=$OUT/events.jsonl
if [ ! -s "$EVENTS" ] || [ "$(wc -l <"$EVENTS")" != "$N" ]; then
    "$BUILD/tools/bench_send" gen -n "$N" -o "$EVENTS" >"$tmp/gen.out"
fi
AVG=$(( $(stat -c %s "$EVENTS") / N ))

# --- the services -----------------------------------------------------------------------------

start_collector() { # PORT -> svc_pid
    local admin
    admin=$(free_port)
    cat >"$tmp/ingest.yaml" <<YAML
threads: 2
log_level: warn
admin: 127.0.0.1:$admin
kafka:
  brokers: "$DEVBROKER_BOOTSTRAP"
  compression: lz4
  linger: ${LINGER}ms
sources:
  - {name: bench, org: acme, listen: "127.0.0.1:$1"}
YAML
    "$BUILD/callpipe" ingest -c "$tmp/ingest.yaml" >"$tmp/svc.log" 2>&1 &
    svc_pid=$!
    COLLECTOR_ADMIN=$admin
}

start_rsyslog() { # PORT
    mkdir -p "$tmp/rsyslog"
    cat >"$tmp/rsyslog.conf" <<CONF
global(workDirectory="$tmp/rsyslog" maxMessageSize="64k")
module(load="imptcp")
module(load="omkafka")
template(name="raw" type="string" string="%rawmsg%")
main_queue(queue.size="200000" queue.dequeueBatchSize="1024")
input(type="imptcp" address="127.0.0.1" port="$1" ruleset="tokafka")
ruleset(name="tokafka") {
    action(type="omkafka" broker=["${DEVBROKER_BOOTSTRAP//,/\",\"}"] topic="$TOPIC" template="raw"
           confParam=["compression.codec=lz4", "enable.idempotence=true", "acks=all",
                      "linger.ms=$LINGER", "queue.buffering.max.messages=200000",
                      "queue.buffering.max.kbytes=262144", "message.timeout.ms=0"])
}
CONF
    LD_LIBRARY_PATH=$PEER_LD "$RSYSLOGD" -n -f "$tmp/rsyslog.conf" -i "$tmp/rsyslog/pid" \
        -M "$RSYSLOG_MODDIR" >"$tmp/svc.log" 2>&1 &
    svc_pid=$!
}

start_syslogng() { # PORT
    mkdir -p "$tmp/syslog-ng"
    # flow-control: without it syslog-ng drops what does not fit its queue instead of
    # slowing the sender, and would not deliver all N.
    cat >"$tmp/syslog-ng.conf" <<CONF
@version: 3.38
options { stats-freq(0); threaded(yes); log-fifo-size(200000); };
source s_net {
    network(ip("127.0.0.1") port($1) transport("tcp") flags(no-parse)
            max-connections(16) log-iw-size(200000) log-msg-size(65536));
};
destination d_kafka {
    kafka-c(bootstrap-servers("$DEVBROKER_BOOTSTRAP") topic("$TOPIC") message("\$MSG")
            config("compression.codec" => "lz4" "enable.idempotence" => "true" "acks" => "all"
                   "linger.ms" => "$LINGER" "queue.buffering.max.messages" => "200000"
                   "queue.buffering.max.kbytes" => "262144" "message.timeout.ms" => "0"));
};
log { source(s_net); destination(d_kafka); flags(flow-control); };
CONF
    LD_LIBRARY_PATH=$PEER_LD "$SYSLOGNG" -F -f "$tmp/syslog-ng.conf" --module-path="$SYSLOGNG_MODDIR" \
        -p "$tmp/syslog-ng/pid" -R "$tmp/syslog-ng/persist" -c "$tmp/syslog-ng/ctl" \
        --no-caps >"$tmp/svc.log" 2>&1 &
    svc_pid=$!
}

stop_service() {
    [ -n "$svc_pid" ] || return 0
    kill -TERM "$svc_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$svc_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$svc_pid" 2>/dev/null || true
    wait "$svc_pid" 2>/dev/null || true
    svc_pid=
}

# --- one measured run ---------------------------------------------------------------------------

ROWS=()
add_row() { # NAME EVENTS/S EVENTS/CPU-S RSS_MB NOTE
    ROWS+=("$1|$2|$3|$4|$5")
    printf '  %-22s %10s ev/s %10s ev/CPU-s %7s MB  %s\n' "$1" "$2" "$3" "$4" "$5"
}

run_service() { # SYSTEM CONNS
    local sys=$1 conns=$2 port note=
    devbroker_start "$tmp/broker" -b 1 -t "$TOPIC:$PARTS" -t callpipe.deadletter:4
    port=$(free_port)
    case $sys in
    collector) start_collector "$port" ;;
    rsyslog) start_rsyslog "$port" ;;
    syslog-ng) start_syslogng "$port" ;;
    esac
    if ! wait_port "$port" "$svc_pid"; then
        echo "bench: $sys did not start:" >&2
        cat "$tmp/svc.log" >&2
        svc_pid=
        devbroker_stop || true
        add_row "$sys ($conns conn)" - - - "did not start"
        return 0
    fi
    sleep 0.5
    local c0 c1 hwm
    c0=$(cpu_ticks "$svc_pid")
    "$BUILD/tools/bench_count" -b "$DEVBROKER_BOOTSTRAP" -t "$TOPIC" -n "$N" -T 120 \
        >"$tmp/count.out" 2>"$tmp/count.err" &
    count_pid=$!
    "$BUILD/tools/bench_send" send -f "$EVENTS" -p "$port" -c "$conns" >"$tmp/send.out"
    local crc=0
    wait "$count_pid" || crc=$?
    count_pid=
    c1=$(cpu_ticks "$svc_pid")
    hwm=$(hwm_kb "$svc_pid")
    if [ "$sys" = collector ]; then
        curl -sf "http://127.0.0.1:$COLLECTOR_ADMIN/metrics" >"$tmp/metrics.txt" || true
        local rej
        rej=$(awk '/^callpipe_ingest_rejects_total/ {s += $NF} END {print s + 0}' "$tmp/metrics.txt")
        [ "$rej" = 0 ] || note="$rej rejected!"
    fi
    stop_service
    devbroker_stop >/dev/null 2>&1 || true
    # The peers must forward the lines unchanged: one payload must be one of our lines.
    local first
    first=$(sed -n 's/^first: //p' "$tmp/count.err")
    if [ "$sys" != collector ] && [ -n "$first" ] && ! grep -qxF -- "$first" "$EVENTS"; then
        note="$note payload changed: ${first:0:60}"
    fi
    local start_us end_us count
    start_us=$(sed -n 's/.*start_us=\([0-9]*\).*/\1/p' "$tmp/send.out")
    end_us=$(sed -n 's/.*end_us=\([0-9]*\).*/\1/p' "$tmp/count.out")
    count=$(sed -n 's/^count=\([0-9]*\).*/\1/p' "$tmp/count.out")
    if [ "$crc" != 0 ]; then
        add_row "$sys ($conns conn)" - - "$((hwm / 1024))" "only ${count:-0} of $N arrived $note"
        return 0
    fi
    awk -v n="$N" -v s="$start_us" -v e="$end_us" -v c0="$c0" -v c1="$c1" -v tck="$TCK" \
        -v hwm="$hwm" 'BEGIN {
            el = (e - s) / 1e6; cpu = (c1 - c0) / tck;
            printf "%.0f %.0f %.1f %.2f %.2f\n", n / el, (cpu > 0 ? n / cpu : 0), hwm / 1024, el, cpu
        }' >"$tmp/res"
    read -r eps epc rss el cpu <"$tmp/res"
    add_row "$sys ($conns conn)" "$eps" "$epc" "$rss" "${el}s, ${cpu} CPU-s $note"
}

run_ceiling() {
    devbroker_start "$tmp/broker" -b 1 -t "$TOPIC:$PARTS"
    "$BUILD/tools/bench_count" -b "$DEVBROKER_BOOTSTRAP" -t "$TOPIC" -n "$N" -T 120 \
        >"$tmp/count.out" 2>"$tmp/count.err" &
    count_pid=$!
    "$BUILD/tools/bench_ceiling" -b "$DEVBROKER_BOOTSTRAP" -t "$TOPIC" -f "$EVENTS" >"$tmp/ceil.out"
    wait "$count_pid" || true
    count_pid=
    devbroker_stop >/dev/null 2>&1 || true
    local el cpu rss
    el=$(sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p' "$tmp/ceil.out")
    cpu=$(sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' "$tmp/ceil.out")
    rss=$(sed -n 's/.*rss_mb=\([0-9.]*\).*/\1/p' "$tmp/ceil.out")
    add_row "ceiling (librdkafka)" "$(awk -v n="$N" -v e="$el" 'BEGIN {printf "%.0f", n / e}')" \
        "$(awk -v n="$N" -v c="$cpu" 'BEGIN {printf "%.0f", n / c}')" "$rss" \
        "${el}s to last delivery report, ${cpu} CPU-s"
}

echo "bench-ingest: $N events of ~$AVG bytes, $PARTS partitions, lz4, $(nproc) cores"
for sys in $SYSTEMS; do
    if [ "$sys" = ceiling ]; then
        run_ceiling
    else
        for c in $CONNS; do run_service "$sys" "$c"; done
    fi
done

# --- the table ---------------------------------------------------------------------------------

python3 - "$OUT/ingest.md" "$N" "$AVG" "$(nproc)" "$PARTS" "${ROWS[@]}" <<'PY'
import sys, datetime
path, n, avg, cores, parts, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
rows = [r.split("|") for r in rows]
num = lambda v: float(v) if v not in ("-", "") else None
peers = [num(r[2]) for r in rows if r[0].startswith(("rsyslog", "syslog-ng")) and num(r[2])]
best_peer = max(peers) if peers else None
ceil = [num(r[2]) for r in rows if r[0].startswith("ceiling") and num(r[2])]
ceil = ceil[0] if ceil else None
fmt = lambda v: "-" if v is None else f"{v:,.0f}"
ratio = lambda a, b: "-" if a is None or not b else f"{a / b:.2f}x"
out = [f"# bench-ingest, {datetime.date.today()}", "",
       f"{n:,} canonical JSON events (~{avg} bytes), loopback TCP, one dev broker per system "
       f"({parts} partitions), lz4, idempotent acks=all, {cores} cores.",
       "events/s: first byte sent to message N visible on the topic. events/CPU-s: N / (user+system "
       "CPU of the service process over the run). Ratios are of events/CPU-s.", "",
       "| system | events/s | events/CPU-s | peak RSS MB | vs better peer | vs ceiling | note |",
       "|---|---:|---:|---:|---:|---:|---|"]
for name, eps, epc, rss, note in rows:
    e = num(epc)
    vp = "-" if name.startswith(("rsyslog", "syslog-ng", "ceiling")) else ratio(e, best_peer)
    vc = "-" if name.startswith("ceiling") else ratio(e, ceil)
    out.append(f"| {name} | {fmt(num(eps))} | {fmt(e)} | {rss} | {vp} | {vc} | {note.strip()} |")
coll = [num(r[2]) for r in rows if r[0].startswith("collector") and num(r[2])]
if coll and best_peer:
    worst = min(coll) / best_peer
    out += ["", f"Target: collector events/CPU-s >= 1.5x the better peer ({best_peer:,.0f}): "
            f"{'MET' if worst >= 1.5 else 'MISSED'} (worst collector row {worst:.2f}x)."]
text = "\n".join(out) + "\n"
open(path, "w").write(text)
print(); print(text)
PY

# --- the profile: where the collector's CPU goes ---------------------------------------------

if [ "${BENCH_PROFILE:-1}" = 1 ] && case " $SYSTEMS " in *" collector "*) true ;; *) false ;; esac; then
    prof=$OUT/ingest-profile.txt
    if perf record -e cpu-clock -o "$tmp/probe.data" true >/dev/null 2>&1; then
        # DWARF call graphs (our code and the libraries have no frame pointers) on a
        # shorter run: the data grows with samples x 16 KB of stack.
        PN=${BENCH_PROFILE_N:-300000}
        [ "$PN" -le "$N" ] || PN=$N
        head -n "$PN" "$EVENTS" >"$tmp/prof.jsonl"
        devbroker_start "$tmp/broker" -b 1 -t "$TOPIC:$PARTS" -t callpipe.deadletter:4
        port=$(free_port)
        start_collector "$port"
        wait_port "$port" "$svc_pid"
        "$BUILD/tools/bench_count" -b "$DEVBROKER_BOOTSTRAP" -t "$TOPIC" -n "$PN" -T 120 \
            >"$tmp/count.out" 2>&1 &
        count_pid=$!
        perf record -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$svc_pid" \
            -o "$tmp/perf.data" >"$tmp/perf.log" 2>&1 &
        perf_pid=$!
        sleep 0.5
        "$BUILD/tools/bench_send" send -f "$tmp/prof.jsonl" -p "$port" -c 1 >/dev/null
        wait "$count_pid" || true
        count_pid=
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        stop_service
        devbroker_stop >/dev/null 2>&1 || true
        rep() { perf report -i "$tmp/perf.data" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$'; }
        {
            echo "# perf record -e cpu-clock --call-graph dwarf of the collector, 1 connection, $PN events"
            echo "# (percent of all the collector's CPU samples, all threads)"
            echo
            echo "## by thread and shared object (self)"
            rep --no-children --sort comm,dso -g none | head -20
            echo
            echo "## inclusive: the collector's own functions and the libraries' entry points"
            rep --children --sort dso,symbol -g none --percent-limit 0.8 |
                grep -E 'callpipe |libcrypto|libyajl|librdkafka|libmsgpack|liblz4|libc.so' |
                grep -v ' 0x0000' | head -60
            echo
            echo "## self, top functions"
            rep --no-children --sort dso,symbol -g none --percent-limit 0.5 | head -50
            echo
            echo "## who calls memmove, malloc, clock_gettime, the UTF-8 check"
            for s in __memmove_avx512_unaligned_erms _int_malloc __vdso_clock_gettime cp_utf8_check; do
                rep --no-children --symbols=$s -G --percent-limit 0.3 | grep -E '[0-9]+\.[0-9]+%' |
                    grep -vE '0x0000|\[k\]' | head -12
            done
        } >"$prof"
        echo "profile: $prof"
        sed -n '1,60p' "$prof"
    else
        echo "profile: perf cannot record here; skipped" | tee "$prof"
    fi
fi
