"""Benchmark helpers shared by every script in bench/.

Rules (STYLE.md "Benchmarks"): check a result before timing it; pin every library's threads
(NumPy's BLAS through threadpoolctl, PyTorch through torch.set_num_threads, pynn through
pynn.set_num_threads); drop warm-up runs; alternate the contenders round by round so that
load from other processes hits all of them alike; report medians.
"""
import contextlib
import statistics
import sys
import time

import numpy as np

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - the bench still runs, unpinned BLAS is reported
    threadpoolctl = None

try:
    import torch
except ImportError:
    torch = None


def csv_arg(parser, text, what, allowed=None, positive_int=False):
    """The entries of a comma-separated option, checked: each in `allowed`, or each a
    positive integer; a bad one stops with argparse's usage message."""
    items = [v.strip() for v in text.split(",") if v.strip()]
    if not items:
        parser.error(f"{what}: nothing given")
    if positive_int:
        try:
            items = [int(v) for v in items]
        except ValueError:
            parser.error(f"{what}: {text!r} is not a list of integers")
        if min(items) < 1:
            parser.error(f"{what}: {text!r}: each must be a positive integer")
    elif allowed is not None:
        bad = [v for v in items if v not in allowed]
        if bad:
            parser.error(f"{what}: unknown {', '.join(map(repr, bad))}; choose from "
                         f"{', '.join(allowed)}")
    return items


@contextlib.contextmanager
def pinned_threads(n):
    """Run the block with n threads in pynn, NumPy's BLAS (and OpenMP) and PyTorch."""
    import pynn
    old_torch = torch.get_num_threads() if torch is not None else None
    limits = (threadpoolctl.threadpool_limits(limits=n) if threadpoolctl is not None
              else contextlib.nullcontext())
    with limits, pynn.num_threads(n):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old_torch)


def blas_info():
    """One line naming NumPy's BLAS and its threads (or why it cannot be pinned)."""
    if threadpoolctl is None:
        return "threadpoolctl missing: NumPy's BLAS threads are not pinned"
    np.ones((2, 2)) @ np.ones((2, 2))  # load the BLAS so threadpoolctl can see it
    libs = [f"{d['internal_api']} {d.get('version')} ({d.get('architecture')}, "
            f"{d['num_threads']} threads)" for d in threadpoolctl.threadpool_info()
            if d["user_api"] == "blas"]
    return ", ".join(libs) or "no BLAS found by threadpoolctl"


def _time_once(fn, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def calibrate(fn, target_s):
    """Calls per timed sample so that one sample lasts about target_s."""
    fn()
    t = _time_once(fn, 1)
    inner = 1
    while t * inner < target_s and inner < 1 << 20:
        inner *= 2
        t = _time_once(fn, inner)
    return inner


def race(contenders, repeats=7, warmup=2, target_s=0.02, settle_s=0.0, samples=None):
    """Time each of {name: fn} alternately; return {name: median seconds per call}.

    Each round calls every contender once in turn (sample = `inner` calls, calibrated per
    contender to last ~target_s); the first `warmup` rounds are dropped. settle_s > 0 idles
    that long (untimed) before each sample, so that thread pools left spinning by the
    previous contender (OpenBLAS workers busy-wait ~0.1 s after a call) are asleep and each
    sample starts on idle cores, as a library called alone would. samples: a dict to receive
    {name: [seconds per call of each timed round]} (round i of every contender is one
    round, so per-round ratios are paired).
    """
    inner = {name: calibrate(fn, target_s) for name, fn in contenders.items()}
    got = {name: [] for name in contenders}
    for r in range(warmup + repeats):
        for name, fn in contenders.items():
            if settle_s > 0:
                time.sleep(settle_s)
            t = _time_once(fn, inner[name])
            if r >= warmup:
                got[name].append(t)
    if samples is not None:
        samples.update(got)
    return {name: statistics.median(s) for name, s in got.items()}


def print_table(headers, rows, file=None):
    """Print rows (lists of str/float/int) as an aligned text table; floats get 3 significant
    digits after the point where useful."""
    out = file or sys.stdout

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)), file=out)
    out.flush()
