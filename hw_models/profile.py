"""Precision profiles: one TOML file gives a fixed-point format to every signal of the engine.

Schema (every field required; unknown fields are errors)::

    description  = "one line: what this profile models"
    overflow     = "saturate"        # or "wrap", for every signal
    lr_shift     = 0                 # learning rate 2^-lr_shift (0: lr 1, see below)
    schedule     = "per_trial"       # or "per_step": when weights are updated
    accumulator  = "clear"           # or "carry": what an update leaves in the accumulator
    weight_scale = "fixed"           # or "pow2": per-matrix power-of-two exponent from init range
    seed         = 0                 # seed of the stochastic-rounding generators

    [formats]   # "s8.6" = signed 8-bit word, 6 fractional bits; "u16.12" unsigned
    W_h, W_x, W_out      weights
    x, y                 input and output
    h, r                 state and rate relu(h)
    eps                  eligibility traces (recurrent and input)
    e, L                 output error and learning signal
    acc                  gradient accumulator
    alpha                leak factor α (and 1-α)
    q, floss_gain        flossing tangent and its growth / global factor

    [headroom]  # bits of range above the initial weights, per matrix (weight_scale "pow2")
    W_h, W_x, W_out      integers 0..16: s is chosen so that 2^headroom · max|W_init| fits

    [rounding]  # nearest_even | nearest_away | floor | trunc | stochastic
    state            x, I, h, r, y
    trace            eps
    learning_signal  e, L
    accumulate       per-step gradient into acc
    weight_update    acc >> shift into a weight change: where stochastic rounding matters

``--bits N`` (:func:`derive_profile`) derives a profile by this rule, with ``S = state_bits``
(default 16) and ``K = trace_bits`` (default N):

    W_h, W_x, W_out  sN.(N-2)   range ±2, weight_scale "pow2" (ranges follow the init)
    eps              sK.(K-3)   range ±4
    x, h, y, q, floss_gain  sS.(S-4)   range ±8;   r  u(S-1).(S-4)   range [0, 8)
    e, L             s(S+8).(S+7)   range ±1: e = ∂L/∂y carries the 1/Σm of the mean
    acc              s(2S).(2S-8)   range ±128
    alpha            u16.16
    rounding         nearest_even everywhere but weight_update = "stochastic"
    headroom         1 bit per matrix (see :class:`Headroom`)
    lr_shift 0, schedule per_trial, accumulator clear, overflow saturate, seed 0

``accumulator``: after a weight update the per-synapse accumulator is either cleared (``clear``)
or keeps what the update did not apply (``carry``: ``acc -= ΔW << shift``, the rounding remainder
of ``acc >> shift``, and any saturation of ΔW), so gradients far below one weight LSB add up over
trials into a whole LSB instead of being dropped (``nearest``) or dithered (``stochastic``). It
costs no memory (the accumulator exists already) and one subtract per synapse per update; it
needs ``f_acc + lr_shift >= f_W`` (a right shift). What clear and carry do to learning is
measured in ``experiments/README.md`` ("Measured precision choices").

lr_shift 0 (SGD at lr 1) is calibrated to neurosim's loss: e = ∂L/∂y carries 1/Σm, so e-prop
gradients on Romo are ~1e-4..1e-2 and SGD needs an lr near 1 (the calibration runs are in
``experiments/README.md``).

Every field can be overridden (:func:`apply_overrides`): a top-level name (``lr_shift=8``), a
signal name (``W_h="s8.6"``), ``rounding_<op>`` (``rounding_trace="floor"``), and ``rounding``
alone for the weight-update rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from hw_models.errors import InputError, read_toml
from hw_models.fixedpoint import OVERFLOWS, ROUNDINGS, QFormat

PROFILE_DIR = Path(__file__).parent / "profiles"
SCHEDULES = ("per_step", "per_trial")
ACCUMULATORS = ("clear", "carry")
WEIGHT_SCALES = ("fixed", "pow2")
MAX_LR_SHIFT = 40
MIN_LR_SHIFT = -8  # a negative shift is a left shift: lr 2 .. 256
MAX_HEADROOM = 16


class ProfileError(InputError):
    """A profile is malformed; the message names the offending field."""


@dataclass(frozen=True)
class Formats:
    """One :class:`QFormat` per signal (see the module docstring)."""

    W_h: QFormat
    W_x: QFormat
    W_out: QFormat
    x: QFormat
    y: QFormat
    h: QFormat
    r: QFormat
    eps: QFormat
    e: QFormat
    L: QFormat
    acc: QFormat
    alpha: QFormat
    q: QFormat
    floss_gain: QFormat


@dataclass(frozen=True)
class Headroom:
    """Bits of range kept above each weight matrix's initial maximum when ``weight_scale`` is
    ``pow2``: each bit doubles the range and the LSB — range for learning to grow into against
    resolution (the measured trade-off: ``experiments/README.md``). The shipped profiles keep
    1 bit."""

    W_h: int
    W_x: int
    W_out: int


@dataclass(frozen=True)
class Rounding:
    """Rounding mode of each operation group (see the module docstring)."""

    state: str
    trace: str
    learning_signal: str
    accumulate: str
    weight_update: str


_TOP = ("description", "overflow", "lr_shift", "schedule", "accumulator", "weight_scale", "seed")
TABLES = ("formats", "rounding", "headroom")


@dataclass(frozen=True)
class Profile:
    """A validated precision profile."""

    name: str
    description: str
    formats: Formats
    rounding: Rounding
    headroom: Headroom
    overflow: str
    lr_shift: int
    schedule: str
    accumulator: str
    weight_scale: str
    seed: int

    def to_dict(self) -> dict:
        """Plain dict (formats as strings), the same shape as the TOML plus ``name``."""
        d = {k: getattr(self, k) for k in ("name", *_TOP)}
        d["formats"] = {f.name: str(getattr(self.formats, f.name)) for f in fields(Formats)}
        d["rounding"] = asdict(self.rounding)
        d["headroom"] = asdict(self.headroom)
        return d

    def to_toml(self) -> str:
        """The profile as TOML text that :func:`load_profile` reads back."""
        d = self.to_dict()
        lines = [f"# precision profile {self.name}", *NOTATION]
        lines += [f"{k} = {_toml_value(d[k])}" for k in _TOP]
        for table in TABLES:
            lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in d[table].items()]
        return "\n".join(lines) + "\n"


NOTATION = (  # the comment that opens ``profiles show``: how to read the [formats] table
    "# formats: sW.F is a signed (two's complement) W-bit word with F fractional bits, value =",
    "#   code * 2^-F: s8.6 holds codes -128..127, steps of 2^-6, values -2 .. 1.984375;",
    "#   uW.F is unsigned: codes 0 .. 2^W - 1, values 0 .. (2^W - 1) * 2^-F",
    "# copy this text to a file, edit it, and pass the file's path to --profile",
)


def _toml_value(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


def _check_keys(table: dict, allowed: tuple[str, ...], where: str) -> None:
    for k in table:
        if k not in allowed:
            raise ProfileError(f"unknown field {where}{k!r}; allowed: {', '.join(allowed)}")
    for k in allowed:
        if k not in table:
            raise ProfileError(f"missing field {where}{k!r}")


def _choice(field: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ProfileError(f"{field} = {value!r}: choose one of {', '.join(allowed)}")
    return value


def _int(field: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProfileError(f"{field} = {value!r}: must be an integer in [{lo}, {hi}]")
    return value


def _format(field: str, value) -> QFormat:
    if isinstance(value, QFormat):
        return value
    try:
        return QFormat.parse(value)
    except ValueError as err:
        raise ProfileError(f"{field}: {err}") from None


def profile_from_dict(data: dict, name: str) -> Profile:
    """Validate a TOML-shaped dict (see module docstring) into a :class:`Profile`."""
    _check_keys(data, (*_TOP, *TABLES), "")
    for table in TABLES:
        if not isinstance(data[table], dict):
            raise ProfileError(f"{table} must be a table [{table}]")
    _check_keys(data["formats"], tuple(f.name for f in fields(Formats)), "formats.")
    _check_keys(data["rounding"], tuple(f.name for f in fields(Rounding)), "rounding.")
    _check_keys(data["headroom"], tuple(f.name for f in fields(Headroom)), "headroom.")
    if not isinstance(data["description"], str) or not data["description"].strip():
        raise ProfileError("description must be a non-empty string")
    return Profile(
        name=name,
        description=data["description"].strip(),
        formats=Formats(**{k: _format(f"formats.{k}", v) for k, v in data["formats"].items()}),
        rounding=Rounding(
            **{k: _choice(f"rounding.{k}", v, ROUNDINGS) for k, v in data["rounding"].items()}
        ),
        headroom=Headroom(**{k: _int(f"headroom.{k}", v, 0, MAX_HEADROOM)
                             for k, v in data["headroom"].items()}),
        overflow=_choice("overflow", data["overflow"], OVERFLOWS),
        lr_shift=_int("lr_shift", data["lr_shift"], MIN_LR_SHIFT, MAX_LR_SHIFT),
        schedule=_choice("schedule", data["schedule"], SCHEDULES),
        accumulator=_choice("accumulator", data["accumulator"], ACCUMULATORS),
        weight_scale=_choice("weight_scale", data["weight_scale"], WEIGHT_SCALES),
        seed=_int("seed", data["seed"], 0, 2**31 - 1),
    )


def list_profiles() -> list[str]:
    """Names of the shipped profiles (``hw_models/profiles/*.toml``), sorted."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or a TOML file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        if str(name_or_path) not in list_profiles():
            raise ProfileError(
                f"unknown profile {str(name_or_path)!r}: not a file, and not one of "
                f"{', '.join(list_profiles())}"
            )
        path = PROFILE_DIR / f"{name_or_path}.toml"
    data = read_toml(path, "profile", ProfileError)
    try:
        return profile_from_dict(data, path.stem)
    except ProfileError as err:
        raise ProfileError(f"profile {path}: {err}") from None


def apply_overrides(profile: Profile, **overrides) -> Profile:
    """A copy of ``profile`` with fields overridden (names as in the module docstring)."""
    d = profile.to_dict()
    name = d.pop("name")
    for key, value in overrides.items():
        if key in _TOP:
            d[key] = value
        elif key in d["formats"]:
            d["formats"][key] = value if isinstance(value, str) else str(value)
        elif key == "rounding":
            d["rounding"]["weight_update"] = value
        elif key.startswith("headroom_") and key[len("headroom_"):] in d["headroom"]:
            d["headroom"][key[len("headroom_"):]] = value
        elif key.startswith("rounding_") and key[len("rounding_"):] in d["rounding"]:
            d["rounding"][key[len("rounding_"):]] = value
        else:
            raise ProfileError(f"unknown profile override {key!r}")
    return replace(profile_from_dict(d, name), name=name)


def derive_profile(
    bits: int, *, trace_bits: int | None = None, state_bits: int = 16, **overrides
) -> Profile:
    """The ``--bits N`` profile: N-bit weights and traces, the rest by the documented rule."""
    N = _int("bits", bits, 2, 32)
    K = _int("trace_bits", N if trace_bits is None else trace_bits, 3, 32)
    S = _int("state_bits", state_bits, 5, 26)
    state = f"s{S}.{S - 4}"
    data = {
        "description": f"derived from --bits {N}: {N}-bit weights, {K}-bit traces, "
        f"{S}-bit state, stochastic weight update",
        "overflow": "saturate",
        "lr_shift": 0,
        "schedule": "per_trial",
        "accumulator": "clear",
        "weight_scale": "pow2",
        "seed": 0,
        "formats": {
            "W_h": f"s{N}.{N - 2}", "W_x": f"s{N}.{N - 2}", "W_out": f"s{N}.{N - 2}",
            "x": state, "y": state, "h": state, "r": f"u{S - 1}.{S - 4}",
            "eps": f"s{K}.{K - 3}",
            "e": f"s{S + 8}.{S + 7}", "L": f"s{S + 8}.{S + 7}",
            "acc": f"s{2 * S}.{2 * S - 8}", "alpha": "u16.16",
            "q": state, "floss_gain": state,
        },
        "rounding": {
            "state": "nearest_even", "trace": "nearest_even", "learning_signal": "nearest_even",
            "accumulate": "nearest_even", "weight_update": "stochastic",
        },
        "headroom": {"W_h": 1, "W_x": 1, "W_out": 1},
    }
    return apply_overrides(profile_from_dict(data, f"bits{N}"), **overrides)


WIDTH_OVERRIDES = {"trace_bits": ("eps",), "state_bits": ("x", "y", "h", "r")}


def resolve(bits: int | None = None, profile: str | Path | None = None,
            overrides: dict | tuple = ()) -> Profile:
    """The one place a precision request becomes a :class:`Profile`: ``--bits N`` (derived by
    :func:`derive_profile`) or a named/TOML ``profile``, then ``overrides`` (field → value, as
    :func:`apply_overrides` takes them). ``trace_bits`` and ``state_bits`` work with either: with
    ``bits`` they feed the derivation rule; on a profile they change the word width of the trace
    format (``eps``), or of the state formats (``x``, ``y``, ``h``, ``r``), keeping each
    format's integer bits."""
    ov = dict(overrides)
    widths = {k: ov.pop(k) for k in WIDTH_OVERRIDES if k in ov}
    if (bits is None) == (profile is None):
        raise ProfileError("give either bits or a profile")
    if bits is not None:
        return derive_profile(bits, **widths, **ov)
    base = load_profile(profile)
    for key, word in widths.items():
        for signal in WIDTH_OVERRIDES[key]:
            ov.setdefault(signal, str(_resized(getattr(base.formats, signal), word, key)))
    return apply_overrides(base, **ov)


def _resized(fmt: QFormat, word, key: str) -> QFormat:
    """``fmt`` with ``word`` bits and the same integer bits (sign included)."""
    word = _int(key, word, 2, 62)
    frac = word - (fmt.word - fmt.frac)
    if frac < 0:
        raise ProfileError(f"{key} = {word}: fewer bits than the integer part of {fmt} needs")
    return QFormat(fmt.signed, word, frac)
