#!/usr/bin/env python3
"""How fast a relay's output follows a change of its rate limit (rate.sh, scenario change).

usage:
  ratechange.py TRACE T_UP T_DOWN T_END LOW_BPS HIGH_BPS

TRACE is `consumer trace`'s file: one line per read, "T BYTES" (CLOCK_MONOTONIC
seconds, bytes received so far).  The relay ran at LOW_BPS; the change to
HIGH_BPS was issued at T_UP, the change back to LOW_BPS at T_DOWN, and at T_END
the run's measured part ended (the limit was lifted).  Times are the same
clock, taken just before the client that makes the change was started.

For each change (t0 = T_UP to HIGH_BPS, and t0 = T_DOWN back to LOW_BPS, each
up to the next event t_next), with B(t) the bytes received by time t, prints
one line of key=value pairs:

  dir=up|down
  settled_Bps   slope of the least-squares line through B (sampled every 1 ms)
                over [t0 + SETTLE_S, t_next]: the rate the relay settled at
  reached       1 if settled_Bps is within ±TOL of the new rate, else 0
  switch_s      where that line meets the line fitted to B over the second
                before t0 (the old rate), minus t0: the relay's effective
                delay, with bursty output averaged out (it may come out a
                little negative for a relay whose output comes in big
                lumps: the uncertainty is about one lump ÷ the rate change)
  hold_s        t1 - t0 for the first t1 >= t0 (1 ms steps) such that every
                window [t1 + kW, t1 + (k+1)W] ending by t_next holds the new
                rate × W bytes ±TOL; W is the time the new rate takes to
                deliver what HIGH_BPS delivers in WINDOW_S (50 ms at the high
                rate, 8 × that at 1/8 of it: a 50 ms window at 1 MiB/s
                holds 51 KiB, less than one 64 KiB chunk, so no relay that
                writes whole chunks could pass it).  -1: never.
  window_s      W
  first100_B    bytes received in (t0, t0 + 100 ms]
  bound_B       HIGH_BPS × (100 ms + 50 ms): what the higher rate allows in
                those 100 ms plus one 50 ms step; above it is a burst

Only the Python standard library is used.
"""
import bisect
import sys

SETTLE_S = 0.5   # the settled fit starts this long after the change
BEFORE_S = 1.0   # the old rate is fitted over this long before the change
WINDOW_S = 0.05  # hold windows, at the high rate
STEP_S = 0.001   # sampling step for fits and for t1
TOL = 0.10
BURST_S = 0.1


class Trace:
    def __init__(self, path):
        self.t, self.b = [], []
        with open(path) as f:
            for line in f:
                t, b = line.split()
                self.t.append(float(t))
                self.b.append(int(b))

    def at(self, t):
        """Bytes received by time t."""
        i = bisect.bisect_right(self.t, t)
        return self.b[i - 1] if i else 0


def fit(tr, a, b):
    """Least-squares line through B sampled every STEP_S over [a, b]: (slope, intercept)."""
    n = int((b - a) / STEP_S) + 1
    xs = [i * STEP_S for i in range(n)]  # relative to a, for precision
    ys = [tr.at(a + x) for x in xs]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    k = sxy / sxx
    return k, my - k * (mx + a)


def holds_from(tr, t1, end, rate, w):
    lo, hi = rate * w * (1 - TOL), rate * w * (1 + TOL)
    k = 0
    while t1 + (k + 1) * w <= end:
        got = tr.at(t1 + (k + 1) * w) - tr.at(t1 + k * w)
        if not lo <= got <= hi:
            return False
        k += 1
    return k > 0


def change(tr, direction, t0, t_next, rate, high):
    k_old, c_old = fit(tr, t0 - BEFORE_S, t0)
    k_new, c_new = fit(tr, t0 + SETTLE_S, t_next)
    switch = (c_old - c_new) / (k_new - k_old) - t0 if k_new != k_old else float("nan")
    w = WINDOW_S * high / rate
    hold = -1.0
    steps = int((t_next - t0) / STEP_S)
    for i in range(steps):
        if holds_from(tr, t0 + i * STEP_S, t_next, rate, w):
            hold = i * STEP_S
            break
    reached = int(abs(k_new - rate) <= TOL * rate)
    first = tr.at(t0 + BURST_S) - tr.at(t0)
    bound = high * (BURST_S + WINDOW_S)
    print(f"dir={direction} settled_Bps={k_new:.0f} reached={reached} switch_s={switch:.4f} "
          f"hold_s={hold:.3f} window_s={w:.3f} first100_B={first} bound_B={bound:.0f}")


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    tr = Trace(sys.argv[1])
    t_up, t_down, t_end, low, high = map(float, sys.argv[2:])
    if t_down - t_up < SETTLE_S + BEFORE_S or t_end - t_down < SETTLE_S + STEP_S:
        sys.exit(f"ratechange.py: each phase must last at least {SETTLE_S + BEFORE_S} s")
    change(tr, "up", t_up, t_down, high, high)
    change(tr, "down", t_down, t_end, low, high)


if __name__ == "__main__":
    main()
