#!/usr/bin/env bash
# bench/spool.sh - bpipe's disk spool (issue 12) against the whole stream held in memory and
# mbuffer's file-backed buffer, with a consumer that pauses, then reads at full speed.
#
# usage: bash bench/spool.sh [SIZE_GIB] [ROUNDS]
#
#   SIZE_GIB  bytes per run, in GiB (fractions allowed); default 1. The issue asks for 2: the
#             in-memory reference then holds 2 GiB, and the page cache another 2 or more, which
#             a small machine shared with other work may not have; pass 2 where it does.
#   ROUNDS    timed rounds per relay; default 3
#
# Every run is `producer vmsplice N | RELAY | (sleep PAUSE; consumer splice)`:
#   bpipe -q -n 16 --spool DIR --spool-max N      the overflow goes to a spool in DIR
#   bpipe -q -m N -n 40000                         the whole stream held in memory
#   mbuffer -q -m 64M -T DIR/buffer                mbuffer's buffer in a file (every byte
#                                                  goes through it)
#   mbuffer -q -m N -T DIR/buffer                  the same, large enough for the stream
# and in each round, in the same DIR, `dd if=/dev/zero of=DIR/f bs=1M` and
# `dd if=DIR/f of=/dev/null bs=1M`: how fast DIR takes and gives bytes.
#
# The spool run also writes its stats every 20 ms (--stats-file): its write rate is how fast
# bytes_spooled grew while the input lasted, its replay rate how fast spool_bytes fell once the
# consumer woke, each between two records inside that stretch.
#
# Targets (issue 12), printed with PASS or FAIL from the medians:
#   total time of the spool run        <= 1.2 x the in-memory run
#   total time of mbuffer -m 64M -T    >= 2 x the spool run
#   spool write rate                   >= 0.7 x dd writing DIR
#   spool replay rate                  >= 0.7 x dd reading DIR
# On a DIR whose pages stay in memory (tmpfs, or a disk with room in the page cache), dd measures
# memory copies, a ceiling no relay reaches through pipes; the in-memory run's drain rate after
# the pause is printed beside it, as the ceiling of bpipe's own output here.
#
# Environment knobs (besides those in lib.sh: BUILD_DIR, BPIPE, SKIP_BUILD):
#   SIZE_GIB, ROUNDS   same as the arguments (arguments win)
#   PAUSE              seconds the consumer sleeps before it reads, default 3
#   SPOOL_DIR          the directory spooled to, default a fresh one under TMPDIR
#   VERIFY_BYTES       size of the untimed content check, default 256M
#   RESULTS_DIR        where the raw TSV and the report are kept, default bench/.results
#
# Output: a Markdown report on stdout (also saved in RESULTS_DIR); progress on stderr. Exit
# status 1 if a relay produced wrong or short output (a missed target is not an error).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE_GIB=${1:-${SIZE_GIB:-1}}
ROUNDS=${2:-${ROUNDS:-3}}
PAUSE=${PAUSE:-3}
VERIFY_BYTES=${VERIFY_BYTES:-256M}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/.results}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $SIZE_GIB =~ ^[0-9]*\.?[0-9]+$ ]] || die "SIZE_GIB must be a number, got '$SIZE_GIB'"
[[ $PAUSE =~ ^[0-9]*\.?[0-9]+$ ]] || die "PAUSE must be seconds, got '$PAUSE'"
BYTES=$(gib_to_bytes "$SIZE_GIB")
(( BYTES >= 1 << 20 )) || die "SIZE_GIB too small (at least 1 MiB)"
MIB=$(( (BYTES + (1 << 20) - 1) >> 20 ))
# Enough chunks for the whole stream in memory, whatever its chunks' sizes down to 32 KiB.
CHUNKS=$(( BYTES / 32768 > 40000 ? BYTES / 32768 : 40000 ))
LIMIT=$(awk -v g="$SIZE_GIB" -v p="$PAUSE" 'BEGIN { printf "%d", 60 + p + 60 * g }')

if [[ -n ${SPOOL_DIR:-} ]]; then
    DIR=$(mktemp -d "$SPOOL_DIR/bpipe-spool-bench.XXXXXX")
    CLEAN_FILES+=("$DIR")
else
    DIR=$WORK/spool
    mkdir -p "$DIR"
fi

have python3 || die "python3 not found (apt-get install -y python3)"
build_tools
RELAYTIME=$BUILD_DIR/relaytime
gcc -O2 -Wall -o "$RELAYTIME" "$BENCH_DIR/relaytime.c"
build_bpipe

SPOOL=0
if [[ -n $BPIPE ]]; then
    probe=$(printf 'probe' | "$BPIPE" -q --spool "$DIR" --spool-max 1M 2>&1) && probe_rc=0 || probe_rc=$?
    if (( probe_rc == 0 )) && [[ $probe == probe ]]; then
        SPOOL=1
    else
        note "bpipe has no spool (\`bpipe -q --spool DIR --spool-max 1M\`: exit $probe_rc, $(head -n 1 <<<"$probe")): the spool rows skipped"
    fi
fi
have mbuffer || note "mbuffer not installed (apt-get update && apt-get install -y mbuffer): its rows skipped"

RELAYS=(spool memory mbuffer64 mbufferall)
label() {
    case $1 in
        spool) echo "bpipe -q -n 16 --spool DIR --spool-max $SIZE_GIB GiB" ;;
        memory) echo "bpipe -q -m $SIZE_GIB GiB -n $CHUNKS" ;;
        mbuffer64) echo "mbuffer -q -m 64M -T DIR/buffer" ;;
        mbufferall) echo "mbuffer -q -m $SIZE_GIB GiB -T DIR/buffer" ;;
    esac
}
relay_ok() {
    case $1 in
        spool) (( SPOOL )) ;;
        memory) [[ -n $BPIPE ]] ;;
        mbuffer*) have mbuffer ;;
    esac
}

mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
TSV=$RESULTS_DIR/spool-$STAMP.tsv
REPORT=$RESULTS_DIR/spool-$STAMP.md
printf 'relay\tround\tbytes\twall_s\tafter_pause_s\tuser_s\tsys_s\tmaxrss_kib\twrite_Bps\treplay_Bps\tstatus\n' >"$TSV"
RUN=$WORK/run
mkdir -p "$RUN"
FAILED=0

# launch ID N PAUSE_S [STATS]: producer | relay | paused consumer. The consumer's line goes to
# $RUN/out, the relay's wall/user/sys/rss to $RUN/time, its stderr to $RUN/err. Sets PS.
launch() {
    local id=$1 n=$2 pause=$3 stats=${4:-}
    local -a T=("$RELAYTIME" "$RUN/time" "$LIMIT") R
    case $id in
        spool) R=("$BPIPE" -q -n 16 --spool "$DIR" --spool-max "$BYTES")
            [[ -n $stats ]] && R+=(-i 20ms --stats-file "$stats") ;;
        memory) R=("$BPIPE" -q -m "$BYTES" -n "$CHUNKS") ;;
        mbuffer64) R=(mbuffer -q -m 64M -T "$DIR/buffer") ;;
        mbufferall) R=(mbuffer -q -m "$BYTES" -T "$DIR/buffer") ;;
    esac
    rm -f "$RUN/out" "$RUN/time"
    set +e
    "$PRODUCER" vmsplice "$n" | "${T[@]}" "${R[@]}" 2>"$RUN/err" \
        | { sleep "$pause"; "$CONSUMER" splice >"$RUN/out"; }
    PS=("${PIPESTATUS[@]}")
    set -e
}

fail() { # id what
    FAILED=1
    log "!!!!! FAILED: $(label "$1"): $2"
    [[ -s $RUN/err ]] && head -n 20 "$RUN/err" >&2
    printf '%s\t-\t%s\t-\t-\t-\t-\t-\t-\t-\tFAILED: %s\n' "$(label "$1")" "$BYTES" "$2" >>"$TSV"
}

checked() { # id n what -> 0 if statuses and the byte count are right
    if (( PS[0] != 0 || PS[1] != 0 || PS[2] != 0 )); then
        fail "$1" "exit statuses producer=${PS[0]} relay=${PS[1]} consumer=${PS[2]} ($3)"
        return 1
    fi
    local got
    got=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' "$RUN/out")
    if [[ $got != "$2" ]]; then
        fail "$1" "the consumer got ${got:-0} bytes of $2 ($3)"
        return 1
    fi
}

# rates STATS -> "WRITE_BPS REPLAY_BPS" from the spool run's records. Each rate is a slope between
# two records taken while the spool was being written (or replayed): records around the start or
# the end would add up to an interval's worth of time that was not spent on it.
rates() {
    python3 - "$1" "$BYTES" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
recs = [r for r in recs if "bytes_spooled" in r]
total = int(sys.argv[2])
def slope(a, b, key):
    if b["elapsed_s"] <= a["elapsed_s"]:
        return 0
    return abs(b[key] - a[key]) / (b["elapsed_s"] - a["elapsed_s"])
# Written: from the first record with something spooled to the last before all was read.
spooling = [r for r in recs if r["bytes_spooled"] > 0 and r["bytes_in"] < total]
write = slope(spooling[0], spooling[-1], "bytes_spooled") if spooling else 0
# Replayed: from the first record after the consumer woke (bytes_out grows again after the first
# second) to the last with something still spooled.
woke = next((i for i in range(1, len(recs))
             if recs[i]["elapsed_s"] > 1 and recs[i]["bytes_out"] > recs[i - 1]["bytes_out"]), None)
replaying = [r for r in recs[woke:] if r["spool_bytes"] > 0] if woke is not None else []
replay = slope(replaying[0], replaying[-1], "spool_bytes") if replaying else 0
print(f"{write:.0f} {replay:.0f}")
EOF
}

timed_run() { # id round
    local id=$1 round=$2 t0 t1 stats="" w=- r=- u s m
    [[ $id == spool ]] && stats=$RUN/stats.jsonl && rm -f "$stats"
    t0=$EPOCHREALTIME
    launch "$id" "$BYTES" "$PAUSE" "$stats"
    t1=$EPOCHREALTIME
    checked "$id" "$BYTES" "round $round" || return 0
    [[ -n $stats ]] && read -r w r < <(rates "$stats")
    read -r _ u s m _ <"$RUN/time"
    local wall after
    wall=$(elapsed "$t0" "$t1")
    after=$(awk -v w="$wall" -v p="$PAUSE" 'BEGIN { printf "%.6f", w - p }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' "$(label "$id")" "$round" "$BYTES" \
        "$wall" "$after" "$u" "$s" "$m" "$w" "$r" >>"$TSV"
    log "  round $round: $(printf '%-52s' "$(label "$id")") ${wall}s (after the pause ${after}s)  cpu ${u}+${s}s  rss ${m} KiB"
}

dd_round() { # round: dd writing and reading DIR
    local round=$1 t0 t1 t2
    t0=$EPOCHREALTIME
    dd if=/dev/zero of="$DIR/dd" bs=1M count="$MIB" status=none
    t1=$EPOCHREALTIME
    dd if="$DIR/dd" of=/dev/null bs=1M status=none
    t2=$EPOCHREALTIME
    rm -f "$DIR/dd"
    local bytes=$((MIB << 20))
    printf 'dd write\t%s\t%s\t%s\t-\t-\t-\t-\t%s\t-\tok\n' "$round" "$bytes" "$(elapsed "$t0" "$t1")" \
        "$(awk -v b=$bytes -v a="$t0" -v z="$t1" 'BEGIN { printf "%.0f", b / (z - a) }')" >>"$TSV"
    printf 'dd read\t%s\t%s\t%s\t-\t-\t-\t-\t-\t%s\tok\n' "$round" "$bytes" "$(elapsed "$t1" "$t2")" \
        "$(awk -v b=$bytes -v a="$t1" -v z="$t2" 'BEGIN { printf "%.0f", b / (z - a) }')" >>"$TSV"
    log "  round $round: dd bs=1M writing DIR $(elapsed "$t0" "$t1")s, reading it $(elapsed "$t1" "$t2")s"
}

log "spool: $SIZE_GIB GiB ($BYTES bytes) per run, $ROUNDS rounds, consumer paused ${PAUSE}s; DIR $DIR ($(df -T "$DIR" | awk 'NR == 2 { print $2 }'))"
log "bpipe: ${BPIPE_INFO:-not available}"

RUNNING=()
for id in "${RELAYS[@]}"; do
    relay_ok "$id" && RUNNING+=("$id")
done
if (( SPOOL )); then
    log "== checking the spool's output ($VERIFY_BYTES, consumer paused 1s)"
    VERIFY_N=$("$PRODUCER" write "$VERIFY_BYTES" | wc -c)
    want=$("$PRODUCER" write "$VERIFY_BYTES" | cksum)
    set +e
    got=$("$PRODUCER" vmsplice "$VERIFY_BYTES" | "$BPIPE" -q -n 16 --spool "$DIR" --spool-max "$VERIFY_N" \
        | { sleep 1; cksum; })
    set -e
    if [[ $got != "$want" ]]; then
        fail spool "check run: cksum '$got', expected '$want'"
        RUNNING=("${RUNNING[@]/spool/}")
    fi
    leftover=$(find "$DIR" -mindepth 1 | head -n 1)
    [[ -z $leftover ]] || fail spool "the spool left $leftover behind"
fi
for round in $(seq 1 "$ROUNDS"); do
    for id in ${RUNNING[@]+"${RUNNING[@]}"}; do
        [[ -n $id ]] && timed_run "$id" "$round"
    done
    dd_round "$round"
done

{
    echo "# bpipe spool: $SIZE_GIB GiB per run, consumer paused ${PAUSE}s, $ROUNDS rounds ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r))"
    echo
    echo "bpipe: ${BPIPE_INFO:-not built}; DIR on $(df -T "$DIR" | awk 'NR == 2 { print $2 }'); raw data: $TSV"
    if (( ${#NOTES[@]} )); then
        echo
        print_notes
    fi
    echo
    python3 - "$TSV" "$(label spool)" "$(label memory)" "$(label mbuffer64)" <<'EOF'
import csv, statistics, sys
tsv, spool, memory, mbuffer = sys.argv[1:5]
rows = [r for r in csv.DictReader(open(tsv), delimiter="\t") if r["status"] == "ok"]
def med(relay, key):
    vals = [float(r[key]) for r in rows if r["relay"] == relay and r[key] not in ("-", "0")]
    return statistics.median(vals) if vals else None
relays = [r for r in dict.fromkeys(r["relay"] for r in rows) if not r.startswith("dd ")]
print("| relay | total s | after the pause s | relay CPU s | peak RSS MiB |")
print("| --- | ---: | ---: | ---: | ---: |")
for relay in relays:
    cpu = (med(relay, "user_s") or 0) + (med(relay, "sys_s") or 0)
    print(f"| `{relay}` | {med(relay, 'wall_s'):.2f} | {med(relay, 'after_pause_s'):.2f} | {cpu:.2f} "
          f"| {(med(relay, 'maxrss_kib') or 0) / 1024:.1f} |")
gib = lambda bps: f"{bps / 2**30:.2f} GiB/s" if bps else "n/a"
write, replay = med(spool, "write_Bps"), med(spool, "replay_Bps")
dd_write, dd_read = med("dd write", "write_Bps"), med("dd read", "replay_Bps")
mem_after = med(memory, "after_pause_s")
size = float(rows[0]["bytes"]) if rows else 0
print()
print(f"spool write {gib(write)}, dd writing DIR {gib(dd_write)}; spool replay {gib(replay)}, "
      f"dd reading DIR {gib(dd_read)}; the in-memory run drains at "
      f"{gib(size / mem_after if mem_after else 0)} after the pause (bpipe's own ceiling here)")
print()
def check(name, ratio, target, at_most=False):
    if ratio is None:
        print(f"- {name}: n/a (a relay did not run)")
        return
    ok = ratio <= target if at_most else ratio >= target
    sign = "<=" if at_most else ">="
    print(f"- {name}: {ratio:.2f} (target {sign} {target}) **{'PASS' if ok else 'FAIL'}**")
ratio = lambda a, b: a / b if a and b else None
check("total time, spool / in memory", ratio(med(spool, "wall_s"), med(memory, "wall_s")), 1.2, True)
check("total time, mbuffer -m 64M -T / spool", ratio(med(mbuffer, "wall_s"), med(spool, "wall_s")), 2)
check("spool write / dd writing DIR", ratio(write, dd_write), 0.7)
check("spool replay / dd reading DIR", ratio(replay, dd_read), 0.7)
EOF
} | tee "$REPORT"
log "report saved: $REPORT"

if (( FAILED )); then
    log "!!!!! some relays FAILED the output check: see above"
    exit 1
fi
