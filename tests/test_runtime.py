"""Runtime: threads, threadpoolctl, fork safety, concurrent calls, arch switch, config."""
import concurrent.futures
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest

import pynn
from helpers import C, REF

BIG = (600, 700)  # large enough that kernels use every thread
OPENMP = pynn._config._runtime().have_openmp()
needs_openmp = pytest.mark.skipif(not OPENMP, reason="serial build (no OpenMP)")


@needs_openmp
def test_set_and_get_num_threads():
    with pynn.num_threads(1):
        assert pynn.get_num_threads() == 1
    with pynn.num_threads(2):
        assert pynn.get_num_threads() == 2


@needs_openmp
def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with pynn.num_threads(2):
        with threadpoolctl.threadpool_limits(1):
            assert pynn.get_num_threads() == 1
        assert pynn.get_num_threads() == 2


def _run(code, **env):
    e = dict(os.environ)
    e.update(env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@needs_openmp
def test_default_threads_follow_omp_num_threads():
    assert _run("import pynn; print(pynn.get_num_threads())", OMP_NUM_THREADS="1") == "1"
    assert _run("import pynn; print(pynn._config.default_num_threads())",
                OMP_NUM_THREADS="3") == "3"


def test_pynn_arch_environment_and_switch():
    assert _run("import pynn; print(pynn.get_arch())", PYNN_ARCH="generic") == "generic"
    with pytest.raises(ValueError, match="unknown arch"):
        pynn.set_arch("sse9")
    with pynn.arch("generic"):
        assert pynn.get_arch() == "generic"
    assert pynn.get_arch() == pynn._config._runtime().cpu_isa()


def _child_kernel(q):
    x = np.arange(BIG[0] * BIG[1], dtype=np.float64).reshape(BIG) % 7
    q.put(float(C.column_sum(x).sum()))


def test_forked_child_does_not_hang():
    x = np.arange(BIG[0] * BIG[1], dtype=np.float64).reshape(BIG) % 7
    with pynn.num_threads(2):
        expected = float(C.column_sum(x).sum())  # parent has started OpenMP threads
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child_kernel, args=(q,))
        p.start()
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
            pytest.fail("child forked after OpenMP use hung in a kernel")
        assert p.exitcode == 0
        assert q.get(timeout=5) == expected


_SHORT_TEAM = """
import numpy as np, pynn
from helpers import C
rng = np.random.default_rng(5)
bad = []
# (M, N, K, trans_a, trans_b): small-path row chunks, B packed by each thread (dy W2^T),
# B packed by the team, C^T split by columns, narrow C in 4-row blocks, the packed path
for M, N, K, ta, tb in [(128, 128, 300, False, False), (512, 128, 10, False, True),
                        (300, 100, 100, False, True), (128, 10, 512, True, False),
                        (400, 6, 517, False, False), (200, 450, 300, False, False)]:
    for dt in (np.float32, np.float64):
        a = rng.standard_normal((K, M) if ta else (M, K)).astype(dt)
        b = rng.standard_normal((N, K) if tb else (K, N)).astype(dt)
        with pynn.num_threads(1):
            one = C.gemm(a, b, ta, tb)
        with pynn.num_threads(2):
            out = np.full((M, N), np.nan, dt)
            C.gemm(a, b, ta, tb, out=out)
        if not np.array_equal(out, one):
            bad.append((M, N, K, ta, tb, dt.__name__))
print(bad)
"""


@needs_openmp
def test_kernels_finish_with_fewer_threads_than_asked():
    """OpenMP may give a parallel region fewer threads than asked (OMP_THREAD_LIMIT, nested
    regions): the chunks owned by the missing threads are taken by the others, and the
    result is whole, with the bits of one thread."""
    tests = os.path.dirname(os.path.abspath(__file__))
    out = _run(f"import sys; sys.path.insert(0, {tests!r})\n" + _SHORT_TEAM,
               OMP_THREAD_LIMIT="1")
    assert out == "[]"


def test_concurrent_python_threads_are_safe():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(BIG) for _ in range(8)]
    expected = [REF.column_sum(x) for x in xs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(C.column_sum, xs))
            for g, e in zip(got, expected):
                np.testing.assert_allclose(g, e, rtol=1e-12)


def test_small_gemms_in_python_threads_with_small_stacks():
    # a single-threaded product with a few KB of scratch keeps it on the calling thread's
    # stack (32 x 10 @ (128 x 10)^T packs B^T there; 12 x 64 @ (40 x 64)^T needs 11 KB and
    # allocates): threads with 64 KiB stacks, side by side, each get their own, same bits
    import threading
    rng = np.random.default_rng(1)
    cases = [(rng.standard_normal((m, k)).astype(np.float32),
              rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32), tb)
             for m, k, n, tb in ((32, 10, 128, True), (37, 32, 10, True), (12, 64, 40, True),
                                 (32, 128, 10, False), (5, 7, 3, False))]
    expected = [C.gemm(a, b, trans_b=tb) for a, b, tb in cases]
    for (a, b, tb), e in zip(cases, expected):
        np.testing.assert_allclose(e, REF.gemm(a.astype(np.float64), b.astype(np.float64),
                                               trans_b=tb), rtol=1e-4, atol=1e-4)
    got, errors = {}, []

    def work(t):
        try:
            for r in range(2000):
                for i, (a, b, tb) in enumerate(cases):
                    y = C.gemm(a, b, trans_b=tb)
                    if r == 0:
                        got[t, i] = y
                    elif not np.array_equal(y, got[t, i]):
                        errors.append((t, i, r))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    with pynn.num_threads(1):
        old = threading.stack_size(65536)      # for the threads started while it is set
        try:
            for th in threads:
                th.start()
        finally:
            threading.stack_size(old)
        for th in threads:
            th.join()
    assert not errors
    for (t, i), y in got.items():
        np.testing.assert_array_equal(y, expected[i])


def test_memory_mapped_input(tmp_path):
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(37, 11))
    mm[...] = np.arange(37 * 11).reshape(37, 11)
    mm.flush()
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=(37, 11))
    np.testing.assert_array_equal(C.column_sum(ro), REF.column_sum(np.array(ro)))


def test_show_config_reports_build_and_runtime(capsys):
    info = pynn.show_config()
    out = capsys.readouterr().out
    for key in ("OpenMP", "threads", "ISA in use", "build flags", "CPU best ISA"):
        assert key in info and key in out
    assert "-march=native" not in info["build flags"]


def test_bad_thread_counts_raise_even_without_openmp():
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="integer >= 1"):
            pynn.set_num_threads(bad)
    # past a C int: refused before it is stored (it was stored, then the conversion raised
    # OverflowError, and every later `with pynn.num_threads(..)` raised it again on exit)
    before = pynn.get_num_threads()
    with pytest.raises(ValueError, match="<= 2\\*\\*31 - 1"):
        pynn.set_num_threads(2**31)
    assert pynn.get_num_threads() == before
    with pynn.num_threads(1):
        assert pynn.get_num_threads() == 1
    assert pynn.get_num_threads() == before
