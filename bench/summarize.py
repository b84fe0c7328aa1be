#!/usr/bin/env python3
"""Turn the raw TSV written by compare.sh / rate.sh / fanout.sh / net.sh into Markdown tables.

usage:
  summarize.py compare RESULTS.tsv
  summarize.py rate RESULTS.tsv
  summarize.py idle RESULTS.tsv
  summarize.py change RESULTS.tsv
  summarize.py fanout RESULTS.tsv
  summarize.py net RESULTS.tsv

Only the Python standard library is used.
"""
import csv
import statistics
import sys

GIB = 1 << 30
MIB = 1 << 20

DEFAULT = "bpipe -q"
BIG_CHUNK = "bpipe -q -b 1MiB"
NO_SPLICE = "bpipe -q --no-splice"
LINE = "bpipe -q -l"
FILE_BPIPE = "bpipe -q big -o copy"
MBUF = "mbuffer -q -m 64M"

WORKLOAD_TITLES = {
    "w1": "w1: producer write | RELAY | consumer read",
    "w3": "w3: producer vmsplice | RELAY | consumer splice",
    "file": "file: file-to-file copy (page cache warm)",
}

# Targets: (workload, numerator relay, denominator relay, kind, threshold)
#   kind "speed": median GiB/s ratio num/den must be >= threshold
#   kind "cpu":   median relay CPU s ratio num/den must be <= threshold
#   kind "cpu/GiB": relay CPU s per GiB ratio num/den must be <= threshold
TARGETS = [
    ("w3", DEFAULT, "pv -q", "speed", 2.0),
    ("w3", DEFAULT, MBUF, "speed", 2.5),
    ("w3", BIG_CHUNK, "pv -q", "speed", 6.0),
    ("w1", DEFAULT, "pv -q", "speed", 1.3),
    ("w1", DEFAULT, MBUF, "speed", 1.5),
    ("w1", NO_SPLICE, MBUF, "speed", 1.1),
    ("w1", NO_SPLICE, "pv -q -C", "speed", 1.4),
    ("w1", NO_SPLICE, "cat", "speed", 1.3),
    ("w1", NO_SPLICE, MBUF, "cpu", 0.85),
    ("w1", LINE, NO_SPLICE, "speed", 0.85),
    ("w1", LINE, "pv -q -l", "speed", 1.2),
    ("w3", DEFAULT, "pv -q", "cpu/GiB", 0.5),
    ("w1", DEFAULT, "pv -q", "cpu/GiB", 0.5),
]


def fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def table(headers, rows, align=None):
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    out = ["| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def compare(path):
    rows = load(path)
    order = []  # workloads, relays in first-seen order
    stats = {}  # (wl, relay) -> dict
    for r in rows:
        key = (r["workload"], r["relay"])
        if r["workload"] not in order:
            order.append(r["workload"])
        s = stats.setdefault(key, {"gbps": [], "cpu": [], "rss": [], "bytes": 0, "failed": None})
        if r["status"] != "ok":
            s["failed"] = r["status"]
            continue
        b = int(r["bytes"])
        s["bytes"] = b
        s["gbps"].append(b / float(r["wall_s"]) / GIB)
        if r["user_s"] != "-":  # "-": the (direct) row has no relay
            s["cpu"].append(float(r["user_s"]) + float(r["sys_s"]))
            s["rss"].append(int(r["maxrss_kib"]))

    def med(wl, relay, what="gbps"):
        s = stats.get((wl, relay))
        if not s or s["failed"] or not s[what]:
            return None
        return statistics.median(s[what])

    def cpu_per_gib(wl, relay):
        c = med(wl, relay, "cpu")
        s = stats.get((wl, relay))
        return None if c is None else c / (s["bytes"] / GIB)

    known = ["(direct)", "cat", "pv -q", "pv -q -C", MBUF, DEFAULT, BIG_CHUNK, NO_SPLICE, LINE, "pv -q -l",
             FILE_BPIPE, "pv -q big > copy", "mbuffer -q -i big -o copy",
             "dd if=big of=copy bs=1M status=none", "cp big copy"]

    def rank(relay):
        return known.index(relay) if relay in known else len(known)

    out = []
    for wl in order:
        relays = sorted((k[1] for k in stats if k[0] == wl), key=rank)  # stable
        if wl == "file":
            refs = [("bpipe ÷ this", FILE_BPIPE)]
        else:
            refs = [("default ÷ this", DEFAULT), ("-b 1MiB ÷ this", BIG_CHUNK),
                    ("--no-splice ÷ this", NO_SPLICE)]
            if wl == "w1":
                refs.append(("-l ÷ this", LINE))
        headers = ["relay", "runs", "median GiB/s", "min–max GiB/s", "median relay CPU s",
                   "CPU s/GiB", "peak RSS MiB"] + [h for h, _ in refs]
        body = []
        for relay in relays:
            s = stats[(wl, relay)]
            if s["failed"]:
                body.append([f"`{relay}`", len(s["gbps"]), f"**{s['failed']}**"] +
                            [""] * (len(headers) - 3))
                continue
            m = med(wl, relay)
            line = [f"`{relay}`", len(s["gbps"]), fmt(m),
                    f"{min(s['gbps']):.2f}–{max(s['gbps']):.2f}",
                    fmt(med(wl, relay, "cpu")), fmt(cpu_per_gib(wl, relay), 3),
                    fmt(max(s["rss"]) / 1024 if s["rss"] else None, 1)]
            for _, ref in refs:
                x = ratio(med(wl, ref), m)
                line.append("–" if x is None else f"{x:.2f}×")
            body.append(line)
        out.append(f"## {WORKLOAD_TITLES.get(wl, wl)}\n")
        out.append(table(headers, body))
        out.append("")

    # targets
    body = []
    for wl, num, den, kind, thr in TARGETS:
        if wl not in order:
            continue
        if kind == "speed":
            x = ratio(med(wl, num), med(wl, den))
            what, req, ok = "GiB/s", f"≥ {thr}×", (x is not None and x >= thr)
        elif kind == "cpu":
            x = ratio(med(wl, num, "cpu"), med(wl, den, "cpu"))
            what, req, ok = "relay CPU s", f"≤ {thr}×", (x is not None and x <= thr)
        else:
            x = ratio(cpu_per_gib(wl, num), cpu_per_gib(wl, den))
            what, req, ok = "relay CPU s/GiB", f"≤ {thr}×", (x is not None and x <= thr)
        res = "n/a" if x is None else ("PASS" if ok else "**FAIL**")
        body.append([wl, f"`{num}` ÷ `{den}`", what, "–" if x is None else f"{x:.2f}×", req, res])
    if body:
        out.append("## Targets (ratios of medians)\n")
        out.append(table(["workload", "ratio", "of", "measured", "target", "result"], body,
                         ["l", "l", "l", "r", "r", "l"]))
        out.append("")
    print("\n".join(out))


def rate(path):
    rows = load(path)
    body = []
    for r in rows:
        target = float(r["target_Bps"])
        if r["status"] != "ok":
            body.append([f"`{r['relay']}`", fmt(target / MIB, 0), f"**{r['status']}**"] + [""] * 8)
            continue
        nbytes = int(r["bytes"])
        wall = nbytes / float(r["wall_s"])
        avg = float(r["avg_Bps"])
        steady = float(r["steady_Bps"])
        win = int(r["maxwin_B"])
        bound = int(float(r["bound_B"]))
        if float(r["span_s"]) <= 1.0:
            # all data arrived within one second: no steady part, no window
            # all data arrived within one second: no steady part; the window
            # is then taken over the whole run
            steady_s = steady_e = "n/a (span ≤ 1 s)"
            win = int(r["maxwin_all_B"])
            win_s = f"{win:,} (whole run)"
            ok = "yes" if win <= bound else "**NO**"
        else:
            steady_s = fmt(steady / MIB, 3)
            steady_e = f"{(steady - target) / target * 100:+.1f}%"
            win_s = f"{win:,}"
            ok = "yes" if win <= bound else "**NO**"
        body.append([f"`{r['relay']}`", fmt(target / MIB, 0), fmt(avg / MIB, 3),
                     f"{(avg - target) / target * 100:+.1f}%", steady_s, steady_e,
                     fmt(wall / MIB, 3), win_s, f"{bound:,}", ok])
    print(table(["relay", "target MiB/s", "avg MiB/s (first→last byte)", "error",
                 "steady MiB/s (after 1 s)", "steady error", "bytes ÷ wall MiB/s",
                 "worst 250 ms window B", "bound rate×0.25+burst B", "within bound"], body))


def idle(path):
    rows = load(path)
    body = []
    for r in rows:
        if r["status"] != "ok":
            body.append([f"`{r['relay']}`", f"**{r['status']}**"] + [""] * 7)
            continue
        rate_ = float(r["target_Bps"])
        post = int(r["post_B"])
        win = int(r["post_maxwin_B"])
        bound = int(float(r["bound_B"]))
        body.append([f"`{r['relay']}`", fmt(float(r["idle_seen_s"]), 2), f"{post:,}",
                     fmt(float(r["post_first_s"]), 3), fmt(float(r["post_last_s"]), 2),
                     fmt(post / rate_, 2), f"{win:,}", f"{bound:,}",
                     "yes" if win <= bound else "**NO**"])
    print(table(["relay", "idle seen by consumer s", "post-idle bytes",
                 "first post-idle byte after s", "all post-idle data after s",
                 "at exact rate s", "max 250 ms window after idle B",
                 "bound rate×0.25+burst B", "within bound"], body))


CHANGE_TARGET_S = 0.1


def ms(x):
    return "never" if x == float("inf") else f"{x * 1000:.0f}"


def change(path):
    """rate.sh scenario 3: one row per relay and direction, then the targets."""
    rows = load(path)
    failed = [r for r in rows if r["status"] != "ok"]
    groups = {}  # (relay, dir) -> rows, in first-seen order
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault((r["relay"], r["dir"]), []).append(r)
    body, verdicts = [], []
    for (relay, d), rs in groups.items():
        def col(key):
            return sorted(float(r[key]) for r in rs)
        # hold_s -1 means the new rate never held: it sorts last
        holds = sorted(float("inf") if float(r["hold_s"]) < 0 else float(r["hold_s"]) for r in rs)
        switch, settled, first = col("switch_s"), col("settled_Bps"), col("first100_B")
        bound = float(rs[0]["bound_B"])
        reached = sum(int(r["reached"]) for r in rs)
        calm = sum(float(r["first100_B"]) <= bound for r in rs)
        frm, to = float(rs[0]["from_Bps"]) / MIB, float(rs[0]["to_Bps"]) / MIB
        hold_med = statistics.median(holds)
        body.append([f"`{relay}`", f"{frm:.0f} → {to:.0f}", len(rs),
                     fmt(statistics.median(col("client_s")) * 1000, 1),
                     ms(hold_med), ms(holds[-1]), ms(float(rs[0]["window_s"])),
                     f"{ms(statistics.median(switch))} ({ms(switch[0])}–{ms(switch[-1])})",
                     f"{fmt(statistics.median(settled) / MIB, 3)} ({fmt(settled[0] / MIB, 3)}–{fmt(settled[-1] / MIB, 3)})",
                     f"{reached}/{len(rs)}", f"{first[-1] / 1024:,.0f}", f"{bound / 1024:,.0f}",
                     f"{calm}/{len(rs)}"])
        if relay.startswith("bpipe"):
            verdicts.append([f"`{relay}` {frm:.0f} → {to:.0f} MiB/s: median hold ≤ {ms(CHANGE_TARGET_S)} ms",
                             f"{ms(hold_med)} ms", "PASS" if hold_med <= CHANGE_TARGET_S else "**FAIL**"])
            verdicts.append([f"`{relay}` {frm:.0f} → {to:.0f} MiB/s: settled within ±10 %, every run",
                             f"{reached}/{len(rs)}", "PASS" if reached == len(rs) else "**FAIL**"])
            verdicts.append([f"`{relay}` {frm:.0f} → {to:.0f} MiB/s: no burst (first 100 ms ≤ bound), every run",
                             f"{calm}/{len(rs)}", "PASS" if calm == len(rs) else "**FAIL**"])
    for r in failed:
        body.append([f"`{r['relay']}`", f"round {r['round']}", f"**{r['status']}**"] + [""] * 10)
        if r["relay"].startswith("bpipe"):
            verdicts.append([f"`{r['relay']}` round {r['round']} ran", "failed", "**FAIL**"])
    print(table(["relay", "change MiB/s", "runs", "client ms (median)", "holds after ms (median)",
                 "holds after ms (max)", "window W ms", "switch ms (median, min–max)",
                 "settled MiB/s (median, min–max)", "settled within ±10 %",
                 "first 100 ms KiB (max)", "bound KiB", "runs without burst"], body))
    if verdicts:
        print()
        print("Targets (bpipe only; peers are measured, not judged):")
        print()
        print(table(["target", "measured", "result"], verdicts, ["l", "r", "l"]))


# fanout.sh: relay labels as bench/fanout.sh's label() prints them
FAN_ONE = "bpipe -q | c"
FAN_B3 = "bpipe -q -o >(c) -o >(c) -o - | c"
FAN_TEE3 = "tee >(c) >(c) | c"
FAN_MBUF3 = "mbuffer -q -m 64M -o >(c) -o >(c) -o - | c"
FAN_B2 = "bpipe -q -o >(c) -o - | c"
FAN_ALL_FAST = "bpipe -q -o >(c) -o >(c),slow=drop -o - | c"
FAN_ONE_SLOW = "bpipe -q -o >(c) -o >(s),slow=drop -o - | c"

FAN_TITLES = {
    "w3x3": "w3x3: producer vmsplice | RELAY, three outputs, c = consumer splice",
    "w1x2": "w1x2: producer write | RELAY, two outputs, c = consumer read",
    "slow": "slow: producer vmsplice | bpipe, three outputs, the middle one slow=drop",
}
FAN_ORDER = [FAN_ONE, FAN_B3, FAN_B2, FAN_TEE3, "tee >(c) | c", FAN_MBUF3,
             "mbuffer -q -m 64M -o >(c) -o - | c", FAN_ALL_FAST, FAN_ONE_SLOW]
FAN_FANOUT = {"w3x3": FAN_B3, "w1x2": FAN_B2}

# (row, numerator, denominator, kind, threshold); kinds as in TARGETS, plus
# "fast": median throughput of the fast outputs, num/den >= threshold;
# "cpu/GiB out": CPU per GiB delivered (read × outputs), the fan-out target: each output costs
# its own write, so per GiB read N outputs cannot cost less than about N times one; a threshold
# of None is shown for information, not judged.
FAN_TARGETS = [
    ("w3x3", FAN_B3, FAN_MBUF3, "speed", 5.0),
    ("w3x3", FAN_B3, FAN_TEE3, "speed", 8.0),
    ("w3x3", FAN_B3, FAN_ONE, "cpu/GiB out", 1.5),
    ("w1x2", FAN_B2, FAN_ONE, "cpu/GiB out", 1.5),
    ("w3x3", FAN_B3, FAN_ONE, "cpu/GiB", None),
    ("w1x2", FAN_B2, FAN_ONE, "cpu/GiB", None),
    ("slow", FAN_ONE_SLOW, FAN_ALL_FAST, "fast", 0.9),
]


def code(s):
    """A code span in a table cell: GFM splits cells at a bare | even there."""
    return "`" + s.replace("|", "\\|") + "`"


def fanout(path):
    rows = load(path)
    order, stats = [], {}
    for r in rows:
        key = (r["row"], r["relay"])
        if r["row"] not in order:
            order.append(r["row"])
        s = stats.setdefault(key, {"gbps": [], "fast": [], "cpu": [], "rss": [], "kept": [],
                                   "outputs": r["outputs"], "bytes": 0, "failed": None})
        if r["status"] != "ok":
            s["failed"] = r["status"]
            continue
        b = int(r["bytes"])
        s["bytes"] = b
        s["gbps"].append(b / float(r["wall_s"]) / GIB)
        s["fast"].append(b / float(r["fast_wall_s"]) / GIB)
        s["cpu"].append(float(r["user_s"]) + float(r["sys_s"]))
        s["rss"].append(int(r["maxrss_kib"]))
        if r["drop_out_bytes"] != "-":
            s["kept"].append(int(r["drop_out_bytes"]))

    def med(row, relay, what="gbps"):
        s = stats.get((row, relay))
        if not s or s["failed"] or not s[what]:
            return None
        return statistics.median(s[what])

    def cpu_per_gib(row, relay):
        c = med(row, relay, "cpu")
        return None if c is None else c / (stats[(row, relay)]["bytes"] / GIB)

    def cpu_per_gib_out(row, relay):
        c = cpu_per_gib(row, relay)
        return None if c is None else c / int(stats[(row, relay)]["outputs"])

    def rank(relay):
        return FAN_ORDER.index(relay) if relay in FAN_ORDER else len(FAN_ORDER)

    out = []
    for row in order:
        relays = sorted((k[1] for k in stats if k[0] == row), key=rank)
        slow = row == "slow"
        if slow:
            headers = ["relay", "runs", "fast outputs median GiB/s", "min–max GiB/s",
                       "to every EOF median GiB/s", "slow=drop output got MiB (median)",
                       "median relay CPU s", "peak RSS MiB", "÷ all fast"]
        else:
            headers = ["relay", "outputs", "runs", "median GiB/s", "min–max GiB/s",
                       "median relay CPU s", "CPU s/GiB", "peak RSS MiB", "bpipe fan-out ÷ this"]
        body = []
        for relay in relays:
            s = stats[(row, relay)]
            name = [code(relay)] if slow else [code(relay), s["outputs"]]
            if s["failed"]:
                body.append(name + [len(s["gbps"]), f"**{s['failed']}**"] +
                            [""] * (len(headers) - len(name) - 2))
                continue
            rss = fmt(max(s["rss"]) / 1024, 1)
            if slow:
                m = med(row, relay, "fast")
                x = ratio(m, med(row, FAN_ALL_FAST, "fast"))
                kept = med(row, relay, "kept")
                body.append(name + [len(s["fast"]), fmt(m),
                                    f"{min(s['fast']):.2f}–{max(s['fast']):.2f}",
                                    fmt(med(row, relay)),
                                    fmt(None if kept is None else kept / MIB, 1),
                                    fmt(med(row, relay, "cpu"), 3), rss,
                                    "–" if x is None else f"{x:.2f}×"])
                continue
            m = med(row, relay)
            x = ratio(med(row, FAN_FANOUT.get(row)), m)
            body.append(name + [len(s["gbps"]), fmt(m), f"{min(s['gbps']):.2f}–{max(s['gbps']):.2f}",
                                fmt(med(row, relay, "cpu"), 3), fmt(cpu_per_gib(row, relay), 3), rss,
                                "–" if x is None else f"{x:.2f}×"])
        out.append(f"## {FAN_TITLES.get(row, row)}\n")
        out.append(table(headers, body))
        out.append("")

    body = []
    for row, num, den, kind, thr in FAN_TARGETS:
        if kind == "speed":
            x = ratio(med(row, num), med(row, den))
            what, req, ok = "GiB/s", f"≥ {thr}×", x is not None and x >= thr
        elif kind == "fast":
            x = ratio(med(row, num, "fast"), med(row, den, "fast"))
            what, req, ok = "fast outputs' GiB/s", f"≥ {thr}×", x is not None and x >= thr
        elif kind == "cpu/GiB out":
            x = ratio(cpu_per_gib_out(row, num), cpu_per_gib_out(row, den))
            what, req, ok = "relay CPU s per GiB delivered", f"≤ {thr}×", x is not None and x <= thr
        else:
            x = ratio(cpu_per_gib(row, num), cpu_per_gib(row, den))
            what, req, ok = "relay CPU s per GiB read", "(information)", None
        res = "n/a" if x is None else ("info" if ok is None else ("PASS" if ok else "**FAIL**"))
        body.append([row, f"{code(num)} ÷ {code(den)}", what, "–" if x is None else f"{x:.2f}×", req, res])
    out.append("## Targets (ratios of medians; n/a: a side was not measured)\n")
    out.append(table(["row", "ratio", "of", "measured", "target", "result"], body,
                     ["l", "l", "l", "r", "r", "l"]))
    out.append("")
    print("\n".join(out))

NET_TITLES = {
    "w1": "w1: producer write | SENDER → RECEIVER | consumer read",
    "w3": "w3: producer vmsplice | SENDER → RECEIVER | consumer splice",
}
NET_LABELS = {"framed": "bpipe framed", "checksum": "bpipe framed --checksum", "raw": "bpipe --raw",
              "tls": "bpipe TLS", "mbuffer": "mbuffer -O/-I", "mbuffer64": "mbuffer -O/-I -m 64M",
              "nc": "nc", "socat": "socat"}
NET_ORDER = ["framed", "checksum", "raw", "tls", "mbuffer", "mbuffer64", "nc", "socat"]
NET_BPIPE = ["framed", "checksum", "raw", "tls"]
# (numerator row, denominator row, threshold): median GiB/s ratio >= threshold
NET_TARGETS = [
    ("framed", "mbuffer", 2.0),
    ("framed", "nc", 3.0),
    ("checksum", "mbuffer", 1.2),
    ("tls", "mbuffer", 0.8),
]
NET_RSS_SLACK = 8 * MIB


def net(path):
    rows = load(path)
    order, stats, labels = [], {}, dict(NET_LABELS)
    buffer = None
    for r in rows:
        key = (r["workload"], r["row"])
        labels[r["row"]] = r["label"]
        buffer = int(r["buffer_bytes"])
        if r["workload"] not in order:
            order.append(r["workload"])
        s = stats.setdefault(key, {"gbps": [], "scpu": [], "rcpu": [], "srss": [], "rrss": [],
                                   "bytes": 0, "failed": None})
        if r["status"] != "ok":
            s["failed"] = r["status"]
            continue
        b = int(r["bytes"])
        s["bytes"] = b
        s["gbps"].append(b / float(r["wall_s"]) / GIB)
        s["scpu"].append(float(r["send_user_s"]) + float(r["send_sys_s"]))
        s["rcpu"].append(float(r["recv_user_s"]) + float(r["recv_sys_s"]))
        s["srss"].append(int(r["send_rss_kib"]))
        s["rrss"].append(int(r["recv_rss_kib"]))

    def med(wl, row, what="gbps"):
        s = stats.get((wl, row))
        if not s or s["failed"] or not s[what]:
            return None
        return statistics.median(s[what])

    def per_gib(wl, row, what):
        c = med(wl, row, what)
        return None if c is None else c / (stats[(wl, row)]["bytes"] / GIB)

    def peak(wl, row, what):
        s = stats.get((wl, row))
        if not s or s["failed"] or not s[what]:
            return None
        return max(s[what]) * 1024

    def rank(row):
        return NET_ORDER.index(row) if row in NET_ORDER else len(NET_ORDER)

    def name(row):
        return labels.get(row, row)

    out = []
    for wl in order:
        wrows = sorted((k[1] for k in stats if k[0] == wl), key=rank)
        headers = ["row", "runs", "median GiB/s", "min–max GiB/s", "sender CPU s/GiB",
                   "receiver CPU s/GiB", "sender peak RSS MiB", "receiver peak RSS MiB",
                   "framed ÷ this"]
        body = []
        for row in wrows:
            s = stats[(wl, row)]
            if s["failed"]:
                body.append([name(row), len(s["gbps"]), f"**{s['failed']}**"] + [""] * (len(headers) - 3))
                continue
            m = med(wl, row)
            x = ratio(med(wl, "framed"), m)
            body.append([name(row), len(s["gbps"]), fmt(m), f"{min(s['gbps']):.2f}–{max(s['gbps']):.2f}",
                         fmt(per_gib(wl, row, "scpu"), 3), fmt(per_gib(wl, row, "rcpu"), 3),
                         fmt(peak(wl, row, "srss") / MIB, 1), fmt(peak(wl, row, "rrss") / MIB, 1),
                         "–" if x is None else f"{x:.2f}×"])
        out.append(f"## {NET_TITLES.get(wl, wl)}\n")
        out.append(table(headers, body))
        out.append("")

    body = []
    for wl in order:
        for num, den, thr in NET_TARGETS:
            x = ratio(med(wl, num), med(wl, den))
            res = "n/a" if x is None else ("PASS" if x >= thr else "**FAIL**")
            body.append([wl, f"{name(num)} ÷ {name(den)}", "GiB/s", "–" if x is None else f"{x:.2f}×",
                         f"≥ {thr}×", res])
        if buffer is None:
            continue
        limit = buffer + NET_RSS_SLACK
        for row in NET_BPIPE:
            for side, what in (("sender", "srss"), ("receiver", "rrss")):
                if (wl, row) not in stats:
                    continue
                x = peak(wl, row, what)
                res = "n/a" if x is None else ("PASS" if x <= limit else "**FAIL**")
                body.append([wl, f"{name(row)}: {side}", "peak RSS", "–" if x is None else f"{x / MIB:.1f} MiB",
                             f"≤ {limit / MIB:.1f} MiB", res])
    out.append("## Targets (ratios of medians; peak RSS over all rounds; "
               f"buffer = {fmt(None if buffer is None else buffer / MIB, 1)} MiB, "
               "bpipe's queue; n/a: a side was not measured)\n")
    out.append(table(["workload", "what", "of", "measured", "target", "result"], body,
                     ["l", "l", "l", "r", "r", "l"]))
    out.append("")
    print("\n".join(out))


def main():
    modes = {"compare": compare, "rate": rate, "idle": idle, "change": change, "fanout": fanout,
             "net": net}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    modes[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
