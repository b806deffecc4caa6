"""Embedding lookup and scatter-add backward: C against the NumPy twin, exact values,
finite differences, thread-count independence, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import C, REF, compare, layouts, rand, check_grad

DTYPES = (np.float32, np.float64)


def test_hand_worked_values():
    table = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    ids = np.array([[2, 0], [2, 2]])
    dy = np.array([[[1.0, 1.0], [10.0, 20.0]], [[0.5, 0.5], [2.0, 3.0]]])
    for be in (C, REF):
        np.testing.assert_array_equal(be.embedding_forward(ids, table),
                                      [[[5, 6], [1, 2]], [[5, 6], [5, 6]]])
        # row 2 receives three positions, row 1 none, row 0 one
        np.testing.assert_array_equal(be.embedding_backward(ids, dy, 3),
                                      [[10, 20], [0, 0], [3.5, 4.5]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("V,D,ids_shape", [(1, 1, (1,)), (5, 3, (0,)), (7, 13, (3, 5)),
                                           (97, 131, (4, 33)), (50, 64, (32, 64))])
@pytest.mark.parametrize("id_dtype", [np.int32, np.int64, np.float32])
def test_against_reference(dtype, V, D, ids_shape, id_dtype):
    rng = np.random.default_rng(V + D)
    table = rand(rng, (V, D), dtype)
    ids = rng.integers(0, V, ids_shape).astype(id_dtype)
    dy = rand(rng, ids_shape + (D,), dtype)
    for _, tv in layouts(table):
        compare("embedding_forward", ids, tv)
    for _, dv in layouts(dy):
        compare("embedding_backward", ids, dv, V, k=max(1, ids.size))


@settings(max_examples=20, deadline=None)
@given(V=st.integers(1, 60), D=st.integers(1, 70), n=st.integers(0, 200),
       dtype=st.sampled_from(DTYPES))
def test_random_shapes(V, D, n, dtype):
    rng = np.random.default_rng(V * 7 + D)
    ids = rng.integers(0, V, n)
    compare("embedding_forward", ids, rand(rng, (V, D), dtype))
    compare("embedding_backward", ids, rand(rng, (n, D), dtype), V, k=max(1, n))


def test_backward_by_finite_differences():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 6, (3, 4))
    table = rng.standard_normal((6, 5))
    for be in (C, REF):
        check_grad(lambda t: be.embedding_forward(ids, t),
                   lambda t, dy: be.embedding_backward(ids, dy, 6), [table])


def test_out_is_written_not_accumulated():
    ids = np.array([0, 0, 1])
    dy = np.ones((3, 2))
    out = np.full((3, 2), 7.0)
    for be in (C, REF):
        r = be.embedding_backward(ids, dy, 3, out=out)
        assert r is out
        np.testing.assert_array_equal(out, [[2, 2], [1, 1], [0, 0]])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    table = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        be.embedding_forward(np.array([0, 4]), table)
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        be.embedding_forward(np.array([-1, 2]), table)
    with pytest.raises(ValueError, match="whole numbers"):
        be.embedding_forward(np.array([0.5, 1.0]), table)
    with pytest.raises(ValueError, match="NaN"):
        be.embedding_forward(np.array([np.nan]), table)
    with pytest.raises(TypeError, match="integers"):
        be.embedding_forward(np.array([True]), table)
    with pytest.raises(TypeError, match="ndarray"):
        be.embedding_forward([0, 1], table)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.embedding_forward(np.array([0]), np.ones((4, 3), np.int64))
    with pytest.raises(ValueError, match="2-D"):
        be.embedding_forward(np.array([0]), np.ones(4))
    with pytest.raises(ValueError, match="dy must have shape"):
        be.embedding_backward(np.array([0, 1]), np.ones((3, 3)), 4)
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        be.embedding_backward(np.array([0, 3]), np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="shape"):
        be.embedding_forward(np.array([0]), table, out=np.empty((2, 3)))
    ro = np.empty((1, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.embedding_forward(np.array([0]), table, out=ro)
    with pytest.raises(ValueError, match="overlaps"):
        be.embedding_forward(np.array([0]), table, out=table[:1])
    with pytest.raises(TypeError, match="dtype"):
        be.embedding_backward(np.array([0]), np.ones((1, 3)), 4, out=np.empty((4, 3), np.float32))


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_out_overlapping_the_ids_is_refused(be):
    # ids are read while out is written: an out sharing their memory is refused (C read ids
    # it had already overwritten, far out of the table)
    out = np.zeros((1000, 2))
    ids = out.view(np.int64).reshape(-1)[:1000]
    with pytest.raises(ValueError, match="overlaps"):
        be.embedding_forward(ids, np.ones((5, 2)), out=out)
    with pytest.raises(ValueError, match="overlaps"):
        be.embedding_backward(ids, np.ones((1000, 2)), 1000, out=out)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_backward_of_zero_width_rows(be):
    np.testing.assert_array_equal(be.embedding_backward(np.array([0, 2]), np.zeros((2, 0)), 3),
                                  np.zeros((3, 0)))
