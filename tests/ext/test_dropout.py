"""Counter-based dropout: bit-identical masks in both backends and any thread count, the
stream against an independent pure-Python splitmix64, statistics, exact scaling, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, THREADS, compare, layouts, rand

DTYPES = (np.float32, np.float64)
SHAPES = [(0,), (1,), (7,), (13, 5), (31, 67), (4, 0, 3), (3, 5, 7, 2), (70001,)]
RATES = (0.0, 0.1, 0.5, 0.9)
M64 = (1 << 64) - 1


def splitmix64_outputs(state, count):
    """Reference splitmix64 generator on Python ints (Vigna's splitmix64.c)."""
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append(z ^ (z >> 31))
    return out


def python_keep(n, rate, seed, step, bits):
    """The documented spec, element by element: key from (seed, step), element i gets output
    i of splitmix64 seeded with key, top `bits` bits as u in [0, 1), keep iff u >= rate."""
    mix = lambda z: splitmix64_outputs((z - 0x9E3779B97F4A7C15) & M64, 1)[0]
    key = mix(mix((seed + 0x9E3779B97F4A7C15) & M64) ^ ((step * 0x9E3779B97F4A7C15) & M64))
    return np.array([(b >> (64 - bits)) / 2.0 ** bits >= rate
                     for b in splitmix64_outputs(key, n)])


def test_splitmix64_known_values():
    # published first outputs of splitmix64 seeded with 0 anchor the generator used above
    assert splitmix64_outputs(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4,
                                        0x06C45D188009454F]


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_golden_masks(be):
    # frozen outputs of the documented stream: a change of the hash fails here
    for dtype in DTYPES:
        keep = "".join("1" if v else "0" for v in be.dropout_mask(32, 0.5, 0, 0, dtype))
        assert keep == "00001000001100000011011101100010"
    m = be.dropout_mask(16, 0.25, 123, 456, np.float32)
    assert "".join("1" if v else "0" for v in m) == "0110111011111111"
    assert m.max() == np.float32(4 / 3)


@pytest.mark.parametrize("seed,step", [(0, 0), (1, 2), (2**63 - 1, 2**63 - 1), (12345, 7)])
@pytest.mark.parametrize("dtype,bits", [(np.float32, 24), (np.float64, 53)])
def test_mask_matches_pure_python_spec(seed, step, dtype, bits):
    for rate in (0.0, 0.3, 0.5, 0.95):
        want = python_keep(257, rate, seed, step, bits)
        for be in (C, REF):
            mask = be.dropout_mask((257,), rate, seed, step, dtype)
            np.testing.assert_array_equal(mask != 0, want, err_msg=f"{be.name} rate={rate}")
            assert mask.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_masks_bit_identical_backends_archs_threads(dtype, shape):
    for rate in RATES:
        want = REF.dropout_mask(shape, rate, 42, 3, dtype)
        assert want.shape == shape and want.dtype == dtype
        for arch in ARCHS:
            for nt in THREADS:
                with pynn.arch(arch), pynn.num_threads(nt):
                    got = C.dropout_mask(shape, rate, 42, 3, dtype)
                assert np.array_equal(got, want), f"rate={rate} arch={arch} threads={nt}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_backward_against_reference(dtype, shape):
    rng = np.random.default_rng(3)
    x = rand(rng, shape, dtype)
    for rate in (0.0, 0.25, 0.6):
        want = REF.dropout_forward(x, rate, 9, 1)
        for name, xv in layouts(x):
            got = compare("dropout_forward", xv, rate, 9, 1)  # reference vs C, all archs/threads
            assert np.array_equal(got, want), name
            np.testing.assert_array_equal(C.dropout_forward(xv, rate, 9, 1), want, err_msg=name)
            np.testing.assert_array_equal(C.dropout_backward(xv, rate, 9, 1), want, err_msg=name)
            np.testing.assert_array_equal(REF.dropout_backward(xv, rate, 9, 1), want, err_msg=name)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_and_backward_are_products_with_the_mask(be, dtype):
    rng = np.random.default_rng(5)
    x = rand(rng, (37, 41), dtype)
    dy = rand(rng, (37, 41), dtype)
    for rate in (0.2, 0.7):
        mask = be.dropout_mask(x.shape, rate, 11, 4, dtype)
        assert np.array_equal(be.dropout_forward(x, rate, 11, 4), x * mask)
        assert np.array_equal(be.dropout_backward(dy, rate, 11, 4), dy * mask)
        assert set(np.unique(mask)) <= {0, dtype(1.0 / (1.0 - rate))}


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_exact_scaling_and_identity(be):
    x = np.array([1.0, -3.0, 0.5, 7.0, np.nan, np.inf] * 50, np.float32)
    for rate, scale in ((0.5, 2.0), (0.75, 4.0)):
        y = be.dropout_forward(x, rate, 1, 1)
        kept = y != 0
        kept |= np.isnan(y)
        assert 0 < kept.sum() < x.size
        np.testing.assert_array_equal(y[kept], x[kept] * np.float32(scale))
        assert np.all(y[~kept] == 0)  # dropped NaN/inf give 0, not NaN
    y = be.dropout_forward(x, 0.0, 1, 1)  # rate 0: identity, NaN included
    np.testing.assert_array_equal(y, x)
    assert np.all(be.dropout_mask((100,), 0.0, 5, 5) == 1)
    # hand-worked: rate 0.5 keeps x * 2 exactly where kept
    m = be.dropout_mask((4,), 0.5, 0, 0, np.float64)
    assert set(m) <= {0.0, 2.0}


@pytest.mark.parametrize("dtype", DTYPES)
def test_keep_fraction_within_six_sigma(dtype):
    n = 10**6
    for rate in (0.1, 0.5, 0.9):
        for be in (C, REF):
            kept = np.count_nonzero(be.dropout_mask((n,), rate, 2024, 17, dtype)) / n
            sigma = math.sqrt(rate * (1 - rate) / n)
            assert abs(kept - (1 - rate)) < 6 * sigma, (be.name, rate, kept)


def test_seed_and_step_change_mask_and_reproduce():
    n, rate = 20000, 0.5
    base = C.dropout_mask((n,), rate, 1, 1)
    assert np.array_equal(C.dropout_mask((n,), rate, 1, 1), base)
    for seed, step in ((2, 1), (1, 2), (1, 0), (0, 1)):
        other = C.dropout_mask((n,), rate, seed, step)
        agree = np.count_nonzero(other == base) / n
        # independent masks agree on rate^2 + (1 - rate)^2 = 0.5 of the entries
        assert abs(agree - 0.5) < 6 * math.sqrt(0.25 / n), (seed, step, agree)
    # neighbouring elements are not correlated
    keep = base != 0
    agree = np.count_nonzero(keep[1:] == keep[:-1]) / (n - 1)
    assert abs(agree - 0.5) < 6 * math.sqrt(0.25 / n)


def test_mask_indexes_flat_c_order():
    mask = C.dropout_mask((30, 40), 0.5, 8, 8)
    np.testing.assert_array_equal(mask.reshape(-1), C.dropout_mask(1200, 0.5, 8, 8))
    x = np.arange(1200, dtype=np.float32).reshape(30, 40) + 1
    np.testing.assert_array_equal(C.dropout_forward(np.asfortranarray(x), 0.5, 8, 8), x * mask)
    np.testing.assert_array_equal(C.dropout_forward(x.T, 0.5, 8, 8), x.T * mask.reshape(40, 30))


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_in_place_and_out(be):
    rng = np.random.default_rng(0)
    x = rand(rng, (50, 3), np.float64)
    want = be.dropout_forward(x, 0.3, 4, 4)
    out = np.empty_like(x)
    assert be.dropout_forward(x, 0.3, 4, 4, out=out) is out
    np.testing.assert_array_equal(out, want)
    y = x.copy()
    assert be.dropout_forward(y, 0.3, 4, 4, out=y) is y
    np.testing.assert_array_equal(y, want)
    dy = x.copy()
    assert be.dropout_backward(dy, 0.3, 4, 4, out=dy) is dy
    np.testing.assert_array_equal(dy, want)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(0, 40), min_size=1, max_size=3),
       rate=st.floats(0.0, 0.99), seed=st.integers(0, 2**63 - 1),
       step=st.integers(0, 2**63 - 1), dtype=st.sampled_from(DTYPES))
def test_random_shapes_and_keys(shape, rate, seed, step, dtype):
    shape = tuple(shape)
    x = rand(np.random.default_rng(len(shape)), shape, dtype)
    want = REF.dropout_forward(x, rate, seed, step)
    assert np.array_equal(C.dropout_forward(x, rate, seed, step), want)
    assert np.array_equal(C.dropout_mask(shape, rate, seed, step, dtype),
                          REF.dropout_mask(shape, rate, seed, step, dtype))


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    x = np.ones((4, 3), np.float32)
    for rate in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="rate"):
            be.dropout_forward(x, rate, 0, 0)
    for rate in (np.nan, np.inf):
        with pytest.raises(ValueError, match="finite"):
            be.dropout_backward(x, rate, 0, 0)
    with pytest.raises(TypeError, match="rate"):
        be.dropout_forward(x, "half", 0, 0)
    for seed in (-1, 2**63):
        with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63\)|seed must be in"):
            be.dropout_forward(x, 0.5, seed, 0)
        with pytest.raises(ValueError, match="step"):
            be.dropout_mask((3,), 0.5, 0, seed)
    for seed in (1.5, True, None, "1"):
        with pytest.raises(TypeError, match="seed must be an integer"):
            be.dropout_forward(x, 0.5, seed, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.dropout_forward(np.ones(3, np.int64), 0.5, 0, 0)
    with pytest.raises(TypeError, match="ndarray"):
        be.dropout_forward([1.0, 2.0], 0.5, 0, 0)
    with pytest.raises(ValueError, match="shape"):
        be.dropout_forward(x, 0.5, 0, 0, out=np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        be.dropout_forward(x, 0.5, 0, 0, out=np.empty((4, 3), np.float64))
    ro = np.empty((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.dropout_backward(x, 0.5, 0, 0, out=ro)
    buf = np.ones(13, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        be.dropout_forward(buf[:12], 0.5, 0, 0, out=buf[1:])
    with pytest.raises(ValueError, match="C-contiguous"):
        be.dropout_forward(x, 0.5, 0, 0, out=np.empty((3, 4), np.float32).T)
    with pytest.raises(TypeError, match="dtype"):
        be.dropout_mask((3,), 0.5, 0, 0, dtype=np.int32)
    with pytest.raises(ValueError, match="shape entries"):
        be.dropout_mask((3, -1), 0.5, 0, 0)
    with pytest.raises(TypeError, match="shape"):
        be.dropout_mask((3, 1.5), 0.5, 0, 0)
