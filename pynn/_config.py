"""Threads, instruction-set path and backend: the run-time knobs of pynn.

Threads: the default follows OMP_NUM_THREADS, else the CPUs this process may run on
(affinity mask and cgroup CPU quota). Every kernel call gets the count explicitly and is
also capped by omp_get_max_threads(), so threadpoolctl.threadpool_limits(n) is honoured.
A child forked after the parent used OpenMP runs serially (GNU libgomp's thread pool does
not survive fork()).
"""
import contextlib
import math
import os

_state = {"threads": None, "backend": "c"}


def _cgroup_cpus():
    """CPUs allowed by a cgroup v2 (cpu.max) or v1 (cfs quota) limit, or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def default_num_threads():
    """OMP_NUM_THREADS if set, else the CPUs this process may use."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    cg = _cgroup_cpus()
    return max(1, min(n, cg) if cg else n)


def _runtime():
    from ._ext import _runtime
    return _runtime


def set_num_threads(n):
    """Use `n` threads in every kernel from now on (n >= 1)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads needs an integer >= 1, received {n!r}")
    if n > 2**31 - 1:  # a C int in the kernels (checked before anything is stored)
        raise ValueError(f"set_num_threads needs an integer <= 2**31 - 1, received {n!r}")
    _state["threads"] = n
    try:
        _runtime().set_threads(n)
    except ImportError:
        pass


def get_num_threads():
    """Threads a kernel called now would use (after threadpoolctl / OMP limits)."""
    try:
        return _runtime().get_threads()
    except ImportError:
        return 1


@contextlib.contextmanager
def num_threads(n):
    """Context manager: run the block with `n` threads, then restore."""
    old = _state["threads"] or default_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)


def set_arch(name):
    """Force an instruction-set path: 'generic' (portable C), 'avx2', 'avx512', or 'auto'."""
    rt = _runtime()
    rt.set_isa(rt.cpu_isa() if name == "auto" else name)


def get_arch():
    return _runtime().get_isa()


@contextlib.contextmanager
def arch(name):
    old = get_arch()
    set_arch(name)
    try:
        yield
    finally:
        set_arch(old)


def _after_fork_in_child():
    try:
        _runtime().set_single_threaded(True)
    except ImportError:
        pass


def _init():
    try:
        rt = _runtime()
    except ImportError:
        return
    rt.set_threads(_state["threads"] or default_num_threads())
    env = os.environ.get("PYNN_ARCH", "").strip().lower()
    if env and env != "auto":
        try:
            rt.set_isa(env)
        except ValueError as e:
            raise ValueError(f"PYNN_ARCH: {e}") from None
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def show_config(file=None):
    """Print (and return as a dict) how pynn was built and what it will use."""
    import sys
    import numpy as np
    info = {"pynn backend": _state["backend"], "numpy": np.__version__}
    try:
        rt = _runtime()
        info.update({
            "C extension": "built",
            "OpenMP": "yes" if rt.have_openmp() else "no (serial build)",
            "threads": rt.get_threads(),
            "default threads": default_num_threads(),
            "OMP max threads": rt.omp_max_threads(),
            "CPU best ISA": rt.cpu_isa(),
            "ISA in use": rt.get_isa(),
            "build flags": rt.build_flags(),
        })
    except ImportError as e:
        info["C extension"] = f"not built ({e})"
    out = file or sys.stdout
    if not callable(getattr(out, "write", None)):   # a path: AttributeError on .write
        raise TypeError(f"show_config(file=...) takes a writable text stream such as "
                        f"sys.stderr or an open file, received {file!r}")
    for k, v in info.items():
        print(f"{k:>16}: {v}", file=out)
    return info
