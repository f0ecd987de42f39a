r"""Fixed-point formats and the one quantize mechanism used for every signal.

A :class:`QFormat` ``s8.6`` is a signed 8-bit word with 6 fractional bits: a value is
``code · 2^-frac`` with an integer ``code`` in ``[-2^(word-1), 2^(word-1) - 1]``
(``u16.12``: unsigned, ``code`` in ``[0, 2^16 - 1]``).

Quantizing a real ``x`` to a format is two steps, always in this order:

1. **round** ``v = x · 2^frac`` (exact: a power-of-two scaling) to an integer ``c``:

   ``nearest_even``  nearest integer, ties to even            (fxpmath ``around``)
   ``nearest_away``  nearest integer, ties away from zero     (fxpmath ``nearest_away``)
   ``floor``         ``⌊v⌋``                                   (fxpmath ``floor``)
   ``trunc``         toward zero                               (fxpmath ``trunc``)
   ``stochastic``    ``⌊v⌋ + [u < v - ⌊v⌋]``, ``u ~ U[0,1)`` drawn as float64 (one draw per
                     element, in row-major order) from a seeded ``torch.Generator``. This
                     equals ``⌊v + u⌋`` in distribution and is unbiased (``E[c] = v``).
                     For ``v = code · 2^-k`` (every use in the engine) ``v - ⌊v⌋`` is exact,
                     so the comparison is exact too; in hardware it is "add k random bits,
                     then shift right by k".

2. **overflow** if ``c`` is outside ``[min_code, max_code]``:

   ``saturate``  clamp to the nearest end of the range
   ``wrap``      two's complement wrap-around (modulo ``2^word`` for unsigned formats)

Requantizing integer codes (``c`` with ``f`` fractional bits to a format with ``f - k``) is
the same mechanism applied to ``v = c · 2^-k``: :func:`requantize` is "shift right by ``k``
with a rounding mode" (a negative ``k`` shifts left, exactly). Codes live in float64 tensors,
which hold integers exactly below ``2^53``; formats are limited to 52-bit words so that
every code of every format is exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

ROUNDINGS = ("nearest_even", "nearest_away", "floor", "trunc", "stochastic")
OVERFLOWS = ("saturate", "wrap")
MAX_WORD = 52

_FORMAT_RE = re.compile(r"^([su])(\d+)\.(\d+)$")


@dataclass(frozen=True)
class QFormat:
    """A fixed-point format: ``signed``, ``word`` bits in all, ``frac`` of them fractional."""

    signed: bool
    word: int
    frac: int

    def __post_init__(self):
        if not isinstance(self.word, int) or not 1 <= self.word <= MAX_WORD:
            raise ValueError(f"format {self}: word must be an integer in [1, {MAX_WORD}]")
        if not isinstance(self.frac, int) or self.frac < 0:
            raise ValueError(f"format {self}: frac must be an integer >= 0")
        if self.frac > self.word:
            raise ValueError(
                f"format {self}: more fractional bits ({self.frac}) than word bits ({self.word})"
            )

    @classmethod
    def parse(cls, text: str) -> QFormat:
        """``"s8.6"`` → ``QFormat(True, 8, 6)``; ``"u16.12"`` → ``QFormat(False, 16, 12)``."""
        m = _FORMAT_RE.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ValueError(
                f"bad fixed-point format {text!r}: expected s<word>.<frac> or u<word>.<frac>, "
                "e.g. s8.6"
            )
        return cls(m.group(1) == "s", int(m.group(2)), int(m.group(3)))

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.word}.{self.frac}"

    @property
    def min_code(self) -> int:
        return -(2 ** (self.word - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return 2 ** (self.word - 1) - 1 if self.signed else 2**self.word - 1

    @property
    def max_abs_code(self) -> int:
        """Largest ``|code|``: the bound used in worst-case accumulator sizes."""
        return max(-self.min_code, self.max_code)

    @property
    def lsb(self) -> float:
        """Value of one code step, ``2^-frac``."""
        return 2.0**-self.frac


class SaturationCounter:
    """Cumulative number of saturated or wrapped elements per named signal.

    Counts are kept as 0-dim tensors (no host sync inside the hot loop) and become ints in
    :meth:`as_dict`.
    """

    def __init__(self):
        self._counts: dict[str, Tensor | int] = {}

    def add(self, signal: str, count: Tensor | int) -> None:
        self._counts[signal] = self._counts.get(signal, 0) + count

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._counts.items()}


def _check_mode(rounding: str, overflow: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")
    if overflow not in OVERFLOWS:
        raise ValueError(f"unknown overflow {overflow!r}; choose one of {', '.join(OVERFLOWS)}")


Generators = torch.Generator | Sequence[torch.Generator]


def uniform(shape: Sequence[int], generator: Generators | None = None) -> Tensor:
    """Draws ``u ~ U[0,1)`` (float64) of ``shape`` for stochastic rounding.

    With a sequence of generators (one per network of an ensemble), slice ``k`` of the leading
    axis comes from ``generator[k]``, so a network draws the same alone or in an ensemble.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(tuple(shape), generator=generator, dtype=torch.float64)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a leading axis of {shape[0]}")
    return torch.stack(
        [torch.rand(tuple(shape[1:]), generator=g, dtype=torch.float64) for g in generator]
    )


def round_scaled(
    v: Tensor, rounding: str, generator: Generators | None = None, u: Tensor | None = None
) -> Tensor:
    """Round float64 ``v`` (already in units of the target LSB) to integers, per ``rounding``.

    ``stochastic`` uses the draws ``u`` (shape of ``v``) if given, else draws them from
    ``generator`` with :func:`uniform`.
    """
    if rounding == "nearest_even":
        return torch.round(v)
    if rounding == "nearest_away":
        a = v.abs()
        fl = torch.floor(a)
        return torch.sign(v) * (fl + (a - fl >= 0.5).to(v.dtype))  # a - ⌊a⌋ is exact
    if rounding == "floor":
        return torch.floor(v)
    if rounding == "trunc":
        return torch.trunc(v)
    if rounding == "stochastic":
        fl = torch.floor(v)
        u = uniform(v.shape, generator) if u is None else u
        return fl + (u < v - fl).to(v.dtype)
    raise ValueError(f"unknown rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")


def apply_overflow(
    codes: Tensor,
    fmt: QFormat,
    overflow: str = "saturate",
    *,
    counter: SaturationCounter | None = None,
    signal: str = "value",
) -> Tensor:
    """Bring integer ``codes`` into ``fmt``'s range by ``overflow``; count the ones that left it."""
    lo, hi = float(fmt.min_code), float(fmt.max_code)
    outside = (codes < lo) | (codes > hi)
    if counter is not None:
        counter.add(signal, outside.sum())
    if overflow == "saturate":
        return codes.clamp(lo, hi) + 0.0  # + 0.0 turns -0.0 into 0.0
    if overflow == "wrap":
        return torch.remainder(codes - lo, 2.0**fmt.word) + lo
    raise ValueError(f"unknown overflow {overflow!r}; choose one of {', '.join(OVERFLOWS)}")


def requantize(
    codes: Tensor,
    shift: int | Tensor,
    fmt: QFormat,
    rounding: str = "nearest_even",
    overflow: str = "saturate",
    *,
    generator: Generators | None = None,
    u: Tensor | None = None,
    counter: SaturationCounter | None = None,
    signal: str = "value",
) -> Tensor:
    """Shift exact integer ``codes`` right by ``shift`` bits with ``rounding``, then ``overflow``.

    ``shift`` may be negative (a left shift, exact) or a tensor broadcasting against
    ``codes`` (per-network shifts); ``generator``/``u`` as in :func:`round_scaled`. Returns
    float64 integer codes of ``fmt``.
    """
    _check_mode(rounding, overflow)
    scale = torch.pow(2.0, -torch.as_tensor(shift, dtype=torch.float64))
    v = codes.to(torch.float64) * scale  # exact: a power-of-two scaling of an exact integer
    return apply_overflow(
        round_scaled(v, rounding, generator, u), fmt, overflow, counter=counter, signal=signal
    )


def quantize_codes(
    x: Tensor,
    fmt: QFormat,
    rounding: str = "nearest_even",
    overflow: str = "saturate",
    *,
    generator: Generators | None = None,
    counter: SaturationCounter | None = None,
    signal: str = "value",
) -> Tensor:
    """Integer codes (float64) of real ``x`` in ``fmt``: ``x · 2^frac`` rounded, then overflowed."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if torch.isnan(x).any():
        raise ValueError(f"cannot quantize NaN (signal {signal!r})")
    return requantize(
        x, -fmt.frac, fmt, rounding, overflow, generator=generator, counter=counter, signal=signal
    )


def quantize(
    x: Tensor,
    fmt: QFormat,
    rounding: str = "nearest_even",
    overflow: str = "saturate",
    *,
    generator: Generators | None = None,
    counter: SaturationCounter | None = None,
    signal: str = "value",
) -> Tensor:
    """Values ``code · 2^-frac`` (float64) of real ``x`` quantized to ``fmt``."""
    codes = quantize_codes(
        x, fmt, rounding, overflow, generator=generator, counter=counter, signal=signal
    )
    return codes * fmt.lsb
