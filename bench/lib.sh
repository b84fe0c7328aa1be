# bench/lib.sh - helpers shared by compare.sh and rate.sh (sourced, not run).
#
# Sets: BENCH_DIR, ROOT, BUILD_DIR, PRODUCER, CONSUMER, BPIPE (a private
# copy of the binary; empty when bpipe could not be built), BPIPE_INFO
# (where it came from), WORK (a private temp dir removed on exit).
# Environment knobs:
#   BUILD_DIR   where producer/consumer are compiled (default bench/.build)
#   BPIPE       use this bpipe binary; skips `cargo build`
#   SKIP_BUILD  1 = do not run `cargo build --release`; use the existing
#               target/release/bpipe if there is one

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$BENCH_DIR/.build}
PRODUCER=$BUILD_DIR/producer
CONSUMER=$BUILD_DIR/consumer

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bpipe-bench.XXXXXX")
CLEAN_FILES=()   # extra files to remove on exit (outside $WORK)
cleanup() {
    local rc=$?
    # stop our own background jobs, if any, then remove temp files
    local pids
    pids=$(jobs -pr) || true
    [[ -n $pids ]] && kill $pids 2>/dev/null || true
    rm -rf "$WORK" ${CLEAN_FILES[@]+"${CLEAN_FILES[@]}"}
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Print a note line both now (stderr) and in the final report (stdout).
NOTES=()
note() { NOTES+=("$*"); log "note: $*"; }
print_notes() {
    local n
    for n in ${NOTES[@]+"${NOTES[@]}"}; do printf -- '- %s\n' "$n"; done
}

have() { command -v "$1" >/dev/null 2>&1; }

build_tools() {
    have gcc || die "gcc not found (apt-get install -y gcc)"
    mkdir -p "$BUILD_DIR"
    gcc -O2 -Wall -o "$PRODUCER" "$BENCH_DIR/producer.c"
    gcc -O2 -Wall -o "$CONSUMER" "$BENCH_DIR/consumer.c"
}

build_bpipe() {
    if [[ -n ${BPIPE:-} ]]; then
        [[ -x $BPIPE ]] || die "BPIPE=$BPIPE is not an executable"
        log "using BPIPE=$BPIPE (no cargo build)"
        snapshot_bpipe
        return
    fi
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        if ! have cargo; then
            note "cargo not found: bpipe rows skipped"
            BPIPE=
            return
        fi
        log "building bpipe: (cd $ROOT && cargo build --release)"
        if ! (cd "$ROOT" && cargo build --release) >"$WORK/cargo.log" 2>&1; then
            note "bpipe: \`cargo build --release\` failed: bpipe rows skipped (last lines of its output below on stderr)"
            tail -n 20 "$WORK/cargo.log" >&2
            BPIPE=
            return
        fi
    fi
    if [[ -x $target/release/bpipe ]]; then
        BPIPE=$target/release/bpipe
        snapshot_bpipe
    else
        note "bpipe: $target/release/bpipe not found: bpipe rows skipped"
        BPIPE=
    fi
}

# Run a private copy, so that a rebuild of target/release/bpipe while the
# benchmark runs cannot change the binary between rounds.
# BPIPE_INFO describes what was copied, for the report.
snapshot_bpipe() {
    mkdir -p "$WORK/bin"
    cp "$BPIPE" "$WORK/bin/bpipe"
    BPIPE_INFO="$BPIPE (copied at start; modified $(date -u -r "$BPIPE" '+%Y-%m-%d %H:%M:%S UTC'), sha256 $(sha256sum "$BPIPE" | cut -c1-12))"
    BPIPE=$WORK/bin/bpipe
}

# need_time: GNU time is used to get the relay's own CPU time and peak RSS.
need_time() {
    [[ -x /usr/bin/time ]] || die "/usr/bin/time missing: apt-get update && apt-get install -y time"
}

# to_bytes 0.25 -> bytes in that many GiB (integer)
gib_to_bytes() { awk -v g="$1" 'BEGIN { printf "%.0f", g * 1073741824 }'; }

# elapsed T0 T1 -> T1 - T0 with 6 decimals ($EPOCHREALTIME values)
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

# Resolve a relay's label (a command line, words separated by spaces) into
# the array RELAY_CMD; the word `bpipe` becomes the built binary.
resolve_cmd() {
    read -ra RELAY_CMD <<<"$1"
    if [[ ${RELAY_CMD[0]} == bpipe ]]; then
        RELAY_CMD[0]=$BPIPE
    fi
}

# relay_available LABEL -> 0 if its program exists (bpipe: if it built)
relay_available() {
    local prog=${1%% *}
    if [[ $prog == bpipe ]]; then
        [[ -n ${BPIPE:-} ]]
    else
        have "$prog"
    fi
}
