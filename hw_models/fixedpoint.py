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
   ``stochastic``    ``⌊v⌋ + [u < v - ⌊v⌋]``, ``u = d · 2^-32`` from a 32-bit draw ``d`` of the
                     counter-based generator below (one draw per element). This equals
                     ``⌊v + u⌋`` in distribution and is unbiased (``E[c] = v``). For
                     ``v = code · 2^-k`` with ``k <= 53`` (every use in the engine)
                     ``v - ⌊v⌋`` and ``u`` are exact, so the comparison is exact too; in
                     integers it is ``d < rem · 2^(32-k)`` with ``rem = code mod 2^k``, and in
                     hardware (k <= 32) "add the inverted top k bits of d, shift right by k".

2. **overflow** if ``c`` is outside ``[min_code, max_code]``:

   ``saturate``  clamp to the nearest end of the range
   ``wrap``      two's complement wrap-around (modulo ``2^word`` for unsigned formats)

Requantizing integer codes (``c`` with ``f`` fractional bits to a format with ``f - k``) is
the same mechanism applied to ``v = c · 2^-k``: :func:`requantize` is "shift right by ``k``
with a rounding mode" (a negative ``k`` shifts left, exactly). Codes live in float64 tensors,
which hold integers exactly below ``2^53``; formats are limited to 52-bit words so that
every code of every format is exact.

**Stochastic-rounding generator** (:class:`CounterRNG`): counter-based, so a C model or a chip
reproduces it with a few 32-bit multiplies and no state beyond a key and a counter per
network. All words are 32-bit, arithmetic mod 2^32; ``H`` is Wellons' ``lowbias32`` hash
(https://nullprogram.com/blog/2018/07/31/, public domain)::

    H(x):  x ^= x >> 16;  x *= 0x7feb352d;  x ^= x >> 15;  x *= 0x846ca68b;  x ^= x >> 16
    key_e      = H(H(H(P ^ 0x9e3779b9) ^ lo32(s_e)) ^ hi32(s_e))   P stream (profile) seed,
                                                                   s_e network seed mod 2^64
    K_{e,c}    = H(key_e ^ H(c))        c: network e's draw counter (mod 2^32), 0 at creation,
                                        +1 after every stochastic operation (any size)
    d_{e,c,i}  = H(K_{e,c} ^ i)         i: row-major index of the element in network e's result
    u          = d · 2^-32              exact in float64

In torch the words are int64 tensors; products are formed so that no intermediate reaches 2^63
(:func:`_mul32`).
"""

from __future__ import annotations

import math
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

    With ``ensemble`` = E, counts are kept per network: the signals' leading axis is the
    ensemble axis, and :meth:`per_network` gives (E,) tensors. :meth:`as_dict` gives totals.
    """

    def __init__(self, ensemble: int | None = None):
        self.ensemble = ensemble
        self._counts: dict[str, Tensor] = {}

    def add(self, signal: str, outside: Tensor | None) -> None:
        """Count the True elements of ``outside`` (a bool mask of the signal; None: none)."""
        if outside is None:
            if signal in self._counts:  # the common case on the hot path: nothing to add
                return
            count = torch.zeros(self.ensemble or (), dtype=torch.int64)
        elif self.ensemble is None:
            count = torch.count_nonzero(outside)
        else:
            count = outside.reshape(self.ensemble, -1).sum(1)
        self._counts[signal] = self._counts[signal] + count if signal in self._counts else count

    def as_dict(self) -> dict[str, int]:
        """Totals over the ensemble, per signal."""
        return {k: int(v.sum()) for k, v in self._counts.items()}

    def per_network(self) -> dict[str, Tensor]:
        """Counts per signal: (E,) tensors with ``ensemble`` = E, 0-dim totals without."""
        return {k: v.clone() for k, v in self._counts.items()}

    def state(self) -> dict:
        return {"ensemble": self.ensemble, "counts": self.per_network()}

    @classmethod
    def from_state(cls, state: dict) -> SaturationCounter:
        counter = cls(state["ensemble"])
        counter._counts = {k: v.clone() for k, v in state["counts"].items()}
        return counter


def _check_mode(rounding: str, overflow: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")
    if overflow not in OVERFLOWS:
        raise ValueError(f"unknown overflow {overflow!r}; choose one of {', '.join(OVERFLOWS)}")


M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9
_HASH_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)


def _mul32(x, m: int):
    """``x · m mod 2^32`` for 32-bit ``x`` (int or int64 tensor) and 32-bit ``m``, with every
    intermediate below 2^63: for ``m >= 2^31``, ``x · m = x · (m - 2^31) + x · 2^31`` and
    ``x · 2^31 mod 2^32`` is the low bit of x moved to bit 31."""
    if m < 2**31:
        return (x * m) & M32
    return (x * (m - 2**31) + ((x & 1) << 31)) & M32


def hash32(x):
    """Wellons' ``lowbias32`` of 32-bit words ``x`` (a Python int or an int64 tensor)."""
    x = x ^ (x >> 16)
    x = _mul32(x, _HASH_MULTIPLIERS[0])
    x = x ^ (x >> 15)
    x = _mul32(x, _HASH_MULTIPLIERS[1])
    return x ^ (x >> 16)


def network_key(stream: int, seed: int) -> int:
    """``key_e`` of a network with seed ``seed`` (taken mod 2^64) in stream ``stream``."""
    s = seed & (2**64 - 1)
    return hash32(hash32(hash32((stream & M32) ^ _GOLDEN) ^ (s & M32)) ^ (s >> 32))


class CounterRNG:
    """Counter-based stochastic-rounding draws for E networks (see the module docstring).

    Network e has a fixed key (from ``stream`` and ``seeds[e]``) and a draw counter; each call
    of :meth:`draws` is one operation: it advances every network's counter by one. With E > 1 the
    leading axis of the shape is the network; with E = 1 the whole shape is one network's result.
    """

    def __init__(self, seeds: int | Sequence[int], *, stream: int = 0):
        seeds = [seeds] if isinstance(seeds, int) else [int(s) for s in seeds]
        self.keys = torch.tensor([network_key(stream, s) for s in seeds], dtype=torch.int64)
        self.counters = torch.zeros(len(seeds), dtype=torch.int64)

    def draws(self, shape: Sequence[int]) -> Tensor:
        """32-bit draws ``d`` (int64 in [0, 2^32)) of ``shape``; advances the counters."""
        shape = tuple(shape)
        E = len(self.keys)
        if E > 1 and (not shape or shape[0] != E):
            raise ValueError(f"{E} networks for a leading axis of {shape[:1]}")
        n = math.prod(shape[1:] if E > 1 else shape)
        if n > 2**32:
            raise ValueError(f"{n} elements exceed the 2^32 element indices of one draw")
        op_keys = hash32(self.keys ^ hash32(self.counters & M32))
        d = hash32(op_keys.unsqueeze(1) ^ torch.arange(n, dtype=torch.int64))
        self.counters += 1
        return d.reshape(shape)

    def state(self) -> dict:
        return {"keys": self.keys.clone(), "counters": self.counters.clone()}

    def set_state(self, state: dict) -> None:
        if not torch.equal(state["keys"], self.keys):
            raise ValueError("generator state belongs to other seeds")
        self.counters = state["counters"].clone()


def uniform(shape: Sequence[int], generator: CounterRNG | None = None) -> Tensor:
    """Draws ``u = d · 2^-32`` (float64, exact) of ``shape`` for stochastic rounding."""
    if generator is None:
        raise ValueError("stochastic rounding needs a generator: pass a CounterRNG")
    return generator.draws(shape).to(torch.float64) * 2.0**-32


_ONE_OP = {"nearest_even": torch.round, "floor": torch.floor, "trunc": torch.trunc}


def round_scaled(
    v: Tensor, rounding: str, generator: CounterRNG | None = None, u: Tensor | None = None,
    *, inplace: bool = False,
) -> Tensor:
    """Round float64 ``v`` (already in units of the target LSB) to integers, per ``rounding``.

    ``stochastic`` uses the draws ``u`` (shape of ``v``) if given, else draws them from
    ``generator`` with :func:`uniform`. ``inplace``: ``v`` is fresh and may hold the result
    (used by the modes that are one operation).
    """
    if rounding in _ONE_OP:
        return _ONE_OP[rounding](v, out=v) if inplace else _ONE_OP[rounding](v)
    if rounding == "nearest_away":
        a = v.abs()
        fl = torch.floor(a)
        return torch.sign(v) * (fl + (a - fl >= 0.5).to(v.dtype))  # a - ⌊a⌋ is exact
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
    inplace: bool = False,
) -> Tensor:
    """Bring integer ``codes`` into ``fmt``'s range by ``overflow``; count the ones that left it.

    ``inplace``: ``codes`` is a fresh tensor the caller gives up, so the result may reuse it
    (every engine call site: the engine's hot loop spent ~40% of its time allocating,
    comparing and counting here). Codes already in range, the common case, cost one min/max
    pass. -0.0 becomes 0.0.
    """
    lo, hi = float(fmt.min_code), float(fmt.max_code)
    if overflow not in OVERFLOWS:
        raise ValueError(f"unknown overflow {overflow!r}; choose one of {', '.join(OVERFLOWS)}")
    out = codes if inplace else codes.clone()
    outside = None  # the elements outside the range, when there are any
    if codes.numel():
        low, high = torch.aminmax(codes)
        if not (low >= lo and high <= hi):  # also when NaN: then the modes below keep it
            outside = (codes < lo) | (codes > hi)
            if overflow == "saturate":
                out.clamp_(lo, hi)
            else:  # wrap
                out.sub_(lo).remainder_(2.0**fmt.word).add_(lo)
    if counter is not None:
        counter.add(signal, outside)  # listed even when nothing left the range
    return out.add_(0.0)  # + 0.0 turns -0.0 into 0.0


def requantize(
    codes: Tensor,
    shift: int | Tensor,
    fmt: QFormat,
    rounding: str = "nearest_even",
    overflow: str = "saturate",
    *,
    generator: CounterRNG | None = None,
    u: Tensor | None = None,
    counter: SaturationCounter | None = None,
    signal: str = "value",
    inplace: bool = False,
) -> Tensor:
    """Shift exact integer ``codes`` right by ``shift`` bits with ``rounding``, then ``overflow``.

    ``shift`` may be negative (a left shift, exact) or a tensor broadcasting against
    ``codes`` (per-network shifts); ``generator``/``u`` as in :func:`round_scaled`.
    ``inplace``: ``codes`` is a fresh float64 tensor the caller gives up (saves a copy). Returns
    float64 integer codes of ``fmt``.
    """
    _check_mode(rounding, overflow)
    v = codes.to(torch.float64)
    fresh = inplace or v is not codes  # a converted copy is ours to overwrite
    if isinstance(shift, Tensor) or shift != 0:  # exact: a power-of-two scaling of an integer
        scale = (torch.pow(2.0, -shift.to(torch.float64)) if isinstance(shift, Tensor)
                 else 2.0 ** -shift)
        v, fresh = (v.mul_(scale) if fresh else v * scale), True
    return apply_overflow(
        round_scaled(v, rounding, generator, u, inplace=fresh), fmt, overflow, counter=counter,
        signal=signal, inplace=True,
    )


def quantize_codes(
    x: Tensor,
    fmt: QFormat,
    rounding: str = "nearest_even",
    overflow: str = "saturate",
    *,
    generator: CounterRNG | None = None,
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
    generator: CounterRNG | None = None,
    counter: SaturationCounter | None = None,
    signal: str = "value",
) -> Tensor:
    """Values ``code · 2^-frac`` (float64) of real ``x`` quantized to ``fmt``."""
    codes = quantize_codes(
        x, fmt, rounding, overflow, generator=generator, counter=counter, signal=signal
    )
    return codes * fmt.lsb
