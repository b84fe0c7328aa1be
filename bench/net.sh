#!/usr/bin/env bash
# bench/net.sh - bpipe between two processes over TCP (loopback), against
# mbuffer -O/-I, nc and socat.
#
# usage: bash bench/net.sh [SIZE_GIB] [ROUNDS]
#
#   SIZE_GIB  bytes per run, in GiB (fractions allowed, e.g. 0.25); default 2
#   ROUNDS    timed rounds per row and workload; default 5
#
# Every run is two pipelines on 127.0.0.1, a fresh free port each time:
#   receiver:  RECEIVER < /dev/null | consumer MODE      (started first)
#   sender:    producer MODE N | SENDER > /dev/null
# Workloads, as in compare.sh:
#   w1    producer write    ... consumer read
#   w3    producer vmsplice ... consumer splice
# Rows (sender → receiver; rounds interleaved: A B C … A B C …):
#   framed    bpipe -q --connect H:P            → bpipe -q --listen H:P
#   checksum  the same, --checksum on both sides
#   raw       the same, --raw on both sides
#   tls       bpipe -q --connect H:P --tls-pin PIN
#                                 → bpipe -q --listen H:P --tls-cert c.pem --tls-key k.pem
#             (a self-signed P-256 pair made with openssl at start; skipped
#             with a note when this bpipe has no --tls-cert, or when its
#             listener does not complete a TLS 1.3 handshake with
#             `openssl s_client`)
#   mbuffer   mbuffer -q -m BUF -s CHUNK -O H:P → mbuffer -q -m BUF -s CHUNK -I H:P
#             (BUF, CHUNK: bpipe's default queue bytes and chunk size: the
#             same memory as bpipe; the targets are judged against this row)
#   mbuffer64 mbuffer -q -m 64M -O H:P → mbuffer -q -m 64M -I H:P
#             (compare.sh's setting, for information: mbuffer is faster
#             over TCP with more memory)
#   nc        nc -N H P                         → nc -l H P   (netcat-openbsd)
#   socat     socat -u STDIN TCP:H:P            → socat -u TCP-LISTEN:P,bind=H,reuseaddr STDOUT
#
# Measured per run: wall time from the sender's start to the end of the
# receiver and its consumer (throughput = N / that); each side's user + sys
# CPU and peak RSS through relaytime (wait4).  Checked: before the timed
# rounds, an untimed run per row with VERIFY_BYTES compared with cksum, and
# for bpipe rows both sides' exit records (every byte in and out; with
# --checksum the same digest on both sides, not BLAKE3 of no bytes, and
# equal to the stream's BLAKE3 when known); every timed run: all exit
# statuses 0 and the consumer got exactly N bytes.  Every side stops after
# a time limit, and the receiver GRACE s after the sender (killed, FAILED).
#
# Environment knobs (besides those in lib.sh: BUILD_DIR, BPIPE, SKIP_BUILD):
#   SIZE_GIB, ROUNDS   same as the arguments (arguments win)
#   WORKLOADS          subset to run, default "w1 w3"
#   ROWS               subset of rows, default
#                      "framed checksum raw tls mbuffer mbuffer64 nc socat"
#   VERIFY_BYTES       size of the untimed content check per row, default 64M
#                      (12345 bytes are added, so that the stream does not
#                      end on a chunk boundary)
#   BPIPE_FLAGS        more flags for both sides of every bpipe row, e.g.
#                      "-b 1MiB" (the buffer, BUF and CHUNK follow them)
#   MBUFFER_OPTS       mbuffer's memory options, default "-m BUF -s CHUNK"
#   BASE_PORT          first port tried (1024-32699, below the ephemeral
#                      ports), default random in 20000-29999; each
#                      run takes the next port no socket uses
#   GRACE              seconds the receiver may outlive the sender, default 20
#   RESULTS_DIR        where the raw TSV and the report are kept,
#                      default bench/.results
#
# Peers: mbuffer, netcat-openbsd, socat, openssl (apt-get update && apt-get
# install -y mbuffer netcat-openbsd socat openssl); a missing one skips its
# row with a note.
#
# Output: Markdown tables on stdout (also saved in RESULTS_DIR); progress on
# stderr.  Exit status 1 if any row produced wrong or short output, failed,
# or did not stop by itself.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE_GIB=${1:-${SIZE_GIB:-2}}
ROUNDS=${2:-${ROUNDS:-5}}
WORKLOADS=${WORKLOADS:-w1 w3}
ROWS=${ROWS:-framed checksum raw tls mbuffer mbuffer64 nc socat}
VERIFY_BYTES=${VERIFY_BYTES:-64M}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/.results}
HOST=127.0.0.1
read -ra FLAGS <<<"${BPIPE_FLAGS:-}"

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $SIZE_GIB =~ ^[0-9]*\.?[0-9]+$ ]] || die "SIZE_GIB must be a number, got '$SIZE_GIB'"
BYTES=$(gib_to_bytes "$SIZE_GIB")
(( BYTES > 0 )) || die "SIZE_GIB too small"
# A side still running after this is killed and the row FAILED: a minute
# plus a minute per GiB (every peer here moves well over 0.1 GiB/s).
LIMIT=$(awk -v g="$SIZE_GIB" 'BEGIN { printf "%d", 60 + 60 * g }')
# Once the sender has exited, the receiver has this long to exit too.
GRACE=${GRACE:-20}
# How long a receiver may take to listen.
LISTEN_WAIT=10

have python3 || die "python3 not found (apt-get install -y python3)"
build_tools
RELAYTIME=$BUILD_DIR/relaytime
gcc -O2 -Wall -o "$RELAYTIME" "$BENCH_DIR/relaytime.c"
build_bpipe

RUN=$WORK/run
mkdir -p "$RUN"

# On exit, whatever happens: the receiver's process group (see transfer)
# and the TLS probe's listener.  The sender is in the foreground and gets
# the same signals as this script.
RECV_GROUP='' PROBE_PID=''
kill_sides() {
    stop_receiver
    [[ -n $PROBE_PID ]] && kill "$PROBE_PID" 2>/dev/null
    return 0
}
net_cleanup() {
    local rc=$?
    kill_sides
    (exit "$rc")
    cleanup
}
trap net_cleanup EXIT

now_us() { echo "${EPOCHREALTIME/./}"; }

# ---- ports ---------------------------------------------------------------

# port_used PORT: 0 if any IPv4 or IPv6 TCP socket has PORT as its local
# port (listening, connected or in TIME_WAIT).
port_used() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# listening PORT: 0 if a socket listens on PORT.
listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

NEXT_PORT=${BASE_PORT:-$((20000 + RANDOM % 10000))}
if ! [[ $NEXT_PORT =~ ^[0-9]+$ ]] || (( NEXT_PORT < 1024 || NEXT_PORT >= 32700 )); then
    die "BASE_PORT must be a port number from 1024 to 32699, got '$NEXT_PORT'"
fi
# Below the kernel's ephemeral range (32768 and up by default), so that no
# connection's own local port collides with a listener of a later run.
pick_port() {
    local tries=0
    while port_used "$NEXT_PORT"; do
        NEXT_PORT=$((NEXT_PORT + 1))
        (( NEXT_PORT < 32700 )) || NEXT_PORT=20000
        (( ++tries < 2000 )) || die "no free port found"
    done
    PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
    (( NEXT_PORT < 32700 )) || NEXT_PORT=20000
}

# ---- what bpipe and the peers can do ------------------------------------

BUF_BYTES=1048576 CHUNK_BYTES=65536
if [[ -n $BPIPE ]]; then
    # bpipe's default queue with a TCP endpoint (larger chunks than without), from its own
    # stats: a listener nobody connects to, given up at once
    pick_port
    stats=$("$BPIPE" ${FLAGS[@]+"${FLAGS[@]}"} --listen "127.0.0.1:$PORT" --accept-timeout 100ms \
        --stats-format json 2>&1 </dev/null >/dev/null | grep '"event":"exit"' | tail -n 1 || true)
    BUF_BYTES=$(sed -n 's/.*"queue_capacity_bytes":\([0-9]*\).*/\1/p' <<<"$stats")
    chunks=$(sed -n 's/.*"queue_capacity_chunks":\([0-9]*\).*/\1/p' <<<"$stats")
    [[ -n $BUF_BYTES && -n $chunks ]] || die "cannot read bpipe's queue size from its stats: $stats"
    CHUNK_BYTES=$((BUF_BYTES / chunks))
    if ! "$BPIPE" --help | grep -q -- '--listen'; then
        note "this bpipe has no --listen/--connect: bpipe rows skipped"
        BPIPE=
    fi
fi
MBUFFER_OPTS=${MBUFFER_OPTS:-"-m $((BUF_BYTES / 1024))k -s $((CHUNK_BYTES / 1024))k"}

NC_OK=0
if have nc; then
    if nc -h 2>&1 | grep -q OpenBSD; then NC_OK=1; fi
fi

# TLS: a self-signed pair and its pin; then a real handshake with openssl
# s_client, since a bpipe may accept the flags before it speaks TLS.
TLS_OK=0 TLS_WHY="" TLS_PIN=PIN
tls_probe() {
    if [[ -z $BPIPE ]]; then TLS_WHY="bpipe not built"; return; fi
    if ! "$BPIPE" --help | grep -q -- '--tls-cert'; then
        TLS_WHY="this bpipe has no --tls-cert yet"
        return
    fi
    if ! have openssl; then
        TLS_WHY="openssl not installed (apt-get update && apt-get install -y openssl)"
        return
    fi
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=localhost -keyout "$WORK/k.pem" -out "$WORK/c.pem" 2>"$WORK/openssl.err"; then
        TLS_WHY="openssl req failed: $(head -n 1 "$WORK/openssl.err")"
        return
    fi
    TLS_PIN=$(openssl x509 -in "$WORK/c.pem" -outform der | sha256sum | cut -d' ' -f1)
    pick_port
    local port=$PORT
    "$BPIPE" -q --listen "$HOST:$port" --accept-timeout 15s \
        --tls-cert "$WORK/c.pem" --tls-key "$WORK/k.pem" </dev/null >/dev/null 2>"$WORK/probe.err" &
    local pid=$!
    PROBE_PID=$pid
    local deadline=$(($(now_us) + LISTEN_WAIT * 1000000))
    while (($(now_us) < deadline)); do
        listening "$port" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    if ! listening "$port"; then
        TLS_WHY="a TLS listener did not start: $(head -n 1 "$WORK/probe.err")"
    elif timeout 10 openssl s_client -connect "$HOST:$port" -tls1_3 </dev/null \
        >"$WORK/s_client.out" 2>&1 && grep -q 'TLSv1.3' "$WORK/s_client.out"; then
        TLS_OK=1
    else
        TLS_WHY="this bpipe accepts --tls-cert/--tls-key but its listener does not speak TLS: \`openssl s_client -connect $HOST:PORT -tls1_3\` made no handshake ($(grep -m 1 -i -E 'error|errno|no peer' "$WORK/s_client.out" || echo 'no TLS answer'))"
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    PROBE_PID=
}
[[ " $ROWS " == *" tls "* ]] && tls_probe

row_ok() { # row -> 0 if it can run here, else 1 (after a note, once)
    case $1 in
        framed | checksum | raw) [[ -n $BPIPE ]] ;;
        tls) (( TLS_OK )) ;;
        mbuffer | mbuffer64) have mbuffer ;;
        nc) (( NC_OK )) ;;
        socat) have socat ;;
        *) die "unknown row '$1' (framed checksum raw tls mbuffer mbuffer64 nc socat)" ;;
    esac
}

skip_note() { # row
    case $1 in
        framed | checksum | raw) ;;  # bpipe's absence has one note already
        tls) note "'$(label tls)' skipped: $TLS_WHY" ;;
        mbuffer | mbuffer64) note "'$(label "$1")' skipped: mbuffer not installed (apt-get update && apt-get install -y mbuffer)" ;;
        nc)
            if have nc; then
                note "'$(label nc)' skipped: this nc is not netcat-openbsd (needs -N)"
            else
                note "'$(label nc)' skipped: nc not installed (apt-get update && apt-get install -y netcat-openbsd)"
            fi ;;
        socat) note "'$(label socat)' skipped: socat not installed (apt-get update && apt-get install -y socat)" ;;
    esac
}

label() {
    case $1 in
        framed) echo "bpipe framed" ;;
        checksum) echo "bpipe framed --checksum" ;;
        raw) echo "bpipe --raw" ;;
        tls) echo "bpipe TLS" ;;
        mbuffer) echo "mbuffer -O/-I" ;;
        mbuffer64) echo "mbuffer -O/-I -m 64M" ;;
        nc) echo "nc" ;;
        socat) echo "socat" ;;
    esac
}

# commands ROW PORT: sets SEND and RECV (arrays) for that row on that port.
commands() {
    local row=$1 p=$2
    local -a extra=()
    case $row in
        framed | checksum | raw | tls)
            [[ $row == checksum ]] && extra=(--checksum)
            [[ $row == raw ]] && extra=(--raw)
            extra+=(${FLAGS[@]+"${FLAGS[@]}"})
            SEND=("$BPIPE" -q --connect "$HOST:$p" ${extra[@]+"${extra[@]}"})
            RECV=("$BPIPE" -q --listen "$HOST:$p" ${extra[@]+"${extra[@]}"})
            if [[ $row == tls ]]; then
                SEND+=(--tls-pin "$TLS_PIN")
                RECV+=(--tls-cert "$WORK/c.pem" --tls-key "$WORK/k.pem")
            fi ;;
        mbuffer | mbuffer64)
            local -a mo=(-m 64M)
            [[ $row == mbuffer ]] && read -ra mo <<<"$MBUFFER_OPTS"
            SEND=(mbuffer -q "${mo[@]}" -O "$HOST:$p")
            RECV=(mbuffer -q "${mo[@]}" -I "$HOST:$p") ;;
        nc)
            SEND=(nc -N "$HOST" "$p")
            RECV=(nc -l "$HOST" "$p") ;;
        socat)
            SEND=(socat -u STDIN "TCP:$HOST:$p")
            RECV=(socat -u "TCP-LISTEN:$p,bind=$HOST,reuseaddr" STDOUT) ;;
    esac
}

# The command lines as the report shows them (H:P for the address).
describe() {
    local row=$1
    commands "$row" PORT
    local s="${SEND[*]}" r="${RECV[*]}"
    s=${s//$HOST:PORT/H:P} r=${r//$HOST:PORT/H:P}
    s=${s//$HOST PORT/H P} r=${r//$HOST PORT/H P}
    s=${s//PORT,bind=$HOST/P,bind=H} r=${r//PORT,bind=$HOST/P,bind=H}
    if [[ -n ${BPIPE:-} ]]; then s=${s//$BPIPE/bpipe} r=${r//$BPIPE/bpipe}; fi
    s=${s//$WORK\//} r=${r//$WORK\//}
    s=${s//$TLS_PIN/PIN}
    printf '%s → %s' "$s" "$r"
}

mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
TSV=$RESULTS_DIR/net-$STAMP.tsv
REPORT=$RESULTS_DIR/net-$STAMP.md
printf 'workload\trow\tlabel\tround\tbytes\twall_s\tsend_user_s\tsend_sys_s\tsend_rss_kib\trecv_user_s\trecv_sys_s\trecv_rss_kib\tbuffer_bytes\tstatus\n' >"$TSV"

FAILED=0
declare -A BROKEN=()     # "workload|row" -> reason; skipped from then on

fail() { # workload row reason
    BROKEN["$1|$2"]=$3
    FAILED=1
    log ""
    log "!!!!! FAILED: workload $1, row '$(label "$2")': $3"
    local side
    for side in s r; do
        if [[ -s $RUN/$side.err ]]; then
            log "!!!!! $([[ $side == s ]] && echo sender || echo receiver) stderr:"
            head -n 20 "$RUN/$side.err" >&2
        fi
    done
    log ""
    printf '%s\t%s\t%s\t-\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\tFAILED: %s\n' \
        "$1" "$2" "$(label "$2")" "$BYTES" "$BUF_BYTES" "$3" >>"$TSV"
}

modes_for() { # workload -> "producer_mode consumer_mode"
    case $1 in
        w1) echo "write read" ;;
        w3) echo "vmsplice splice" ;;
        *) die "unknown workload '$1' (w1, w3)" ;;
    esac
}

# One transfer: ROW on a fresh port, N bytes, PMODE into the sender, the
# receiver's output into SINK (a consumer mode, or cksum).  With STATS,
# bpipe sides also write their JSON records to $RUN/s.json and $RUN/r.json.
# Sets T0, T1 (EPOCHREALTIME: before the sender started, when the receiver
# and its consumer had exited), PROD_ST, SEND_ST, RECV_ST, SINK_ST, and WHY
# (empty, or what went wrong with the run itself: no listener, a hang).
# Each side runs under relaytime, which stops it after LIMIT s.  The
# receiver's pipeline runs in a process group of its own (job control on
# just for its fork), so that all of it can be killed by that group's id.
transfer() {
    local row=$1 n=$2 pm=$3 sink=$4 stats=${5:-}
    pick_port
    commands "$row" "$PORT"
    if [[ -n $stats ]]; then
        SEND+=(--stats-file "$RUN/s.json")
        RECV+=(--stats-file "$RUN/r.json")
    fi
    rm -f "$RUN"/r.* "$RUN"/s.* "$RUN/c.out"
    : >"$RUN/r.err"
    : >"$RUN/s.err"
    WHY=""
    local -a sinkcmd=("$CONSUMER" "$sink")
    [[ $sink == cksum ]] && sinkcmd=(cksum)
    set -m
    (
        set +e
        "$RELAYTIME" "$RUN/r.time" "$LIMIT" "${RECV[@]}" </dev/null 2>"$RUN/r.err" \
            | "${sinkcmd[@]}" >"$RUN/c.out"
        echo "${PIPESTATUS[0]} ${PIPESTATUS[1]} $EPOCHREALTIME" >"$RUN/r.status.tmp"
        mv "$RUN/r.status.tmp" "$RUN/r.status"
    ) &
    RECV_GROUP=$!
    set +m
    local deadline=$(($(now_us) + LISTEN_WAIT * 1000000))
    while (($(now_us) < deadline)); do
        listening "$PORT" && break
        [[ -e $RUN/r.status ]] && break
        sleep 0.01
    done
    if ! listening "$PORT"; then
        WHY="the receiver did not listen on $HOST:$PORT within ${LISTEN_WAIT}s"
        stop_receiver
        return
    fi
    T0=$EPOCHREALTIME
    set +e
    "$PRODUCER" "$pm" "$n" \
        | "$RELAYTIME" "$RUN/s.time" "$LIMIT" "${SEND[@]}" >/dev/null 2>"$RUN/s.err"
    local -a ps=("${PIPESTATUS[@]}")
    set -e
    PROD_ST=${ps[0]} SEND_ST=${ps[1]}
    # the receiver ends once the stream has: give it GRACE seconds
    deadline=$(($(now_us) + GRACE * 1000000))
    while (($(now_us) < deadline)); do
        [[ -e $RUN/r.status ]] && break
        sleep 0.005
    done
    if [[ ! -e $RUN/r.status ]]; then
        WHY="the receiver was still running ${GRACE}s after the sender exited (sender status $SEND_ST): killed"
        stop_receiver
        return
    fi
    wait "$RECV_GROUP" || true
    RECV_GROUP=
    read -r RECV_ST SINK_ST T1 <"$RUN/r.status"
}

# stop_receiver: the receiver's whole pipeline, TERM then KILL.
stop_receiver() {
    [[ -n ${RECV_GROUP:-} ]] || return 0
    local i
    kill -TERM -- "-$RECV_GROUP" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 -- "-$RECV_GROUP" 2>/dev/null || break
        sleep 0.01
    done
    kill -KILL -- "-$RECV_GROUP" 2>/dev/null || true
    wait "$RECV_GROUP" 2>/dev/null || true
    RECV_GROUP=
}

# check_run WORKLOAD ROW WHAT: statuses and timeouts of the last transfer.
check_run() {
    local wl=$1 row=$2 what=$3
    if [[ -n $WHY ]]; then
        fail "$wl" "$row" "$WHY ($what)"
        return 1
    fi
    if (( SEND_ST == 124 || RECV_ST == 124 )); then
        fail "$wl" "$row" "timed out after ${LIMIT}s: sender status $SEND_ST, receiver $RECV_ST ($what)"
        return 1
    fi
    if (( PROD_ST != 0 || SEND_ST != 0 || RECV_ST != 0 || SINK_ST != 0 )); then
        fail "$wl" "$row" "exit statuses producer=$PROD_ST sender=$SEND_ST receiver=$RECV_ST consumer=$SINK_ST ($what)"
        return 1
    fi
}

# check_stats N ROW: the bpipe sides' exit records of a check run: every
# byte accounted on both sides; with --checksum the same digest on both,
# not BLAKE3 of no bytes, and VERIFY_B3 (the stream's BLAKE3) when known.
# Prints the data paths (sender in→out, receiver in→out).
check_stats() {
    python3 - "$RUN/s.json" "$RUN/r.json" "$1" "$2" "$VERIFY_B3" <<'EOF'
import json, sys
spath, rpath, n, row, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # BLAKE3 of b""
def exit_record(path, side):
    try:
        recs = [json.loads(l) for l in open(path) if l.strip()]
    except (OSError, ValueError) as e:
        sys.exit(f"{side} --stats-file: {e}")
    ex = [r for r in recs if r.get("event") == "exit"]
    if not ex:
        sys.exit(f"no exit record in the {side}'s --stats-file")
    return ex[-1]
s, r = exit_record(spath, "sender"), exit_record(rpath, "receiver")
errs = []
for side, rec in (("sender", s), ("receiver", r)):
    for k in ("bytes_in", "bytes_out"):
        if rec.get(k) != n:
            errs.append(f"{side} {k} {rec.get(k)} != {n}")
    if rec.get("exit_status") != 0:
        errs.append(f"{side} exit_status {rec.get('exit_status')}")
if row == "checksum":
    if not s.get("checksum") or s.get("checksum") != r.get("checksum"):
        errs.append(f"checksums differ or missing: sender {s.get('checksum')}, receiver {r.get('checksum')}")
    elif s["checksum"] == EMPTY and n:
        errs.append(f"the digest {EMPTY[:16]}… on both sides is {s.get('checksum_alg')} of no bytes at all, not of the {n} bytes sent")
    elif want and s["checksum"] != want:
        errs.append(f"both sides say {s['checksum']}, but the {s.get('checksum_alg')} of the stream is {want}")
if errs:
    sys.exit("; ".join(errs))
print(f"sender {s.get('path_in')}→{s.get('path_out')}, receiver {r.get('path_in')}→{r.get('path_out')}"
      + (f", {s.get('checksum_alg')} {s.get('checksum', '')[:16]}… on both" if row == "checksum" else ""))
EOF
}

# Untimed correctness check: VERIFY_N bytes through the row, the receiver's
# output compared with cksum; bpipe rows also check both exit records.
verify() { # workload row
    local wl=$1 row=$2 pm got stats="" msg
    read -r pm _ <<<"$(modes_for "$wl")"
    [[ $row =~ ^(framed|checksum|raw|tls)$ ]] && stats=1
    transfer "$row" "$VERIFY_N" "$pm" cksum "$stats"
    check_run "$wl" "$row" "check run" || return 0
    got=$(cat "$RUN/c.out")
    if [[ $got != "$VERIFY_CKSUM" ]]; then
        fail "$wl" "$row" "output differs from the input: cksum '$got', expected '$VERIFY_CKSUM' (cksum, bytes)"
        return 0
    fi
    if [[ -n $stats ]]; then
        if ! msg=$(check_stats "$VERIFY_N" "$row" 2>&1); then
            fail "$wl" "$row" "stats check: $msg"
            return 0
        fi
        log "  $wl check: $(printf '%-24s' "$(label "$row")") ok; $msg"
        PATHS["$wl|$row"]=$msg
    else
        log "  $wl check: $(printf '%-24s' "$(label "$row")") ok"
    fi
}

# One timed run; appends a row to the TSV.
timed_run() { # workload row round
    local wl=$1 row=$2 round=$3 pm cm n
    read -r pm cm <<<"$(modes_for "$wl")"
    transfer "$row" "$BYTES" "$pm" "$cm"
    check_run "$wl" "$row" "round $round" || return 0
    n=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' "$RUN/c.out")
    if [[ ${n:-0} != "$BYTES" ]]; then
        fail "$wl" "$row" "short output: the consumer got ${n:-0} bytes out of $BYTES (round $round)"
        return 0
    fi
    local su ss sm ru rs rm
    read -r _ su ss sm _ <"$RUN/s.time"
    read -r _ ru rs rm _ <"$RUN/r.time"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\tok\n' \
        "$wl" "$row" "$(label "$row")" "$round" "$BYTES" "$(elapsed "$T0" "$T1")" \
        "$su" "$ss" "$sm" "$ru" "$rs" "$rm" "$BUF_BYTES" >>"$TSV"
    log "  $wl round $round: $(printf '%-24s' "$(label "$row")") $(awk -v b="$BYTES" -v a="$T0" -v z="$T1" 'BEGIN { printf "%7.3f GiB/s", b / (z - a) / 1073741824 }')  sender cpu ${su}+${ss}s rss ${sm} KiB  receiver cpu ${ru}+${rs}s rss ${rm} KiB"
}

VERIFY_N=$(( $("$PRODUCER" write "$VERIFY_BYTES" | wc -c) + 12345 ))
VERIFY_CKSUM=$("$PRODUCER" write "$VERIFY_N" | cksum)
# The BLAKE3 of the check stream, for the --checksum row: b3sum's when it is
# installed, else the one computed once for the default VERIFY_BYTES.
VERIFY_B3=""
if have b3sum; then
    VERIFY_B3=$("$PRODUCER" write "$VERIFY_N" | b3sum --no-names)
elif (( VERIFY_N == 67121209 )); then
    VERIFY_B3=47f979d991d99dd172bde9bc311b5720ec4bed509385d6c1b18286b36d0c65be
else
    note "no b3sum and VERIFY_BYTES is not the default: the --checksum digest is only checked for being the same on both sides and not BLAKE3 of nothing"
fi
declare -A PATHS=()

log "net: $SIZE_GIB GiB ($BYTES bytes) per run, $ROUNDS rounds, workloads: $WORKLOADS; rows: $ROWS"
log "bpipe: ${BPIPE_INFO:-not available}; extra flags: ${FLAGS[*]:-none}; buffer $BUF_BYTES bytes; mbuffer $MBUFFER_OPTS"

run=()
for row in $ROWS; do
    if row_ok "$row"; then run+=("$row"); else skip_note "$row"; fi
done
T_START=$SECONDS
if (( ${#run[@]} )); then
    for wl in $WORKLOADS; do
        modes_for "$wl" >/dev/null
        log "== $wl: checking the output of ${#run[@]} rows ($VERIFY_N bytes each)"
        for row in "${run[@]}"; do
            verify "$wl" "$row"
        done
        for round in $(seq 1 "$ROUNDS"); do
            for row in "${run[@]}"; do
                [[ -n ${BROKEN["$wl|$row"]+x} ]] && continue
                timed_run "$wl" "$row" "$round"
            done
        done
    done
fi

{
    echo "# bpipe over TCP (loopback): $SIZE_GIB GiB per run, $ROUNDS rounds ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), $((SECONDS - T_START)) s)"
    echo
    echo "bpipe: ${BPIPE_INFO:-not built}; buffer (bpipe's queue${FLAGS[*]:+ with ${FLAGS[*]}}) $BUF_BYTES bytes; raw data: $TSV"
    echo
    echo "Rows (sender → receiver; H:P is $HOST and a fresh free port per run):"
    echo
    for row in $ROWS; do
        echo "- $(label "$row"): \`$(describe "$row")\`"
    done
    if (( ${#PATHS[@]} )); then
        echo
        echo "Data paths (from the check runs' exit records):"
        echo
        for wl in $WORKLOADS; do
            for row in "${run[@]}"; do
                [[ -n ${PATHS["$wl|$row"]+x} ]] && echo "- $wl, $(label "$row"): ${PATHS["$wl|$row"]}"
            done
        done
    fi
    if (( ${#NOTES[@]} )); then
        echo
        print_notes
    fi
    echo
    python3 "$BENCH_DIR/summarize.py" net "$TSV"
} | tee "$REPORT"
log "report saved: $REPORT"

if (( FAILED )); then
    log "!!!!! some rows FAILED: see the FAILED rows above"
    exit 1
fi
