"""Test helpers: run a kernel on both backends and compare, finite-difference gradients.

Tolerance rule (stated once, used everywhere): a result that reduces over k terms may differ
from the reference by  rtol = atol_scale = 4 * eps(dtype) * (k + 8),  measured against
max(1, max|expected|). float64: ~1e-14 for elementwise, ~2e-12 for k = 2048; float32:
~4e-6 elementwise, ~1e-3 for k = 2048 (different summation order, FMA vs mul+add).
"""
import itertools

import numpy as np

import pynn

C = pynn.ops.get_backend("c")
REF = pynn.ops.get_backend("reference")
ARCHS = tuple(a for a in ("generic", "avx2", "avx512")
              if ("generic", "avx2", "avx512").index(a)
              <= ("generic", "avx2", "avx512").index(pynn._config._runtime().cpu_isa()))
THREADS = (1, 2)


def tolerance(dtype, k=1):
    return 4 * np.finfo(dtype).eps * (k + 8)


def assert_close(actual, expected, dtype=None, k=1, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    dtype = dtype or (expected.dtype if expected.dtype.kind == "f" else np.float64)
    r = tolerance(dtype, k)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=r, atol=r * scale, err_msg=what)


def _copy_args(args):
    return [a.copy() if isinstance(a, np.ndarray) and a.flags.writeable and a.base is None else a
            for a in args]


_scalar_dtype = [np.float64]  # dtype that scalar (Python float) results are judged by


def compare(name, *args, k=1, archs=ARCHS, threads=THREADS, **kwargs):
    """Run kernel `name` on the reference and on C under every arch x thread count.

    Checks type, shape and dtype first, then values within the tolerance rule for a
    reduction over `k` terms, and that C results are bit-identical across thread counts.
    Returns the reference result. Tuples of arrays are compared element by element.
    """
    expected = getattr(REF, name)(*_copy_args(args), **kwargs)
    floats = [a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    _scalar_dtype[0] = floats[0] if floats else np.float64
    for arch in archs:
        first = None
        for nt in threads:
            with pynn.arch(arch), pynn.num_threads(nt):
                got = getattr(C, name)(*_copy_args(args), **kwargs)
            what = (f"{name} arch={arch} threads={nt} shapes="
                    f"{[getattr(a, 'shape', a) for a in args]}")
            _check_same_kind(got, expected, k, what)
            if first is None:
                first = got
            else:
                _check_bitwise(got, first, what + " vs threads=%d" % threads[0])
    return expected


def _check_same_kind(got, expected, k, what):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), what
        for i, (g, e) in enumerate(zip(got, expected)):
            _check_same_kind(g, e, k, f"{what} [output {i}]")
        return
    if expected is None:
        assert got is None, what
        return
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray), f"{what}: returned {type(got).__name__}"
        assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
        assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
        if expected.dtype.kind == "f":
            assert_close(got, expected, expected.dtype, k, what)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=what)
    else:
        assert type(got) is type(expected), f"{what}: {type(got)} != {type(expected)}"
        if isinstance(expected, float):
            assert_close(got, expected, _scalar_dtype[0], k, what)
        else:
            assert got == expected, what


def _check_bitwise(a, b, what):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            _check_bitwise(x, y, what)
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f"{what}: not bit-identical"
    else:
        assert a == b or (a != a and b != b), f"{what}: {a} != {b}"


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of x (in place)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def check_grad(forward, backward_grads, inputs, seed=0, eps=1e-6, rtol=1e-6, atol=1e-7):
    """Check analytic gradients against central differences, float64.

    forward(*inputs) -> array y; backward_grads(*inputs, dy) -> tuple of gradients, one per
    input in `inputs` that is not None in the tuple. The scalar checked is L = sum(y * dy)
    with dy random, so every output element takes part.
    """
    rng = np.random.default_rng(seed)
    y = forward(*inputs)
    dy = rng.standard_normal(np.shape(y))
    grads = backward_grads(*inputs, dy)
    if not isinstance(grads, tuple):
        grads = (grads,)
    for i, (x, g) in enumerate(zip(inputs, grads)):
        if g is None:
            continue
        num = numerical_grad(lambda: float(np.sum(forward(*inputs) * dy)), x, eps)
        np.testing.assert_allclose(g, num, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} vs central differences")


def rand(rng, shape, dtype, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(dtype)


def layouts(a):
    """The same values as C-contiguous, Fortran-ordered, strided and read-only arrays."""
    yield "c", np.ascontiguousarray(a)
    yield "f", np.asfortranarray(a)
    big = np.zeros(tuple(s * 2 for s in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    yield "strided", view
    ro = a.copy()
    ro.flags.writeable = False
    yield "readonly", ro
    buf = np.zeros(a.nbytes + a.itemsize + 1, np.uint8)
    unaligned = np.ndarray(a.shape, a.dtype, buffer=buf, offset=1)
    unaligned[...] = a
    yield "unaligned", unaligned
