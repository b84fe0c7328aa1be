#!/usr/bin/env bash
# bench/rate.sh - accuracy and burstiness of rate limiting: bpipe -L against
# pv -L and mbuffer -R; how fast a running relay follows a new limit
# (bpipe --remote against pv -R).
#
# usage: bash bench/rate.sh [SECONDS]
#
#   SECONDS  how long each run lasts at its target rate (default 5); the
#            run sends rate × SECONDS bytes.
#
# Scenario 1, steady rate: for each target (2, 20, 200 MiB/s)
#     producer write BYTES | RELAY | consumer rate
#   with RELAY one of
#     bpipe -q -L <r>MiB/s     pv -q -L <r>m     mbuffer -q -R <r>M
#   (pv's m and mbuffer's M are both MiB: 1024-based).  The consumer
#   timestamps every read; reported: average rate from first to last byte,
#   the steady rate after the first second, and the largest number of bytes
#   in any 250 ms window that starts at least 1 s after the first byte.  The
#   bound column is bpipe's contract: rate × 0.25 s + burst, with bpipe's
#   default burst rate / 10 (each write carries at most rate / 20); peers are
#   held to the same bound for comparison.
#
# Scenario 2, burst after idle: the producer sends IDLE_FIRST bytes, sleeps
# IDLE_SLEEP_MS, then sends IDLE_POST more; the relay is limited to
# IDLE_RATE_KIB KiB/s.  Reported: how long the consumer really saw no data
# before the producer resumed, how long it took to receive the post-idle
# data (compare with the time at the exact rate), and the most bytes in any
# 250 ms window after the producer resumed.  A limiter that lets unused
# credit pile up during the idle period shows a big window here.
#   The first part is small (256 KiB = 1 s at 256 KiB/s) on purpose: with
#   1 MiB, a relay that buffers (mbuffer) would still be draining it at the
#   limited rate during the whole sleep, so there would be no idle period.
#
# Scenario 3, rate change: producer write BIG | RELAY | consumer trace, the
# relay limited to CHANGE_LOW MiB/s (bpipe -q -L 1MiB/s with a private
# --control socket, pv -q -L 1m); after CHANGE_PHASE_S seconds the limit is
# raised to CHANGE_HIGH MiB/s (bpipe --remote SOCK -L 8MiB/s, pv -R PID -q
# -L 8m), CHANGE_PHASE_S later lowered back, CHANGE_PHASE_S later raised
# to 4 × CHANGE_HIGH so that the rest drains.  The consumer timestamps
# every read (CLOCK_MONOTONIC) and relaytime records when each client was
# started, on the same clock (t0).  ratechange.py says when the new rate holds: the
# first t1 >= t0 (1 ms steps) from which every window of W that follows,
# laid end to end up to the next change, holds the new rate × W bytes ±10 %,
# W being 50 ms at the high rate (400 ms at 1 MiB/s: the same bytes, since a
# 50 ms window at 1 MiB/s is less than one of bpipe's 64 KiB chunks);
# latency t1 - t0, client start-up included.  Also: where the line fitted
# to the settled new rate meets the one fitted to the old rate (switch,
# less sensitive to lumpy output), the settled rate, and the bytes in the
# first 100 ms after t0 against HIGH × (100 ms + one 50 ms step).  Target,
# bpipe only: median hold latency <= 100 ms both ways, no burst, the settled
# rate within ±10 %; pv is measured and reported, not judged.  CHANGE_ROUNDS
# runs per relay, interleaved.
#
# Environment knobs (besides lib.sh's BUILD_DIR, BPIPE, SKIP_BUILD):
#   RATE_SECONDS    same as the argument (the argument wins)
#   RATE_TARGETS    MiB/s targets, default "2 20 200"
#   RATE_ROUNDS     runs per relay and target, default 1
#   IDLE_RATE_KIB   default 256
#   IDLE_FIRST      default 256K     IDLE_SLEEP_MS  default 3000
#   IDLE_POST       default 1M
#   CHANGE_LOW      MiB/s, default 1      CHANGE_HIGH  MiB/s, default 8
#   CHANGE_PHASE_S  seconds at each rate, default 1.5 (at least 1.5: the
#                   old rate is fitted over the second before a change,
#                   from 0.5 s after the previous one)
#   CHANGE_ROUNDS   default 5
#   SCENARIOS       default "steady idle change"
#   RESULTS_DIR     default bench/.results
# Exit status 1 if a relay lost data, failed, or refused a change.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SECONDS=${1:-${RATE_SECONDS:-5}}
RATE_TARGETS=${RATE_TARGETS:-2 20 200}
RATE_ROUNDS=${RATE_ROUNDS:-1}
IDLE_RATE_KIB=${IDLE_RATE_KIB:-256}
IDLE_FIRST=${IDLE_FIRST:-256K}
IDLE_SLEEP_MS=${IDLE_SLEEP_MS:-3000}
IDLE_POST=${IDLE_POST:-1M}
CHANGE_LOW=${CHANGE_LOW:-1}
CHANGE_HIGH=${CHANGE_HIGH:-8}
CHANGE_PHASE_S=${CHANGE_PHASE_S:-1.5}
CHANGE_ROUNDS=${CHANGE_ROUNDS:-5}
SCENARIOS=${SCENARIOS:-steady idle change}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/.results}

[[ $RUN_SECONDS =~ ^[0-9]*\.?[0-9]+$ ]] || die "SECONDS must be a number, got '$RUN_SECONDS'"
for v in CHANGE_LOW CHANGE_HIGH CHANGE_ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
if ! [[ $CHANGE_PHASE_S =~ ^[0-9]*\.?[0-9]+$ ]] || awk -v p="$CHANGE_PHASE_S" 'BEGIN { exit p >= 1.5 }'; then
    die "CHANGE_PHASE_S must be a number >= 1.5, got '$CHANGE_PHASE_S'"
fi

build_tools
build_bpipe

mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
RATE_TSV=$RESULTS_DIR/rate-$STAMP.tsv
IDLE_TSV=$RESULTS_DIR/rate-idle-$STAMP.tsv
CHANGE_TSV=$RESULTS_DIR/rate-change-$STAMP.tsv
REPORT=$RESULTS_DIR/rate-$STAMP.md
FAILED=0

# kv KEY FILE -> value of KEY=... in the consumer's output line
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" "$2"; }

size_bytes() { # 256K / 1M / 123 -> bytes
    local v=$1
    case $v in
        *[kK]) echo $(( ${v%?} * 1024 )) ;;
        *[mM]) echo $(( ${v%?} * 1048576 )) ;;
        *[gG]) echo $(( ${v%?} * 1073741824 )) ;;
        *) echo "$v" ;;
    esac
}

# bpipe's bound for a window of 250 ms: rate*0.25 + its default burst, rate/10
bound_for() { awk -v r="$1" 'BEGIN { b = int(r / 10); if (b < 1) b = 1; printf "%.0f", r * 0.25 + b }'; }

# run_limited LABEL EXPECTED_BYTES PRODUCER_ARGS... ; consumer args in CONS_ARGS
# Leaves the consumer's output in $WORK/consumer.out; returns 1 (after a
# loud message) when the relay failed or lost data.
run_limited() {
    local label=$1 expect=$2
    shift 2
    resolve_cmd "$label"
    local t0 t1
    t0=$EPOCHREALTIME
    set +e
    "$PRODUCER" "$@" | "${RELAY_CMD[@]}" 2>"$WORK/relay.err" | "$CONSUMER" rate ${CONS_ARGS[@]+"${CONS_ARGS[@]}"} >"$WORK/consumer.out"
    local -a ps=("${PIPESTATUS[@]}")
    set -e
    t1=$EPOCHREALTIME
    WALL=$(elapsed "$t0" "$t1")
    local n
    n=$(kv bytes "$WORK/consumer.out")
    n=${n:-0}
    if (( ps[0] != 0 || ps[1] != 0 || ps[2] != 0 || n != expect )); then
        FAILED=1
        FAIL_REASON="FAILED: $n of $expect bytes; exit statuses producer=${ps[0]} relay=${ps[1]} consumer=${ps[2]}"
        log ""
        log "!!!!! $label: $FAIL_REASON"
        head -n 20 "$WORK/relay.err" >&2
        log ""
        return 1
    fi
}

limited_relays() { # rate_in_bytes_per_s bpipe_rate pv_rate mbuffer_rate
    printf '%s\n' "bpipe -q -L $1" "pv -q -L $2" "mbuffer -q -R $3"
}

available_or_note() { # label scenario
    if relay_available "$1"; then return 0; fi
    local prog=${1%% *}
    if [[ $prog != bpipe ]]; then
        note "$2: '$1' skipped: $prog not installed (apt-get update && apt-get install -y $prog)"
    fi
    return 1
}

if [[ " $SCENARIOS " == *" steady "* ]]; then
    printf 'relay\ttarget_Bps\tbytes\twall_s\tspan_s\tavg_Bps\tsteady_Bps\tmaxwin_B\tmaxwin_all_B\tbound_B\tstatus\n' >"$RATE_TSV"
    CONS_ARGS=()
    for r in $RATE_TARGETS; do
        rbps=$(( r * 1048576 ))
        bytes=$(awk -v r="$rbps" -v s="$RUN_SECONDS" 'BEGIN { printf "%.0f", r * s }')
        bound=$(bound_for "$rbps")
        mapfile -t labels < <(limited_relays "${r}MiB/s" "${r}m" "${r}M")
        for _ in $(seq 1 "$RATE_ROUNDS"); do
            for label in "${labels[@]}"; do
                available_or_note "$label" "steady" || continue
                log "steady: $r MiB/s, $bytes bytes: $label"
                if run_limited "$label" "$bytes" write "$bytes"; then
                    o=$WORK/consumer.out
                    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$label" "$rbps" "$bytes" \
                        "$WALL" "$(kv span_s "$o")" "$(kv avg_Bps "$o")" "$(kv steady_Bps "$o")" "$(kv maxwin_B "$o")" "$(kv maxwin_all_B "$o")" "$bound" >>"$RATE_TSV"
                    log "   $(cat "$o")"
                else
                    printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t%s\t%s\n' "$label" "$rbps" "$bytes" "$bound" "$FAIL_REASON" >>"$RATE_TSV"
                fi
            done
        done
    done
fi

if [[ " $SCENARIOS " == *" idle "* ]]; then
    printf 'relay\ttarget_Bps\tpost_B\tidle_seen_s\tpost_first_s\tpost_last_s\tpost_maxwin_B\tbound_B\tstatus\n' >"$IDLE_TSV"
    rbps=$(( IDLE_RATE_KIB * 1024 ))
    first=$(size_bytes "$IDLE_FIRST")
    post=$(size_bytes "$IDLE_POST")
    total=$(( first + post ))
    bound=$(bound_for "$rbps")
    mark=$WORK/mark
    CONS_ARGS=("$mark")
    mapfile -t labels < <(limited_relays "${IDLE_RATE_KIB}KiB/s" "${IDLE_RATE_KIB}k" "${IDLE_RATE_KIB}k")
    for label in "${labels[@]}"; do
        available_or_note "$label" "idle" || continue
        log "idle: $first bytes, sleep $IDLE_SLEEP_MS ms, $post bytes at $IDLE_RATE_KIB KiB/s: $label"
        rm -f "$mark"
        if run_limited "$label" "$total" idle "$total" "$first" "$IDLE_SLEEP_MS" "$mark"; then
            o=$WORK/consumer.out
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$label" "$rbps" "$(kv post_B "$o")" \
                "$(kv idle_seen_s "$o")" "$(kv post_first_s "$o")" "$(kv post_last_s "$o")" \
                "$(kv post_maxwin_B "$o")" "$bound" >>"$IDLE_TSV"
            log "   $(cat "$o")"
        else
            printf '%s\t%s\t-\t-\t-\t-\t-\t%s\t%s\n' "$label" "$rbps" "$bound" "$FAIL_REASON" >>"$IDLE_TSV"
        fi
    done
fi

# change_client LABEL RELAY_PID MIB NAME: sets the running relay's limit to
# MIB MiB/s, under relaytime: $WORK/NAME.time gets the client's wall time
# (field 1) and the CLOCK_MONOTONIC time it was started at (field 5).
change_client() {
    local label=$1 pid=$2 mib=$3 name=$4
    local -a cmd=(pv -R "$pid" -q -L "${mib}m")
    if [[ $label == bpipe* ]]; then
        cmd=("$BPIPE" --remote "$CHANGE_SOCK" -L "${mib}MiB/s")
    fi
    if ! "$RELAYTIME" "$WORK/$name.time" 10 "${cmd[@]}" >"$WORK/$name.out" 2>&1; then
        log "!!!!! $label: change to $mib MiB/s failed: $(head -c 300 "$WORK/$name.out")"
        return 1
    fi
}

# run_change LABEL BYTES: one run of scenario 3; leaves the consumer's trace
# in $WORK/trace and the clients' times in $WORK/{up,down,lift}.time.
# Returns 1 (after a loud message) when a change, the relay or the data failed.
run_change() {
    local label=$1 bytes=$2 bad=""
    resolve_cmd "$label"
    if [[ ${RELAY_CMD[0]} == "$BPIPE" ]]; then
        RELAY_CMD+=(--control "$CHANGE_SOCK")
    fi
    rm -f "$WORK/cf1" "$WORK/cf2" "$CHANGE_SOCK" "$WORK/trace" "$WORK"/*.time
    mkfifo "$WORK/cf1" "$WORK/cf2"
    "$PRODUCER" write "$bytes" >"$WORK/cf1" &
    local ppid=$!
    "${RELAY_CMD[@]}" <"$WORK/cf1" >"$WORK/cf2" 2>"$WORK/relay.err" &
    local rpid=$!
    "$CONSUMER" trace "$WORK/trace" <"$WORK/cf2" >"$WORK/consumer.out" &
    local cpid=$!
    sleep "$CHANGE_PHASE_S"
    change_client "$label" "$rpid" "$CHANGE_HIGH" up || bad+=" up"
    sleep "$CHANGE_PHASE_S"
    change_client "$label" "$rpid" "$CHANGE_LOW" down || bad+=" down"
    sleep "$CHANGE_PHASE_S"
    change_client "$label" "$rpid" "$((4 * CHANGE_HIGH))" lift || bad+=" lift"
    # Bounded: with the lift refused, the rest would take minutes.
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    if ((i == 100)); then
        bad+=" timeout"
        kill "$ppid" "$rpid" "$cpid" 2>/dev/null || true
    fi
    local sp=0 sr=0 sc=0 n
    wait "$ppid" || sp=$?
    wait "$rpid" || sr=$?
    wait "$cpid" || sc=$?
    n=$(kv bytes "$WORK/consumer.out")
    if [[ -n $bad ]] || ((sp != 0 || sr != 0 || sc != 0 || ${n:-0} != bytes)); then
        FAILED=1
        FAIL_REASON="FAILED: ${n:-0} of $bytes bytes; exit statuses producer=$sp relay=$sr consumer=$sc${bad:+; failed:$bad}"
        log ""
        log "!!!!! $label: $FAIL_REASON"
        head -n 20 "$WORK/relay.err" >&2
        log ""
        return 1
    fi
}

if [[ " $SCENARIOS " == *" change "* ]]; then
    RELAYTIME=$BUILD_DIR/relaytime
    gcc -O2 -Wall -o "$RELAYTIME" "$BENCH_DIR/relaytime.c"
    CHANGE_SOCK=$WORK/control.sock
    printf 'relay\tround\tdir\tfrom_Bps\tto_Bps\tclient_s\tsettled_Bps\treached\tswitch_s\thold_s\twindow_s\tfirst100_B\tbound_B\tstatus\n' >"$CHANGE_TSV"
    low=$((CHANGE_LOW * 1048576))
    high=$((CHANGE_HIGH * 1048576))
    # What the three phases need, and 6 MiB more for the relay's buffers
    # and late wake-ups, so that the input lasts until the limit is lifted.
    # The lift is to 4 × CHANGE_HIGH, not unlimited: the rest then drains in
    # about 0.2 s, and pv -R, which waits for pv to take its message, fails
    # ("message not received") when pv has already finished.
    bytes=$(awk -v l="$CHANGE_LOW" -v h="$CHANGE_HIGH" -v p="$CHANGE_PHASE_S" \
        'BEGIN { printf "%.0f", (int((2 * l + h) * p) + 7) * 1048576 }')
    labels=("bpipe -q -L ${CHANGE_LOW}MiB/s" "pv -q -L ${CHANGE_LOW}m")
    for round in $(seq 1 "$CHANGE_ROUNDS"); do
        for label in "${labels[@]}"; do
            available_or_note "$label" "change" || continue
            log "change: round $round, $CHANGE_LOW → $CHANGE_HIGH → $CHANGE_LOW MiB/s, ${CHANGE_PHASE_S} s each: $label"
            if ! run_change "$label" "$bytes"; then
                printf '%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n' "$label" "$round" "$FAIL_REASON" >>"$CHANGE_TSV"
                continue
            fi
            read -r up_wall _ _ _ t_up _ <"$WORK/up.time"
            read -r down_wall _ _ _ t_down _ <"$WORK/down.time"
            read -r _ _ _ _ t_end _ <"$WORK/lift.time"
            python3 "$BENCH_DIR/ratechange.py" "$WORK/trace" "$t_up" "$t_down" "$t_end" "$low" "$high" >"$WORK/change.out"
            for dir in up down; do
                grep "^dir=$dir " "$WORK/change.out" >"$WORK/change.$dir"
                log "   $(cat "$WORK/change.$dir")"
            done
            o=$WORK/change.up
            printf '%s\t%s\tup\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$label" "$round" "$low" "$high" "$up_wall" \
                "$(kv settled_Bps "$o")" "$(kv reached "$o")" "$(kv switch_s "$o")" "$(kv hold_s "$o")" \
                "$(kv window_s "$o")" "$(kv first100_B "$o")" "$(kv bound_B "$o")" >>"$CHANGE_TSV"
            o=$WORK/change.down
            printf '%s\t%s\tdown\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$label" "$round" "$high" "$low" "$down_wall" \
                "$(kv settled_Bps "$o")" "$(kv reached "$o")" "$(kv switch_s "$o")" "$(kv hold_s "$o")" \
                "$(kv window_s "$o")" "$(kv first100_B "$o")" "$(kv bound_B "$o")" >>"$CHANGE_TSV"
        done
    done
fi

{
    echo "# bpipe rate limiting ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r))"
    echo
    echo "bpipe: ${BPIPE_INFO:-not built}; raw data: $RESULTS_DIR/*-$STAMP.tsv"
    if (( ${#NOTES[@]} )); then
        echo
        print_notes
    fi
    if [[ -f $RATE_TSV ]]; then
        echo
        echo "## Steady rate: ${RUN_SECONDS} s per run, producer write | RELAY | consumer rate"
        echo
        python3 "$BENCH_DIR/summarize.py" rate "$RATE_TSV"
    fi
    if [[ -f $IDLE_TSV ]]; then
        echo
        echo "## Burst after idle: $IDLE_FIRST, ${IDLE_SLEEP_MS} ms idle, then $IDLE_POST at ${IDLE_RATE_KIB} KiB/s"
        echo
        python3 "$BENCH_DIR/summarize.py" idle "$IDLE_TSV"
    fi
    if [[ -f $CHANGE_TSV ]]; then
        echo
        echo "## Rate change: $CHANGE_LOW → $CHANGE_HIGH → $CHANGE_LOW MiB/s, ${CHANGE_PHASE_S} s at each, $CHANGE_ROUNDS rounds"
        echo
        python3 "$BENCH_DIR/summarize.py" change "$CHANGE_TSV"
    fi
} | tee "$REPORT"
log "report saved: $REPORT"

if (( FAILED )); then
    log "!!!!! some relays lost data: see the FAILED rows above"
    exit 1
fi
