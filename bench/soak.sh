#!/usr/bin/env bash
# bench/soak.sh - soak test: real pipelines through bpipe for a long time,
# checking that it keeps its promises while the consumer misbehaves.
#
# usage: bash bench/soak.sh [DURATION]
#        bash bench/soak.sh --replay SEED POLICY CHUNK CHUNKS LINES SECONDS
#
#   DURATION  total time: 90s, 10m, 1h, 1h30m, or plain seconds (default 10m)
#   --replay  rerun the one round a failure names; the report prints the
#             exact command (LINES is 1 for -l, 0 without)
#
# The soak is a sequence of rounds of SOAK_ROUND_S seconds (default 20-60).
# Round k uses policy k mod 4 (block, drop, drop-oldest, fail), line mode
# (-l) on every other round (alternating per policy too), and a (-b, -n)
# setting drawn from a pool of 8
# made from the master seed, so that settings recur and their memory can be
# compared over time.  A round is
#
#   producer ─fifo─▶ bpipe --on-full P -b B -n N [-l] -i 1s --stats-format json ─fifo─▶ consumer
#
# - input: 8..SOAK_MAX_MIB MiB of numbered records `seq:NNNNNNNN <letters>\n`,
#   mostly short, some up to 8 KiB, and in two rounds out of three 0.3% or
#   3% of up to 300 KiB (longer than the small chunk sizes; in half of
#   those rounds the input ends with them); a function of the round's
#   seed, so a failing round can be rebuilt exactly;
# - the producer writes it in pieces of 1 B..64 KiB (256 B..64 KiB without
#   -l), paced to end at 80% of the round, and records its long write(2)s;
# - the consumer goes through phases: fast (1 MiB reads), slow (4 KiB reads
#   at 64-512 KiB/s) and stopped (SIGSTOP, later SIGCONT); from the end of
#   the round on it is fast, so that what is queued drains;
# - SIGUSR1 goes to bpipe every 100 ms; its VmRSS/VmHWM is read every second.
#
# Checks, per round (each failure names its check):
#   status        exit status allowed for the policy: 0, or 0/3 under fail
#   panic/stderr  no `panicked`; every stderr line JSON or `bpipe: ...`
#   identity      bytes_in >= bytes_out + bytes_dropped + bytes_unsent in
#                 every record, equality in the exit record
#   monotonic     counters never go down from one record to the next
#   exit-record   exactly one; its exit_status is the real one; bytes_out is
#                 what the consumer received; bytes_in <= input (= at exit 0)
#   block         output byte-identical to the input, nothing dropped
#   drop, drop-oldest, -l:  every output line is a whole input record,
#                 sequence numbers strictly increase, no partial record,
#                 records_dropped = records missing (exit 0)
#   drop, drop-oldest, bytes: the output is runs of the input in input
#                 order (no byte out of place, repeated or foreign)
#   newest        drop-oldest at exit 0: the last record (bytes: the end of
#                 the input) arrives
#   fail          output a prefix of the input; exit 0 means all of it and
#                 nothing dropped; exit 3 says `bpipe: input rejected`; with
#                 -l it ends at a record boundary
#   fail-hang     fail: once it has rejected input, bpipe does not wait 3 s
#                 or more on a stopped consumer (one that never resumed
#                 would hold it, and its exit 3, for ever)
#   queue-bound   queue_chunks/queue_bytes and their peaks within capacity
#   producer-blocked  not under block: no single write of the producer
#                 waits 2 s or more (README: under drop "the producer never
#                 waits"); not checked in a fail round that was rejected,
#                 since the producer then waits for bpipe to exit
#   reader-blocked    not under block: exit record reader_blocked_s < 2 s
#   sigusr1       at least one `signal` record per 10 signals sent, and no
#                 more records than signals
#   interval      about one `interval` record per second of elapsed_s
#   rss           peak VmHWM <= (n+3)*b + 8 MiB
#   hang          the pipeline ends within 120 s after the round's end
#
# At the end: a table per policy, peak memory per (-b, -n) setting in the
# first minute and later, and the failing rounds with a replay command.
# Exit status 1 if any check failed.
#
# Environment knobs (besides lib.sh's BPIPE and SKIP_BUILD):
#   SOAK_SEED      master seed (default: from the clock; printed)
#   SOAK_ROUND_S   round length range in seconds, default 20-60
#   SOAK_MAX_MIB   most input per round in MiB, default 32 (at least 8)
#   SOAK_POLICIES  the policies to take turns, default "block drop drop-oldest fail"
#   RESULTS_DIR    where the report and failing rounds' stderr are kept,
#                  default bench/.results
#   SOAK_KEEP_DATA 1 = also keep a failing round's input and output there
# Needs bash, python3 (stdlib) and coreutils; no network.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POLICIES=(block drop drop-oldest fail)
read -ra RUN_POLICIES <<<"${SOAK_POLICIES:-${POLICIES[*]}}"
for p in "${RUN_POLICIES[@]}"; do
    [[ " ${POLICIES[*]} " == *" $p "* ]] || die "SOAK_POLICIES: unknown policy '$p' (${POLICIES[*]})"
done
CHUNK_SIZES=(1K 4K 64K 256K 1M)
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/.results}
SOAK_MAX_MIB=${SOAK_MAX_MIB:-32}
ROUND_SPAN=${SOAK_ROUND_S:-20-60}
HANG_GRACE_S=120

[[ $ROUND_SPAN =~ ^([0-9]+)-([0-9]+)$ ]] || die "SOAK_ROUND_S must be MIN-MAX seconds, got '$ROUND_SPAN'"
ROUND_MIN=$((10#${BASH_REMATCH[1]}))
ROUND_MAX=$((10#${BASH_REMATCH[2]}))
(( ROUND_MIN >= 5 && ROUND_MAX >= ROUND_MIN )) || die "SOAK_ROUND_S: need 5 <= MIN <= MAX"
[[ $SOAK_MAX_MIB =~ ^[0-9]+$ ]] && (( SOAK_MAX_MIB >= 8 )) || die "SOAK_MAX_MIB must be an integer >= 8"

# parse_duration 1h30m -> seconds on stdout; status 1 if malformed
parse_duration() {
    local s=$1 total=0 mul
    [[ -n $s ]] || return 1
    while [[ -n $s ]]; do
        [[ $s =~ ^([0-9]+)(h|min|m|s)?(.*)$ ]] || return 1
        s=${BASH_REMATCH[3]}
        [[ -z ${BASH_REMATCH[2]} && -n $s ]] && return 1
        case ${BASH_REMATCH[2]} in
            h) mul=3600 ;;
            m | min) mul=60 ;;
            *) mul=1 ;;
        esac
        total=$((total + 10#${BASH_REMATCH[1]} * mul))
    done
    echo "$total"
}

# size_bytes 4K -> 4096 (the -b labels above)
size_bytes() {
    case $1 in
        *K) echo $((${1%K} * 1024)) ;;
        *M) echo $((${1%M} * 1048576)) ;;
        *) echo "$1" ;;
    esac
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# now_ms: milliseconds since the epoch in NOW, without a fork (the tick
# loop calls it ten times a second)
now_ms() {
    NOW=${EPOCHREALTIME//[!0-9]/}
    NOW=$((10#$NOW / 1000))
}

# ---------------------------------------------------------------- helpers
# Written once into $WORK: the generator, the paced producer, the phased
# consumer and the checker.

write_helpers() {
    cat >"$WORK/gen.py" <<'PY'
# gen.py SEED TOTAL LONG_PER_MILLE LONG_LAST: numbered records on stdout, a
# pure function of the arguments; LONG_LAST=1 makes the last one long.
# Payloads are lowercase letters only, so that `seq:` appears only in headers.
import random, sys
seed, total, long_pm, long_last = (int(x) for x in sys.argv[1:5])
r = random.Random(seed)
letters = bytes(97 + i % 26 for i in range(256))
out = bytearray()
seq = 0
while len(out) < total:
    u = r.random() * 1000
    if u < long_pm or (long_last and len(out) + 300000 >= total):
        n = r.randint(8192, 307200)
    elif u < 100:
        n = r.randint(200, 8192)
    else:
        n = r.randint(0, 200)
    out += b"seq:%08d " % seq
    out += r.randbytes(n).translate(letters)
    out += b"\n"
    seq += 1
sys.stdout.buffer.write(out)
PY
    cat >"$WORK/producer.py" <<'PY'
# producer.py INPUT RATE SEED MIN STATS: writes INPUT to stdout in pieces
# of MIN..64 KiB (log-uniform), paced to RATE bytes/s (catching up after a block), and
# writes to STATS the bytes written, the longest single write(2), when it
# was, and whether the reader went away (EPIPE).
import json, math, os, random, sys, time
path, rate, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
low, stats = math.log2(int(sys.argv[4])), sys.argv[5]
data = memoryview(open(path, "rb").read())
r = random.Random(seed ^ 0x5EED)
pos, n = 0, len(data)
start = time.monotonic()
waits = []  # (seconds, at_s): the longest few
epipe = False
try:
    while pos < n:
        end = min(n, pos + int(2 ** r.uniform(low, 16)))
        due = start + pos / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        while pos < end:
            t = time.monotonic()
            pos += os.write(1, data[pos:end])
            dt = time.monotonic() - t
            if dt > 0.2:
                waits.append((round(dt, 3), round(t - start, 3)))
except BrokenPipeError:
    epipe = True
with open(stats, "w") as f:
    json.dump({"bytes": pos, "epipe": epipe, "waits": waits,
               "elapsed": round(time.monotonic() - start, 3)}, f)
PY
    cat >"$WORK/consumer.py" <<'PY'
# consumer.py OUT STATS SLOW_RATE: copies stdin to OUT; SIGUSR1 makes it
# slow (4 KiB reads at SLOW_RATE bytes/s), SIGUSR2 fast (1 MiB reads).
# Writes the byte count to STATS at EOF.
import os, signal, sys, time
out_path, stats, slow = sys.argv[1], sys.argv[2], int(sys.argv[3])
mode = {"slow": False}
signal.signal(signal.SIGUSR1, lambda *_: mode.update(slow=True))
signal.signal(signal.SIGUSR2, lambda *_: mode.update(slow=False))
total = 0
with open(out_path, "wb") as f:
    while True:
        slow_now = mode["slow"]
        b = os.read(0, 4096 if slow_now else 1 << 20)
        if not b:
            # Ignored, not default: Python's exit restores SIG_DFL for
            # signals it handled, and a late SIGUSR2 would then kill it.
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)
            break
        f.write(b)
        total += len(b)
        if slow_now:
            time.sleep(len(b) / slow)
with open(stats, "w") as f:
    f.write("%d\n" % total)
PY
    cat >"$WORK/check.py" <<'PY'
# check.py KEY=VALUE...: checks one round; prints `FAIL check message`,
# `NOTE message` and one `RESULT k=v ...` line.
import json, re, sys

a = dict(x.split("=", 1) for x in sys.argv[1:])
policy, lines = a["policy"], a["lines"] == "1"
status, chunk, long_max = int(a["status"]), int(a["chunk"]), int(a["long_max"])
queue_bytes = chunk * int(a["chunks"])
sent = int(a["sent"])
inp = open(a["input"], "rb").read()
out = open(a["output"], "rb").read()
err = open(a["stderr"], "rb").read()
try:
    consumed = int(open(a["cstats"]).read())
except (OSError, ValueError):
    consumed = -1
try:
    prod = json.load(open(a["pstats"]))
except (OSError, ValueError):
    prod = {"bytes": -1, "epipe": False, "waits": []}

fails = {}
def fail(check, msg):
    fails.setdefault(check, []).append(msg)

def first_diff(x, y):
    n = min(len(x), len(y))
    lo, hi = 0, n  # binary search on prefix equality: fast on big inputs
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if x[:mid] == y[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo

def record_at(off):
    """The input record holding byte offset off, as 'seq N (+k)'."""
    start = inp.rfind(b"\n", 0, off) + 1
    m = re.match(rb"seq:(\d{8}) ", inp[start:start + 13])
    return "seq %s (+%d)" % (m.group(1).decode() if m else "?", off - start)

# -- stderr: JSON records and `bpipe: ` lines only
records, notes = [], []
if err and not err.endswith(b"\n"):
    fail("stderr", "stderr does not end with a newline")
for no, raw in enumerate(err.split(b"\n")[:-1] if err.endswith(b"\n") else err.split(b"\n"), 1):
    line = raw.decode("utf-8", "replace")
    if "panicked" in line:
        fail("panic", "stderr line %d: %s" % (no, line[:200]))
    if line.startswith("{"):
        try:
            records.append((no, json.loads(line)))
        except ValueError:
            fail("stderr", "line %d is not valid JSON: %s" % (no, line[:200]))
    elif line.startswith("bpipe: "):
        notes.append(line)
    else:
        fail("stderr", "line %d is neither JSON nor 'bpipe: ...': %r" % (no, line[:200]))

# -- accounting in every record
ACC = ("bytes_in", "bytes_out", "bytes_dropped", "bytes_unsent")
MONO = ACC[:3] + ("chunks_in", "chunks_out", "chunks_dropped", "records_dropped")
counts = {"signal": 0, "interval": 0, "exit": 0}
prev, good = None, []
for no, rec in records:
    ev = rec.get("event")
    counts[ev] = counts.get(ev, 0) + 1
    try:
        bi, bo, bd, bu = (int(rec[k]) for k in ACC)
    except (KeyError, TypeError, ValueError):
        fail("json", "%s record (stderr line %d) lacks an accounting key" % (ev, no))
        continue
    if bi < bo + bd + bu:
        fail("identity", "%s record (stderr line %d): bytes_in %d < bytes_out %d + bytes_dropped %d + bytes_unsent %d"
             % (ev, no, bi, bo, bd, bu))
    if prev is not None:
        for k in MONO:
            if k in rec and k in prev[1] and rec[k] < prev[1][k]:
                fail("monotonic", "%s went from %s (line %d) to %s (line %d)" % (k, prev[1][k], prev[0], rec[k], no))
    for k, cap in (("queue_chunks", "queue_capacity_chunks"), ("queue_peak_chunks", "queue_capacity_chunks"),
                   ("queue_bytes", "queue_capacity_bytes"), ("queue_peak_bytes", "queue_capacity_bytes")):
        if k in rec and cap in rec and rec[k] > rec[cap]:
            fail("queue-bound", "%s record (stderr line %d): %s %s > %s %s" % (ev, no, k, rec[k], cap, rec[cap]))
    prev = (no, rec)
    good.append(rec)

ex = [r for r in good if r.get("event") == "exit"]
if len(ex) != 1:
    fail("exit-record", "%d exit records" % len(ex))
ex = ex[-1] if ex else {}
bi, bo, bd, bu = (int(ex.get(k, 0)) for k in ACC)
rd = int(ex.get("records_dropped", 0))
if ex:
    if bi != bo + bd + bu:
        fail("identity", "exit record: bytes_in %d != bytes_out %d + bytes_dropped %d + bytes_unsent %d (off by %d)"
             % (bi, bo, bd, bu, bi - bo - bd - bu))
    if ex.get("exit_status") != status:
        fail("exit-record", "exit_status %s but bpipe exited %d" % (ex.get("exit_status"), status))
    if bo != len(out):
        fail("exit-record", "bytes_out %d but the consumer received %d" % (bo, len(out)))
    if bi > len(inp) or (status == 0 and bi != len(inp)):
        fail("exit-record", "bytes_in %d of an input of %d (exit %d)" % (bi, len(inp), status))
if consumed != len(out):
    fail("consumer", "consumer counted %d bytes, its file has %d" % (consumed, len(out)))

# -- exit status
allowed = (0, 3) if policy == "fail" else (0,)
if status not in allowed:
    fail("status", "exit status %d (allowed: %s)" % (status, allowed))
rejected = any(n.startswith("bpipe: input rejected") for n in notes)
if status == 3 and not rejected:
    fail("fail", "exit 3 without a 'bpipe: input rejected' line")

# -- the data
in_lines = inp.split(b"\n")[:-1]
HDR = re.compile(rb"seq:(\d{8}) ")

def check_lines():
    """Output: whole input records, in increasing order.  Returns the count."""
    if out and not out.endswith(b"\n"):
        tail = out[out.rfind(b"\n") + 1:]
        fail("partial", "output ends in a partial record: %d bytes %r..." % (len(tail), tail[:24]))
    got = out.split(b"\n")[:-1] if out.endswith(b"\n") else out.split(b"\n")
    last, bad = -1, 0
    for i, ln in enumerate(got):
        m = HDR.match(ln)
        s = int(m.group(1)) if m else -1
        if s < 0 or s >= len(in_lines) or in_lines[s] != ln:
            bad += 1
            if bad <= 3:
                want = len(in_lines[s]) if 0 <= s < len(in_lines) else "?"
                fail("records", "output line %d (%d bytes, header %r) is not a whole input record (expected %s bytes)"
                     % (i + 1, len(ln), ln[:13], want))
        elif s <= last:
            bad += 1
            if bad <= 3:
                fail("records", "output line %d is seq %d after seq %d: out of order or repeated" % (i + 1, s, last))
        if s >= 0:
            last = max(last, s)
    if bad > 3:
        fail("records", "... %d bad output lines in all" % bad)
    return got

def common(o, i):
    """Length of the common prefix of out[o:] and inp[i:] (galloping, so
    that short ones cost a few small slices)."""
    n = min(len(out) - o, len(inp) - i)
    k, step, grow = 0, 16, True
    while step:
        m = min(step, n - k)
        if m <= 0:
            break
        if out[o + k:o + k + m] == inp[i + k:i + k + m]:
            k += m
            if grow:
                step *= 2
        else:
            grow, step = False, m // 2
    return k

def check_pieces():
    """Byte mode: the output must be runs of the input in input order.  A
    drop shows as a jump; the run after it is found by its first 32 bytes
    (unique in random letters).  A run shorter than that is matched byte by
    byte, greedily; the producer writes pieces of at least 256 bytes in byte
    mode, so a legitimate short run is only the tail of a read cut at -b,
    and 256 loose bytes in a row mean bytes out of place.  Returns where
    the output ends in the input, or -1."""
    i = o = loose = start = 0
    last = (0, 0)  # the end of the last run of >= 32 bytes: near a fault
    while o < len(out):
        k = common(o, i)
        if k >= 32:
            loose, last = 0, (o + k, i + k)
        o, i = o + k, i + k
        if o >= len(out):
            break
        j = inp.find(out[o:o + 32], i)
        if j >= 0:
            i = j
            continue
        j = inp.find(out[o:o + 1], i)
        if not loose:
            start = o
        loose += 1
        if j < 0 or loose > 256:
            fail("pieces", "the output is not runs of the input in order: from output byte %d (%r...) on, %s; "
                 "the last good run ended at output byte %d = input byte %d (%s)"
                 % (start, out[start:start + 16],
                    "the input ran out" if j < 0 else "256 bytes match no run",
                    last[0], last[1], record_at(last[1])))
            return -1
        i, o = j + 1, o + 1
    return i

if policy == "block":
    if out != inp:
        d = first_diff(inp, out)
        fail("block", "output differs from the input at byte %d (%s; output %d bytes, input %d)"
             % (d, record_at(d), len(out), len(inp)))
    if bd or rd:
        fail("block", "bytes_dropped %d, records_dropped %d under block" % (bd, rd))
elif policy == "fail":
    if not inp.startswith(out):
        d = first_diff(inp, out)
        fail("fail", "output is not a prefix of the input: differs at byte %d (%s)" % (d, record_at(d)))
    if status == 0 and (out != inp or bd):
        fail("fail", "exit 0 but %d of %d bytes arrived, %d dropped" % (len(out), len(inp), bd))
    # A drain the consumer stopped taking for a second ends with the rest unsent (README,
    # fail): the record being written then may be cut, and only then.
    gave_up = int(ex.get("bytes_unsent", 0)) > 0
    if lines and out and not out.endswith(b"\n") and not gave_up:
        fail("fail", "-l: output ends inside a record: %s, %d of its %d bytes"
             % (record_at(len(out)), len(out) - out.rfind(b"\n") - 1,
                inp.find(b"\n", len(out)) - out.rfind(b"\n")))
else:
    if lines:
        got = check_lines()
        if status == 0 and rd != len(in_lines) - len(got):
            fail("records", "records_dropped %d but %d of %d records are missing"
                 % (rd, len(in_lines) - len(got), len(in_lines)))
        # The promise (README): the last record arrives when it fits in the queue (beside the
        # rest of a record the writer is in the middle of); a longer one the writer has not
        # started is dropped whole, or the producer would wait for it.
        fits = in_lines and len(in_lines[-1]) <= queue_bytes // 2
        if policy == "drop-oldest" and status == 0 and fits and (not got or got[-1] != in_lines[-1]):
            fail("newest", "-l drop-oldest: the last record (seq %d) did not arrive; last delivered: %r"
                 % (len(in_lines) - 1, got[-1][:13] if got else "nothing"))
    else:
        end = check_pieces()
        if rd:
            fail("records", "records_dropped %d without -l" % rd)
        if policy == "drop-oldest" and status == 0 and inp and 0 <= end < len(inp):
            fail("newest", "drop-oldest: the output stops at input byte %d (%s) of %d: the newest data was lost"
                 % (end, record_at(end), len(inp)))

# -- the producer and the reader must not wait: README, "drop: ... the
# producer never waits", except for the rest of a record longer than -b that
# the writer has started on (README, line mode): that may wait for the
# consumer, so rounds with such records are not checked here.
if policy != "block" and not (lines and long_max > chunk):
    why = ""
    waits = [w for w in prod["waits"] if w[0] >= 2.0]
    if policy == "fail" and rejected:
        # Once bpipe stops reading the producer blocks, legitimately, and
        # when that was is not known here: rely on reader_blocked_s.
        waits = []
    if waits:
        fail("producer-blocked", "the producer waited %.1f s in one write at %.1f s (%d writes >= 2 s)%s"
             % (max(waits)[0], max(waits)[1], len(waits), why))
    rb = float(ex.get("reader_blocked_s", 0))
    if rb >= 2.0:
        fail("reader-blocked", "reader_blocked_s %.2f under %s%s" % (rb, policy, why))

# -- fail must fail: after rejecting input, bpipe should not wait on a
# consumer that has stopped reading (if it never resumed, exit 3 would
# never come).  The rejection time is that of the first record with a
# drop: SIGUSR1 records come every 100 ms.
el = float(ex.get("elapsed_s", 0))
if policy == "fail" and rejected:
    rej = next((float(r["elapsed_s"]) for r in good if int(r.get("bytes_dropped", 0)) > 0), None)
    stops = [tuple(int(x) / 1000 for x in st.split("-")) for st in a["stops"].split(",") if st]
    if rej is not None:
        waited = max((min(e, el) - max(b, rej) for b, e in stops), default=0)
        if waited >= 3.0:
            fail("fail-hang", "input rejected at %.1f s but bpipe exited only at %.1f s, after waiting %.1f s on the "
                 "stopped consumer (it would wait for ever on a consumer that hangs)" % (rej, el, waited))

# -- signals and intervals
if counts["signal"] > sent:
    fail("sigusr1", "%d signal records for %d signals sent" % (counts["signal"], sent))
elif counts["signal"] < sent // 10:
    fail("sigusr1", "only %d signal records for %d signals sent" % (counts["signal"], sent))
if counts["interval"] < 0.8 * el - 2:
    fail("interval", "%d interval records in %.1f s with -i 1s" % (counts["interval"], el))

for check, msgs in fails.items():
    for m in msgs[:4]:
        print("FAIL %s %s" % (check, m))
for n in sorted(set(notes))[:3]:
    print("NOTE stderr: %s" % n)
print("RESULT in_size=%d out_size=%d bytes_in=%d bytes_out=%d dropped=%d unsent=%d records_dropped=%d "
      "signal=%d interval=%d elapsed=%.1f rejected=%d"
      % (len(inp), len(out), bi, bo, bd, bu, rd, counts["signal"], counts["interval"], el, rejected))
PY
}

# ---------------------------------------------------------------- one round

LIVE=()   # pids of the running round's processes, for the exit trap
kill_live() {
    local p
    for p in ${LIVE[@]+"${LIVE[@]}"}; do
        kill -CONT "$p" 2>/dev/null || true
        kill -KILL "$p" 2>/dev/null || true
    done
    LIVE=()
}
soak_cleanup() {
    local rc=$?
    kill_live
    (exit "$rc")
    cleanup
}
trap soak_cleanup EXIT

# wait_caught PID COMM MASK: until PID runs COMM and catches the signals in
# MASK (SigCgt), so that no signal of ours meets a default action.  Status 1
# if it ends first or takes over 10 s.
wait_caught() {
    local pid=$1 comm=$2 mask=$3 tries=0 c k v
    while (( tries++ < 1000 )); do
        [[ -r /proc/$pid/comm ]] || return 1
        read -r c <"/proc/$pid/comm" || return 1
        if [[ $c == "$comm" ]]; then
            while read -r k v; do
                if [[ $k == SigCgt: ]] && (( (16#$v & mask) == mask )); then return 0; fi
            done <"/proc/$pid/status"
        fi
        read -rt 0.01 -u "$TICK_FD" || true
    done
    return 1
}

# plan_round SEED SECONDS: everything else about a round, from its seed
plan_round() {
    local seed=$1 secs=$2 t=0 kind dur
    RANDOM=$seed
    TOTAL=$(((8 + RANDOM % (SOAK_MAX_MIB - 7)) * 1048576))
    RATE=$((TOTAL * 10 / (secs * 8)))
    SLOW=$(((64 + RANDOM % 449) * 1024))
    local longs=(0 3 30)
    LONG_PM=${longs[RANDOM % 3]}
    # Half the rounds with long records end with one: the end of the input
    # is where drop-oldest must keep the newest record.
    LONG_LAST=$(((LONG_PM > 0) * (RANDOM % 2)))
    PH_KIND=() PH_END=()
    kind=$((RANDOM % 3))
    while (( t < secs * 1000 )); do
        case $kind in
            0) dur=$((1000 + RANDOM % 4001)) ;;   # fast
            1) dur=$((2000 + RANDOM % 6001)) ;;   # slow
            2) dur=$((2000 + RANDOM % 4001)) ;;   # stopped
        esac
        t=$((t + dur))
        PH_KIND+=("$kind") PH_END+=("$t")
        kind=$(((kind + 1) % 3))
    done
}

# set_phase KIND: 0 fast, 1 slow, 2 stopped
set_phase() {
    case $1 in
        0) kill -USR2 "$CPID"; kill -CONT "$CPID" ;;
        1) kill -USR1 "$CPID"; kill -CONT "$CPID" ;;
        2) kill -STOP "$CPID" ;;
    esac 2>/dev/null || true
}

# sample_rss: VmRSS/VmHWM of bpipe into PEAK_RSS/PEAK_HWM (KiB)
sample_rss() {
    local k v _
    [[ -r /proc/$BPID/status ]] || return 0
    while read -r k v _; do
        case $k in
            VmRSS:) (( v > PEAK_RSS )) && PEAK_RSS=$v ;;
            VmHWM:) (( v > PEAK_HWM )) && PEAK_HWM=$v ;;
        esac
    done <"/proc/$BPID/status" 2>/dev/null || true
}

# drive SECONDS: the tick loop while bpipe runs: SIGUSR1 every 100 ms, RSS
# every second, the consumer's phases; kills a pipeline that hangs.
drive() {
    local secs=$1 t0 next_rss ph=-1 want i stopped_ms=0 last stop_at=-1
    now_ms; t0=$NOW; next_rss=$NOW; last=$NOW
    SENT=0 PEAK_RSS=0 PEAK_HWM=0 HUNG=0 STOPS=""
    while kill -0 "$BPID" 2>/dev/null; do
        now_ms
        kill -USR1 "$BPID" 2>/dev/null && SENT=$((SENT + 1))
        if (( NOW >= next_rss )); then
            sample_rss
            next_rss=$((next_rss + 1000))
        fi
        want=0
        for i in "${!PH_END[@]}"; do
            if (( NOW - t0 < PH_END[i] )); then want=$i; break; fi
            want=-2   # past the last phase: fast until the end
        done
        if (( want != ph )); then
            ph=$want
            if (( ph >= 0 )); then set_phase "${PH_KIND[ph]}"; else set_phase 0; fi
            if (( stop_at >= 0 )); then STOPS+="$stop_at-$((NOW - t0)),"; stop_at=-1; fi
            if (( ph >= 0 )) && (( PH_KIND[ph] == 2 )); then stop_at=$((NOW - t0)); fi
        fi
        if (( ph >= 0 )) && (( PH_KIND[ph] == 2 )); then stopped_ms=$((stopped_ms + NOW - last)); fi
        last=$NOW
        if (( NOW - t0 > (secs + HANG_GRACE_S) * 1000 )); then
            HUNG=1
            kill -USR1 "$BPID" 2>/dev/null || true   # one last snapshot for the report
            read -rt 0.2 -u "$TICK_FD" || true
            kill -TERM "$BPID" 2>/dev/null || true
            break
        fi
        read -rt 0.1 -u "$TICK_FD" || true
    done
    set_phase 0
    now_ms
    if (( stop_at >= 0 )); then STOPS+="$stop_at-$((NOW - t0)),"; fi
    STOPPED_S=$((stopped_ms / 1000))
    WALL_S=$(((NOW - t0) / 1000))
}

# wait_pid PID SECONDS -> its status in WAITED; KILLs it after SECONDS
wait_pid() {
    local pid=$1 secs=$2 n=0
    while kill -0 "$pid" 2>/dev/null && (( n++ < secs * 10 )); do
        read -rt 0.1 -u "$TICK_FD" || true
    done
    kill -KILL "$pid" 2>/dev/null || true
    WAITED=0
    wait "$pid" || WAITED=$?
}

# start_pipeline DIR LINES: producer | bpipe FLAGS | consumer over fifos,
# once their signal handlers are in place; sets CPID, BPID, PRODPID, READY
start_pipeline() {
    local rd=$1 lines=$2
    mkfifo "$rd/p2b" "$rd/b2c"
    "$PYTHON" "$WORK/consumer.py" "$rd/out" "$rd/cstats" "$SLOW" <"$rd/b2c" &
    CPID=$!
    "$BPIPE" "${FLAGS[@]}" <"$rd/p2b" >"$rd/b2c" 2>"$rd/err" &
    BPID=$!
    # 1-byte writes in line mode, where the check is exact whatever the
    # chunks; in byte mode 256 bytes at least (see check_pieces)
    "$PYTHON" "$WORK/producer.py" "$rd/in" "$RATE" "$SEED" $((lines ? 1 : 256)) "$rd/pstats" >"$rd/p2b" &
    PRODPID=$!
    LIVE=("$PRODPID" "$BPID" "$CPID")
    # Not ready = still running without its handlers after 10 s (a bpipe
    # that has already finished, e.g. rejected under fail, is fine).
    READY=1
    wait_caught "$CPID" "$PYTHON_COMM" $((0x200 | 0x800)) || ! kill -0 "$CPID" 2>/dev/null || READY=0
    wait_caught "$BPID" bpipe $((0x200)) || ! kill -0 "$BPID" 2>/dev/null || READY=0
}

# check_round DIR POLICY CHUNK CHUNKS LINES: runs check.py and the RSS
# bound; sets R (the RESULT fields), R_FAILS, R_NOTES, R_BOUND_KIB
check_round() {
    local rd=$1 policy=$2 chunk=$3 chunks=$4 lines=$5 line kv result=""
    local long_max
    long_max=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 1 }' "$rd/in")
    R_FAILS=() R_NOTES=()
    (( READY )) || R_FAILS+=("start: bpipe or the consumer never got ready (signal handlers) within 10 s")
    (( HUNG )) && R_FAILS+=("hang: still running ${HANG_GRACE_S} s after the round's end; sent SIGTERM")
    while IFS= read -r line; do
        case $line in
            FAIL\ *) R_FAILS+=("${line#FAIL }") ;;
            NOTE\ *) R_NOTES+=("${line#NOTE }") ;;
            RESULT\ *) result=${line#RESULT } ;;
            *) R_FAILS+=("checker: $line") ;;   # a traceback: the script's own bug
        esac
    done < <("$PYTHON" "$WORK/check.py" policy="$policy" lines="$lines" status="$R_STATUS" \
        chunk="$(size_bytes "$chunk")" chunks="$chunks" long_max="$long_max" sent="$SENT" stops="$STOPS" \
        input="$rd/in" output="$rd/out" stderr="$rd/err" pstats="$rd/pstats" cstats="$rd/cstats" 2>&1)
    declare -gA R=()
    for kv in $result; do R[${kv%%=*}]=${kv#*=}; done
    R_BOUND_KIB=$((((chunks + 3) * $(size_bytes "$chunk") + 8 * 1048576) / 1024))
    if (( PEAK_HWM > R_BOUND_KIB )); then
        R_FAILS+=("rss: peak VmHWM ${PEAK_HWM} KiB > bound (n+3)*b + 8 MiB = ${R_BOUND_KIB} KiB")
    fi
}

# run_round IDX SEED POLICY CHUNK CHUNKS LINES SECONDS: one round, checked
run_round() {
    local idx=$1 policy=$3 chunk=$4 chunks=$5 lines=$6 secs=$7
    local rd=$WORK/round
    SEED=$2
    rm -rf "$rd"; mkdir -p "$rd"
    plan_round "$SEED" "$secs"
    "$PYTHON" "$WORK/gen.py" "$SEED" "$TOTAL" "$LONG_PM" "$LONG_LAST" >"$rd/in"
    FLAGS=(--on-full "$policy" -b "$chunk" -n "$chunks")
    if (( lines )); then FLAGS+=(-l); fi
    FLAGS+=(-i 1s --stats-format json)

    start_pipeline "$rd" "$lines"
    drive "$secs"
    wait_pid "$BPID" 10; R_STATUS=$WAITED
    wait_pid "$PRODPID" 10
    wait_pid "$CPID" 30
    LIVE=()
    check_round "$rd" "$policy" "$chunk" "$chunks" "$lines"

    if (( ${#R_FAILS[@]} )) && [[ -n ${FAIL_DIR:-} ]]; then
        mkdir -p "$FAIL_DIR"
        cp "$rd/err" "$FAIL_DIR/round-$idx-$policy.stderr"
        if [[ -f $rd/pstats ]]; then cp "$rd/pstats" "$FAIL_DIR/round-$idx-$policy.producer.json"; fi
        if [[ ${SOAK_KEEP_DATA:-0} == 1 ]]; then
            cp "$rd/in" "$FAIL_DIR/round-$idx-$policy.in"
            cp "$rd/out" "$FAIL_DIR/round-$idx-$policy.out"
        fi
    fi
}

# ---------------------------------------------------------------- the soak

# A fifo no one writes to: `read -t` on it is a sleep without a fork.
mkfifo "$WORK/tick"
exec {TICK_FD}<>"$WORK/tick"

REPLAY=()
if [[ ${1:-} == --replay ]]; then
    (( $# == 7 )) || die "usage: bash bench/soak.sh --replay SEED POLICY CHUNK CHUNKS LINES SECONDS"
    REPLAY=("${@:2}")
    DURATION_S=${REPLAY[5]}
else
    DURATION_S=$(parse_duration "${1:-10m}") || die "DURATION must look like 30s, 10m, 1h or 1h30m, got '${1:-}'"
    (( DURATION_S >= 5 )) || die "DURATION must be at least 5s"
fi
have python3 || die "python3 not found"
# The interpreter itself, not a wrapper (pyenv shims are scripts): the
# consumer's pid must be the process that reads, for SIGSTOP and SigCgt.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
PYTHON_COMM=$(basename "$PYTHON" | cut -c1-15)

build_bpipe
[[ -n ${BPIPE:-} ]] || die "no bpipe binary (see the note above)"
write_helpers

MASTER=${SOAK_SEED:-$(( $(date +%s) % 1000000 ))}
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
REPORT=$RESULTS_DIR/soak-$STAMP.md
FAIL_DIR=$RESULTS_DIR/soak-$STAMP

# The (-b, -n) pool: few enough settings that each recurs in a long soak.
RANDOM=$MASTER
POOL=()
for _ in 1 2 3 4 5 6 7 8; do
    POOL+=("${CHUNK_SIZES[RANDOM % ${#CHUNK_SIZES[@]}]} $((1 + RANDOM % 64))")
done

declare -A P_ROUNDS=() P_FAILED=() P_LINES=() P_IN=() P_OUT=() P_DROP=() P_SENT=() P_SIG=() P_INT=() \
    P_REJ=() P_RSS=() P_PCT=()
declare -A S_ROUNDS=() S_EARLY=() S_LATE=() S_BOUND=()
FAILURES=() NOTE_LINES=()
for p in "${POLICIES[@]}"; do
    P_ROUNDS[$p]=0 P_FAILED[$p]=0 P_LINES[$p]=0 P_IN[$p]=0 P_OUT[$p]=0 P_DROP[$p]=0
    P_SENT[$p]=0 P_SIG[$p]=0 P_INT[$p]=0 P_REJ[$p]=0 P_RSS[$p]=0 P_PCT[$p]=0
done

log "soak: ${DURATION_S}s, rounds of ${ROUND_MIN}-${ROUND_MAX}s, master seed $MASTER (SOAK_SEED=$MASTER to repeat the plan)"
log "bpipe: $BPIPE_INFO"

now_ms; SOAK_T0=$NOW
idx=0
while :; do
    now_ms
    t_round=$(((NOW - SOAK_T0) / 1000))
    if (( ${#REPLAY[@]} )); then
        (( idx == 0 )) || break
        read -r seed policy chunk chunks lines secs <<<"${REPLAY[*]}"
        [[ " ${POLICIES[*]} " == *" $policy "* ]] || die "POLICY must be one of: ${POLICIES[*]}"
    else
        left=$((DURATION_S - t_round))
        (( left >= 10 || (idx == 0 && left >= 5) )) || break
        seed=$(((MASTER * 7919 + idx * 104729) % 2147483647))
        RANDOM=$seed
        secs=$((ROUND_MIN + RANDOM % (ROUND_MAX - ROUND_MIN + 1)))
        (( secs > left )) && secs=$left
        np=${#RUN_POLICIES[@]}
        policy=${RUN_POLICIES[idx % np]}
        lines=$(((idx / np + idx % np) % 2))
        read -r chunk chunks <<<"${POOL[RANDOM % ${#POOL[@]}]}"
    fi
    run_round "$idx" "$seed" "$policy" "$chunk" "$chunks" "$lines" "$secs"

    flags="--on-full $policy -b $chunk -n $chunks"
    if (( lines )); then flags+=" -l"; fi
    P_ROUNDS[$policy]=$((P_ROUNDS[$policy] + 1))
    (( lines )) && P_LINES[$policy]=$((P_LINES[$policy] + 1))
    P_IN[$policy]=$((P_IN[$policy] + ${R[bytes_in]:-0}))
    P_OUT[$policy]=$((P_OUT[$policy] + ${R[bytes_out]:-0}))
    P_DROP[$policy]=$((P_DROP[$policy] + ${R[dropped]:-0}))
    P_SENT[$policy]=$((P_SENT[$policy] + SENT))
    P_SIG[$policy]=$((P_SIG[$policy] + ${R[signal]:-0}))
    P_INT[$policy]=$((P_INT[$policy] + ${R[interval]:-0}))
    P_REJ[$policy]=$((P_REJ[$policy] + ${R[rejected]:-0}))
    (( PEAK_HWM > P_RSS[$policy] )) && P_RSS[$policy]=$PEAK_HWM
    pct=$((PEAK_HWM * 100 / R_BOUND_KIB))
    (( pct > P_PCT[$policy] )) && P_PCT[$policy]=$pct
    key="-b $chunk -n $chunks"
    if (( lines )); then key+=" -l"; fi   # line mode keeps chunks in memory: compare like with like
    S_ROUNDS[$key]=$((${S_ROUNDS[$key]:-0} + 1))
    S_BOUND[$key]=$R_BOUND_KIB
    if (( t_round < 60 )); then
        (( PEAK_HWM > ${S_EARLY[$key]:-0} )) && S_EARLY[$key]=$PEAK_HWM
    else
        (( PEAK_HWM > ${S_LATE[$key]:-0} )) && S_LATE[$key]=$PEAK_HWM
    fi

    verdict=ok
    if (( ${#R_FAILS[@]} )); then
        P_FAILED[$policy]=$((P_FAILED[$policy] + 1))
        checks=()
        for f in "${R_FAILS[@]}"; do
            checks+=("${f%%[ :]*}")
            FAILURES+=("$idx|$policy|$seed|$flags|$f|bash bench/soak.sh --replay $seed $policy $chunk $chunks $lines $secs")
        done
        verdict="FAILED ($(printf '%s\n' "${checks[@]}" | sort -u | paste -sd, -))"
    fi
    for f in ${R_NOTES[@]+"${R_NOTES[@]}"}; do NOTE_LINES+=("round $idx ($flags): $f"); done
    long="long $((LONG_PM / 10)).$((LONG_PM % 10))%"
    if (( LONG_LAST )); then long+=" +end"; fi
    log "$(printf '[%3d] %4ss %-42s seed %-10s %-14s %3ss (stopped %2ss) in %6s MiB out %6s MiB dropped %6s MiB exit %3s usr1 %4s/%-4s rss %5s/%s MiB: %s' \
        "$idx" "$t_round" "$flags" "$seed" "$long" "$WALL_S" "$STOPPED_S" "$(mib "${R[bytes_in]:-0}")" "$(mib "${R[bytes_out]:-0}")" \
        "$(mib "${R[dropped]:-0}")" "$R_STATUS" "${R[signal]:-0}" "$SENT" "$(mib $((PEAK_HWM * 1024)))" \
        "$(mib $((R_BOUND_KIB * 1024)))" "$verdict")"
    for f in ${R_FAILS[@]+"${R_FAILS[@]}"}; do log "      FAIL $f"; done
    idx=$((idx + 1))
done

# ---------------------------------------------------------------- report

now_ms
{
    echo "# bpipe soak: $(( (NOW - SOAK_T0) / 1000 ))s, $idx rounds ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r))"
    echo
    echo "bpipe: $BPIPE_INFO; master seed $MASTER"
    echo
    echo "| policy | rounds | -l rounds | failed | bytes in | bytes out | dropped | exit 3 | SIGUSR1 sent | signal records | interval records | max RSS | max RSS / bound |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    T_ROUNDS=0 T_FAILED=0 T_OUT=0 T_SIG=0
    for p in "${POLICIES[@]}"; do
        printf '| %s | %d | %d | %d | %s MiB | %s MiB | %s MiB | %d | %d | %d | %d | %s MiB | %d%% |\n' \
            "$p" "${P_ROUNDS[$p]}" "${P_LINES[$p]}" "${P_FAILED[$p]}" "$(mib "${P_IN[$p]}")" "$(mib "${P_OUT[$p]}")" \
            "$(mib "${P_DROP[$p]}")" "${P_REJ[$p]}" "${P_SENT[$p]}" "${P_SIG[$p]}" "${P_INT[$p]}" \
            "$(mib $((P_RSS[$p] * 1024)))" "${P_PCT[$p]}"
        T_ROUNDS=$((T_ROUNDS + P_ROUNDS[$p])) T_FAILED=$((T_FAILED + P_FAILED[$p]))
        T_OUT=$((T_OUT + P_OUT[$p])) T_SIG=$((T_SIG + P_SIG[$p]))
    done
    echo
    echo "Totals: $T_ROUNDS rounds, $T_FAILED failed, $(mib "$T_OUT") MiB delivered, $T_SIG SIGUSR1 records."
    echo
    echo "Peak RSS (VmHWM) per setting, rounds that started in the first minute and later; bound (n+3)*b + 8 MiB:"
    echo
    echo "| setting | rounds | first minute | later | bound | later ≤ bound |"
    echo "| --- | ---: | ---: | ---: | ---: | --- |"
    while IFS= read -r key; do
        [[ -n $key ]] || continue
        early=${S_EARLY[$key]:-} late=${S_LATE[$key]:-}
        okl="-"
        if [[ -n $late ]]; then
            if (( late <= S_BOUND[$key] )); then okl=yes; else okl="**NO**"; fi
        fi
        printf '| %s | %d | %s | %s | %s MiB | %s |\n' "$key" "${S_ROUNDS[$key]}" \
            "${early:+$(mib $((early * 1024))) MiB}" "${late:+$(mib $((late * 1024))) MiB}" \
            "$(mib $((S_BOUND[$key] * 1024)))" "$okl"
    done < <(printf '%s\n' "${!S_ROUNDS[@]}" | sort -t' ' -k2,2h -k4,4n -k5,5)
    echo
    if (( ${#FAILURES[@]} )); then
        echo "Failures (stderr of each failing round kept in $FAIL_DIR):"
        echo
        echo "| round | policy | seed | flags | check: what was wrong |"
        echo "| ---: | --- | ---: | --- | --- |"
        for f in "${FAILURES[@]}"; do
            IFS='|' read -r fi_ fp fs ff fw _ <<<"$f"
            printf '| %s | %s | %s | `%s` | %s |\n' "$fi_" "$fp" "$fs" "$ff" "${fw//|/\\|}"
        done
        echo
        echo "Replay a failing round:"
        echo
        printf '%s\n' "${FAILURES[@]}" | awk -F'|' '{ print "    " $NF }' | sort -u
    else
        echo "No failures."
    fi
    if (( ${#NOTE_LINES[@]} )); then
        echo
        echo "Notes:"
        echo
        printf -- '- %s\n' "${NOTE_LINES[@]}" | head -n 40
    fi
} | tee "$REPORT"
log "report saved: $REPORT"
(( ${#FAILURES[@]} == 0 )) || exit 1
