"""Precision profiles: shipped ones load; malformed ones fail with the offending field named."""

from __future__ import annotations

import tomllib

import pytest

from hw_models.engine import FixedPointEngine
from hw_models.fixedpoint import QFormat
from hw_models.profile import (
    ProfileError,
    apply_overrides,
    derive_profile,
    list_profiles,
    load_profile,
    profile_from_dict,
)
from neurosim.model import init_params

SHIPPED = ["float-like-24", "int16", "int8-stochastic", "int8-nearest", "int4-stochastic",
           "reckon-like", "loihi-like"]


def test_every_required_profile_ships():
    assert set(SHIPPED) <= set(list_profiles())


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_loads_and_round_trips_through_toml(name, tmp_path):
    p = load_profile(name)
    assert p.name == name and p.description
    path = tmp_path / f"{name}.toml"
    path.write_text(p.to_toml())
    assert load_profile(path) == p


def test_published_silicon_profiles_have_their_widths():
    loihi = load_profile("loihi-like")
    assert (loihi.formats.W_h.word, loihi.formats.eps.word, loihi.formats.acc.word) == (8, 7, 15)
    assert loihi.rounding.weight_update == "stochastic"
    reckon = load_profile("reckon-like")
    assert (reckon.formats.W_h.word, reckon.formats.h.word) == (8, 16)
    assert load_profile("int8-nearest").rounding.weight_update == "nearest_even"


def _base() -> dict:
    return tomllib.loads(load_profile("int8-stochastic").to_toml())


def _mutate(path: str, value) -> dict:
    d = _base()
    *tables, key = path.split(".")
    t = d
    for k in tables:
        t = t[k]
    if value is None:
        del t[key]
    else:
        t[key] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("formats.W_q", "s8.6", "unknown field formats.'W_q'"),
        ("colour", "red", "unknown field 'colour'"),
        ("formats.eps", None, "missing field formats.'eps'"),
        ("lr_shift", None, "missing field 'lr_shift'"),
        ("formats.W_h", "s8", "formats.W_h: bad fixed-point format"),
        ("formats.h", "s8.9", "formats.h: format s8.9: more fractional bits"),
        ("rounding.trace", "round_up", "rounding.trace = 'round_up': choose one of"),
        ("overflow", "clip", "overflow = 'clip'"),
        ("schedule", "never", "schedule = 'never'"),
        ("weight_scale", "log", "weight_scale = 'log'"),
        ("lr_shift", -9, "lr_shift = -9"),
        ("lr_shift", 1.5, "lr_shift = 1.5"),
        ("seed", True, "seed = True"),
        ("headroom.W_out", 17, "headroom.W_out = 17"),
        ("headroom.W_h", None, "missing field headroom.'W_h'"),
        ("description", "", "description"),
    ],
)
def test_bad_profile_names_the_field(path, value, message):
    with pytest.raises(ProfileError, match=message.replace(".", r"\.").replace("'", "'")):
        profile_from_dict(_mutate(path, value), "bad")


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('description = "x"\n[formats\nW_h = "s8.6"\n')
    with pytest.raises(ProfileError, match="broken.toml: malformed TOML"):
        load_profile(path)


def test_bad_field_in_a_file_names_file_and_field(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(load_profile("int16").to_toml().replace('W_x = "s16.14"', 'W_x = "s4.6"'))
    with pytest.raises(ProfileError, match=r"mine\.toml: formats\.W_x: format s4\.6"):
        load_profile(path)


def test_unknown_profile_name_lists_the_shipped_ones():
    with pytest.raises(ProfileError, match="int8-stochastic"):
        load_profile("int7")


def test_derive_profile_follows_the_documented_rule():
    p = derive_profile(6)
    f = p.formats
    assert (f.W_h, f.W_x, f.W_out) == (QFormat.parse("s6.4"),) * 3
    assert f.eps == QFormat.parse("s6.3")
    assert (f.h, f.r, f.acc) == (QFormat.parse("s16.12"), QFormat.parse("u15.12"),
                                 QFormat.parse("s32.24"))
    assert p.rounding.weight_update == "stochastic" and p.weight_scale == "pow2"
    q = derive_profile(8, trace_bits=10, state_bits=12, rounding="nearest_even", lr_shift=7,
                       W_out="s10.8", rounding_trace="floor")
    assert q.formats.eps == QFormat.parse("s10.7") and q.formats.h == QFormat.parse("s12.8")
    assert (q.rounding.weight_update, q.rounding.trace, q.lr_shift) == ("nearest_even", "floor", 7)
    assert q.formats.W_out == QFormat.parse("s10.8")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bits": 0}, "bits = 0"),
    ({"bits": 8, "trace_bits": 1}, "trace_bits = 1"),
    ({"bits": 8, "colour": 1}, "unknown profile override 'colour'"),
    ({"bits": 8, "W_h": "s4.6"}, "formats.W_h"),
    ({"bits": 8, "rounding": "up"}, "rounding.weight_update"),
])
def test_bad_derivations_name_the_field(kwargs, message):
    with pytest.raises(ProfileError, match=message):
        derive_profile(**kwargs)


def test_overrides_apply_to_named_profiles():
    p = apply_overrides(load_profile("loihi-like"), schedule="per_step", seed=3)
    assert (p.name, p.schedule, p.seed) == ("loihi-like", "per_step", 3)


def test_headroom_widens_the_initial_range_by_its_bits():
    """pow2: each headroom bit halves the initial weights' codes (one more bit of range)."""
    params = init_params(1, 16, 2, 1.0, ensemble=1, seed=0)
    base = derive_profile(8, headroom_W_out=1)
    codes = {room: FixedPointEngine(apply_overrides(base, headroom_W_out=room), params, alpha=0.5).W["W_out"]
             for room in (1, 3)}
    top = {room: float(c.abs().max()) for room, c in codes.items()}
    assert 32 <= top[1] <= 64  # the least s with 2·max|W| <= 127 codes: max|W| in (31.75, 63.5] codes
    assert top[3] == pytest.approx(top[1] / 4, abs=1)  # two more bits: a quarter of the codes


def test_profiles_show_opens_with_the_format_notation_and_its_example_is_right(tmp_path, capsys):
    import re

    from cli_helpers import run_cli

    code, text, _ = run_cli(["profiles", "show", "int8-stochastic"], capsys)
    assert code == 0
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert text.startswith("#") and "sW.F" in head[1] and "uW.F" in head[3]
    m = re.search(r"(s\d+\.\d+) holds codes (-?\d+)\.\.(\d+), steps of 2\^-(\d+), values (\S+) \.\. (\S+);",
                  "\n".join(head))
    fmt = QFormat.parse(m[1])
    assert (int(m[2]), int(m[3]), int(m[4])) == (fmt.min_code, fmt.max_code, fmt.frac)
    assert (float(m[5]), float(m[6])) == (fmt.min_code * fmt.lsb, fmt.max_code * fmt.lsb)
    path = tmp_path / "copy.toml"
    path.write_text(text)
    assert load_profile(str(path)).formats == load_profile("int8-stochastic").formats  # comments load
