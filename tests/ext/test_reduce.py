"""Reductions: C kernels against the NumPy twin, hand-worked values, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, compare, layouts, rand

DTYPES = (np.float32, np.float64)
SHAPES = [(0, 3), (1, 1), (1, 7), (7, 1), (13, 5), (31, 67), (128, 10), (517, 129)]


def test_hand_worked_values():
    x = np.array([[1.0, -1.0, 0.0], [2.0, 5.0, 5.0]])
    for be in (C, REF):
        np.testing.assert_array_equal(be.column_sum(x), [3.0, 4.0, 5.0])
        np.testing.assert_array_equal(be.row_argmax(x), [0, 1])  # first max wins
        assert be.count_correct(x, np.array([0, 2])) == 1
        assert be.accuracy(x, np.array([0, 1])) == 1.0
        assert be.row_argmax(np.array([[0.0, np.nan, 9.0]]))[0] == 1  # NaN wins, as NumPy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_against_reference(dtype, shape):
    rng = np.random.default_rng(1)
    x = rand(rng, shape, dtype)
    for name, xv in layouts(x):
        compare("column_sum", xv, k=shape[0])
        if shape[1]:
            compare("row_argmax", xv)
            labels = rng.integers(0, shape[1], shape[0])
            compare("count_correct", xv, labels)
            compare("accuracy", xv, labels)


@settings(max_examples=30, deadline=None)
@given(b=st.integers(0, 300), n=st.integers(1, 300), dtype=st.sampled_from(DTYPES),
       transposed=st.booleans())
def test_random_shapes(b, n, dtype, transposed):
    rng = np.random.default_rng(b * 1000 + n)
    x = rand(rng, (n, b) if transposed else (b, n), dtype)
    x = x.T if transposed else x
    compare("column_sum", x, k=b)
    compare("row_argmax", x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sum_row_order_bits(dtype):
    # blocks of 64 contiguous columns are summed in registers; the order stays row 0, 1, ...
    # so every arch and thread count gives the bits of adding the rows one by one (rows of
    # a wider array: a row stride past the width; 200 columns = 3 full blocks + 8)
    rng = np.random.default_rng(5)
    x = rand(rng, (301, 203), dtype)[:, 1:201]
    expected = np.zeros(200, dtype)
    for row in x:
        expected += row
    for arch in ARCHS:
        for nt in (1, 2):
            with pynn.arch(arch), pynn.num_threads(nt):
                np.testing.assert_array_equal(C.column_sum(x), expected, err_msg=f"{arch} {nt}")


def test_out_argument_is_used():
    x = np.ones((4, 3))
    out = np.empty(3)
    assert C.column_sum(x, out=out) is out
    np.testing.assert_array_equal(out, [4, 4, 4])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    x = np.ones((4, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        be.column_sum(np.ones((4, 3), np.int32))
    with pytest.raises(TypeError, match="ndarray"):
        be.column_sum([[1.0, 2.0]])
    with pytest.raises(ValueError, match="2-D"):
        be.column_sum(np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        be.column_sum(x, out=np.empty(4))
    with pytest.raises(TypeError, match="dtype"):
        be.column_sum(x, out=np.empty(3, np.float32))
    ro = np.empty(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.column_sum(x, out=ro)
    with pytest.raises(ValueError, match="overlaps"):
        be.column_sum(x, out=x[0])
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        be.count_correct(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        be.count_correct(x, np.array([0, -1, 2, 2]))
    with pytest.raises(ValueError, match="NaN"):
        be.count_correct(x, np.array([0, np.nan, 2, 2]))
    with pytest.raises(ValueError, match="whole numbers"):
        be.count_correct(x, np.array([0, 0.5, 2, 2]))
    with pytest.raises(ValueError, match="shape"):
        be.count_correct(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="at least one column"):
        be.row_argmax(np.ones((2, 0)))
