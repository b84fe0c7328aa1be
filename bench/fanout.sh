#!/usr/bin/env bash
# bench/fanout.sh - bpipe fan-out (several -o outputs) against tee and mbuffer.
#
# usage: bash bench/fanout.sh [SIZE_GIB] [ROUNDS]
#
#   SIZE_GIB  bytes per run, in GiB (fractions allowed, e.g. 0.25); default 2
#   ROUNDS    timed rounds per relay and row; default 3
#
# Rows (each relay measured in turn, rounds interleaved: A B C … A B C …);
# c is the consumer, s the slow consumer (reads at SLOW_RATE):
#   w3x3  producer vmsplice | RELAY, three outputs, c = consumer splice:
#           bpipe -q | c                                  (one output, reference)
#           bpipe -q -o >(c) -o >(c) -o - | c
#           tee >(c) >(c) | c
#           mbuffer -q -m 64M -o >(c) -o >(c) -o - | c
#   w1x2  producer write | RELAY, two outputs, c = consumer read:
#           bpipe -q | c                                  (one output, reference)
#           bpipe -q -o >(c) -o - | c
#           tee >(c) | c
#           mbuffer -q -m 64M -o >(c) -o - | c
#   slow  producer vmsplice | bpipe, three outputs, the middle one slow=drop:
#           bpipe -q -o >(c) -o >(c),slow=drop -o - | c   (all fast)
#           bpipe -q -o >(c) -o >(s),slow=drop -o - | c   (one slow)
#
# Environment knobs (besides those in lib.sh: BUILD_DIR, BPIPE, SKIP_BUILD):
#   SIZE_GIB, ROUNDS   same as the arguments (arguments win)
#   ROWS               subset to run, default "w3x3 w1x2 slow"
#   SLOW_RATE          the slow consumer's read rate in bytes/s (K/M/G are
#                      1024-based), default 20M
#   VERIFY_BYTES       size of the untimed content check per relay, default 64M
#   RESULTS_DIR        where the raw TSV and the report are kept,
#                      default bench/.results
#
# Peers: tee (coreutils), mbuffer (apt-get update && apt-get install -y
# mbuffer time); a missing mbuffer skips its rows with a note.
#
# Output: Markdown tables on stdout (also saved in RESULTS_DIR); progress on
# stderr.  Exit status 1 if any relay produced wrong or short output.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE_GIB=${1:-${SIZE_GIB:-2}}
ROUNDS=${2:-${ROUNDS:-3}}
ROWS=${ROWS:-w3x3 w1x2 slow}
SLOW_RATE=${SLOW_RATE:-20M}
VERIFY_BYTES=${VERIFY_BYTES:-64M}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/.results}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $SIZE_GIB =~ ^[0-9]*\.?[0-9]+$ ]] || die "SIZE_GIB must be a number, got '$SIZE_GIB'"
[[ $SLOW_RATE =~ ^[0-9]*\.?[0-9]+[KMG]?$ ]] || die "SLOW_RATE must be bytes/s with K/M/G, got '$SLOW_RATE'"
BYTES=$(gib_to_bytes "$SIZE_GIB")
(( BYTES > 0 )) || die "SIZE_GIB too small"
# A relay still running after this is stopped and reported as FAILED (a
# fan-out that deadlocks must not hang the benchmark): a minute plus one
# per GiB, far above any relay's time here (≥ 17 MiB/s).
LIMIT=$(awk -v g="$SIZE_GIB" 'BEGIN { printf "%d", 60 + 60 * g }')

# Relay ids per row, in run order.  label() gives the command line shown in
# the report; launch() runs it.
relays_for() {
    case $1 in
        w3x3) echo "bpipe1 bpipe3 tee3 mbuffer3" ;;
        w1x2) echo "bpipe1 bpipe2 tee2 mbuffer2" ;;
        slow) echo "fastdrop slowdrop" ;;
        *) die "unknown row '$1' (w3x3, w1x2, slow)" ;;
    esac
}

label() {
    case $1 in
        bpipe1) echo "bpipe -q | c" ;;
        bpipe3) echo "bpipe -q -o >(c) -o >(c) -o - | c" ;;
        tee3) echo "tee >(c) >(c) | c" ;;
        mbuffer3) echo "mbuffer -q -m 64M -o >(c) -o >(c) -o - | c" ;;
        bpipe2) echo "bpipe -q -o >(c) -o - | c" ;;
        tee2) echo "tee >(c) | c" ;;
        mbuffer2) echo "mbuffer -q -m 64M -o >(c) -o - | c" ;;
        fastdrop) echo "bpipe -q -o >(c) -o >(c),slow=drop -o - | c" ;;
        slowdrop) echo "bpipe -q -o >(c) -o >(s),slow=drop -o - | c" ;;
    esac
}

outputs_of() {
    case $1 in
        bpipe1) echo 1 ;;
        bpipe2 | tee2 | mbuffer2) echo 2 ;;
        *) echo 3 ;;
    esac
}

modes_for() { # row -> "producer_mode consumer_mode"
    case $1 in
        w1x2) echo "write read" ;;
        *) echo "vmsplice splice" ;;
    esac
}

have python3 || die "python3 not found (apt-get install -y python3)"
build_tools
RELAYTIME=$BUILD_DIR/relaytime
gcc -O2 -Wall -o "$RELAYTIME" "$BENCH_DIR/relaytime.c"
build_bpipe

# Does this bpipe have fan-out (issue 10)?  Without it, `-o` given twice is
# a usage error and the fan-out rows are skipped with a note.
FANOUT=0
if [[ -n $BPIPE ]]; then
    probe=$(printf 'probe' | "$BPIPE" -q -o /dev/null -o /dev/null,slow=drop -o - 2>&1) && probe_rc=0 || probe_rc=$?
    if (( probe_rc == 0 )) && [[ $probe == probe ]]; then
        FANOUT=1
    else
        note "bpipe has no fan-out yet (\`bpipe -q -o /dev/null -o /dev/null,slow=drop -o -\`: exit $probe_rc, $(head -n 1 <<<"$probe")): bpipe fan-out rows skipped"
    fi
fi

relay_ok() { # id -> 0 if it can run here
    case $1 in
        bpipe1) [[ -n $BPIPE ]] ;;
        bpipe* | *drop) (( FANOUT )) ;;
        mbuffer*) have mbuffer ;;
        tee*) have tee ;;
    esac
}

mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
TSV=$RESULTS_DIR/fanout-$STAMP.tsv
REPORT=$RESULTS_DIR/fanout-$STAMP.md
printf 'row\trelay\toutputs\tround\tbytes\twall_s\tfast_wall_s\tuser_s\tsys_s\tmaxrss_kib\tdrop_out_bytes\tstatus\n' >"$TSV"

RUN=$WORK/run
mkdir -p "$RUN"
FAILED=0
declare -A BROKEN=()     # "row|id" -> reason; skipped from then on

fail() { # row id reason
    BROKEN["$1|$2"]=$3
    FAILED=1
    log ""
    log "!!!!! FAILED: row $1, relay '$(label "$2")': $3"
    if [[ -s $RUN/err ]]; then
        log "!!!!! relay stderr:"
        head -n 20 "$RUN/err" >&2
    fi
    log ""
    printf '%s\t%s\t%s\t-\t%s\t-\t-\t-\t-\t-\t-\tFAILED: %s\n' \
        "$1" "$(label "$2")" "$(outputs_of "$2")" "$BYTES" "$3" >>"$TSV"
}

# sink MODE OUT: the consumer at the end of one output.  MODE is a consumer
# mode (read, splice), `slow` (consumer slow SLOW_RATE) or `cksum`.  Writes
# the consumer's line to OUT, then "rc=STATUS end=EPOCHREALTIME" when it
# exits.  It first closes every inherited descriptor but 0-2: a second
# process substitution inherits the write end of the first one's pipe, which
# would keep that consumer from seeing EOF until this one exits.
sink() {
    local mode=$1 out=$2 fd rc=0
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        if (( fd > 2 )) && [[ -e /proc/$BASHPID/fd/$fd ]]; then
            exec {fd}>&-
        fi
    done
    case $mode in
        cksum) cksum >"$out" || rc=$? ;;
        slow) "$CONSUMER" slow "$SLOW_RATE" >"$out" || rc=$? ;;
        *) "$CONSUMER" "$mode" >"$out" || rc=$? ;;
    esac
    echo "rc=$rc end=$EPOCHREALTIME" >>"$out"
}

# launch ID PMODE N CMODE [STATS]: producer | relay | consumers; the relay's
# own wall, user, sys seconds and peak RSS (relaytime, via wait4) go to
# $RUN/time.  Consumer results: $RUN/c0 for
# the relay's stdout, $RUN/c1, $RUN/c2 for the other outputs in the order
# given.  With STATS, bpipe also writes its JSON records to that file.
# Sets PS (producer, relay, last consumer statuses).
launch() {
    local id=$1 pm=$2 n=$3 cm=$4 stats=${5:-} sm=$4
    local -a T=("$RELAYTIME" "$RUN/time" "$LIMIT")
    local -a B=("$BPIPE" -q)
    [[ -n $stats ]] && B+=(--stats-file "$stats")
    [[ $id == slowdrop ]] && sm=slow
    rm -f "$RUN"/c? "$RUN/time"
    : >"$RUN/err"
    set +e
    case $id in
        bpipe1)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" "${B[@]}" 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
        bpipe2)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" "${B[@]}" -o >(sink "$cm" "$RUN/c1") -o - 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
        bpipe3)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" "${B[@]}" -o >(sink "$cm" "$RUN/c1") \
                -o >(sink "$cm" "$RUN/c2") -o - 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
        fastdrop | slowdrop)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" "${B[@]}" -o >(sink "$cm" "$RUN/c1") \
                -o >(sink "$sm" "$RUN/c2"),slow=drop -o - 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
        tee2)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" tee >(sink "$cm" "$RUN/c1") 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
        tee3)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" tee >(sink "$cm" "$RUN/c1") \
                >(sink "$cm" "$RUN/c2") 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
        mbuffer2)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" mbuffer -q -m 64M -o >(sink "$cm" "$RUN/c1") \
                -o - 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
        mbuffer3)
            "$PRODUCER" "$pm" "$n" | "${T[@]}" mbuffer -q -m 64M -o >(sink "$cm" "$RUN/c1") \
                -o >(sink "$cm" "$RUN/c2") -o - 2>"$RUN/err" \
                | sink "$cm" "$RUN/c0"
            PS=("${PIPESTATUS[@]}") ;;
    esac
    set -e
}

# wait_sinks K: wait (bounded) until consumers c0..c(K-1) have exited; the
# ones behind process substitutions are not the shell's children.  Returns
# 1 naming the first that did not finish in time.
wait_sinks() {
    local k=$1 i deadline=$((SECONDS + 30))
    for ((i = 0; i < k; i++)); do
        until grep -q '^rc=' "$RUN/c$i" 2>/dev/null; do
            if (( SECONDS > deadline )); then
                SINK_MISSING=c$i
                return 1
            fi
            sleep 0.01
        done
    done
}

sink_field() { # file key -> value ("" if absent)
    sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" "$1" | head -n 1
}

# check_statuses ROW ID ROUND K: relay, producer and consumer statuses.
check_statuses() {
    local row=$1 id=$2 what=$3 k=$4 i rc
    if (( PS[1] == 124 )); then
        fail "$row" "$id" "timed out after ${LIMIT}s ($what)"
        return 1
    fi
    if (( PS[0] != 0 || PS[1] != 0 )); then
        fail "$row" "$id" "exit statuses producer=${PS[0]} relay=${PS[1]} ($what)"
        return 1
    fi
    if ! wait_sinks "$k"; then
        fail "$row" "$id" "consumer $SINK_MISSING did not finish within 30 s of the relay ($what)"
        return 1
    fi
    for ((i = 0; i < k; i++)); do
        rc=$(sink_field "$RUN/c$i" rc)
        if [[ $rc != 0 ]]; then
            fail "$row" "$id" "consumer c$i exit status $rc ($what)"
            return 1
        fi
    done
}

# The output that carries slow=drop in the slow row: c2 (the middle -o).
# Its byte count is whatever it kept; every other output must be complete.
is_drop_output() { [[ $1 == *drop && $2 == 2 ]]; }

# check_stats ROW ID FILE KEPT: the exit record of a slow-row check run
# (contract of issue 10): per-output accounting, complete fast outputs, and
# the slow=drop output's bytes_out equal to what its consumer got.
check_stats() {
    local msg
    if ! msg=$(python3 - "$3" "$VERIFY_N" "$4" <<'EOF'
import json, sys
path, n, kept = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
recs = [json.loads(l) for l in open(path) if l.strip()]
ex = [r for r in recs if r.get("event") == "exit"]
if not ex:
    sys.exit("no exit record in --stats-file")
r = ex[-1]
outs = r.get("outputs")
if not isinstance(outs, list) or len(outs) != 3:
    sys.exit(f"exit record: 'outputs' is not a list of 3: {outs!r}")
errs = []
for i, o in enumerate(outs):
    s = o["bytes_out"] + o["bytes_dropped"] + o["bytes_unsent"]
    if s != r["bytes_in"]:
        errs.append(f"output {i + 1}: bytes_out+bytes_dropped+bytes_unsent = {s} != bytes_in {r['bytes_in']}")
if r["bytes_in"] != n:
    errs.append(f"bytes_in {r['bytes_in']} != {n}")
for i in (0, 2):
    if outs[i]["bytes_out"] != n:
        errs.append(f"fast output {i + 1}: bytes_out {outs[i]['bytes_out']} != {n}")
if outs[1]["bytes_out"] != kept:
    errs.append(f"slow=drop output: bytes_out {outs[1]['bytes_out']} but its consumer got {kept}")
if errs:
    sys.exit("; ".join(errs))
print(outs[1]["bytes_dropped"])
EOF
    ); then
        fail "$1" "$2" "stats check: $msg"
        return 1
    fi
    DROPPED=$msg
}

# Untimed correctness check: VERIFY_BYTES through the relay, every output's
# cksum compared with the source's (the slow=drop output: its byte count,
# against bpipe's own per-output accounts).
verify() { # row id
    local row=$1 id=$2 pm cm k i got kept stats=""
    read -r pm _ <<<"$(modes_for "$row")"
    k=$(outputs_of "$id")
    [[ $id == *drop ]] && stats=$RUN/stats.jsonl && rm -f "$stats"
    launch "$id" "$pm" "$VERIFY_N" cksum "$stats"
    check_statuses "$row" "$id" "check run" "$k" || return 0
    for ((i = 0; i < k; i++)); do
        if is_drop_output "$id" "$i"; then
            kept=$(sink_field "$RUN/c$i" bytes)
            if [[ $id == slowdrop ]]; then
                kept=${kept:-0}
            else
                # cksum prints "CRC BYTES"; its byte count is the 2nd word
                kept=$(head -n 1 "$RUN/c$i" | cut -d' ' -f2)
            fi
            check_stats "$row" "$id" "$stats" "$kept" || return 0
            log "  $row check: $(label "$id"): slow=drop output kept $kept of $VERIFY_N bytes, dropped $DROPPED"
            continue
        fi
        got=$(head -n 1 "$RUN/c$i")
        if [[ $got != "$VERIFY_CKSUM" ]]; then
            fail "$row" "$id" "output c$i differs from the input: cksum '$got', expected '$VERIFY_CKSUM' (cksum, bytes)"
            return 0
        fi
    done
}

# One timed run; appends a row to the TSV: wall_s runs from the start to the
# last consumer's EOF, fast_wall_s to the last byte that reached an output
# other than the slow=drop one (EOF can come later: an output is closed when
# the relay exits, which also holds the process substitutions' pipes).
timed_run() { # row id round
    local row=$1 id=$2 round=$3 pm cm k i t0 n end lb last=0 fast=0 kept=-
    read -r pm cm <<<"$(modes_for "$row")"
    k=$(outputs_of "$id")
    t0=$EPOCHREALTIME
    launch "$id" "$pm" "$BYTES" "$cm"
    check_statuses "$row" "$id" "round $round" "$k" || return 0
    for ((i = 0; i < k; i++)); do
        n=$(sink_field "$RUN/c$i" bytes)
        end=$(sink_field "$RUN/c$i" end)
        if is_drop_output "$id" "$i"; then
            kept=${n:-0}
            if (( kept > BYTES )); then
                fail "$row" "$id" "slow=drop output got $kept bytes, more than the $BYTES sent (round $round)"
                return 0
            fi
        else
            if [[ ${n:-0} != "$BYTES" ]]; then
                fail "$row" "$id" "short output: c$i got ${n:-0} bytes out of $BYTES (round $round)"
                return 0
            fi
            lb=$(sink_field "$RUN/c$i" last_byte)
            fast=$(awk -v a="$fast" -v b="${lb:-$end}" 'BEGIN { print (b > a ? b : a) }')
        fi
        last=$(awk -v a="$last" -v b="$end" 'BEGIN { print (b > a ? b : a) }')
    done
    local u s m
    read -r _ u s m _ <"$RUN/time"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' \
        "$row" "$(label "$id")" "$k" "$round" "$BYTES" "$(elapsed "$t0" "$last")" \
        "$(elapsed "$t0" "$fast")" "$u" "$s" "$m" "$kept" >>"$TSV"
    local extra=""
    [[ $kept == - ]] || extra="  slow=drop output got $kept B"
    log "  $row round $round: $(printf '%-46s' "$(label "$id")") $(awk -v b="$BYTES" -v a="$t0" -v z="$fast" 'BEGIN { printf "%7.3f GiB/s", b / (z - a) / 1073741824 }')  cpu ${u}+${s}s  rss ${m} KiB$extra"
}

VERIFY_N=$("$PRODUCER" write "$VERIFY_BYTES" | wc -c)
VERIFY_CKSUM=$("$PRODUCER" write "$VERIFY_BYTES" | cksum)

log "fanout: $SIZE_GIB GiB ($BYTES bytes) per run, $ROUNDS rounds, rows: $ROWS; slow consumer at $SLOW_RATE B/s"
log "bpipe: ${BPIPE_INFO:-not available}"

for row in $ROWS; do
    run=()
    for id in $(relays_for "$row"); do
        if ! relay_ok "$id"; then
            case $id in
                mbuffer*) note "$row: '$(label "$id")' skipped: mbuffer not installed (apt-get update && apt-get install -y mbuffer)" ;;
                tee*) note "$row: '$(label "$id")' skipped: tee not found" ;;
            esac  # bpipe's absence has one note already
            continue
        fi
        run+=("$id")
    done
    (( ${#run[@]} )) || continue
    log "== $row: checking output of ${#run[@]} relays ($VERIFY_BYTES each)"
    for id in "${run[@]}"; do
        verify "$row" "$id"
    done
    for round in $(seq 1 "$ROUNDS"); do
        for id in "${run[@]}"; do
            [[ -n ${BROKEN["$row|$id"]+x} ]] && continue
            timed_run "$row" "$id" "$round"
        done
    done
done

{
    echo "# bpipe fan-out: $SIZE_GIB GiB per run, $ROUNDS rounds ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r))"
    echo
    echo "bpipe: ${BPIPE_INFO:-not built}; slow consumer s reads at $SLOW_RATE B/s; raw data: $TSV"
    if (( ${#NOTES[@]} )); then
        echo
        print_notes
    fi
    echo
    python3 "$BENCH_DIR/summarize.py" fanout "$TSV"
} | tee "$REPORT"
log "report saved: $REPORT"

if (( FAILED )); then
    log "!!!!! some relays FAILED the output check: see the FAILED rows above"
    exit 1
fi
