#!/usr/bin/env bash
# bench/metrics.sh - what the Prometheus endpoint costs the relay: throughput
# with and without SCRAPE_RATE scrapes per second (default 100; Prometheus
# scrapes every 15 s by default) for about SECONDS seconds.
#
# usage: bash bench/metrics.sh [SECONDS] [ROUNDS]
#
#   SECONDS  how long each run lasts (default 5): its size is what an
#            untimed calibration run of plain bpipe moves in that time
#   ROUNDS   timed rounds per variant, interleaved (default 5)
#
# Pipeline: producer write N | bpipe -q ... | consumer read, with
#   plain     bpipe -q
#   listen    bpipe -q --metrics-listen PORT       (nobody scrapes)
#   scraped   bpipe -q --metrics-listen PORT, and `scraper PORT RATE` (a new
#             connection and GET /metrics every 1/RATE s for the whole run)
#   elsewhere bpipe -q --metrics-listen PORT unscraped, while the scraper
#             scrapes another, idle bpipe on PORT+1: the same work on the
#             machine, none of it in the relay's process
# Every bpipe here runs with --no-control, so that nothing that finds
# relays by their control sockets (another session's --top or tests) can
# reach them.
# Reported: median throughput (N / wall time of the pipeline), bpipe's own
# CPU seconds (relaytime, via wait4), the scrapes done and their latency,
# and the target: scraped ÷ listen ≥ 0.98 (scraping costs ≤ 2 %); scraped ÷
# elsewhere tells what of it is the relay's own.
#
# Environment knobs (besides lib.sh's BUILD_DIR, BPIPE, SKIP_BUILD):
#   SECONDS_PER_RUN, ROUNDS   same as the arguments (arguments win)
#   SCRAPE_RATE               scrapes per second, default 100
#   METRICS_PORT              the port bpipe listens on, default 19188 (the
#                             idle bpipe takes the next one)
#   RESULTS_DIR               default bench/.results
# Exit status 1 if a run lost data or failed.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SECONDS=${1:-${SECONDS_PER_RUN:-5}}
ROUNDS=${2:-${ROUNDS:-5}}
SCRAPE_RATE=${SCRAPE_RATE:-100}
PORT=${METRICS_PORT:-19188}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/.results}

[[ $RUN_SECONDS =~ ^[0-9]*\.?[0-9]+$ ]] || die "SECONDS must be a number, got '$RUN_SECONDS'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $SCRAPE_RATE =~ ^[0-9]*\.?[0-9]+$ ]] || die "SCRAPE_RATE must be a number, got '$SCRAPE_RATE'"

build_tools
build_bpipe
[[ -n ${BPIPE:-} ]] || die "no bpipe to measure"
RELAYTIME=$BUILD_DIR/relaytime
SCRAPER=$BUILD_DIR/scraper
gcc -O2 -Wall -o "$RELAYTIME" "$BENCH_DIR/relaytime.c"
gcc -O2 -Wall -o "$SCRAPER" "$BENCH_DIR/scraper.c"

for port in "$PORT" $((PORT + 1)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use: set METRICS_PORT"
    fi
done

# The idle bpipe the `elsewhere` variant scrapes: it reads a FIFO held open
# here, and ends when it is closed.
mkfifo "$WORK/idle"
"$BPIPE" -q --no-control --metrics-listen $((PORT + 1)) <"$WORK/idle" >/dev/null &
IDLE_PID=$!
exec 4>"$WORK/idle"
# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
TSV=$RESULTS_DIR/metrics-$STAMP.tsv
REPORT=$RESULTS_DIR/metrics-$STAMP.md
FAILED=0
LIMIT=$(awk -v s="$RUN_SECONDS" 'BEGIN { printf "%d", 60 + 10 * s }')

kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" "$2"; }

# run VARIANT BYTES -> sets WALL, CPU; scraper's line in $WORK/scraper.out
run() {
    local variant=$1 bytes=$2 spid=
    local -a relay=("$BPIPE" -q --no-control)
    [[ $variant == plain ]] || relay+=(--metrics-listen "$PORT")
    : >"$WORK/scraper.out"
    if [[ $variant == scraped || $variant == elsewhere ]]; then
        local port=$PORT
        [[ $variant == scraped ]] || port=$((PORT + 1))
        # It waits for the endpoint, then scrapes until stopped.
        "$SCRAPER" "$port" "$SCRAPE_RATE" "$LIMIT" >"$WORK/scraper.out" &
        spid=$!
    fi
    local t0 t1
    t0=$EPOCHREALTIME
    set +e
    "$PRODUCER" write "$bytes" | "$RELAYTIME" "$WORK/time" "$LIMIT" "${relay[@]}" |
        "$CONSUMER" read >"$WORK/consumer.out"
    local -a ps=("${PIPESTATUS[@]}")
    set -e
    t1=$EPOCHREALTIME
    if [[ -n $spid ]]; then
        kill -TERM "$spid" 2>/dev/null || true
        wait "$spid" || ps+=(scraper)
    fi
    WALL=$(elapsed "$t0" "$t1")
    read -r _ user sys _ <"$WORK/time"
    CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')
    local got
    got=$(kv bytes "$WORK/consumer.out")
    if [[ ${ps[*]} != "0 0 0" || ${got:-0} != "$bytes" ]]; then
        FAILED=1
        log "!!!!! $variant: FAILED: ${got:-0} of $bytes bytes; statuses ${ps[*]}"
        return 1
    fi
}

log "calibrating: plain bpipe, 1 GiB"
run plain $((1 << 30)) || die "the calibration run failed"
BYTES=$(awk -v w="$WALL" -v s="$RUN_SECONDS" 'BEGIN { printf "%.0f", (1073741824 / w) * s / 1048576 }')
BYTES=$((BYTES * 1048576))
log "each run: $BYTES bytes (about $RUN_SECONDS s)"

IDLE_CPU0=$(cpu_of "$IDLE_PID")
printf 'variant\tround\tbytes\twall_s\tgibps\tcpu_s\tscrapes\tok\tscrape_rate\tavg_ms\tmax_ms\tcpu_s_per_gib\n' >"$TSV"
for round in $(seq 1 "$ROUNDS"); do
    for variant in plain listen scraped elsewhere; do
        log "round $round: $variant"
        run "$variant" "$BYTES" || continue
        s=$WORK/scraper.out
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$round" "$BYTES" "$WALL" \
            "$(awk -v b="$BYTES" -v w="$WALL" 'BEGIN { printf "%.3f", b / w / 1073741824 }')" "$CPU" \
            "$(kv scrapes "$s")" "$(kv ok "$s")" "$(kv rate "$s")" "$(kv avg_ms "$s")" "$(kv max_ms "$s")" \
            "$(awk -v b="$BYTES" -v c="$CPU" 'BEGIN { printf "%.4f", c / (b / 1073741824) }')" >>"$TSV"
        if [[ -s $s ]]; then log "   $(cat "$s")"; fi
    done
done

IDLE_CPU=$(awk -v a="$IDLE_CPU0" -v b="$(cpu_of "$IDLE_PID")" 'BEGIN { printf "%.2f", b - a }')

# median of column COL for VARIANT
median() {
    awk -F'\t' -v v="$1" -v c="$2" 'NR > 1 && $1 == v && $c != "" { print $c }' "$TSV" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
range() {
    awk -F'\t' -v v="$1" -v c="$2" 'NR > 1 && $1 == v { print $c }' "$TSV" | sort -g |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s–%s", lo, hi; else print "-" }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }'; }

{
    echo "# bpipe metrics endpoint: scrape cost ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r))"
    echo
    echo "bpipe: ${BPIPE_INFO:-not built}; raw data: $TSV"
    echo
    echo "producer write $BYTES | bpipe -q ... | consumer read; $ROUNDS rounds, interleaved."
    echo
    echo "| variant | median GiB/s | min–max GiB/s | ÷ plain | bpipe CPU s/GiB | ÷ plain | scrapes/s | ok / scrapes | max scrape ms |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    plain=$(median plain 5)
    plain_cpu=$(median plain 12)
    for variant in plain listen scraped elsewhere; do
        gibps=$(median "$variant" 5)
        scrapes="-"
        ok="-"
        maxms="-"
        if [[ $variant == scraped || $variant == elsewhere ]]; then
            scrapes=$(median "$variant" 9)
            ok=$(awk -F'\t' -v v="$variant" 'NR > 1 && $1 == v { o += $8; s += $7 } END { printf "%d / %d", o, s }' "$TSV")
            maxms=$(awk -F'\t' -v v="$variant" 'NR > 1 && $1 == v && $11 > m { m = $11 } END { print m + 0 }' "$TSV")
        fi
        cpu=$(median "$variant" 12)
        echo "| $variant | $gibps | $(range "$variant" 5) | $(ratio "$gibps" "$plain") | $cpu | $(ratio "$cpu" "$plain_cpu") | $scrapes | $ok | $maxms |"
    done
    cost=$(ratio "$(median scraped 5)" "$(median listen 5)")
    verdict=$(awk -v r="$cost" 'BEGIN { if (r == "-") print "n/a"; else if (r >= 0.98) print "met"; else print "MISSED" }')
    echo
    echo "Target: scraped ÷ listen ≥ 0.98 (scraping at $SCRAPE_RATE/s costs ≤ 2 %): $cost, $verdict."
    echo "bpipe's own CPU per GiB, scraped ÷ listen: $(ratio "$(median scraped 12)" "$(median listen 12)")."
    echo "The same scrapes served by another bpipe instead (elsewhere ÷ listen): $(ratio "$(median elsewhere 5)" "$(median listen 5)");"
    echo "what the relay pays itself (scraped ÷ elsewhere): $(ratio "$(median scraped 5)" "$(median elsewhere 5)")."
    awk -F'\t' -v cpu="$IDLE_CPU" -v rate="$SCRAPE_RATE" 'NR > 1 && $1 == "elsewhere" { n += $7 }
        END { if (n) printf "The idle bpipe used %.2f s of CPU for %d scrapes: %.0f µs a scrape, %.2f %% of a core at %s/s.\n", cpu, n, cpu / n * 1e6, cpu / n * rate * 100, rate }' "$TSV"
    echo "Medians over the rounds; the scrapes column is the median rate, ok / scrapes the totals (a"
    echo "scrape under way when the relay exits fails). On a 2-core machine the producer, bpipe and"
    echo "the consumer already share both cores, so the scraper's own CPU and the kernel's loopback"
    echo "work count against the relay too; a wide min–max means a noisy machine: use more rounds."
} | tee "$REPORT"
log "report saved: $REPORT"
exec 4>&-
wait "$IDLE_PID" || log "the idle bpipe ended with status $?"

if ((FAILED)); then
    log "!!!!! some runs failed: see above"
    exit 1
fi
