"""GEMM: the C kernel against its NumPy twin under every arch x {1, 2} threads (bit-identical
across thread counts), hand-worked values, alpha/beta semantics, layouts, a large product by
random projection, random shapes, bad input."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, assert_close, compare, layouts, rand

DTYPES = (np.float32, np.float64)
TRANS = list(itertools.product((False, True), (False, True)))
# (M, N, K): zeros, ones, primes, non-multiples of every MR (4, 6, 12) and NR (8, 16, 32),
# N <= one vector (the narrow kernel loop); (5, 9, 2100) splits K on the small path; the
# last three take the packed path (B beyond the small-path size), cross kc = 256 and, in
# float32, nc = 1024 (N = 1100); 2 threads split N for wide shapes, M for tall ones; 800 x
# 131 x 1031 is tall and packed: 2 threads share each packed B block, its edge sliver
# (131 columns) packed by one of them, the others split between them
SHAPES = [(0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1), (1, 7, 3), (5, 1, 2), (2, 3, 5),
          (7, 13, 11), (13, 33, 17), (12, 32, 64), (29, 67, 131), (53, 10, 128),
          (5, 9, 2100), (37, 300, 600), (131, 53, 1031), (30, 1100, 130), (800, 131, 1031)]


def operands(rng, M, N, K, ta, tb, dtype):
    a = rand(rng, (K, M) if ta else (M, K), dtype)
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    return a, b


def test_hand_worked_values():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[5.0, 6.0], [7.0, 8.0]])
    for be in (C, REF):
        np.testing.assert_array_equal(be.gemm(a, b), [[19.0, 22.0], [43.0, 50.0]])
        np.testing.assert_array_equal(be.gemm(a, b, trans_a=True), [[26.0, 30.0], [38.0, 44.0]])
        np.testing.assert_array_equal(be.gemm(a, b, trans_b=True), [[17.0, 23.0], [39.0, 53.0]])
        np.testing.assert_array_equal(be.gemm(a, b, True, True), [[23.0, 31.0], [34.0, 46.0]])
        out = np.array([[1.0, -1.0], [0.5, 2.0]])
        be.gemm(a, b, alpha=2.0, beta=-2.0, out=out)
        np.testing.assert_array_equal(out, [[36.0, 46.0], [85.0, 96.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("exact", [False, True], ids=["random", "exact-ints"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
def test_against_reference(shape, exact, dtype):
    M, N, K = shape
    rng = np.random.default_rng(M * 10007 + N * 101 + K)
    for ta, tb in TRANS:
        a, b = operands(rng, M, N, K, ta, tb, dtype)
        if exact:
            # entries in {-1, 0, 1}: every partial sum is a small integer, exact in float
            a, b = np.round(a), np.round(b)
            for arch in ARCHS:
                with pynn.arch(arch):
                    got = C.gemm(a, b, ta, tb)
                np.testing.assert_array_equal(got, REF.gemm(a, b, ta, tb),
                                              err_msg=f"arch={arch} trans=({ta}, {tb})")
        else:
            compare("gemm", a, b, ta, tb, k=K)


# shapes that pick the special paths of gemm.c, (M, N, K, trans_a, trans_b):
# M == 1, N == 1, or M <= 4 with K >= 64, with contiguous rows of op(a) and columns of op(b):
# one dot product per element (threads split the elements); narrow C (N <= NR/2: 16 avx512 f32, 8 avx512 f64 and
# avx2 f32, 4 avx2 f64 and generic) with trans_a and K >= 64: C^T = op(b)^T op(a)^T; one row
# (M == 1, or a one-row edge sliver) read in place by the 1-row kernel, 2..4-row edges by
# the 4-row kernel; narrow C from rows of op(a) contiguous in k (avx512 f32, where the
# per-element cost is lower: N (K + 60) < 16.5 K, e.g. N <= 10 from K = 93): dot products
# with op(b)^T's rows in blocks of 4 rows x up to 5 columns, a masked k tail, row edges
PATHS = [(1, 1, 101770, False, False),  # the dot product
         (1, 1, 77, False, False),  # dot: vector blocks, single vectors, masked tail
         (1, 300, 250, False, True),  # row vector @ op(b) with contiguous columns: dots
         (4, 257, 1030, False, True),  # dY W^T of a batch of 4: dots, split by threads
         (5, 67, 300, False, True),  # 5 rows: tiles, b^T packed (64 rows at a time, tail)
         (3, 70, 63, False, True),  # 3 rows, K < 64: tiles
         (400, 1, 300, False, False),  # GEMV: dots, split between threads
         (1, 300, 250, False, False),  # one row read in place, rows of b contiguous
         (1, 70, 40, True, False),  # one row read in place from a column of a
         (13, 70, 40, False, False),  # a 12-row sliver and a one-row edge in place
         (14, 40, 30, True, False), (16, 40, 30, False, True),  # 2- and 4-row edges
         (32, 40, 70, False, False), (29, 40, 70, True, False),  # 8- and 5-row edges: the
         # 8-row body where the kernel has more rows (avx512), a batch of 32 as 12 + 12 + 8
         (130, 10, 100, True, False),  # h^T dy: C^T = dy^T h for avx512 f32
         # C^T tiles of 9 and 10 rows (the 10-row body), stored transposed in registers
         # (avx512 f32, beta == 0), a last tile of 20 columns (both 16-column halves)
         (180, 10, 100, True, False), (70, 9, 128, True, False),
         (300, 3, 500, True, False), (300, 3, 500, True, True),  # C^T on every arch
         (200, 1, 300, True, False),  # N == 1 with a^T: C^T is one row, read in place
         (20, 10, 63, True, False),  # K < 64: stays untransposed
         # one A sliver (M <= 12) that must be packed, C split by columns between threads,
         # each thread packing it once for its chunks: h^T dy of a batch of 2048 (C^T, 10
         # rows, A^T read by columns); 8 strided rows on the packed path (depth blocks of
         # 256); 11 rows of A^T with K split in two blocks on the small path
         (256, 10, 2048, True, False), (8, 300, 1024, False, False),
         (11, 64, 2100, True, False),
         (8, 64, 30000, False, False),  # K past the per-thread copy's 1 MB: packed per chunk
         (37, 10, 300, False, False),  # narrow: 4 x 5 blocks, a 1-row edge
         (400, 6, 517, False, False),  # narrow, 3 + 3 columns, threads, k tail of 5
         (6, 3, 64, False, True),  # narrow from op(b) = b^T, k without tail
         # narrow column blocks of every width (5; 4 + 3; 5 + 4; 5 + 4 + 4; 5 + 5 + 4; 2),
         # 1-, 2- and 3-row edges, k tails of 4 and 13 (b^T packed 16 rows of b a block)
         (45, 5, 128, False, False), (46, 7, 100, False, False), (47, 9, 77, False, False),
         (64, 13, 256, False, False), (30, 14, 400, False, False), (33, 2, 64, False, False),
         (300, 10, 128, False, False),  # h @ W2 of a batch of 300: narrow, 2 threads
         (9, 16, 700, False, False), (50, 10, 90, False, False),  # narrow not taken
         # packed path split by rows: one B block shared by the threads, A slivers handed
         # out dynamically; edge sliver, edge columns, two depth blocks
         (200, 450, 300, False, False), (203, 450, 300, True, True),
         # small path, a few row slivers that share unevenly between 2 threads: split by
         # column tiles instead (11 slivers, the last of 8 rows, against 4 or 8 tiles; 9
         # slivers, the last of 4 rows, against 2 or 4)
         (128, 128, 300, False, False), (100, 64, 300, False, False),
         # small path, B packed (rows off the cache lines) as one sliver of at most 32 KB:
         # each thread packs its own copy at its first row chunk
         (300, 20, 200, False, False),
         # ... and B^T packed to at most 32 KB in several slivers (dy W2^T, K = 10): each
         # thread packs all of it; past 32 KB the team packs one copy behind a barrier
         (512, 128, 10, False, True), (300, 100, 100, False, True),
         # C^T (h^T dy of a batch of 512), split between threads from 256K multiply-adds
         (128, 10, 512, True, False),
         # packed path, A slivers from rows of a packed in registers (avx512 f32: 16 columns
         # a block, transposed): an 11-row edge and depth blocks of 171 (tails of 11
         # columns); depth blocks of 129 and 128 (a tail of one column) and a 1-row edge
         (23, 600, 513, False, False), (61, 700, 257, False, False)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nk", [(2, 72), (10, 300), (300, 600), (64, 2304)])
def test_rows_do_not_depend_on_the_row_count(nk, dtype):
    """With B read as a matrix (rows contiguous), row i of A @ B has the same bits whatever
    rows come with it: narrow C for any M, depth blocks set by K and N only."""
    N, K = nk
    rng = np.random.default_rng(14)
    a, b = rand(rng, (40, K), dtype), rand(rng, (K, N), dtype)
    at = np.ascontiguousarray(a.T)                       # A^T read in place (trans_a)
    bias = rand(rng, (N,), dtype)
    for arch in ARCHS:
        with pynn.arch(arch):
            full = C.gemm(a, b)
            # the bias + relu epilogue: an edge sliver computed as the last full sliver
            # (repeating rows of the panel before it) must leave every row with one pass
            dense = C.dense_forward(a, b, bias, "relu")
            for m in (1, 2, 3, 4, 5, 8, 13, 14, 17, 20, 23, 24, 25, 35):
                np.testing.assert_array_equal(C.gemm(a[:m], b), full[:m],
                                              err_msg=f"arch={arch} M={m}")
                if N > 16 and m > 12:   # tiles (narrower C or fewer rows take other paths)
                    np.testing.assert_array_equal(
                        C.gemm(np.ascontiguousarray(at[:, :m]), b, trans_a=True), full[:m],
                        err_msg=f"arch={arch} M={m} trans_a")
                np.testing.assert_array_equal(C.dense_forward(a[:m], b, bias, "relu"),
                                              dense[:m], err_msg=f"arch={arch} M={m} dense")
            assert_close(dense, np.maximum(a.astype(np.float64) @ b + bias, 0), dtype, K)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", PATHS, ids=[f"{m}x{n}x{k}-{int(ta)}{int(tb)}"
                                             for m, n, k, ta, tb in PATHS])
def test_shape_paths(case, dtype):
    """Dot, GEMV, transposed-product and short-sliver paths against the reference on every
    arch, 1 and 2 threads bit-identical; alpha/beta, and beta == 0 never reads out."""
    M, N, K, ta, tb = case
    rng = np.random.default_rng(M * 7919 + N * 31 + K)
    a, b = operands(rng, M, N, K, ta, tb, dtype)
    compare("gemm", a, b, ta, tb, k=K)
    compare("gemm", a, b, ta, tb, -0.5, 2.0, rand(rng, (M, N), dtype), k=K)
    for arch in ARCHS:
        out = np.full((M, N), np.nan, dtype)
        with pynn.arch(arch):
            C.gemm(a, b, ta, tb, 1.5, 0.0, out)
        assert not np.isnan(out).any(), f"beta=0 read out (arch={arch})"


def _at_offset(a, offset):
    """A copy of a whose data starts `offset` bytes past a 64-byte boundary."""
    buf = np.zeros(a.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = np.ndarray(a.shape, a.dtype, buffer=buf, offset=start)
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_b_with_row_stride(dtype):
    """Narrow C (h @ W2) with B's rows contiguous but a row stride past N (a column slice of
    a wider array, or rows off their natural alignment): B^T is packed from B's strides
    (avx512 f32 in registers, 16 rows a block), the same bits as from a contiguous copy."""
    rng = np.random.default_rng(21)
    for M, N, K in ((37, 10, 128), (64, 5, 77), (9, 13, 300)):
        a = rand(rng, (M, K), dtype)
        wide = rand(rng, (K, N + 7), dtype)
        for b in (wide[:, :N], wide[:, 3:3 + N]):
            assert b.strides[1] == b.itemsize and b.strides[0] > N * b.itemsize
            compare("gemm", a, b, k=K)
            for arch in ARCHS:
                with pynn.arch(arch):
                    np.testing.assert_array_equal(C.gemm(a, b), C.gemm(a, b.copy()),
                                                  err_msg=f"arch={arch} {(M, N, K)}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M", [255, 256, 300])
def test_small_path_b_off_the_lines(M, dtype):
    """Small path: B read in place when its rows start on 64-byte lines, packed when they
    do not and M >= 256 (NumPy's buffers start 16 bytes past a line); the same bits either
    way, on every arch and thread count, against the reference."""
    N, K = 64, 50  # rows of 256 (float32) or 512 bytes: on the lines when B is
    rng = np.random.default_rng(M)
    a, b = rand(rng, (M, K), dtype), rand(rng, (K, N), dtype)
    for ta in (False, True):
        av = np.ascontiguousarray(a.T) if ta else a
        for off in (0, 16, 32):
            bo = _at_offset(b, off)
            assert bo.ctypes.data % 64 == off
            compare("gemm", av, bo, ta, False, k=K)
            for arch in ARCHS:
                with pynn.arch(arch):
                    np.testing.assert_array_equal(C.gemm(av, bo, ta), C.gemm(av, b, ta))
        np.testing.assert_array_equal(C.gemm(av, _at_offset(b, 16), ta, False, 0.5, 2.0,
                                             np.ones((M, N), dtype)),
                                      C.gemm(av, b, ta, False, 0.5, 2.0, np.ones((M, N), dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dot_exact_and_layouts(dtype):
    """A long dot product of small integers is exact; strided and reversed vectors."""
    K = 101770  # the sum stays below 2**24: exact in float32 whatever the order
    a = np.ones((1, K), dtype)
    b = np.tile(np.array([1.0, 2.0, -1.0, 0.0], dtype), K // 4 + 1)[:K].reshape(K, 1)
    want = float(b.sum(dtype=np.float64))
    for arch in ARCHS:
        with pynn.arch(arch):
            assert C.gemm(a, b)[0, 0] == want, f"arch={arch}"
            assert C.gemm(b, a, True, True)[0, 0] == want, f"arch={arch}"
    rng = np.random.default_rng(13)
    a, b = rand(rng, (90, 257), dtype), rand(rng, (257, 1), dtype)
    for name, av in layouts(a):
        compare("gemm", av, b, k=257)
    for name, bv in layouts(b):
        compare("gemm", a, bv, k=257)
    compare("gemm", a[::-1], b[::-1], k=257)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(13, 33, 17), (53, 10, 128), (37, 300, 600)])
def test_layouts(shape, dtype):
    """C, Fortran, strided, read-only and unaligned operands, also reversed and broadcast."""
    M, N, K = shape
    rng = np.random.default_rng(7)
    for ta, tb in TRANS:
        a, b = operands(rng, M, N, K, ta, tb, dtype)
        for name, av in layouts(a):
            compare("gemm", av, b, ta, tb, k=K)
        for name, bv in layouts(b):
            compare("gemm", a, bv, ta, tb, k=K)
        compare("gemm", a[::-1, ::-1].copy()[::-1, ::-1], b[::-1], ta, tb, k=K)
    row = rand(rng, (1, K), dtype)
    compare("gemm", np.broadcast_to(row, (M, K)), rand(rng, (K, N), dtype), k=K)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 13, 11), (29, 67, 131), (37, 300, 600)])
def test_alpha_beta(shape, dtype):
    M, N, K = shape
    rng = np.random.default_rng(3)
    for ta, tb in TRANS:
        a, b = operands(rng, M, N, K, ta, tb, dtype)
        c0 = rand(rng, (M, N), dtype)
        # out passed by position: compare gives every run a fresh copy of it
        compare("gemm", a, b, ta, tb, -0.5, 2.0, c0, k=K)
        compare("gemm", a, b, ta, tb, 1.0, 1.0, c0, k=K)
        compare("gemm", a, b, ta, tb, 0.0, 1.0, c0, k=K)
        nan_out = np.full((M, N), np.nan, dtype)
        expected = compare("gemm", a, b, ta, tb, 1.5, 0.0, nan_out, k=K)
        assert not np.isnan(expected).any()
        for arch in ARCHS:
            out = np.full((M, N), np.nan, dtype)
            with pynn.arch(arch):
                got = C.gemm(a, b, ta, tb, 1.5, 0.0, out)
            assert got is out and not np.isnan(out).any(), f"beta=0 read out (arch={arch})"


def test_beta_one_accumulates():
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        a, b = rand(rng, (20, 30), dtype), rand(rng, (30, 40), dtype)
        out = np.zeros((20, 40), dtype)
        for _ in range(3):
            C.gemm(a, b, beta=1.0, out=out)
        assert_close(out, 3 * (a.astype(np.float64) @ b), dtype, k=90)


@pytest.mark.parametrize("dtype", DTYPES)
def test_k_zero(dtype):
    a, b = np.empty((3, 0), dtype), np.empty((0, 4), dtype)
    for be in (C, REF):
        np.testing.assert_array_equal(be.gemm(a, b), np.zeros((3, 4)))
        out = np.full((3, 4), np.nan, dtype)
        np.testing.assert_array_equal(be.gemm(a, b, out=out), np.zeros((3, 4)))
        out = np.full((3, 4), 2.0, dtype)
        be.gemm(a, b, beta=-1.5, out=out)
        np.testing.assert_array_equal(out, np.full((3, 4), -3.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [(False, False), (True, True)])
def test_large_by_random_projection(dtype, trans):
    """1000 x 1100 x 1200: C t against A (B t) (no full reference product), bit-identical
    for 1 and 2 threads."""
    M, N, K = 1000, 1100, 1200
    ta, tb = trans
    rng = np.random.default_rng(11)
    a, b = operands(rng, M, N, K, ta, tb, dtype)
    opa, opb = (a.T if ta else a).astype(np.float64), (b.T if tb else b).astype(np.float64)
    t = rng.standard_normal((N, 3))
    outs = []
    for nt in (1, 2):
        with pynn.num_threads(nt):
            outs.append(C.gemm(a, b, ta, tb))
    assert np.array_equal(outs[0], outs[1]), "1 and 2 threads differ"
    got = outs[0].astype(np.float64) @ t  # (M, 3)
    want = opa @ (opb @ t)  # (M, 3)
    # each entry of C carries the K-term error bound; t mixes N of them
    tol = 4 * np.finfo(dtype).eps * (K + 8) * np.sqrt(K) * np.sqrt(N) * 4
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 300),
       ta=st.booleans(), tb=st.booleans(), dtype=st.sampled_from(DTYPES),
       beta=st.sampled_from([0.0, 1.0, -0.75]))
def test_random_shapes(m, n, k, ta, tb, dtype, beta):
    rng = np.random.default_rng(m * 1000003 + n * 1009 + k)
    a, b = operands(rng, m, n, k, ta, tb, dtype)
    c0 = rand(rng, (m, n), dtype)
    compare("gemm", a, b, ta, tb, 0.75, beta, c0, k=k)


def test_out_is_returned_and_ops_uses_c():
    a, b = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
    out = np.empty((4, 2), np.float32)
    assert C.gemm(a, b, out=out) is out
    r = pynn.ops.gemm(a, b)
    assert r.dtype == np.float32 and r.shape == (4, 2) and r.flags.c_contiguous
    np.testing.assert_array_equal(r, np.full((4, 2), 3.0))


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    a, b = np.ones((4, 3)), np.ones((3, 5))
    with pytest.raises(TypeError, match="float32 or float64"):
        be.gemm(np.ones((4, 3), np.int64), b)
    with pytest.raises(TypeError, match="ndarray"):
        be.gemm([[1.0, 2.0]], b)
    with pytest.raises(TypeError, match="dtype"):
        be.gemm(a, b.astype(np.float32))
    with pytest.raises(ValueError, match="2-D"):
        be.gemm(np.ones(3), b)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 5\)"):
        be.gemm(a, np.ones((4, 5)))
    with pytest.raises(ValueError, match="inner dimensions"):
        be.gemm(a, b, trans_a=True)
    with pytest.raises(ValueError, match="out is None"):
        be.gemm(a, b, beta=1.0)
    with pytest.raises(ValueError, match="finite"):
        be.gemm(a, b, alpha=np.inf)
    with pytest.raises(ValueError, match="finite"):
        be.gemm(a, b, beta=np.nan, out=np.empty((4, 5)))
    with pytest.raises(TypeError, match="real number"):
        be.gemm(a, b, alpha=None)
    with pytest.raises(ValueError, match="shape"):
        be.gemm(a, b, out=np.empty((5, 4)))
    with pytest.raises(TypeError, match="dtype"):
        be.gemm(a, b, out=np.empty((4, 5), np.float32))
    ro = np.empty((4, 5))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.gemm(a, b, out=ro)
    with pytest.raises(ValueError, match="C-contiguous"):
        be.gemm(a, b, out=np.empty((5, 4)).T)
    sq = np.ones((4, 4))
    with pytest.raises(ValueError, match="overlaps"):
        be.gemm(sq, np.ones((4, 4)), out=sq)
    buf = np.ones(40)
    with pytest.raises(ValueError, match="overlaps"):
        be.gemm(a, buf[:15].reshape(3, 5), out=buf[10:30].reshape(4, 5))
