"""QFormat, quantize and requantize: fxpmath is the oracle for every deterministic mode."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from fxpmath import Fxp
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models.fixedpoint import (
    OVERFLOWS,
    CounterRNG,
    QFormat,
    SaturationCounter,
    apply_overflow,
    hash32,
    network_key,
    quantize,
    quantize_codes,
    requantize,
)

FXP_ROUNDING = {
    "nearest_even": "around",
    "nearest_away": "nearest_away",
    "floor": "floor",
    "trunc": "trunc",
}

formats = st.builds(
    lambda signed, word, frac_pct: QFormat(signed, word, word * frac_pct // 100),
    st.booleans(),
    st.integers(2, 24),
    st.integers(0, 100),
)
# values in units of the LSB: many ties (k/2), values just around ties, and out-of-range ones
values = st.lists(
    st.one_of(
        st.integers(-(2**26), 2**26).map(lambda k: k / 2),
        st.floats(-(2.0**26), 2.0**26, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)


def fxp_codes(x: np.ndarray, fmt: QFormat, rounding: str, overflow: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = Fxp(
            x, fmt.signed, fmt.word, fmt.frac,
            rounding=FXP_ROUNDING[rounding], overflow=overflow,
        )
    return np.asarray(f.val, dtype=np.float64)


@pytest.mark.parametrize("rounding", list(FXP_ROUNDING))
@pytest.mark.parametrize("overflow", OVERFLOWS)
@settings(max_examples=25, deadline=None)
@given(fmt=formats, scaled=values)
def test_deterministic_modes_match_fxpmath(rounding, overflow, fmt, scaled):
    x = np.asarray(scaled, dtype=np.float64) * fmt.lsb  # exact: power-of-two scaling
    ours = quantize_codes(torch.from_numpy(x), fmt, rounding, overflow).numpy()
    np.testing.assert_array_equal(ours, fxp_codes(x, fmt, rounding, overflow))


@pytest.mark.parametrize("rounding", list(FXP_ROUNDING))
@settings(max_examples=25, deadline=None)
@given(fmt=formats, codes=st.lists(st.integers(-(2**30), 2**30), min_size=1, max_size=30),
       shift=st.integers(0, 12))
def test_requantize_is_quantize_of_the_shifted_value(rounding, fmt, codes, shift):
    c = torch.tensor(codes, dtype=torch.float64)
    expected = fxp_codes(np.asarray(codes, dtype=np.float64) * 2.0 ** -(shift + fmt.frac),
                         fmt, rounding, "saturate")
    ours = requantize(c, shift, fmt, rounding, "saturate").numpy()
    np.testing.assert_array_equal(ours, expected)


def test_nearest_away_is_exact_below_one_half():
    # 0.5 - 2^-54 + 0.5 rounds to 1.0 in float64: a naive floor(|v| + 0.5) would give 1
    v = torch.tensor([0.5 - 2.0**-54, -(0.5 - 2.0**-54), 2.0**50 + 0.5, -(2.0**50) - 0.5],
                     dtype=torch.float64)
    assert quantize_codes(v, QFormat(True, 52, 0), "nearest_away").tolist() == [
        0, 0, 2**50 + 1, -(2**50) - 1
    ]


def test_stochastic_rounding_is_unbiased():
    # 200k draws per value: the per-value mean error has std <= 0.5/sqrt(2e5) ≈ 1.1e-3 LSB,
    # so a 6e-3 LSB tolerance is > 5 sigma for every value tested.
    fmt = QFormat(True, 16, 4)
    v = torch.tensor([0.1, 0.5, 0.9, -0.3, -0.75, 3.0 + 1 / 3], dtype=torch.float64)
    x = (v * fmt.lsb).expand(200_000, -1)
    codes = quantize_codes(x, fmt, "stochastic", generator=CounterRNG(1))
    err = codes.mean(0) - v
    assert err.abs().max() < 6e-3
    assert set(codes[:, 0].unique().tolist()) == {0.0, 1.0}  # only the two neighbours


def test_stochastic_rounding_is_reproducible_from_seed():
    fmt = QFormat(True, 8, 6)
    x = torch.linspace(-1.5, 1.5, 1000, dtype=torch.float64)
    a = quantize_codes(x, fmt, "stochastic", generator=CounterRNG(7))
    b = quantize_codes(x, fmt, "stochastic", generator=CounterRNG(7))
    c = quantize_codes(x, fmt, "stochastic", generator=CounterRNG(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_stochastic_rounding_keeps_exact_codes():
    fmt = QFormat(True, 8, 3)
    x = torch.arange(-128, 128, dtype=torch.float64) * fmt.lsb
    out = quantize_codes(x, fmt, "stochastic", generator=CounterRNG(0))
    assert torch.equal(out, torch.arange(-128, 128, dtype=torch.float64))


def _lowbias32_uint32(x: int) -> int:
    """lowbias32 exactly as its C source writes it, on uint32 words (Python ints, masked)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_hash32_in_int64_tensors_equals_the_uint32_c_hash():
    words = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x9E3779B9]
    words += torch.randint(0, 2**32, (2000,), generator=torch.Generator().manual_seed(0)).tolist()
    ours = hash32(torch.tensor(words, dtype=torch.int64)).tolist()
    assert ours == [_lowbias32_uint32(w) for w in words]
    assert [hash32(w) for w in words] == ours  # the same function on Python ints


def test_counter_rng_draws_are_hashes_of_key_counter_and_element_index():
    rng = CounterRNG([3, 2**40 + 5], stream=9)
    key = [network_key(9, 3), network_key(9, 2**40 + 5)]
    for c in range(3):
        d = rng.draws((2, 4, 3))
        for e in range(2):
            op_key = _lowbias32_uint32(key[e] ^ _lowbias32_uint32(c))
            assert d[e].flatten().tolist() == [_lowbias32_uint32(op_key ^ i) for i in range(12)]
    assert rng.counters.tolist() == [3, 3]
    # a 64-bit seed is not truncated: seeds 5 and 2^40 + 5 differ
    assert network_key(9, 5) != network_key(9, 2**40 + 5)


def test_counter_rng_member_draws_equal_the_member_alone():
    ens, alone = CounterRNG([4, 5, 6], stream=1), CounterRNG(5, stream=1)
    for shape in ((3, 2, 7), (3, 5)):
        assert torch.equal(ens.draws(shape)[1], alone.draws(shape[1:]))


@settings(max_examples=100, deadline=None)
@given(fmt=formats)
def test_parse_print_roundtrip(fmt):
    assert QFormat.parse(str(fmt)) == fmt


def test_format_ranges():
    f = QFormat.parse("s8.6")
    assert (f.signed, f.word, f.frac) == (True, 8, 6)
    assert (f.min_code, f.max_code, f.lsb) == (-128, 127, 1 / 64)
    u = QFormat.parse("u16.12")
    assert (u.min_code, u.max_code, str(u)) == (0, 65535, "u16.12")


@pytest.mark.parametrize("text", ["s4.6", "s8", "x8.2", "s0.0", "s53.0", "8.2", "s8.-1", ""])
def test_bad_formats_raise(text):
    with pytest.raises(ValueError):
        QFormat.parse(text)


def test_frac_above_word_names_the_format():
    with pytest.raises(ValueError, match="s4.6.*more fractional"):
        QFormat(True, 4, 6)


def test_bad_mode_names_list_the_allowed_ones():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="nearest_even, nearest_away, floor, trunc, stochastic"):
        quantize(x, QFormat(True, 8, 4), rounding="round")
    with pytest.raises(ValueError, match="saturate, wrap"):
        quantize(x, QFormat(True, 8, 4), overflow="clip")


def test_counter_counts_saturations_and_wraps_per_signal():
    counter = SaturationCounter()
    x = torch.tensor([0.0, 10.0, -10.0, 1.0])
    quantize(x, QFormat(True, 4, 1), counter=counter, signal="h")
    quantize(x, QFormat(False, 4, 0), overflow="wrap", counter=counter, signal="r")
    quantize(x, QFormat(True, 4, 1), counter=counter, signal="h")
    assert counter.as_dict() == {"h": 4, "r": 1}


def test_an_ensemble_counter_counts_per_network():
    counter = SaturationCounter(ensemble=2)
    x = torch.tensor([[0.0, 10.0, -10.0], [1.0, 0.5, 0.0]])
    quantize(x, QFormat(True, 4, 1), counter=counter, signal="h")  # range -4 .. 3.5
    quantize(x * 8, QFormat(True, 4, 1), counter=counter, signal="h")
    assert counter.per_network()["h"].tolist() == [4, 2] and counter.as_dict() == {"h": 6}


def test_quantize_values_are_codes_times_lsb():
    fmt = QFormat(True, 12, 7)
    x = torch.randn(100, dtype=torch.float64)
    q = quantize(x, fmt)
    assert torch.equal(q, quantize_codes(x, fmt) * 2.0**-7)
    assert (q - x.clamp(fmt.min_code * fmt.lsb, fmt.max_code * fmt.lsb)).abs().max() <= fmt.lsb / 2
    assert math.isclose(fmt.lsb, 2.0**-7)


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_apply_overflow_leaves_its_input_alone_unless_told(overflow):
    fmt = QFormat(True, 4, 0)  # codes -8 .. 7
    codes = torch.tensor([-0.0, 3.0, 7.0, 8.0, -9.0, -8.0], dtype=torch.float64)
    kept = codes.clone()
    counter = SaturationCounter()
    out = apply_overflow(codes, fmt, overflow, counter=counter, signal="s")
    expected = {"saturate": [0.0, 3.0, 7.0, 7.0, -8.0, -8.0],
                "wrap": [0.0, 3.0, 7.0, -8.0, 7.0, -8.0]}[overflow]
    assert out.tolist() == expected and not torch.signbit(out[0])  # -0.0 became 0.0
    assert torch.equal(codes, kept) and torch.signbit(codes[0])  # the input is untouched
    assert counter.as_dict() == {"s": 2}
    in_place = apply_overflow(codes, fmt, overflow, inplace=True)
    assert in_place.data_ptr() == codes.data_ptr() and in_place.tolist() == expected
    in_range = torch.tensor([-8.0, 7.0], dtype=torch.float64)
    counter = SaturationCounter()
    assert apply_overflow(in_range, fmt, overflow, counter=counter, signal="s").tolist() == [-8.0, 7.0]
    assert counter.as_dict() == {"s": 0}  # listed, nothing counted
