#!/usr/bin/env bash
# bench/compare.sh - throughput, CPU and memory of bpipe against its peers.
#
# usage: bash bench/compare.sh [SIZE_GIB] [ROUNDS]
#
#   SIZE_GIB  bytes per run, in GiB (fractions allowed, e.g. 0.25); default 3
#   ROUNDS    timed rounds per relay and workload; default 5
#
# Workloads (each relay measured in turn, rounds interleaved: A B C … A B C …):
#   w1    producer write    | RELAY | consumer read
#   w3    producer vmsplice | RELAY | consumer splice
#   file  file-to-file copy of a SIZE_GIB file (page cache warm)
#
# Environment knobs (besides those in lib.sh: BUILD_DIR, BPIPE, SKIP_BUILD):
#   SIZE_GIB, ROUNDS   same as the arguments (arguments win)
#   WORKLOADS          subset to run, default "w1 w3 file"
#   RELAYS_ONLY        extended regex: run only relays whose label matches
#   BASELINE           1 (default) = also time "(direct)": producer | consumer
#                      with no relay, the ceiling of w1/w3; 0 = skip it
#   FILE_DIR           where the file workload's files live, default $TMPDIR
#                      or /tmp (use /dev/shm to keep the disk out of it)
#   VERIFY_BYTES       size of the untimed content check per relay, default 64M
#   RESULTS_DIR        where the raw TSV and the report are kept,
#                      default bench/.results
#
# Output: Markdown tables on stdout (also saved in RESULTS_DIR); progress on
# stderr.  Exit status 1 if any relay produced wrong or short output.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE_GIB=${1:-${SIZE_GIB:-3}}
ROUNDS=${2:-${ROUNDS:-5}}
WORKLOADS=${WORKLOADS:-w1 w3 file}
RELAYS_ONLY=${RELAYS_ONLY:-}
FILE_DIR=${FILE_DIR:-${TMPDIR:-/tmp}}
VERIFY_BYTES=${VERIFY_BYTES:-64M}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/.results}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $SIZE_GIB =~ ^[0-9]*\.?[0-9]+$ ]] || die "SIZE_GIB must be a number, got '$SIZE_GIB'"
BYTES=$(gib_to_bytes "$SIZE_GIB")
(( BYTES > 0 )) || die "SIZE_GIB too small"

# Relays per workload, in run order.  A label is the command line itself;
# in the file workload `big`/`copy` stand for the input/output files and
# `> copy` redirects stdout.
DIRECT="(direct)"   # producer | consumer, no relay
PIPE_RELAYS=(
    "cat"
    "pv -q"
    "pv -q -C"
    "mbuffer -q -m 64M"
    "bpipe -q"
    "bpipe -q -b 1MiB"
    "bpipe -q --no-splice"
)
LINE_RELAYS=(            # w1 only
    "bpipe -q -l"
    "pv -q -l"
)
FILE_RELAYS=(
    "bpipe -q big -o copy"
    "pv -q big > copy"
    "mbuffer -q -i big -o copy"
    "dd if=big of=copy bs=1M status=none"
    "cp big copy"
)

need_time
build_tools
build_bpipe

mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
TSV=$RESULTS_DIR/compare-$STAMP.tsv
REPORT=$RESULTS_DIR/compare-$STAMP.md
printf 'workload\trelay\tround\tbytes\twall_s\tuser_s\tsys_s\tmaxrss_kib\tstatus\n' >"$TSV"

FAILED=0
declare -A BROKEN=()     # "workload|label" -> reason; skipped from then on

fail() { # workload label reason
    BROKEN["$1|$2"]=$3
    FAILED=1
    log ""
    log "!!!!! FAILED: workload $1, relay '$2': $3"
    if [[ -s $WORK/relay.err ]]; then
        log "!!!!! relay stderr:"
        head -n 20 "$WORK/relay.err" >&2
    fi
    log ""
    printf '%s\t%s\t-\t%s\t-\t-\t-\t-\tFAILED: %s\n' "$1" "$2" "$BYTES" "$3" >>"$TSV"
}

relays_for() { # workload -> prints labels, one a line
    local -a list
    case $1 in
        w1) list=("${PIPE_RELAYS[@]}" "${LINE_RELAYS[@]}") ;;
        w3) list=("${PIPE_RELAYS[@]}") ;;
        file) list=("${FILE_RELAYS[@]}") ;;
        *) die "unknown workload '$1' (w1, w3, file)" ;;
    esac
    if [[ $1 != file && ${BASELINE:-1} == 1 ]]; then
        printf '%s\n' "$DIRECT"
    fi
    local l
    for l in "${list[@]}"; do
        if [[ -n $RELAYS_ONLY && ! $l =~ $RELAYS_ONLY ]]; then continue; fi
        printf '%s\n' "$l"
    done
}

modes_for() { # workload -> "producer_mode consumer_mode"
    case $1 in
        w1) echo "write read" ;;
        w3) echo "vmsplice splice" ;;
    esac
}

# file_cmd LABEL IN OUT: sets RELAY_CMD and REDIRECT (stdout target)
file_cmd() {
    local label=$1 in=$2 out=$3 w
    REDIRECT=/dev/null
    if [[ $label == *" > copy" ]]; then
        label=${label% > copy}
        REDIRECT=$out
    fi
    resolve_cmd "$label"
    for w in "${!RELAY_CMD[@]}"; do
        case ${RELAY_CMD[$w]} in
            big) RELAY_CMD[$w]=$in ;;
            copy) RELAY_CMD[$w]=$out ;;
            if=big) RELAY_CMD[$w]=if=$in ;;
            of=copy) RELAY_CMD[$w]=of=$out ;;
        esac
    done
}

# Untimed correctness check: VERIFY_BYTES through the relay, compared
# byte-for-byte (cksum of the stream / cmp of the file) with the source.
verify() { # workload label
    local wl=$1 label=$2 got want st
    : >"$WORK/relay.err"
    if [[ $wl == file ]]; then
        file_cmd "$label" "$WORK/verify.src" "$WORK/verify.dst"
        rm -f "$WORK/verify.dst"
        set +e
        "${RELAY_CMD[@]}" >"$REDIRECT" 2>"$WORK/relay.err" </dev/null
        st=$?
        set -e
        if (( st != 0 )); then fail "$wl" "$label" "exit status $st on the check copy"; return; fi
        if ! cmp -s "$WORK/verify.src" "$WORK/verify.dst"; then
            fail "$wl" "$label" "copy differs from the source ($(stat -c %s "$WORK/verify.dst" 2>/dev/null || echo no) bytes of $(stat -c %s "$WORK/verify.src"))"
        fi
        rm -f "$WORK/verify.dst"
        return
    fi
    local pmode cmode
    read -r pmode cmode <<<"$(modes_for "$wl")"
    resolve_cmd "$label"
    set +e
    "$PRODUCER" "$pmode" "$VERIFY_BYTES" | "${RELAY_CMD[@]}" 2>"$WORK/relay.err" | cksum >"$WORK/cksum"
    local -a ps=("${PIPESTATUS[@]}")
    set -e
    got=$(cat "$WORK/cksum")
    want=$VERIFY_CKSUM
    if (( ps[1] != 0 )); then
        fail "$wl" "$label" "exit status ${ps[1]} on the check run (producer ${ps[0]})"
    elif [[ $got != "$want" ]]; then
        fail "$wl" "$label" "output differs from input: cksum '$got', expected '$want' (cksum, bytes)"
    fi
}

# One timed run; appends a row to the TSV.
timed_run() { # workload label round
    local wl=$1 label=$2 round=$3 t0 t1 st n
    local tf=$WORK/time.out
    rm -f "$tf"
    : >"$WORK/relay.err"
    if [[ $wl == file ]]; then
        file_cmd "$label" "$BIG" "$COPY"
        rm -f "$COPY"
        t0=$EPOCHREALTIME
        set +e
        /usr/bin/time -f '%e %U %S %M' -o "$tf" "${RELAY_CMD[@]}" >"$REDIRECT" 2>"$WORK/relay.err" </dev/null
        st=$?
        set -e
        t1=$EPOCHREALTIME
        n=$(stat -c %s "$COPY" 2>/dev/null || echo 0)
        rm -f "$COPY"
        if (( st != 0 )); then fail "$wl" "$label" "exit status $st (round $round)"; return; fi
    else
        local pmode cmode
        read -r pmode cmode <<<"$(modes_for "$wl")"
        local -a ps
        if [[ $label == "$DIRECT" ]]; then
            # no relay: the ceiling set by the producer and the consumer
            t0=$EPOCHREALTIME
            set +e
            "$PRODUCER" "$pmode" "$BYTES" | "$CONSUMER" "$cmode" >"$WORK/consumer.out"
            ps=("${PIPESTATUS[0]}" 0 "${PIPESTATUS[1]}")
            set -e
            t1=$EPOCHREALTIME
            echo "- - - -" >"$tf"   # no relay CPU or RSS
        else
            resolve_cmd "$label"
            t0=$EPOCHREALTIME
            set +e
            "$PRODUCER" "$pmode" "$BYTES" \
                | /usr/bin/time -f '%e %U %S %M' -o "$tf" "${RELAY_CMD[@]}" 2>"$WORK/relay.err" \
                | "$CONSUMER" "$cmode" >"$WORK/consumer.out"
            ps=("${PIPESTATUS[@]}")
            set -e
            t1=$EPOCHREALTIME
        fi
        n=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' "$WORK/consumer.out")
        n=${n:-0}
        if (( ps[0] != 0 || ps[1] != 0 || ps[2] != 0 )); then
            fail "$wl" "$label" "exit statuses producer=${ps[0]} relay=${ps[1]} consumer=${ps[2]} (round $round)"
            return
        fi
    fi
    if (( n != BYTES )); then
        fail "$wl" "$label" "short output: $n bytes out of $BYTES in (round $round)"
        return
    fi
    local e u s m
    # GNU time may put "Command exited with non-zero status" first: use the last line
    read -r e u s m < <(tail -n 1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' \
        "$wl" "$label" "$round" "$BYTES" "$(elapsed "$t0" "$t1")" "$u" "$s" "$m" >>"$TSV"
    local extra=""
    [[ $u == - ]] || extra="  cpu ${u}+${s}s  rss ${m}KiB"
    log "  $wl round $round: $(printf '%-38s' "$label") $(awk -v b="$BYTES" -v a="$t0" -v z="$t1" 'BEGIN { printf "%7.3f GiB/s", b / (z - a) / 1073741824 }')$extra"
}

# Reference checksum for the verification runs, and the verification file.
"$PRODUCER" write "$VERIFY_BYTES" >"$WORK/verify.src"
VERIFY_CKSUM=$(cksum <"$WORK/verify.src")

log "compare: $SIZE_GIB GiB ($BYTES bytes) per run, $ROUNDS rounds, workloads: $WORKLOADS"
log "bpipe: ${BPIPE_INFO:-not available}"

BIG= COPY=
for wl in $WORKLOADS; do
    mapfile -t labels < <(relays_for "$wl")
    run=()
    for label in "${labels[@]}"; do
        if [[ $label != "$DIRECT" ]] && ! relay_available "$label"; then
            # bpipe's absence has one note already (from build_bpipe)
            if [[ ${label%% *} != bpipe ]]; then
                note "$wl: '$label' skipped: ${label%% *} not installed (apt-get update && apt-get install -y ${label%% *})"
            fi
            continue
        fi
        run+=("$label")
    done
    (( ${#run[@]} )) || continue

    if [[ $wl == file ]]; then
        mkdir -p "$FILE_DIR"
        BIG=$(mktemp "$FILE_DIR/bpipe-bench-big.XXXXXX")
        COPY=$BIG.copy
        CLEAN_FILES+=("$BIG" "$COPY")   # removed on exit, whatever happens
        log "file: writing $BYTES bytes to $BIG"
        "$PRODUCER" write "$BYTES" >"$BIG"
        cat "$BIG" >/dev/null   # make sure it is all in the page cache
    fi

    log "== $wl: checking output of ${#run[@]} relays ($VERIFY_BYTES each)"
    for label in "${run[@]}"; do
        [[ $label == "$DIRECT" ]] || verify "$wl" "$label"
    done
    for round in $(seq 1 "$ROUNDS"); do
        for label in "${run[@]}"; do
            [[ -n ${BROKEN["$wl|$label"]+x} ]] && continue
            timed_run "$wl" "$label" "$round"
        done
    done
    if [[ $wl == file ]]; then
        rm -f "$BIG" "$COPY"
    fi
done

{
    echo "# bpipe compare: $SIZE_GIB GiB per run, $ROUNDS rounds ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r))"
    echo
    echo "bpipe: ${BPIPE_INFO:-not built}; file workload in $FILE_DIR; raw data: $TSV"
    if (( ${#NOTES[@]} )); then
        echo
        print_notes
    fi
    echo
    python3 "$BENCH_DIR/summarize.py" compare "$TSV"
} | tee "$REPORT"
log "report saved: $REPORT"

if (( FAILED )); then
    log "!!!!! some relays FAILED the output check: see the FAILED rows above"
    exit 1
fi
